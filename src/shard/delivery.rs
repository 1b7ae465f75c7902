//! Putting frames into connections' send queues, and closing connections.

use std::rc::Rc;

use bytes::Bytes;

use crate::coordinator::ReplyTo;
use crate::metrics::Counter;
use crate::protocol::frame::close_frame;

use super::{ConnKey, Ending, Enqueued, Phase, Shard, ShardMsg};

/// Close code for a slow consumer.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// How long a closing connection may take to answer our close frame.
pub const CLOSE_GRACE_MS: u32 = 2_000;
/// A slow consumer gets longer: its close frame waits behind a full socket
/// buffer until it reads again (its send queue is already freed).
pub const SLOW_CONSUMER_GRACE_MS: u32 = 5_000;

impl Shard {
    /// Queues `frame` on one connection and schedules its flush.
    /// Returns true if the connection accepted it.
    ///
    /// A queue that looks full is first written out to the socket: one turn
    /// (a read of many messages, a mailbox batch) can queue more than the
    /// limit before the corked flush runs, and only a receiver whose socket
    /// does not take the bytes is a slow consumer.
    pub fn enqueue(self: &Rc<Self>, key: ConnKey, frame: Bytes, sent_at_us: u64) -> bool {
        let limit = self.instance.settings.send_queue_bytes;
        let len = frame.len();
        let looks_full = self
            .with_conn(key, |c| c.queued_bytes as usize + len > limit)
            .unwrap_or(false);
        if looks_full {
            self.flush_now(key);
        }
        match self.try_enqueue(key, frame, sent_at_us, limit) {
            Some(Enqueued::Accepted) => true,
            Some(Enqueued::Overflow) => {
                self.metrics.incr(Counter::SlowConsumerCloses);
                self.close_conn(
                    key,
                    CLOSE_SLOW_CONSUMER,
                    "slow consumer",
                    Ending::Unexpected,
                    true,
                );
                let deadline = self.now_ms().wrapping_add(SLOW_CONSUMER_GRACE_MS);
                self.with_conn(key, |c| c.close_deadline_ms = deadline);
                false
            }
            _ => false,
        }
    }

    fn try_enqueue(
        &self,
        key: ConnKey,
        frame: Bytes,
        sent_at_us: u64,
        limit: usize,
    ) -> Option<Enqueued> {
        self.with_conn(key, |c| {
            let r = c.enqueue(frame, sent_at_us, limit);
            if r == Enqueued::Accepted {
                self.schedule_flush(key, c);
            }
            r
        })
    }

    /// Writes a connection's queue now if its socket may take bytes (not
    /// waiting for `EPOLLOUT`, not held behind `welcome`).
    fn flush_now(&self, key: ConnKey) {
        let writable = self
            .with_conn(key, |c| !c.write_blocked && c.phase != Phase::Registering)
            .unwrap_or(false);
        if writable {
            self.flush(key);
        }
    }

    /// Starts closing a connection: queue a close frame (dropping what was
    /// queued when `discard` is set, as for a slow consumer), stop reading
    /// messages, and cut the socket if the peer does not answer in time.
    pub fn close_conn(
        self: &Rc<Self>,
        key: ConnKey,
        code: u16,
        reason: &str,
        ending: Ending,
        discard: bool,
    ) {
        let deadline = self.now_ms().wrapping_add(CLOSE_GRACE_MS);
        self.with_conn(key, |c| {
            if c.phase == Phase::Closing {
                return;
            }
            if discard {
                c.discard_unsent();
            }
            if c.ending == Ending::Unknown {
                c.ending = ending;
            }
            let frame = close_frame(code, reason);
            c.queued_bytes += frame.len() as u32;
            c.queue.push_back(super::OutFrame {
                frame,
                sent_at_us: 0,
            });
            c.phase = Phase::Closing;
            c.close_after_flush = true;
            c.close_deadline_ms = deadline;
            self.schedule_flush(key, c);
        });
    }

    /// Delivers to every connection of `user` on this shard; returns how many took it.
    pub fn deliver_to_user(self: &Rc<Self>, user: &str, frame: &Bytes, sent_at_us: u64) -> u32 {
        let keys = self.user_conn_keys(user);
        keys.into_iter()
            .filter(|k| self.enqueue(*k, frame.clone(), sent_at_us))
            .count() as u32
    }

    /// Delivers to every open connection on this shard except `except`.
    pub fn deliver_to_all(
        self: &Rc<Self>,
        frame: &Bytes,
        sent_at_us: u64,
        except: Option<ConnKey>,
    ) -> u32 {
        let keys: Vec<ConnKey> = self
            .conns
            .borrow()
            .iter()
            .filter(|(_, c)| !c.echo && c.phase != Phase::Closing)
            .map(|(i, c)| ConnKey {
                index: i as u32,
                generation: c.generation,
            })
            .filter(|k| Some(*k) != except)
            .collect();
        keys.into_iter()
            .filter(|k| self.enqueue(*k, frame.clone(), sent_at_us))
            .count() as u32
    }

    fn user_conn_keys(&self, user: &str) -> smallvec::SmallVec<[ConnKey; 2]> {
        let users = self.users.borrow();
        let conns = self.conns.borrow();
        let Some(local) = users.get(user) else {
            return Default::default();
        };
        local
            .conns
            .iter()
            .filter_map(|&i| {
                conns.get(i as usize).map(|c| ConnKey {
                    index: i,
                    generation: c.generation,
                })
            })
            .collect()
    }

    /// Sends a delivery count where it is awaited.
    pub fn report(self: &Rc<Self>, reply: Option<ReplyTo>, connections: u32, parts: u32) {
        match reply {
            None => {}
            Some(ReplyTo::Shard { shard, token }) if shard == self.index => {
                self.on_delivery_report(token, connections, parts)
            }
            Some(ReplyTo::Shard { shard, token }) => self.instance.send(
                shard,
                ShardMsg::DeliveryReport {
                    token,
                    connections,
                    parts,
                },
            ),
            Some(ReplyTo::Coordinator { token }) => {
                self.instance
                    .coordinator
                    .delivery_report(token, connections, parts)
            }
        }
    }
}
