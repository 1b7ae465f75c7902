//! The engine's handling of a round's replies, and of a round the link lost.
//!
//! Every reply is dispatched by its [`Tag`]; then one resolution pass
//! decides what became decidable (outbound requests and sweep sets whose
//! servers' liveness is now known), which queues the next round's publishes
//! and removals.

use std::time::Instant;

use crate::coordinator::{IdempotencyAnswer, PublishOutcome};
use crate::metrics::Counter;
use crate::protocol::UserId;

use super::super::channels::Changes;
use super::super::functions;
use super::super::round::Target;
use super::super::round::{as_int, as_scan_page, as_strings, Reply, Tag};
use super::super::status;
use super::super::sweep::Removal;
use super::Engine;

impl Engine {
    /// The link applied (or failed to apply) a round's channel changes.
    pub fn on_channels_applied(&mut self, changes: &Changes, ok: bool) {
        let answers = if ok {
            self.channels.applied(changes)
        } else {
            self.metrics.incr(Counter::RedisErrors);
            self.channels.link_lost()
        };
        for (shard, token) in answers {
            self.router.channel_subscribed(shard, token);
        }
    }

    /// Answers a finished (or failed) user status read.
    fn status_done(&mut self, id: u64, ok: bool) {
        if let Some(mut p) = self.status.remove(&id) {
            p.live.sort();
            let servers = ok.then_some(p.live);
            self.router.user_servers(p.shard, p.token, servers);
        }
    }

    /// A call whose outcome is unknown (the link failed) is answered as failed.
    pub(super) fn fail_stream_call(&mut self, tag: Tag) {
        match tag {
            Tag::PublishChannel { shard, token } | Tag::PublishHistory { shard, token }
                if token != 0 =>
            {
                self.router.published(shard, token, PublishOutcome::Failed)
            }
            Tag::StreamRead { shard, token } => self.router.stream_read(shard, token, None),
            Tag::PresenceList { shard, token, .. } => self.router.presence_read(shard, token, None),
            Tag::Idempotency { shard, token, .. } => {
                self.router.idempotency_answer(shard, token, None)
            }
            Tag::StatusMembers { id } | Tag::StatusAlive { id, .. } => {
                if let Some(p) = self.status.remove(&id) {
                    self.router.user_servers(p.shard, p.token, None);
                }
            }
            Tag::InboxAppend { shard, token } => self.router.inbox_appended(shard, token, None),
            _ => {}
        }
    }

    /// The replies of a round, in the order of its tags.
    pub fn on_replies(&mut self, tags: Vec<Tag>, replies: Vec<Reply>, now: Instant) {
        let mut replies = replies.into_iter();
        for tag in tags {
            let reply = replies
                .next()
                .unwrap_or_else(|| Err("missing reply".to_owned()));
            if let Err(e) = &reply {
                self.metrics.incr(Counter::RedisErrors);
                tracing::debug!(error = %e, ?tag, "redis command failed");
            }
            self.on_reply(tag, reply, now);
        }
        self.advance(now);
    }

    fn on_reply(&mut self, tag: Tag, reply: Reply, now: Instant) {
        match tag {
            Tag::RouteWrite { waiters, swept, .. } => {
                if swept && reply.as_ref().ok().and_then(as_int) == Some(1) {
                    self.metrics.incr(Counter::RoutesSwept);
                }
                waiters
                    .into_iter()
                    .for_each(|(s, t)| self.router.route_added(s, t));
            }
            Tag::StaleRemove => {
                if reply.as_ref().ok().and_then(as_int) == Some(1) {
                    self.metrics.incr(Counter::RoutesSwept);
                }
            }
            Tag::Lookup { id } => {
                let members = reply.ok().and_then(as_strings);
                let done = self.outbound.on_members(id, members, &self.cfg.server_id);
                self.answer_opt(done);
            }
            Tag::Exists { server } => match reply.ok().as_ref().and_then(as_int) {
                Some(n) => self.liveness.on_exists(server, n > 0, now),
                None => self.liveness.on_error(server),
            },
            Tag::PublishDirect { id, server } => self.on_published(id, server, reply),
            Tag::PublishOther { confirm } => {
                if confirm && reply.ok().as_ref().and_then(as_int) == Some(0) {
                    self.metrics.incr(Counter::PublishNoSubscriber);
                }
            }
            Tag::Alive => self.on_claim_reply(reply),
            Tag::Epoch => self.on_epoch_reply(reply, now),
            Tag::Release => {}
            Tag::Functions | Tag::Presence => {}
            Tag::PresenceServers => self.presence.on_servers(reply.ok(), &self.cfg.server_id),
            Tag::PresenceAlive { server } => self.presence.on_alive(server, reply.ok().as_ref()),
            Tag::PresenceChannels { server } => {
                let sent_at_us = crate::shard::core::unix_micros(std::time::SystemTime::now());
                let ns = &*self.cfg.namespaces;
                self.presence
                    .on_dead_channels(server, reply.ok(), ns, self.sharded, sent_at_us)
            }
            Tag::Idempotency {
                shard,
                token,
                settle,
            } => {
                let answer = match (settle, reply) {
                    (true, Ok(_)) => Some(IdempotencyAnswer::Settled),
                    (false, Ok(v)) => functions::parse_claim(v),
                    (_, Err(_)) => None,
                };
                self.router.idempotency_answer(shard, token, answer);
            }
            Tag::StatusMembers { id } => match status::on_members(id, reply.ok()) {
                Some(checks) if checks.is_empty() => self.status_done(id, true),
                Some(checks) => {
                    if let Some(p) = self.status.get_mut(&id) {
                        p.waiting = Some(checks.len());
                    }
                    self.stream_calls.extend(
                        checks
                            .into_iter()
                            .map(|(cmd, target, tag)| (cmd, target_key(target), tag)),
                    );
                }
                None => self.status_done(id, false),
            },
            Tag::StatusAlive { id, server } => {
                let done = self
                    .status
                    .get_mut(&id)
                    .map(|p| status::on_alive(p, server, reply.as_ref().ok()));
                match done {
                    Some(Some(true)) => self.status_done(id, true),
                    Some(None) => self.status_done(id, false),
                    _ => {}
                }
            }
            Tag::PresenceList { shard, token, cap } => {
                let page = reply
                    .ok()
                    .and_then(|v| functions::presence::parse_list(v, cap));
                self.router.presence_read(shard, token, page);
            }
            Tag::PublishHistory { shard, token } => {
                let at = reply.ok().as_ref().and_then(functions::parse_appended);
                if at.is_some() {
                    self.metrics.incr(Counter::PublicationsKept);
                }
                let outcome = match at {
                    Some(a) => PublishOutcome::Published {
                        offset: Some(a.offset),
                        epoch: Some(a.epoch),
                    },
                    None => PublishOutcome::Failed,
                };
                if token != 0 {
                    self.router.published(shard, token, outcome);
                }
            }
            Tag::StreamRead { shard, token } => {
                let page = reply.ok().and_then(functions::parse_page);
                self.router.stream_read(shard, token, page);
            }
            Tag::InboxAppend { shard, token } => {
                let at = reply.ok().as_ref().and_then(functions::parse_appended);
                self.router.inbox_appended(shard, token, at);
            }
            Tag::PublishChannel { shard, token } => {
                let outcome = match reply {
                    Ok(_) => PublishOutcome::Published {
                        offset: None,
                        epoch: None,
                    },
                    Err(_) => PublishOutcome::Failed,
                };
                if token != 0 {
                    self.router.published(shard, token, outcome);
                }
            }
            Tag::SweepScan => self.sweep.on_scan(reply.ok().and_then(as_scan_page)),
            Tag::SweepMembers { user } => {
                self.sweep.on_members(user, reply.ok().and_then(as_strings))
            }
        }
    }

    fn on_published(&mut self, id: u64, server: String, reply: Reply) {
        let receivers = reply.ok().as_ref().and_then(as_int);
        if receivers == Some(0) {
            self.metrics.incr(Counter::PublishNoSubscriber);
            self.liveness.forget(&server);
        }
        let done = self.outbound.on_published(id, server, receivers);
        self.answer_opt(done);
    }

    /// Decides what the latest answers made decidable.
    fn advance(&mut self, now: Instant) {
        let resolved = self.outbound.resolve(&mut self.liveness, now);
        for (id, server, payload) in resolved.publishes {
            let tag = Tag::PublishDirect {
                id,
                server: server.clone(),
            };
            self.publishes.push((Some(server), payload, tag));
        }
        for (user, server) in resolved.stale {
            self.stale.push((user.to_string(), server));
        }
        resolved.finished.into_iter().for_each(|f| self.answer(f));
        for removal in self
            .sweep
            .resolve(&self.cfg.server_id, &mut self.liveness, now)
        {
            self.on_removal(removal);
        }
        self.liveness.end_pass(now);
    }

    fn on_removal(&mut self, removal: Removal) {
        match removal {
            Removal::Own(user) => match UserId::parse(&user) {
                Some(id) => {
                    self.routes.remove_stale(id);
                }
                // No shard can hold an invalid id: always stale.
                None => self.stale.push((user, self.cfg.server_id.clone())),
            },
            Removal::Dead(user, server) => self.stale.push((user, server)),
        }
    }

    /// The link failed during a round: registrations are answered (the
    /// routes are written again on reconnection), route writes that may not
    /// have happened are queued again, and everything else fails.
    pub fn on_round_failed(&mut self, tags: Vec<Tag>) {
        self.metrics.incr(Counter::RedisErrors);
        for tag in tags {
            if let Tag::RouteWrite {
                user,
                add,
                waiters,
                swept: false,
            } = tag
            {
                self.routes.requeue(user, add);
                waiters
                    .into_iter()
                    .for_each(|(s, t)| self.router.route_added(s, t));
            } else {
                self.fail_stream_call(tag);
            }
        }
        self.disconnected();
    }
}

/// The key of a command's target (status reads target keys only).
fn target_key(target: Target) -> String {
    match target {
        Target::Key(key) => key,
        _ => String::new(),
    }
}
