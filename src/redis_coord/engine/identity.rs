//! Who we are in Redis, and whether Redis still remembers the route table.
//!
//! - **Liveness key**: `server_alive:<id>` holds this process's boot id. It
//!   is claimed at every connection and refreshed every third of its TTL
//!   with a compare-and-set ([`scripts::CLAIM`]), and deleted at shutdown
//!   with a compare-and-delete: a second process started with our id finds
//!   the key held and is refused, and neither process ever refreshes or
//!   deletes the other's key.
//! - **Route-table epoch**: the marker `routes_epoch` is read with each
//!   claim and created when missing ([`scripts::EPOCH`]). A missing marker
//!   means Redis lost its data (restarted empty, or is new): every route may
//!   be gone, and the instances put theirs back only as they reconnect. So,
//!   from the marker's creation (Redis's clock) until `table_grace` later,
//!   a lookup that finds no live route answers `Failed` ("could not find
//!   out"), never `Offline`. A marker that changed under a link that stayed
//!   up (a restart we did not notice) also re-registers every route.
//!   Why the grace is long enough is in `docs/REDIS.md`.

use std::time::{Duration, Instant};

use super::super::functions;
use super::super::round::{Reply, Round, Tag, Target};
use super::super::scripts::{self, Claim};
use super::Engine;

/// Why the handshake round did not make this instance known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Another process holds our liveness key.
    Held {
        /// Its boot id.
        holder: String,
        /// Milliseconds left on its key.
        pttl_ms: i64,
    },
    /// A command failed or answered something unexpected.
    Error(String),
}

impl Engine {
    /// This process's boot id (our liveness key's value).
    pub fn boot_id(&self) -> &str {
        &self.cfg.boot_id
    }

    /// The commands that make this instance known at every connection:
    /// claim the liveness key, read the epoch marker; then load the stream
    /// and presence functions on every master.
    pub fn handshake_round(&self) -> Round {
        let mut round = Round::default();
        self.identity_commands(&mut round);
        round.push(functions::load(), Target::AllMasters, Tag::Functions);
        let presence = functions::presence::load();
        round.push(presence, Target::AllMasters, Tag::Functions);
        round
    }

    /// Claim (or refresh) and epoch check, as run at connection and every
    /// third of the liveness TTL.
    pub(super) fn identity_commands(&self, round: &mut Round) {
        let ttl_ms = self.cfg.liveness_ttl.as_millis() as u64;
        round.claim(&self.cfg.server_id, &self.cfg.boot_id, ttl_ms);
        round.epoch(&self.cfg.boot_id);
    }

    /// The replies of [`Engine::handshake_round`]: `Ok` when the liveness
    /// key is ours (the epoch is then noted), else why not.
    pub fn on_handshake(&mut self, replies: Vec<Reply>, now: Instant) -> Result<(), Refused> {
        let mut replies = replies.into_iter();
        let mut next = |what: &str| -> Result<redis::Value, Refused> {
            replies
                .next()
                .unwrap_or_else(|| Err(format!("no reply to the {what}")))
                .map_err(|e| Refused::Error(format!("{what}: {e}")))
        };
        let claim = next("liveness claim")?;
        match scripts::parse_claim(&claim) {
            Some(Claim::Ours) => {}
            Some(Claim::Held { holder, pttl_ms }) => return Err(Refused::Held { holder, pttl_ms }),
            None => return Err(Refused::Error(format!("liveness claim answered {claim:?}"))),
        }
        let epoch = next("epoch marker read")?;
        let (marker, redis_now) = scripts::parse_epoch(&epoch)
            .ok_or_else(|| Refused::Error(format!("epoch marker read answered {epoch:?}")))?;
        self.observe_epoch(marker, redis_now, now);
        next("stream functions load")?;
        next("presence functions load")?;
        Ok(())
    }

    /// A periodic claim's reply: a holder other than us is a conflict the
    /// worker acts on (see [`Engine::take_conflict`]).
    pub(super) fn on_claim_reply(&mut self, reply: Reply) {
        match reply.as_ref().ok().and_then(scripts::parse_claim) {
            Some(Claim::Held { holder, .. }) => self.conflict = Some(holder),
            Some(Claim::Ours) | None => {}
        }
    }

    /// A periodic epoch read: a changed marker means the route table was
    /// lost under a link that stayed up; every route is registered again.
    pub(super) fn on_epoch_reply(&mut self, reply: Reply, now: Instant) {
        let Some((marker, redis_now)) = reply.as_ref().ok().and_then(scripts::parse_epoch) else {
            return;
        };
        if self.observe_epoch(marker, redis_now, now) {
            tracing::warn!("the route table's epoch changed without a reconnection (Redis lost its data?): registering every route again");
            self.router.reregister_routes();
        }
    }

    /// Another process's boot id found in our liveness key by a refresh,
    /// once: the worker then drops the link (and stays off Redis while that
    /// process holds our id).
    pub fn take_conflict(&mut self) -> Option<String> {
        self.conflict.take()
    }

    /// Notes the epoch `marker` (Redis's time `redis_now_ms`); starts or
    /// extends the grace period while the marker is younger than
    /// `table_grace`. True when a marker was known and this one differs.
    fn observe_epoch(&mut self, marker: String, redis_now_ms: u64, now: Instant) -> bool {
        let created = scripts::epoch_created_ms(&marker).unwrap_or(redis_now_ms);
        let age = Duration::from_millis(redis_now_ms.saturating_sub(created));
        if let Some(left) = self
            .cfg
            .table_grace
            .checked_sub(age)
            .filter(|d| !d.is_zero())
        {
            if self.epoch.as_deref() != Some(marker.as_str()) {
                tracing::info!(
                    epoch = %marker,
                    grace_ms = left.as_millis() as u64,
                    "the route table is new (Redis restarted empty, or is new): messages to users without a live route are acked failed, not offline, until every instance has had time to register again"
                );
            }
            self.outbound.uncertain_until(now + left);
        }
        let changed = self.epoch.as_ref().is_some_and(|e| *e != marker);
        self.epoch = Some(marker);
        changed
    }
}
