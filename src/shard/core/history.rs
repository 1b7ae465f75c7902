//! Reading streams: a new subscriber's position and recovery on a channel
//! with history, `history` and `inbox` requests, and the inbox position a
//! welcome carries. A read goes to the coordination layer (Redis) or, in
//! embedded mode, to the stream's owner shard; its answer comes back as a
//! `StreamRead` with the read's token.
//!
//! Recovery is never partial: `recovered: true` comes with every
//! publication after the client's offset, or `recovered: false` with none.
//! Live publications that arrive while the read is under way wait in the
//! subscriber's buffer and follow the recovered ones; copies of what the
//! read already returned are skipped, so nothing is lost or sent twice.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::coordinator::{Retention, StreamKey, StreamPage, StreamQuery};
use crate::metrics::Counter;
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::server_v2::{
    write_history, write_inbox, write_subscribed, StreamTop,
};
use crate::protocol::envelope::{ErrorCode, Position};
use crate::protocol::frame::text_frame_with;
use crate::session::error_frame;

use super::api::{ApiOutcome, Who};
use super::channels::{Joining, Recovering};
use super::{Action, ConnKey, CoordinatorCall, ShardCore, ShardMsg, Target};

/// Most publications a recovery returns; more missed ones give
/// `recovered: false` (the client reloads instead).
pub const MAX_RECOVERY: u32 = 1_000;

/// What a read is for.
#[derive(Debug)]
pub enum Read {
    /// A subscriber's position (and recovery) on a channel with history.
    Subscribe {
        /// The channel.
        channel: ChannelName,
    },
    /// A `history` request (of a client or the server API).
    History {
        /// Who asked.
        who: Who,
        /// The channel.
        channel: ChannelName,
        /// It gave `since` (the answer says whether it was `recovered`).
        since: bool,
    },
    /// An `inbox` request.
    Inbox {
        /// The asking connection.
        conn: ConnKey,
        /// Its id, echoed.
        id: Option<String>,
    },
    /// The inbox position a connection's welcome carries.
    WelcomeInbox {
        /// The connection (its slot may hold another one by the answer).
        conn: ConnKey,
    },
}

impl ShardCore {
    /// Reads `key` for `purpose` with `token`.
    pub(super) fn read_stream(
        &mut self,
        key: StreamKey,
        query: StreamQuery,
        token: u64,
        purpose: Read,
    ) {
        self.reads.insert(token, purpose);
        let shard = self.cfg.index;
        if self.cfg.remote {
            self.coordinator(CoordinatorCall::ReadStream {
                key,
                query,
                shard,
                token,
            });
        } else {
            let owner = self.owner_of(key.name());
            let msg = ShardMsg::ReadStream {
                key,
                query,
                shard,
                token,
            };
            self.send(owner, msg);
        }
    }

    /// A subscriber of a channel with history reads its position first
    /// (and, asked to recover, what it missed).
    pub(super) fn read_position(&mut self, channel: &ChannelName, j: &Joining, token: u64) {
        let Some(retention) = Retention::of(self.namespaces.options(channel)) else {
            return;
        };
        let (since, limit) = match &j.recover {
            Some(p) => (Some((p.offset, Arc::from(&*p.epoch))), MAX_RECOVERY),
            None => (None, 0),
        };
        let query = StreamQuery {
            since,
            limit,
            retention,
        };
        let key = StreamKey::Channel(channel.clone());
        let purpose = Read::Subscribe {
            channel: channel.clone(),
        };
        self.read_stream(key, query, token, purpose);
    }

    /// Owner (embedded mode): answers a read from its streams.
    pub(super) fn on_read_stream(
        &mut self,
        key: StreamKey,
        query: StreamQuery,
        shard: u16,
        token: u64,
    ) {
        let page = self.streams.read(&key, &query, self.now_ms);
        let msg = ShardMsg::StreamRead {
            token,
            page: Some(page),
        };
        self.send(shard, msg);
    }

    /// The answer to a read of this shard.
    pub(super) fn on_stream_read(&mut self, token: u64, page: Option<StreamPage>) {
        match self.reads.remove(&token) {
            Some(Read::Subscribe { channel }) => self.recovered(&channel, token, page),
            Some(Read::History {
                who,
                channel,
                since,
            }) => self.answer_history(who, &channel, since, page),
            Some(Read::Inbox { conn, id }) => self.answer_inbox(conn, id, page),
            Some(Read::WelcomeInbox { conn }) => {
                let at = page.map(|p| (p.top, p.epoch));
                self.welcome_inbox(conn, at);
            }
            None => {}
        }
    }

    /// A subscriber's read returned: answer `subscribed`, then what arrived
    /// live meanwhile (after its position), and make it a member. Its
    /// position is the read's newest offset, or, when more arrived live than
    /// could be buffered, the newest one dropped: what it receives next
    /// continues right after the offset `subscribed` reports.
    fn recovered(&mut self, channel: &ChannelName, token: u64, page: Option<StreamPage>) {
        let top = page.as_ref().map(|p| p.top);
        let Some(r) = self.subs.finish_read(channel, token, top) else {
            return;
        };
        if r.overflowed() {
            self.metrics.incr(Counter::SubscribeBufferOverflows);
        }
        let position = r.position(top);
        let conn = r.joining.conn;
        self.member_counted(channel, &r.joining);
        if r.joining.at_connect {
            self.subscription_ready(conn.index);
        } else {
            let at = page.as_ref().zip(position);
            let frame = self.subscribed_frame(channel, &r, at);
            self.reply(conn, frame);
        }
        let after = position.unwrap_or(0);
        for (offset, frame) in r.buffer {
            if offset > after {
                self.act(Action::Deliver {
                    to: Target::Conn(conn),
                    frame,
                    sent_at_us: 0,
                    report: None,
                });
            }
        }
    }

    /// `subscribed` for `r`, given the read's page and the position.
    fn subscribed_frame(
        &self,
        channel: &str,
        r: &Recovering,
        at: Option<(&StreamPage, u64)>,
    ) -> Bytes {
        let id = r.joining.id.as_deref();
        let page = at.map(|(p, _)| p);
        let top = at.map(|(p, offset)| StreamTop {
            offset,
            epoch: &p.epoch,
        });
        let Some(since) = &r.joining.recover else {
            return text_frame_with(|out| write_subscribed(out, channel, id, top, None));
        };
        let entries = page.map_or(&[][..], |p| &p.entries[..]);
        let complete = page.is_some_and(|p| {
            let missed = p.top.saturating_sub(since.offset);
            p.complete && p.top >= since.offset && entries.len() as u64 == missed
        });
        let bytes: usize = entries.iter().map(Bytes::len).sum();
        let recovered = complete && !r.overflowed() && bytes <= self.cfg.max_recovery_bytes;
        let counter = if recovered {
            Counter::RecoveriesSucceeded
        } else {
            Counter::RecoveriesFailed
        };
        self.metrics.incr(counter);
        let raw: Vec<&RawValue> = if recovered {
            raw_json(entries)
        } else {
            Vec::new()
        };
        text_frame_with(|out| write_subscribed(out, channel, id, top, Some((recovered, &raw))))
    }

    /// A `history` request (the namespace keeps history; permission checked).
    pub(super) fn history(
        &mut self,
        who: Who,
        channel: ChannelName,
        since: Option<(u64, Arc<str>)>,
        limit: u32,
    ) {
        let Some(retention) = Retention::of(self.namespaces.options(&channel)) else {
            if let Who::Api { token } = who {
                self.api_reply(token, ApiOutcome::NotAvailable);
            }
            return;
        };
        let purpose = Read::History {
            who,
            channel: channel.clone(),
            since: since.is_some(),
        };
        let query = StreamQuery {
            since,
            limit,
            retention,
        };
        let token = self.token();
        self.read_stream(StreamKey::Channel(channel), query, token, purpose);
    }

    fn answer_history(&mut self, who: Who, channel: &str, since: bool, page: Option<StreamPage>) {
        let (conn, id) = match who {
            Who::Client { conn, id } => (conn, id),
            Who::Api { token } => {
                let outcome = page.map_or(ApiOutcome::Unavailable, ApiOutcome::History);
                return self.api_reply(token, outcome);
            }
        };
        let Some(p) = page else {
            return self.unavailable(conn, id.as_deref(), "history could not be read now");
        };
        let raw = raw_json(&p.entries);
        let recovered = since.then_some(p.complete);
        let top = StreamTop {
            offset: p.top,
            epoch: &p.epoch,
        };
        let frame =
            text_frame_with(|out| write_history(out, channel, id.as_deref(), &raw, top, recovered));
        self.reply(conn, frame);
    }

    /// An `inbox` request (the server keeps inboxes).
    pub(super) fn inbox(
        &mut self,
        conn: ConnKey,
        user: crate::protocol::UserId,
        since: Option<Position<'static>>,
        limit: u32,
        id: Option<String>,
    ) {
        let Some(retention) = self.cfg.inbox else {
            return;
        };
        let query = StreamQuery {
            since: since.as_ref().map(|p| (p.offset, Arc::from(&*p.epoch))),
            limit,
            retention,
        };
        let token = self.token();
        self.read_stream(
            StreamKey::Inbox(user),
            query,
            token,
            Read::Inbox { conn, id },
        );
    }

    fn answer_inbox(&mut self, conn: ConnKey, id: Option<String>, page: Option<StreamPage>) {
        let Some(p) = page else {
            return self.unavailable(conn, id.as_deref(), "the inbox could not be read now");
        };
        let raw = raw_json(&p.entries);
        let top = StreamTop {
            offset: p.top,
            epoch: &p.epoch,
        };
        let frame = text_frame_with(|out| write_inbox(out, id.as_deref(), &raw, top, p.complete));
        self.reply(conn, frame);
    }

    fn unavailable(&mut self, conn: ConnKey, id: Option<&str>, why: &str) {
        self.reply(conn, error_frame(ErrorCode::NotAvailable, why, id));
    }
}

/// Entries as raw JSON values (entries that are not JSON are skipped: they
/// were not written by this server).
fn raw_json(entries: &[Bytes]) -> Vec<&RawValue> {
    entries
        .iter()
        .filter_map(|e| std::str::from_utf8(e).ok())
        .filter_map(|text| serde_json::from_str::<&RawValue>(text).ok())
        .collect()
}
