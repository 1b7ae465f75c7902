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
use super::{ConnKey, CoordinatorCall, ShardCore, ShardMsg};

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
    pub(super) fn read_welcome_inbox(&mut self, conn: ConnKey, user: &UserId) {
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

    /// The inbox position for a waiting welcome (`None`: it could not be
    /// read). An answer for a connection that closed meanwhile is dropped:
    /// its slot may hold another connection by now, whose welcome waits for
    /// its own user's position.
    pub(super) fn welcome_inbox(&mut self, conn: ConnKey, at: Option<(u64, Arc<str>)>) {
        match self.welcome_waits.get_mut(&conn.index) {
            Some(w) if w.generation == conn.generation => w.inbox = at,
            _ => return,
        }
        self.subscription_ready(conn.index);
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

#[cfg(test)]
mod reuse_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::coordinator::{Retention, StreamKey, StreamPage};
    use crate::metrics::MetricsRegistry;
    use crate::protocol::UserId;
    use crate::shard::core::{Action, CoordinatorCall, CoreConfig, ShardCore};
    use crate::shard::{ConnKey, ShardMsg};

    /// One shard with Redis and inboxes.
    fn core() -> ShardCore {
        let cfg = CoreConfig {
            inbox: Some(Retention {
                size: 10,
                ttl: Duration::from_secs(60),
            }),
            ..CoreConfig::single(true)
        };
        let metrics = MetricsRegistry::new(1).shard(0);
        ShardCore::new(cfg, metrics, Default::default(), "s".into(), 1)
    }

    /// A welcome: the slot and the inbox epoch it carries.
    type Welcomed = (u32, Option<Arc<str>>);

    /// Takes every action: answers route writes at once, and returns the
    /// inbox reads (user, token) and welcomes (slot, inbox epoch).
    fn run(core: &mut ShardCore) -> (Vec<(String, u64)>, Vec<Welcomed>) {
        let (mut reads, mut welcomes) = (Vec::new(), Vec::new());
        while let Some(a) = core.poll_action() {
            match a {
                Action::Coordinator(CoordinatorCall::AddRoute { token, .. }) => {
                    core.on_message(ShardMsg::RouteAdded { token })
                }
                Action::Coordinator(CoordinatorCall::ReadStream {
                    key: StreamKey::Inbox(user),
                    token,
                    ..
                }) => reads.push((user.to_string(), token)),
                Action::Welcome { conn, inbox, .. } => welcomes.push((conn, inbox.map(|i| i.1))),
                _ => {}
            }
        }
        (reads, welcomes)
    }

    fn page(epoch: &str) -> Option<StreamPage> {
        Some(StreamPage {
            top: 3,
            epoch: epoch.into(),
            complete: true,
            entries: Vec::new(),
        })
    }

    #[test]
    fn a_late_inbox_read_never_welcomes_the_next_connection_of_its_slot() {
        let mut core = core();
        let (alice, bob) = (
            UserId::parse("alice").unwrap(),
            UserId::parse("bob").unwrap(),
        );
        let b0 = ConnKey {
            index: 0,
            generation: 1,
        };
        core.conn_opened(b0, &bob, &[]);
        let (reads, _) = run(&mut core);
        core.on_message(ShardMsg::StreamRead {
            token: reads[0].1,
            page: page("bob-epoch"),
        });
        assert_eq!(run(&mut core).1, [(0, Some("bob-epoch".into()))]);
        // Alice's connection closes before its inbox read returns, and its
        // slot goes to a second connection of Bob's.
        let a = ConnKey {
            index: 1,
            generation: 2,
        };
        core.conn_opened(a, &alice, &[]);
        let (reads, _) = run(&mut core);
        let alice_read = reads[0].1;
        core.conn_closed(a, &alice);
        run(&mut core);
        let b1 = ConnKey {
            index: 1,
            generation: 3,
        };
        core.conn_opened(b1, &bob, &[]);
        let (reads, welcomes) = run(&mut core);
        assert!(welcomes.is_empty(), "waits for its own inbox read");
        core.on_message(ShardMsg::StreamRead {
            token: alice_read,
            page: page("alice-epoch"),
        });
        assert_eq!(run(&mut core).1, [], "Alice's answer welcomed Bob");
        core.on_message(ShardMsg::StreamRead {
            token: reads[0].1,
            page: page("bob-epoch"),
        });
        assert_eq!(run(&mut core).1, [(1, Some("bob-epoch".into()))]);
    }
}
