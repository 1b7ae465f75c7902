//! The inbox: with `INBOX_SIZE` > 0 every direct message is kept in the
//! receiver's inbox before it is delivered, so it carries its `offset`
//! there, a receiver with no open connection makes the ack `stored`, and a
//! device that comes back asks for what it missed (`inbox`).
//!
//! A direct message first goes to the inbox (Redis, or the receiver's owner
//! shard in embedded mode); the answer's offset is written into the frame
//! (once), then the message is routed like any direct message. Messages of
//! one sender to one receiver keep their order: both steps are FIFO.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::coordinator::{Appended, ReplyTo, Retention, StreamKey, StreamQuery};
use crate::protocol::envelope::server_v2::with_offset;
use crate::protocol::frame::text_frame_with;
use crate::protocol::UserId;

use super::history::Read;
use super::{CoordinatorCall, ShardCore, ShardMsg};

/// A direct message waiting for its place in the receiver's inbox.
#[derive(Debug)]
pub struct Storing {
    /// The receiver.
    pub receiver: UserId,
    /// The framed message, without offset.
    pub frame: Bytes,
    /// The sender's pending ack.
    pub reply: Option<ReplyTo>,
    /// Unix micros when this instance received it.
    pub sent_at_us: u64,
}

/// Direct messages being stored, by token.
pub type StoringMap = HashMap<u64, Storing>;

impl ShardCore {
    /// Keeps a direct message in the receiver's inbox, then routes it.
    pub(super) fn store_direct(&mut self, retention: Retention, storing: Storing) {
        let token = self.token();
        let json = frame_json(&storing.frame);
        let user = storing.receiver.clone();
        self.storing.insert(token, storing);
        let shard = self.cfg.index;
        if self.cfg.remote {
            self.coordinator(CoordinatorCall::AppendInbox {
                user,
                json,
                retention,
                shard,
                token,
            });
        } else {
            let owner = self.owner_of(&user);
            let msg = ShardMsg::AppendInbox {
                user,
                json,
                retention,
                shard,
                token,
            };
            self.send(owner, msg);
        }
    }

    /// Owner (embedded mode): appends to a user's inbox.
    pub(super) fn on_append_inbox(
        &mut self,
        user: UserId,
        json: Bytes,
        retention: Retention,
        shard: u16,
        token: u64,
    ) {
        let key = StreamKey::Inbox(user);
        let (at, _) = self.streams.append(&key, &json, retention, self.now_ms);
        self.send(
            shard,
            ShardMsg::InboxAppended {
                token,
                at: Some(at),
            },
        );
    }

    /// The inbox answered: route the message, with its offset when it was kept.
    pub(super) fn on_inbox_appended(&mut self, token: u64, at: Option<Appended>) {
        let Some(s) = self.storing.remove(&token) else {
            return;
        };
        let offset = at.as_ref().map(|a| a.offset);
        if let Some(ReplyTo::Shard { token, .. }) = s.reply {
            self.pending.stored_at(token, offset);
        }
        let frame = match offset {
            Some(offset) => {
                let json = with_offset(&frame_json(&s.frame), offset);
                text_frame_with(|out| out.extend_from_slice(&json))
            }
            // Not kept (coordination layer down): delivered live only.
            None => s.frame,
        };
        self.route_direct(s.receiver, frame, s.reply, s.sent_at_us);
    }

    /// A connection of `user` opened: its welcome waits for the inbox's
    /// position (which it carries).
    pub(super) fn read_welcome_inbox(&mut self, conn: u32, user: &UserId) {
        let Some(retention) = self.cfg.inbox else {
            return;
        };
        let query = StreamQuery {
            since: None,
            limit: 0,
            retention,
        };
        let token = self.token();
        let key = StreamKey::Inbox(user.clone());
        self.read_stream(key, query, token, Read::WelcomeInbox { conn });
    }

    /// The inbox position for a waiting welcome (`None`: it could not be read).
    pub(super) fn welcome_inbox(&mut self, conn: u32, at: Option<(u64, Arc<str>)>) {
        if let Some(w) = self.welcome_waits.get_mut(&conn) {
            w.inbox = at;
        }
        self.subscription_ready(conn);
    }
}

/// The JSON of a server text frame (2, 4 or 10 header bytes, unmasked).
pub fn frame_json(frame: &Bytes) -> Bytes {
    let start = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    frame.slice(start.min(frame.len())..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_of_a_frame_of_any_length_is_found() {
        for len in [10usize, 200, 70_000] {
            let body = format!("{{\"x\":\"{}\"}}", "a".repeat(len));
            let frame = text_frame_with(|out| out.extend_from_slice(body.as_bytes()));
            assert_eq!(&frame_json(&frame)[..], body.as_bytes());
        }
    }
}
