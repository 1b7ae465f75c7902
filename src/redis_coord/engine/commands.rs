//! The engine's side of each [`Command`]: queued for the next round, or
//! answered at once while the link is down.

use std::time::Instant;

use bytes::Bytes;

use crate::coordinator::{History, LocalRouter, PublishOutcome, RemoteOutcome, StreamKey, UserOp};
use crate::metrics::Counter;
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

use super::super::round::Tag;
use super::super::{envelope, functions, keys, status};
use super::{ChannelPublish, Command, Engine};

impl Engine {
    /// Handles a shard's command; false on `Shutdown`.
    pub fn on_command(&mut self, cmd: Command, now: Instant) -> bool {
        match cmd {
            Command::AddRoute { user, shard, token } if self.up => {
                self.routes.add(user, Some((shard, token)))
            }
            Command::AddRoute { user, shard, token } => {
                // Welcome the client now; the route is written on reconnection.
                self.routes.add(user, None);
                self.router.route_added(shard, token);
            }
            Command::RemoveRoute { user } => self.routes.remove(user),
            Command::Direct {
                user,
                frame,
                shard,
                token,
                sent_at_us,
            } => self.begin_direct(user, &frame, shard, token, sent_at_us, now),
            Command::Broadcast { frame, sent_at_us } => self.broadcast(&frame, sent_at_us),
            Command::UserOp {
                user,
                op,
                shard,
                token,
            } => self.begin_user_op(user, &op, shard, token, now),
            Command::Idempotency {
                key,
                answer,
                shard,
                token,
            } => {
                if !self.up {
                    return self.down(|r| r.idempotency_answer(shard, token, None));
                }
                let ttl = crate::coordinator::IDEMPOTENCY_TTL_MS;
                let settle = answer.is_some();
                let (cmd, name) = match &answer {
                    Some(a) => functions::settle(&key, a, ttl),
                    None => functions::claim(&key, ttl),
                };
                let tag = Tag::Idempotency {
                    shard,
                    token,
                    settle,
                };
                self.stream_calls.push((cmd, name, tag));
            }
            Command::UserServers { user, shard, token } => {
                if !self.up {
                    return self.down(|r| r.user_servers(shard, token, None));
                }
                let id = self.next_id();
                self.status.insert(id, status::Pending::new(shard, token));
                self.stream_calls.push((
                    status::members(&user),
                    keys::route_key(&user),
                    Tag::StatusMembers { id },
                ));
            }
            Command::SubscribeChannel {
                channel,
                shard,
                token,
            } => {
                if let Some((shard, token)) =
                    self.channels.subscribe(channel, shard, token, self.up)
                {
                    self.router.channel_subscribed(shard, token);
                }
            }
            Command::UnsubscribeChannel { channel } => self.channels.unsubscribe(channel),
            // While down, changes are dropped: the owners' tables rebuild
            // Redis's on reconnection.
            Command::PresenceChanges { channel, changes } if self.up => {
                self.presence.changes(channel, changes)
            }
            Command::PresenceReset { channel, users } if self.up => {
                self.presence.reset(channel, users)
            }
            Command::PresenceChanges { .. } | Command::PresenceReset { .. } => {}
            Command::ReadPresence {
                channel,
                cap,
                shard,
                token,
            } => {
                if !self.up {
                    return self.down(|r| r.presence_read(shard, token, None));
                }
                let (cmd, key) = functions::presence::list(&channel, cap);
                self.stream_calls
                    .push((cmd, key, Tag::PresenceList { shard, token, cap }));
            }
            Command::ReadStream {
                key,
                query,
                shard,
                token,
            } => {
                if !self.up {
                    return self.down(|r| r.stream_read(shard, token, None));
                }
                let (cmd, list) = functions::read(&key, &query);
                self.stream_calls
                    .push((cmd, list, Tag::StreamRead { shard, token }));
            }
            Command::AppendInbox {
                user,
                json,
                retention,
                shard,
                token,
            } => {
                if !self.up {
                    return self.down(|r| r.inbox_appended(shard, token, None));
                }
                let (cmd, list) =
                    functions::append_inbox(&StreamKey::Inbox(user), &json, retention);
                self.stream_calls
                    .push((cmd, list, Tag::InboxAppend { shard, token }));
            }
            Command::Publish {
                channel,
                json,
                history,
                shard,
                token,
                sent_at_us,
            } => self.publish(channel, json, history, shard, token, sent_at_us),
            Command::Report {
                key,
                connections,
                parts,
            } => self.report(key, connections, parts),
            Command::Shutdown => return false,
        }
        true
    }

    fn begin_direct(
        &mut self,
        user: UserId,
        frame: &[u8],
        shard: u16,
        token: u64,
        sent_at_us: u64,
        now: Instant,
    ) {
        if !self.up {
            self.metrics.incr(Counter::RedisErrors);
            self.answer((shard, token, RemoteOutcome::Failed));
            return;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let wire_token = if token == 0 { 0 } else { id };
        let payload =
            envelope::encode_direct(&self.cfg.server_id, wire_token, sent_at_us, &user, frame);
        self.outbound.begin(id, shard, token, user, payload, now);
    }

    fn begin_user_op(&mut self, user: UserId, op: &UserOp, shard: u16, token: u64, now: Instant) {
        if !self.up {
            self.metrics.incr(Counter::RedisErrors);
            self.answer((shard, token, RemoteOutcome::Failed));
            return;
        }
        let id = self.next_id();
        let wire_token = if token == 0 { 0 } else { id };
        let payload = envelope::encode_user_op(&self.cfg.server_id, wire_token, &user, op);
        self.outbound.begin(id, shard, token, user, payload, now);
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    fn broadcast(&mut self, frame: &[u8], sent_at_us: u64) {
        if !self.up {
            self.metrics.incr(Counter::RedisErrors);
            return;
        }
        let payload = envelope::encode_broadcast(&self.cfg.server_id, sent_at_us, frame);
        self.publishes
            .push((None, payload, Tag::PublishOther { confirm: false }));
    }

    fn publish(
        &mut self,
        channel: ChannelName,
        json: Bytes,
        history: Option<History>,
        shard: u16,
        token: u64,
        sent_at_us: u64,
    ) {
        if !self.up {
            self.metrics.incr(Counter::RedisErrors);
            if token != 0 {
                self.router.published(shard, token, PublishOutcome::Failed);
            }
            return;
        }
        if let Some(retention) = history {
            // Numbered, kept and published in one atomic step.
            let (cmd, list) =
                functions::append_publication(&channel, &json, retention, sent_at_us, self.sharded);
            self.stream_calls
                .push((cmd, list, Tag::PublishHistory { shard, token }));
            return;
        }
        self.channel_publishes.push(ChannelPublish {
            channel,
            json,
            shard,
            token,
            sent_at_us,
        });
    }

    /// Answers a command at once while the link is down (it fails).
    fn down(&self, answer: impl FnOnce(&dyn LocalRouter)) -> bool {
        self.metrics.incr(Counter::RedisErrors);
        answer(&*self.router);
        true
    }

    fn report(&mut self, key: u64, connections: u32, parts: u32) {
        let Some((origin, token, n)) = self.inbound.report(key, connections, parts) else {
            return;
        };
        if self.up {
            let payload = envelope::encode_confirm(&self.cfg.server_id, token, n);
            self.publishes
                .push((Some(origin), payload, Tag::PublishOther { confirm: true }));
        }
    }
}
