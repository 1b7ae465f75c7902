//! The engine's handling of a round's replies, and of a round the link lost.
//!
//! Every reply is dispatched by its [`Tag`]; then one resolution pass
//! decides what became decidable (outbound requests and sweep sets whose
//! servers' liveness is now known), which queues the next round's publishes
//! and removals.

use std::time::Instant;

use crate::metrics::Counter;
use crate::protocol::UserId;

use super::super::round::{as_int, as_scan_page, as_strings, Reply, Tag};
use super::super::sweep::Removal;
use super::Engine;

impl Engine {
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
            }
        }
        self.disconnected();
    }
}
