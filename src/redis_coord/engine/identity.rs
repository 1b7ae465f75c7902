//! Who we are in Redis: the liveness key.
//!
//! `server_alive:<id>` holds this process's boot id. It is claimed at every
//! connection and refreshed every third of its TTL with a compare-and-set
//! ([`scripts::CLAIM`]), and deleted at shutdown with a compare-and-delete:
//! a second process started with our id finds the key held and is refused,
//! and neither process ever refreshes or deletes the other's key.

use std::time::Instant;

use super::super::round::{Reply, Round};
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
    /// claim the liveness key.
    pub fn handshake_round(&self) -> Round {
        let mut round = Round::default();
        self.identity_commands(&mut round);
        round
    }

    /// The claim (or refresh), as run at connection and every third of the
    /// liveness TTL.
    pub(super) fn identity_commands(&self, round: &mut Round) {
        let ttl_ms = self.cfg.liveness_ttl.as_millis() as u64;
        round.claim(&self.cfg.server_id, &self.cfg.boot_id, ttl_ms);
    }

    /// The replies of [`Engine::handshake_round`]: `Ok` when the liveness
    /// key is ours, else why not.
    pub fn on_handshake(&mut self, replies: Vec<Reply>, _now: Instant) -> Result<(), Refused> {
        let mut replies = replies.into_iter();
        let mut next = |what: &str| -> Result<redis::Value, Refused> {
            replies
                .next()
                .unwrap_or_else(|| Err(format!("no reply to the {what}")))
                .map_err(|e| Refused::Error(format!("{what}: {e}")))
        };
        let claim = next("liveness claim")?;
        match scripts::parse_claim(&claim) {
            Some(Claim::Ours) => Ok(()),
            Some(Claim::Held { holder, pttl_ms }) => Err(Refused::Held { holder, pttl_ms }),
            None => Err(Refused::Error(format!("liveness claim answered {claim:?}"))),
        }
    }

    /// A periodic claim's reply: a holder other than us is a conflict the
    /// worker acts on (see [`Engine::take_conflict`]).
    pub(super) fn on_claim_reply(&mut self, reply: Reply) {
        match reply.as_ref().ok().and_then(scripts::parse_claim) {
            Some(Claim::Held { holder, .. }) => self.conflict = Some(holder),
            Some(Claim::Ours) | None => {}
        }
    }

    /// Another process's boot id found in our liveness key by a refresh,
    /// once: the worker then drops the link (and stays off Redis while that
    /// process holds our id).
    pub fn take_conflict(&mut self) -> Option<String> {
        self.conflict.take()
    }
}
