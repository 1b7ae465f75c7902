//! Accepting at the file descriptor limit.
//!
//! When `accept` fails with `EMFILE`/`ENFILE` the client stays in the
//! listen backlog and the listener stays readable, so retrying at once spins
//! and logs (~40 warnings a second were seen). Instead the shard:
//!
//! - backs off, doubling from 20 ms to at most 1 s ([`AcceptBackoff`]), and
//!   logs one line per 10 s with the count of failures left out;
//! - marks itself stalled in the instance's [`Admission`], so `/ready`
//!   answers 503 and a load balancer stops sending clients;
//! - keeps one descriptor in reserve (a duplicate of its epoll fd) and gives
//!   it back on a failure, so the next accept takes a waiting client and
//!   answers it (503 to an upgrade or to `/ready`, 200 to `/health`) instead
//!   of leaving it to time out in the backlog;
//! - resumes from the sweep once three descriptors can be had: the reserve
//!   again, and room for a connection (its own descriptor, and the one the
//!   next `accept(2)` allocates before it even looks at the backlog, failing
//!   with `EMFILE` rather than `EAGAIN` when there is none). Until then it
//!   holds no reserve, so a descriptor that frees up goes to the next
//!   waiting client rather than back to the reserve.
//!
//! [`Admission`]: crate::admission::Admission

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use crate::admission::{is_exhaustion, AcceptBackoff, LogLimiter};

use super::Shard;

/// Pause after an accept error that is not a lack of resources (a client
/// that reset before being accepted), so that a persistent one cannot spin.
const OTHER_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// One shard's accept state.
#[derive(Debug)]
pub struct AcceptGate {
    /// The descriptor kept in reserve; `None` while given back.
    spare: Option<OwnedFd>,
    /// Back-off and log limiter for descriptor shortage.
    backoff: AcceptBackoff,
    /// Log limiter for other accept errors.
    other: LogLimiter,
    /// Counted as stalled in the instance's admission.
    stalled: bool,
}

impl AcceptGate {
    /// A gate holding `spare` in reserve.
    pub fn new(spare: Option<OwnedFd>) -> Self {
        Self {
            spare,
            backoff: AcceptBackoff::default(),
            other: LogLimiter::default(),
            stalled: false,
        }
    }
}

impl Shard {
    /// An accept failed: decides how long the accept loop waits.
    pub(super) fn accept_failed(&self, e: &io::Error) -> Duration {
        let now = self.now_ms();
        let mut gate = self.accept_gate.borrow_mut();
        if !is_exhaustion(e) {
            if let Some(quiet) = gate.other.note(now) {
                tracing::warn!(shard = self.index, error = %e, quiet, "accept failed");
            }
            return OTHER_ERROR_PAUSE;
        }
        let step = gate.backoff.failed(now);
        if !gate.stalled {
            gate.stalled = true;
            self.instance.admission.stall();
        }
        // The reserve goes to the next waiting client, who is answered.
        gate.spare = None;
        if let Some(quiet) = step.log {
            tracing::warn!(
                shard = self.index,
                error = %e,
                backoff_ms = step.delay_ms,
                quiet,
                "accept failed for lack of descriptors: backing off, /ready answers 503 \
                 (raise the open file limit, or lower MAX_CONNECTIONS)"
            );
        }
        Duration::from_millis(u64::from(step.delay_ms))
    }

    /// From the sweep: a stalled shard resumes once there is room for its
    /// reserve and one more connection.
    pub(super) fn check_accepting(&self) {
        let mut gate = self.accept_gate.borrow_mut();
        if !gate.stalled {
            return;
        }
        // Room is three descriptors: the reserve, a connection's own, and
        // the one the loop's next accept(2) allocates before it even finds
        // the backlog empty. The probes are closed at once; so is the
        // reserve when there is no room: while stalled the shard holds no
        // spare, or the sweep and the accept loop could take turns at the
        // one free descriptor and a waiting client would never be answered.
        let spare = self.poller.dup_fd().ok();
        let room = spare.is_some()
            && self
                .poller
                .dup_fd()
                .and_then(|a| self.poller.dup_fd().map(|b| (a, b)))
                .is_ok();
        if !room {
            return;
        }
        gate.spare = spare;
        gate.stalled = false;
        gate.backoff.recovered();
        self.instance.admission.resume();
        tracing::info!(shard = self.index, "accepting again: descriptors available");
    }
}
