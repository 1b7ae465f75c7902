//! Presence: who is subscribed to a channel, counted per user.
//!
//! A shard counts a connection in when it becomes a member of a channel
//! whose namespace has presence, and out when it leaves (unsubscribe,
//! close), and tells the channel's owner. The owner keeps the instance's
//! table (user → connections). With Redis it forwards every change to the
//! coordination layer, where a function keeps the cluster's table and
//! announces `join`/`leave` when a user's count crosses zero anywhere; the
//! owners' tables rebuild Redis's after it lost them. In embedded mode the
//! owner's table is the answer, and the owner announces.
//!
//! `join`/`leave` are rate-limited per channel (`join_leave_per_sec`), so a
//! 10,000-member room does not send 10,000 events per second to each of its
//! members; presence lists are capped at [`PRESENCE_CAP`] users
//! (`truncated` says so), `presence_stats` is constant time.

use std::collections::HashMap;

use crate::coordinator::PresencePage;
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::server_v2::{
    write_join_leave, write_presence, write_presence_stats,
};
use crate::protocol::envelope::ErrorCode;
use crate::protocol::frame::text_frame_with;
use crate::protocol::UserId;
use crate::session::error_frame;

use super::api::{ApiOutcome, Who};
use super::{CoordinatorCall, ShardCore, ShardMsg};

/// Most users a `presence` answer lists.
pub const PRESENCE_CAP: u32 = 1_000;

/// One channel's presence on this instance.
#[derive(Debug, Default)]
struct Table {
    /// User → connections subscribed on this instance.
    users: HashMap<UserId, u32>,
    /// Sum of `users`.
    connections: u32,
    /// `join`/`leave` tokens left (embedded mode).
    tokens: f64,
    /// Shard clock of the last refill (0: never).
    refilled_ms: u32,
}

/// The presence tables of the channels this shard owns.
#[derive(Debug, Default)]
pub struct Tables {
    /// By channel.
    tables: HashMap<ChannelName, Table>,
    /// Channels whose table has no user left and is kept only for its
    /// `join`/`leave` bucket, until [`Tables::purge`] finds it full again.
    idle: Vec<ChannelName>,
}

/// A `join`/`leave` bucket (burst = rate per second) is full again this
/// long after its last refill: it then limits nothing a fresh one would not.
const BUCKET_FULL_MS: u32 = 1_000;

/// A user's count crossed zero on this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossed {
    /// 0 → 1.
    Join,
    /// 1 → 0.
    Leave,
}

impl Tables {
    /// Applies `delta` connections of `user`.
    pub fn apply(&mut self, channel: &ChannelName, user: &UserId, delta: i32) -> Option<Crossed> {
        let table = self.tables.entry(channel.clone()).or_default();
        let before = table.users.get(user).copied().unwrap_or(0);
        let after = before.saturating_add_signed(delta);
        table.connections = table
            .connections
            .saturating_add_signed(after as i32 - before as i32);
        if after == 0 {
            table.users.remove(user);
        } else {
            table.users.insert(user.clone(), after);
        }
        let crossed = match (before, after) {
            (0, a) if a > 0 => Some(Crossed::Join),
            (b, 0) if b > 0 => Some(Crossed::Leave),
            _ => None,
        };
        if table.users.is_empty() {
            self.tables.remove(channel);
        }
        crossed
    }

    /// Takes a `join`/`leave` token of `channel` at `rate` per second
    /// (burst = rate; 0 = no limit).
    pub fn take_token(&mut self, channel: &ChannelName, rate: u32, now_ms: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let table = self.tables.entry(channel.clone()).or_default();
        let rate = f64::from(rate);
        if table.refilled_ms == 0 {
            table.tokens = rate;
        } else {
            let elapsed = f64::from(now_ms.wrapping_sub(table.refilled_ms));
            table.tokens = (table.tokens + elapsed * rate / 1000.0).min(rate);
        }
        table.refilled_ms = now_ms.max(1);
        let allowed = table.tokens >= 1.0;
        if allowed {
            table.tokens -= 1.0;
        }
        if table.users.is_empty() {
            // The last user left (`apply` dropped the table, this made a new
            // one for the `leave`): kept for its bucket, dropped once full.
            self.idle.push(channel.clone());
        }
        allowed
    }

    /// Drops the tables of channels nobody is in whose bucket is full again
    /// (a channel's table would otherwise outlive its last user for good).
    pub fn purge(&mut self, now_ms: u32) {
        let tables = &mut self.tables;
        self.idle.retain(|channel| {
            let Some(t) = tables.get(channel).filter(|t| t.users.is_empty()) else {
                return false; // gone, or in use again (`apply` drops it when it empties)
            };
            if now_ms.wrapping_sub(t.refilled_ms) < BUCKET_FULL_MS {
                return true;
            }
            tables.remove(channel);
            false
        });
    }

    /// The channel's presence: at most `cap` users.
    pub fn page(&self, channel: &str, cap: u32) -> PresencePage {
        let Some(t) = self.tables.get(channel) else {
            return PresencePage::default();
        };
        let users = t
            .users
            .iter()
            .take(cap as usize)
            .map(|(u, n)| (u.to_string(), *n))
            .collect();
        PresencePage {
            users,
            user_count: t.users.len() as u64,
            connections: u64::from(t.connections),
            truncated: t.users.len() > cap as usize,
        }
    }

    /// Channels with a table (leak checks).
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// True when no channel has a table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Every table, for a coordination layer that lost them.
    pub fn all(&self) -> impl Iterator<Item = (&ChannelName, Vec<(UserId, u32)>)> {
        self.tables.iter().map(|(c, t)| {
            let users = t.users.iter().map(|(u, n)| (u.clone(), *n)).collect();
            (c, users)
        })
    }
}

/// A `presence` or `presence_stats` request waiting for its answer.
#[derive(Debug)]
pub struct Asking {
    /// Who asked.
    pub who: Who,
    /// The channel.
    pub channel: ChannelName,
    /// Counts only.
    pub stats: bool,
}

impl ShardCore {
    /// A member was counted in (`+1`) or out (`-1`): tell the channel's owner.
    pub(super) fn presence_delta(&mut self, channel: ChannelName, user: UserId, delta: i32) {
        let owner = self.owner_of(&channel);
        self.send(
            owner,
            ShardMsg::Presence {
                channel,
                user,
                delta,
            },
        );
    }

    /// Owner: one change of the instance's presence.
    pub(super) fn on_presence(&mut self, channel: ChannelName, user: UserId, delta: i32) {
        let crossed = self.presence.apply(&channel, &user, delta);
        if self.cfg.remote {
            // Redis keeps the cluster's count and announces.
            let changes = vec![(user, delta)];
            return self.coordinator(CoordinatorCall::PresenceChanges { channel, changes });
        }
        let options = self.namespaces.options(&channel);
        let (Some(crossed), true) = (crossed, options.join_leave) else {
            return;
        };
        let rate = options.join_leave_per_sec;
        if !self.presence.take_token(&channel, rate, self.now_ms) {
            return self.metrics.incr(crate::metrics::Counter::JoinLeaveDropped);
        }
        let kind = match crossed {
            Crossed::Join => "join",
            Crossed::Leave => "leave",
        };
        let frame = text_frame_with(|out| write_join_leave(out, kind, &channel, &user));
        self.fan_out(channel, frame, None, 0);
    }

    /// A `presence`/`presence_stats` request (the namespace has presence).
    pub(super) fn presence_request(&mut self, who: Who, channel: ChannelName, stats: bool) {
        let token = self.token();
        let cap = if stats { 0 } else { PRESENCE_CAP };
        let shard = self.cfg.index;
        let asking = Asking {
            who,
            channel: channel.clone(),
            stats,
        };
        self.presence_asks.insert(token, asking);
        if self.cfg.remote {
            self.coordinator(CoordinatorCall::ReadPresence {
                channel,
                cap,
                shard,
                token,
            });
        } else {
            let owner = self.owner_of(&channel);
            let msg = ShardMsg::ReadPresence {
                channel,
                cap,
                shard,
                token,
            };
            self.send(owner, msg);
        }
    }

    /// Owner (embedded mode): answers a presence read.
    pub(super) fn on_read_presence(
        &mut self,
        channel: ChannelName,
        cap: u32,
        shard: u16,
        token: u64,
    ) {
        let page = Some(self.presence.page(&channel, cap));
        self.send(shard, ShardMsg::PresenceRead { token, page });
    }

    /// The answer to a presence read of this shard.
    pub(super) fn on_presence_read(&mut self, token: u64, page: Option<PresencePage>) {
        let Some(a) = self.presence_asks.remove(&token) else {
            return;
        };
        let (conn, id) = match a.who {
            Who::Client { conn, id } => (conn, id),
            Who::Api { token } => {
                let outcome = page.map_or(ApiOutcome::Unavailable, ApiOutcome::Presence);
                return self.api_reply(token, outcome);
            }
        };
        let id = id.as_deref();
        let frame = match page {
            None => error_frame(
                ErrorCode::NotAvailable,
                "presence could not be read now",
                id,
            ),
            Some(p) if a.stats => text_frame_with(|out| {
                write_presence_stats(out, &a.channel, id, p.user_count, p.connections)
            }),
            Some(p) => {
                text_frame_with(|out| write_presence(out, &a.channel, id, &p.users, p.truncated))
            }
        };
        self.reply(conn, frame);
    }

    /// The coordination layer lost its state: rebuild this instance's presence.
    pub(super) fn reset_presence(&mut self) {
        if !self.cfg.remote {
            return;
        }
        let all: Vec<(ChannelName, Vec<(UserId, u32)>)> =
            self.presence.all().map(|(c, u)| (c.clone(), u)).collect();
        for (channel, users) in all {
            self.coordinator(CoordinatorCall::PresenceReset { channel, users });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan() -> ChannelName {
        ChannelName::parse("room").unwrap()
    }

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn a_user_joins_on_the_first_connection_and_leaves_on_the_last() {
        let mut t = Tables::default();
        assert_eq!(t.apply(&chan(), &user("a"), 1), Some(Crossed::Join));
        assert_eq!(t.apply(&chan(), &user("a"), 1), None, "a second tab");
        assert_eq!(t.apply(&chan(), &user("b"), 1), Some(Crossed::Join));
        let page = t.page("room", 10);
        assert_eq!(
            (page.user_count, page.connections, page.truncated),
            (2, 3, false)
        );
        assert!(t.page("room", 1).truncated);
        assert_eq!(t.apply(&chan(), &user("a"), -1), None);
        assert_eq!(t.apply(&chan(), &user("a"), -1), Some(Crossed::Leave));
        assert_eq!(t.apply(&chan(), &user("b"), -1), Some(Crossed::Leave));
        assert_eq!(
            t.page("room", 10),
            PresencePage::default(),
            "nothing left behind"
        );
    }

    #[test]
    fn a_channel_nobody_is_in_keeps_no_table_once_its_bucket_is_full() {
        let mut t = Tables::default();
        assert_eq!(t.apply(&chan(), &user("a"), 1), Some(Crossed::Join));
        assert!(t.take_token(&chan(), 3, 1_000));
        assert_eq!(t.apply(&chan(), &user("a"), -1), Some(Crossed::Leave));
        assert!(t.take_token(&chan(), 3, 1_000));
        t.purge(1_500);
        assert_eq!(t.len(), 1, "kept while its bucket still limits a rejoin");
        t.purge(2_000);
        assert!(t.is_empty(), "an empty channel leaves nothing behind");
    }

    #[test]
    fn a_room_everyone_left_leaves_no_presence_state_in_the_core() {
        use crate::namespaces::{NamespaceOptions, Namespaces};
        use crate::session::Outcome;
        use crate::shard::core::{CoreConfig, ShardCore};
        use crate::shard::ConnKey;
        use std::sync::Arc;

        let room = NamespaceOptions {
            public: true,
            presence: true,
            join_leave: true,
            ..NamespaceOptions::default()
        };
        let ns = Namespaces {
            default: NamespaceOptions::default(),
            named: [("room".to_owned(), room)].into(),
        };
        let cfg = CoreConfig::single(false);
        let metrics = crate::metrics::MetricsRegistry::new(1).shard(0);
        let mut core = ShardCore::new(cfg, metrics, Arc::new(ns), "s".into(), 1);
        let (key, alice) = (
            ConnKey {
                index: 0,
                generation: 1,
            },
            user("alice"),
        );
        core.conn_opened(key, &alice, &[]);
        let subscribe = Outcome::Subscribe {
            user: alice.clone(),
            channel: ChannelName::parse("room:1").unwrap(),
            recover: None,
            id: None,
        };
        core.client_outcome(key, subscribe, 0, 1_000);
        while core.poll_action().is_some() {}
        core.conn_closed(key, &alice);
        while core.poll_action().is_some() {}
        core.tick(5_000);
        while core.poll_action().is_some() {}
        assert!(core.footprint().is_empty(), "{:?}", core.footprint());
    }

    #[test]
    fn join_leave_events_are_rate_limited_per_channel() {
        let mut t = Tables::default();
        t.apply(&chan(), &user("a"), 1);
        let allowed = (0..10).filter(|_| t.take_token(&chan(), 3, 1_000)).count();
        assert_eq!(allowed, 3, "burst = rate");
        assert!(
            t.take_token(&chan(), 3, 1_400),
            "refilled after a third of a second"
        );
        assert!(t.take_token(&chan(), 0, 1_400), "0 = no limit");
    }
}
