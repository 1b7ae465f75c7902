//! The Down state: connection attempts with jittered exponential backoff,
//! each one connecting, claiming our liveness key and subscribing, while
//! the shards' commands keep being answered at once.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use super::{FirstContact, Worker, ATTEMPT_TIMEOUT, HELD_RETRY, JITTER, MAX_BACKOFF, MIN_BACKOFF};
use crate::redis_coord::claim::{ClaimWatch, Verdict};
use crate::redis_coord::engine::{Command, Refused};
use crate::redis_coord::link::{self, Link, Pushes};

/// Why an attempt did not give a serving link.
enum Failure {
    /// Redis unreachable, a command failed, or a timeout.
    Link(String),
    /// Our liveness key holds another process's boot id.
    Held {
        /// Its boot id.
        holder: String,
        /// Milliseconds left on its key.
        pttl_ms: i64,
    },
}

impl Worker {
    /// Connects with backoff, answering commands meanwhile; `None` on shutdown.
    pub(super) async fn connect_loop(&mut self) -> Option<(Link, Pushes)> {
        let mut backoff = MIN_BACKOFF;
        let mut watch = ClaimWatch::default();
        let mut live_holder = false;
        for attempt in 1u64.. {
            let (delay, grow) = match self.attempt().await? {
                Ok(connected) => {
                    self.report(FirstContact::Registered);
                    return Some(connected);
                }
                Err(Failure::Held { holder, pttl_ms }) => match watch.observe(&holder, pttl_ms) {
                    Verdict::Live => {
                        self.on_live_holder(&holder, !live_holder, attempt);
                        live_holder = true;
                        (backoff, true)
                    }
                    // Look again soon: a dead holder's key is about to
                    // expire (not a failure of Redis: no backoff growth).
                    Verdict::Wait { within } if !live_holder => {
                        self.report(FirstContact::Held { holder, within });
                        (HELD_RETRY, false)
                    }
                    Verdict::Wait { .. } => (backoff, true),
                },
                Err(Failure::Link(e)) => {
                    watch.reset();
                    self.report(FirstContact::Unreachable);
                    if attempt == 1 || attempt.is_multiple_of(30) {
                        tracing::warn!(error = %e, attempt, "redis unreachable; serving local users only, retrying");
                    } else {
                        tracing::debug!(error = %e, attempt, "redis connection attempt failed");
                    }
                    (backoff, true)
                }
            };
            let jitter = 1.0 - JITTER + 2.0 * JITTER * rand::random::<f64>();
            if !self.pause(delay.mul_f64(jitter)).await {
                return None;
            }
            if grow {
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        None
    }

    /// Sleeps `delay` while answering the shards' commands; false on shutdown.
    async fn pause(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                cmd = self.rx.recv() => if !self.on_command_down(cmd) { return false },
            }
        }
    }

    /// Another live process holds our liveness key: at start that refuses
    /// the start (see [`crate::redis_coord::start`]); later it is logged as an error
    /// (first time, then every 30th attempt) while we stay off Redis.
    fn on_live_holder(&mut self, holder: &str, first: bool, attempt: u64) {
        self.report(FirstContact::Conflict(holder.to_owned()));
        if first || attempt.is_multiple_of(30) {
            tracing::error!(
                server_id = %self.server_id,
                holder,
                "another live instance runs with this SERVER_ID (its boot id is in server_alive:{}); \
                 this instance stays off Redis (not ready, local users only) until that key is free",
                self.server_id
            );
        }
    }

    /// Tells [`crate::redis_coord::start`] how the first contact went, until it decided.
    fn report(&mut self, contact: FirstContact) {
        let decided = !matches!(contact, FirstContact::Held { .. });
        if let Some(tx) = &self.first_contact {
            let _ = tx.send(contact);
        }
        if decided {
            self.first_contact = None;
        }
    }

    /// One connection attempt: connect, claim our liveness key and read the
    /// epoch, then subscribe. `None` when shutdown arrived meanwhile.
    async fn attempt(&mut self) -> Option<Result<(Link, Pushes), Failure>> {
        let (seeds, mode) = (self.seeds.clone(), self.mode);
        let handshake = self.engine.handshake_round();
        let connect = async move {
            let (mut link, pushes) = link::connect(&seeds, mode)
                .await
                .map_err(|e| e.to_string())?;
            let replies = link
                .run(handshake.cmds, &handshake.targets)
                .await
                .map_err(|e| e.to_string())?;
            Ok((link, pushes, replies))
        };
        let (mut link, pushes, replies) = match self.guarded(connect).await? {
            Ok(done) => done,
            Err(e) => return Some(Err(Failure::Link(e))),
        };
        match self.engine.on_handshake(replies, Instant::now()) {
            Ok(()) => {}
            Err(Refused::Held { holder, pttl_ms }) => {
                return Some(Err(Failure::Held { holder, pttl_ms }))
            }
            Err(Refused::Error(e)) => return Some(Err(Failure::Link(e))),
        }
        let server_id = self.server_id.clone();
        let subscribe = async move {
            link.subscribe(&server_id)
                .await
                .map_err(|e| e.to_string())?;
            Ok(link)
        };
        Some(match self.guarded(subscribe).await? {
            Ok(link) => Ok((link, pushes)),
            Err(e) => Err(Failure::Link(e)),
        })
    }

    /// Runs one step of an attempt, bounded by [`ATTEMPT_TIMEOUT`], while
    /// answering the shards' commands; `None` when shutdown arrived.
    async fn guarded<T>(
        &mut self,
        step: impl std::future::Future<Output = Result<T, String>>,
    ) -> Option<Result<T, String>> {
        // A panic inside the client (e.g. no TLS crypto provider) must not
        // kill this thread: it counts as a failed attempt.
        let step = AssertUnwindSafe(step)
            .catch_unwind()
            .map(|r| r.unwrap_or_else(|p| Err(panic_text(&*p))));
        let step = tokio::time::timeout(ATTEMPT_TIMEOUT, step);
        tokio::pin!(step);
        loop {
            tokio::select! {
                result = &mut step => return Some(result.unwrap_or_else(|_| Err("connection attempt timed out".to_owned()))),
                cmd = self.rx.recv() => if !self.on_command_down(cmd) { return None },
            }
        }
    }

    pub(super) fn on_command_down(&mut self, cmd: Option<Command>) -> bool {
        cmd.is_some_and(|cmd| self.engine.on_command(cmd, Instant::now()))
    }
}

/// A panic's message, for the log.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    format!(
        "redis client panicked: {}",
        text.as_deref().unwrap_or("(see stderr)")
    )
}
