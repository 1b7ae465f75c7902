//! The per-shard sweep: one timer per shard instead of one per connection.
//!
//! Every tick it closes connections silent past the heartbeat timeout (4000)
//! or mid-message past the message completion timeout (1008), tells those
//! whose token is about to expire and closes those whose token expired past
//! the grace (4001, see [`super::token`]), cuts closing connections whose
//! peer did not answer in time, expires acks whose remote confirmation is
//! overdue, paces a drain, lets a shard stalled at the descriptor limit
//! accept again, and returns the memory of a finished burst to the OS.

use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use socket2::SockRef;

use crate::close::CloseReason;

use super::token::{unix_now_ms, Expiry};
use super::{CloseAll, ConnKey, Phase, Shard};

impl Shard {
    /// How often the sweep runs: an eighth of the heartbeat timeout or a
    /// quarter of the message completion timeout, within 50 ms..1 s.
    pub fn sweep_period(&self) -> Duration {
        let settings = &self.instance.settings;
        (settings.heartbeat_timeout / 8)
            .min(settings.message_complete_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// One sweep.
    pub fn sweep(self: &Rc<Self>) {
        let now = self.now_ms();
        let timeout = self.instance.settings.heartbeat_timeout.as_millis() as u32;
        let now_unix_ms = unix_now_ms();
        let mut silent = Vec::new();
        let mut overdue = Vec::new();
        let mut expiring = Vec::new();
        let mut expired = Vec::new();
        for (i, c) in self.conns.borrow().iter() {
            let key = ConnKey {
                index: i as u32,
                generation: c.generation(),
            };
            match c.phase {
                Phase::Closing if is_past(now, c.clock_ms) => overdue.push(key),
                Phase::Closing => {}
                _ if !c.is_echo() && now.wrapping_sub(c.clock_ms) > timeout => silent.push(key),
                _ => match self.token_state(c, now_unix_ms) {
                    Expiry::Fine => {}
                    Expiry::Notify => expiring.push(key),
                    Expiry::Close => expired.push(key),
                },
            }
        }
        for key in silent {
            self.close_conn(key, CloseReason::HEARTBEAT_TIMEOUT);
        }
        for key in expiring {
            self.notify_expiring(key);
        }
        for key in expired {
            self.close_expired(key);
        }
        // Messages started too long ago, however they trickle (the reads
        // check it too, but a connection that stopped sending has no read).
        let late = self.unfinished.borrow().overdue(now);
        for key in late {
            self.close_conn(key, CloseReason::MESSAGE_TIMEOUT);
            self.drop_unfinished(key);
        }
        for key in overdue {
            // Shutting the socket makes it readable (EOF): the read then
            // removes the connection.
            self.with_conn(key, |c| SockRef::from(&c.fd).shutdown(Shutdown::Both));
        }
        self.check_accepting();
        self.with_core(|core| core.tick(now));
        if let Some(CloseAll::Drain { per_sec }) = self.closing_all.get() {
            self.drain_some(per_sec);
        }
        if let Some(codec) = &self.codec {
            codec.forget_last();
        }
        self.grants_cache.borrow_mut().prune();
        if self.reclaim.due(now) {
            self.with_core(|core| core.shrink_after_burst());
            super::reclaim::collect_thread_heap();
        }
    }

    fn drain_some(self: &Rc<Self>, per_sec: u32) {
        let per_tick =
            (u128::from(per_sec) * self.sweep_period().as_millis() / 1000).max(1) as usize;
        let open: Vec<ConnKey> = self
            .conns
            .borrow()
            .iter()
            .filter(|(_, c)| c.phase != Phase::Closing)
            .take(per_tick)
            .map(|(i, c)| ConnKey {
                index: i as u32,
                generation: c.generation(),
            })
            .collect();
        for key in open {
            self.close_conn(key, CloseReason::DRAIN);
        }
    }
}

/// True when `deadline` (shard clock) has passed at `now`, wrap-safe.
fn is_past(now: u32, deadline: u32) -> bool {
    now.wrapping_sub(deadline) < u32::MAX / 2
}
