//! The driver: paces the scenario's messages at `--rate` and hands each to
//! a sender connection's queue, counting what it sent and how many
//! deliveries each message should make.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::args::Scenario;
use crate::conn::Out;
use crate::shared::Shared;

/// Counters the driver owns.
#[derive(Default)]
pub struct Sent {
    /// Counted messages handed to a sender.
    pub sent: u64,
    /// Deliveries they should make.
    pub expected: u64,
    /// Messages not sent: no live sender, or its queue was full.
    pub dropped: u64,
}

pub struct Driver {
    sh: Arc<Shared>,
    pub senders: Vec<mpsc::Sender<Out>>,
    rng: SmallRng,
    /// The next global sequence number.
    pub seq: u64,
    pub counting: bool,
    pub c: Sent,
    /// Channels: the next publication number of each channel.
    chan_n: Vec<u64>,
}

impl Driver {
    pub fn new(sh: Arc<Shared>, senders: Vec<mpsc::Sender<Out>>) -> Self {
        let channels = sh.chan_subs.len();
        Driver {
            sh,
            senders,
            rng: SmallRng::from_os_rng(),
            seq: 0,
            counting: false,
            c: Sent::default(),
            chan_n: vec![0; channels],
        }
    }

    /// Whether this scenario sends anything at all.
    pub fn sends(&self) -> bool {
        let sh = &self.sh;
        match &sh.plan {
            Some(plan) => plan.publishers > 0,
            None => sh.args.scenario != Scenario::Idle && !self.senders.is_empty(),
        }
    }

    /// One phase of `len` at `rate` messages/s; `on_tick` sees the counters.
    pub async fn phase(&mut self, len: Duration, rate: f64, on_tick: impl Fn(&Sent)) {
        let pstart = Instant::now();
        let mut done = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let sends = self.sends();
        while pstart.elapsed() < len && !*self.sh.shutdown_rx.borrow() {
            tick.tick().await;
            if sends {
                let el = pstart.elapsed().min(len).as_secs_f64();
                let due = (el * rate) as u64;
                let n = due.saturating_sub(done).min(100_000);
                for _ in 0..n {
                    self.send_one();
                }
                done += n;
                on_tick(&self.c);
            }
        }
    }

    fn count(&mut self, sent: Option<u64>) {
        if !self.counting {
            return;
        }
        match sent {
            Some(expected) => {
                self.c.sent += 1;
                self.c.expected += expected;
            }
            None => self.c.dropped += 1,
        }
    }

    /// Sends one message of the scenario.
    fn send_one(&mut self) {
        if self.sh.plan.is_some() {
            return self.publish_one();
        }
        let sh = &self.sh;
        let n = self.senders.len();
        let from = (0..16)
            .map(|_| self.rng.random_range(0..n))
            .find(|&i| sh.client_alive[i].load(Relaxed));
        let Some(from) = from else {
            return self.count(None);
        };
        let kind = match sh.args.scenario {
            Scenario::Mixed => match self.rng.random_range(0..10u32) {
                0 => Scenario::Broadcast,
                1 => Scenario::Echo,
                _ => Scenario::Direct,
            },
            s => s,
        };
        let seq = self.seq;
        let my_user = from % sh.users;
        let (out, expected) = match kind {
            Scenario::Broadcast => (
                Out::Broadcast { seq },
                sh.alive.load(Relaxed).saturating_sub(1),
            ),
            Scenario::Echo => (
                Out::Chat {
                    seq,
                    to: my_user as u32,
                },
                sh.user_alive[my_user].load(Relaxed) as u64,
            ),
            _ => {
                let mut to = self.rng.random_range(0..sh.users);
                if sh.users > 1 && to == my_user {
                    to = (to + 1 + self.rng.random_range(0..sh.users - 1)) % sh.users;
                }
                (
                    Out::Chat { seq, to: to as u32 },
                    sh.user_alive[to].load(Relaxed) as u64,
                )
            }
        };
        if self.senders[from].try_send(out).is_ok() {
            self.seq += 1;
            self.count(Some(expected));
        } else {
            self.count(None);
        }
    }

    /// Channels: publication `seq` to its channel from its publisher (the
    /// next live one when that one is gone); it should reach every live
    /// subscription of the channel.
    fn publish_one(&mut self) {
        let sh = &self.sh;
        let plan = sh.plan.as_ref().expect("channels plan");
        let g = self.seq;
        // Every number is used once, sent or dropped: a full queue must not
        // pin the next publications to the same publisher and channel.
        self.seq += 1;
        let first = plan.publisher_for(g);
        let from = (0..plan.publishers)
            .map(|k| plan.publisher_conn((first + k) % plan.publishers))
            .find(|&i| sh.client_alive[i].load(Relaxed));
        let Some(from) = from else {
            return self.count(None);
        };
        let channel = plan.channel_for(g);
        let c = channel as usize;
        let expected = sh.chan_subs[c].load(Relaxed) as u64;
        let out = Out::Publish {
            seq: g,
            channel,
            n: self.chan_n[c],
        };
        if self.senders[from].try_send(out).is_ok() {
            self.chan_n[c] += 1;
            self.count(Some(expected));
        } else {
            self.count(None);
        }
    }
}
