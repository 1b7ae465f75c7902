//! Direct messages this instance sends to other instances, from lookup to
//! outcome.
//!
//! A request goes through three stages, each one round trip (batched with
//! every other request's): `SMEMBERS` of the receiver's route set; liveness
//! checks of the servers found (skipped while cached, see
//! [`Liveness`]); one publish per live server. Each server that received
//! the publish (receiver count > 0) is awaited for one confirmation; the
//! outcome is `Delivered` with the sum of the confirmed connections, else
//! `Offline` when every awaited server answered 0 or nothing live was found,
//! else `Failed` (a Redis error, or the deadline passed without a count).
//! While the route table may be incomplete (see [`Outbound::uncertain_until`])
//! an `Offline` becomes `Failed`: no route may just mean "not registered yet".
//!
//! Order: requests are kept by increasing id and a request does not publish
//! while an older request to the same user is still looking up or resolving,
//! so two messages to one receiver are published in the order they were sent.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::coordinator::RemoteOutcome;
use crate::protocol::UserId;

use super::liveness::{Liveness, Status};

/// A finished request: tell shard `shard` that `token` ended with `outcome`.
pub type Finish = (u16, u64, RemoteOutcome);

/// Where a request is.
#[derive(Debug)]
enum Stage {
    /// Waiting for (or in) the `SMEMBERS` round.
    Lookup {
        /// The `SMEMBERS` was put in a round.
        sent: bool,
    },
    /// Route set read; waiting for liveness answers about these servers.
    Resolve {
        /// Other servers in the receiver's route set.
        servers: Vec<String>,
    },
    /// Published; waiting for publish replies and confirmations.
    Confirm {
        /// Publishes whose reply has not come back yet.
        unanswered: u32,
        /// Servers that received the publish and have not confirmed.
        awaited: Vec<String>,
        /// Servers that confirmed (a duplicate confirm counts once).
        confirmed: Vec<String>,
        /// Connections confirmed so far.
        connections: u32,
        /// A publish failed: with no confirmed connection the outcome is `Failed`.
        failed: bool,
    },
}

/// One outbound direct message.
#[derive(Debug)]
struct Direct {
    /// The sending shard (where the outcome goes).
    shard: u16,
    /// The shard's pending-ack token.
    token: u64,
    /// The receiver.
    user: UserId,
    /// The encoded envelope, built once, published to every live server.
    payload: Bytes,
    /// When the request gives up (a little before the shard's own deadline).
    deadline: Instant,
    /// Progress.
    stage: Stage,
}

/// What one resolution pass decided.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Publish `payload` to `server` for request `id`.
    pub publishes: Vec<(u64, String, Bytes)>,
    /// `(user, server)` routes whose server is dead: remove them.
    pub stale: Vec<(UserId, String)>,
    /// Requests that ended.
    pub finished: Vec<Finish>,
}

/// Every outbound request in flight, by id.
#[derive(Debug)]
pub struct Outbound {
    /// Requests by increasing id: the order they were sent, which is also
    /// the order of their deadlines.
    directs: BTreeMap<u64, Direct>,
    /// Requests whose `SMEMBERS` is not sent yet.
    unsent: Vec<u64>,
    /// Requests still looking up or resolving (the only ones a resolution
    /// pass visits; those waiting for confirmations cost nothing per round).
    unresolved: BTreeSet<u64>,
    /// How long a request may take.
    timeout: Duration,
    /// Requests begun before this instant may have looked at an incomplete
    /// route table: their `Offline` is reported as `Failed`.
    uncertain_until: Option<Instant>,
}

impl Outbound {
    /// No request yet; each will give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            directs: BTreeMap::new(),
            unsent: Vec::new(),
            unresolved: BTreeSet::new(),
            timeout,
            uncertain_until: None,
        }
    }

    /// The route table may miss routes until `until` (Redis lost its data
    /// and instances are registering again): a request begun before then
    /// that finds no live route ends `Failed`, not `Offline`. Only extends.
    pub fn uncertain_until(&mut self, until: Instant) {
        if self.uncertain_until.is_none_or(|u| u < until) {
            self.uncertain_until = Some(until);
        }
    }

    /// Starts request `id` (its payload already carries `id` as token).
    pub fn begin(
        &mut self,
        id: u64,
        shard: u16,
        token: u64,
        user: UserId,
        payload: Bytes,
        now: Instant,
    ) {
        let stage = Stage::Lookup { sent: false };
        let deadline = now + self.timeout;
        let direct = Direct {
            shard,
            token,
            user,
            payload,
            deadline,
            stage,
        };
        self.directs.insert(id, direct);
        self.unsent.push(id);
        self.unresolved.insert(id);
    }

    /// Requests whose `SMEMBERS` is not sent yet (now marked sent).
    pub fn take_lookups(&mut self) -> Vec<(u64, UserId)> {
        let mut out = Vec::new();
        for id in self.unsent.drain(..) {
            if let Some(d) = self.directs.get_mut(&id) {
                if let Stage::Lookup { sent: sent @ false } = &mut d.stage {
                    *sent = true;
                    out.push((id, d.user.clone()));
                }
            }
        }
        out
    }

    /// The route set of request `id`'s receiver (`None`: the lookup failed).
    pub fn on_members(
        &mut self,
        id: u64,
        members: Option<Vec<String>>,
        me: &str,
    ) -> Option<Finish> {
        let d = self.directs.get_mut(&id)?;
        let Some(members) = members else {
            return self.finish(id, RemoteOutcome::Failed);
        };
        let servers: Vec<String> = members.into_iter().filter(|s| s != me).collect();
        if servers.is_empty() {
            return self.finish(id, RemoteOutcome::Offline);
        }
        d.stage = Stage::Resolve { servers };
        None
    }

    /// Decides every resolvable request, oldest first, per user in order.
    pub fn resolve(&mut self, liveness: &mut Liveness, now: Instant) -> Resolved {
        let mut out = Resolved::default();
        let mut blocked: HashSet<UserId> = HashSet::new();
        let mut done = Vec::new();
        let mut published = Vec::new();
        for id in &self.unresolved {
            let Some(d) = self.directs.get_mut(id) else {
                continue;
            };
            let servers = match &d.stage {
                Stage::Lookup { .. } => {
                    blocked.insert(d.user.clone());
                    continue;
                }
                Stage::Confirm { .. } => continue,
                Stage::Resolve { .. } if blocked.contains(&d.user) => continue,
                Stage::Resolve { servers } => servers,
            };
            let statuses: Vec<Status> = servers.iter().map(|s| liveness.status(s, now)).collect();
            if statuses.contains(&Status::Unknown) {
                blocked.insert(d.user.clone());
                continue;
            }
            let mut live = Vec::new();
            for (server, status) in servers.iter().zip(&statuses) {
                match status {
                    Status::Alive => live.push(server.clone()),
                    Status::Dead => out.stale.push((d.user.clone(), server.clone())),
                    Status::Unknown | Status::Failed => {}
                }
            }
            let failed = statuses.contains(&Status::Failed);
            if live.is_empty() {
                done.push((
                    *id,
                    if failed {
                        RemoteOutcome::Failed
                    } else {
                        RemoteOutcome::Offline
                    },
                ));
                continue;
            }
            for server in &live {
                out.publishes.push((*id, server.clone(), d.payload.clone()));
            }
            published.push(*id);
            d.stage = Stage::Confirm {
                unanswered: live.len() as u32,
                awaited: Vec::new(),
                confirmed: Vec::new(),
                connections: 0,
                failed,
            };
        }
        published.iter().for_each(|id| {
            self.unresolved.remove(id);
        });
        out.finished = done
            .into_iter()
            .filter_map(|(id, o)| self.finish(id, o))
            .collect();
        out
    }

    /// The reply to a publish: `Some(n)` subscribers, `None` on error.
    pub fn on_published(
        &mut self,
        id: u64,
        server: String,
        receivers: Option<i64>,
    ) -> Option<Finish> {
        let d = self.directs.get_mut(&id)?;
        let Stage::Confirm {
            unanswered,
            awaited,
            confirmed,
            failed,
            ..
        } = &mut d.stage
        else {
            return None;
        };
        *unanswered = unanswered.saturating_sub(1);
        // Token 0: the sender wants no ack, so no confirmation will come.
        let confirming = d.token != 0;
        match receivers {
            None => *failed = true,
            Some(n) if n > 0 && confirming && !confirmed.contains(&server) => awaited.push(server),
            Some(_) => {}
        }
        self.try_complete(id)
    }

    /// A confirmation from `server` for request `id`.
    pub fn on_confirm(&mut self, id: u64, server: String, count: u32) -> Option<Finish> {
        let d = self.directs.get_mut(&id)?;
        let Stage::Confirm {
            awaited,
            confirmed,
            connections,
            ..
        } = &mut d.stage
        else {
            return None;
        };
        if confirmed.contains(&server) {
            return None;
        }
        awaited.retain(|s| *s != server);
        confirmed.push(server);
        *connections = connections.saturating_add(count);
        self.try_complete(id)
    }

    /// Requests past their deadline.
    pub fn expire(&mut self, now: Instant) -> Vec<Finish> {
        let late: Vec<u64> = self
            .directs
            .iter()
            .take_while(|(_, d)| d.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        late.into_iter()
            .filter_map(|id| self.finish_late(id))
            .collect()
    }

    /// The link went down: every request ends now (with what it has).
    pub fn fail_all(&mut self) -> Vec<Finish> {
        self.unsent.clear();
        let ids: Vec<u64> = self.directs.keys().copied().collect();
        ids.into_iter()
            .filter_map(|id| self.finish_late(id))
            .collect()
    }

    /// Number of requests in flight.
    pub fn len(&self) -> usize {
        self.directs.len()
    }

    /// True when no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.directs.is_empty()
    }

    fn try_complete(&mut self, id: u64) -> Option<Finish> {
        let d = self.directs.get(&id)?;
        let Stage::Confirm {
            unanswered: 0,
            awaited,
            connections,
            failed,
            ..
        } = &d.stage
        else {
            return None;
        };
        if !awaited.is_empty() {
            return None;
        }
        let outcome = match (*connections, *failed) {
            (n, _) if n > 0 => RemoteOutcome::Delivered { connections: n },
            (_, true) => RemoteOutcome::Failed,
            _ => RemoteOutcome::Offline,
        };
        self.finish(id, outcome)
    }

    /// Ends `id` early: confirmed connections count, anything else failed.
    fn finish_late(&mut self, id: u64) -> Option<Finish> {
        let outcome = match self.directs.get(&id)?.stage {
            Stage::Confirm { connections, .. } if connections > 0 => {
                RemoteOutcome::Delivered { connections }
            }
            _ => RemoteOutcome::Failed,
        };
        self.finish(id, outcome)
    }

    fn finish(&mut self, id: u64, outcome: RemoteOutcome) -> Option<Finish> {
        self.unresolved.remove(&id);
        let d = self.directs.remove(&id)?;
        let began = d.deadline.checked_sub(self.timeout).unwrap_or(d.deadline);
        let outcome = match outcome {
            RemoteOutcome::Offline if self.uncertain_until.is_some_and(|u| began < u) => {
                RemoteOutcome::Failed
            }
            other => other,
        };
        Some((d.shard, d.token, outcome))
    }
}

#[cfg(test)]
mod tests;
