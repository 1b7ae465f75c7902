//! Carrying out what the routing core asks: frames into send queues,
//! welcomes, closes, mailboxes and coordinator calls.
//!
//! Every event reaches the core through [`Shard::with_core`], which then
//! takes the core's actions one by one until none is left. The core is
//! never borrowed while an action runs, so an action that reports back (a
//! delivery count) simply queues more work for the same loop.

use std::rc::Rc;

use bytes::Bytes;

use crate::close::CloseReason;
use crate::coordinator::History;
use crate::metrics::Counter;
use crate::protocol::frame::close_frame;

use super::core::{Action, CoordinatorCall, ShardCore, Target};
use super::{ConnKey, Ending, Enqueued, Flags, OutFrame, Phase, Shard};

impl Shard {
    /// Feeds one event to the core, then carries out every action it leads to.
    pub fn with_core<R>(self: &Rc<Self>, event: impl FnOnce(&mut ShardCore) -> R) -> R {
        let r = event(&mut self.core.borrow_mut());
        self.run_actions();
        r
    }

    fn run_actions(self: &Rc<Self>) {
        loop {
            let next = self.core.borrow_mut().poll_action();
            match next {
                Some(action) => self.execute(action),
                None => return,
            }
        }
    }

    fn execute(self: &Rc<Self>, action: Action) {
        match action {
            Action::Send { shard, msg } => self.instance.send(shard, msg),
            Action::Deliver {
                to,
                frame,
                sent_at_us,
                report,
            } => {
                let publication = matches!(to, Target::Members(_));
                let taken = self.deliver(to, &frame, sent_at_us);
                if publication {
                    self.metrics
                        .add(Counter::PublicationDeliveries, u64::from(taken));
                }
                if let Some(report) = report {
                    self.core.borrow_mut().delivered(report, taken);
                }
            }
            Action::Welcome {
                conn,
                subscriptions,
                inbox,
            } => self.welcome(conn, &subscriptions, inbox),
            Action::Close { conn, reason } => self.close_conn(conn, reason),
            Action::Coordinator(call) => self.call_coordinator(call),
            Action::UserOp {
                conns,
                user,
                op,
                report,
            } => {
                let keys = self.keys_of(&conns);
                let changed = keys
                    .into_iter()
                    .filter(|k| self.core.borrow_mut().apply_user_op(*k, &user, &op))
                    .count() as u32;
                if let Some(report) = report {
                    self.core.borrow_mut().delivered(report, changed);
                }
            }
            Action::ApiReply { token, outcome } => self.api_calls.answer(token, outcome),
        }
    }

    fn call_coordinator(&self, call: CoordinatorCall) {
        let coordinator = &self.instance.coordinator;
        match call {
            CoordinatorCall::AddRoute { user, shard, token } => {
                coordinator.add_route(&user, shard, token);
            }
            CoordinatorCall::RemoveRoute { user } => coordinator.remove_route(&user),
            CoordinatorCall::SendDirect {
                user,
                frame,
                shard,
                token,
                sent_at_us,
            } => {
                coordinator.send_direct(&user, frame, shard, token, sent_at_us);
            }
            CoordinatorCall::Broadcast { frame, sent_at_us } => {
                coordinator.send_broadcast(frame, sent_at_us)
            }
            CoordinatorCall::SubscribeChannel {
                channel,
                shard,
                token,
            } => coordinator.subscribe_channel(&channel, shard, token),
            CoordinatorCall::ReadStream {
                key,
                query,
                shard,
                token,
            } => coordinator.read_stream(&key, query, shard, token),
            CoordinatorCall::AppendInbox {
                user,
                json,
                retention,
                shard,
                token,
            } => coordinator.append_inbox(&user, json, retention, shard, token),
            CoordinatorCall::PresenceChanges { channel, changes } => {
                coordinator.presence_changes(&channel, changes)
            }
            CoordinatorCall::PresenceReset { channel, users } => {
                coordinator.presence_reset(&channel, users)
            }
            CoordinatorCall::ReadPresence {
                channel,
                cap,
                shard,
                token,
            } => coordinator.read_presence(&channel, cap, shard, token),
            CoordinatorCall::SendUserOp {
                user,
                op,
                shard,
                token,
            } => coordinator.send_user_op(&user, op, shard, token),
            CoordinatorCall::UserServers { user, shard, token } => {
                coordinator.user_servers(&user, shard, token)
            }
            CoordinatorCall::Idempotency {
                key,
                answer,
                shard,
                token,
            } => coordinator.idempotency(&key, answer, shard, token),
            CoordinatorCall::UnsubscribeChannel { channel } => {
                coordinator.unsubscribe_channel(&channel)
            }
            CoordinatorCall::Publish {
                channel,
                json,
                shard,
                token,
                sent_at_us,
            } => {
                let options = self.instance.settings.namespaces.options(&channel);
                let history = History::of(options);
                coordinator.publish(&channel, json, history, shard, token, sent_at_us);
            }
            CoordinatorCall::DeliveryReport {
                token,
                connections,
                parts,
            } => coordinator.delivery_report(token, connections, parts),
        }
    }

    /// Queues `frame` on the target connections; returns how many took it.
    ///
    /// Every shared frame of the shard passes here (broadcasts,
    /// publications, join/leave, direct messages, server API sends, replies),
    /// so this is where permessage-deflate is applied: a receiver that
    /// negotiated it gets the frame's compressed twin, made once per message
    /// and window by the shard's codec and shared by all of them, and only
    /// when some receiver asks for it.
    fn deliver(self: &Rc<Self>, to: Target, frame: &Bytes, sent_at_us: u64) -> u32 {
        let keys: smallvec::SmallVec<[ConnKey; 4]> = match to {
            Target::Conn(key) => smallvec::smallvec![key],
            Target::Indices(indices) => self.keys_of(&indices),
            Target::All { except } => self.open_keys(except),
            Target::Members(members) => self.keys_of(&members),
        };
        let Some(codec) = &self.codec else {
            return keys
                .into_iter()
                .filter(|k| self.enqueue(*k, frame.clone(), sent_at_us))
                .count() as u32;
        };
        let (mut taken, mut compressed, mut saved) = (0, 0, 0);
        for key in keys {
            let agreement = self.with_conn(key, |c| c.deflate).flatten();
            let twin = agreement.and_then(|a| codec.twin(frame, a, &self.metrics));
            let (out, twin_saved) = match twin {
                Some(t) => (t.frame, Some(t.saved)),
                None => (frame.clone(), None),
            };
            if self.enqueue(key, out, sent_at_us) {
                taken += 1;
                if let Some(s) = twin_saved {
                    compressed += 1;
                    saved += s as u64;
                }
            }
        }
        if compressed > 0 {
            self.metrics.add(Counter::DeflateFrames, compressed);
            self.metrics.add(Counter::DeflateBytesSaved, saved);
        }
        taken
    }

    /// Keys of listed slab indices (the core lists only live connections).
    fn keys_of(&self, indices: &[u32]) -> smallvec::SmallVec<[ConnKey; 4]> {
        let conns = self.conns.borrow();
        indices
            .iter()
            .filter_map(|&index| {
                conns.get(index as usize).map(|c| ConnKey {
                    index,
                    generation: c.generation(),
                })
            })
            .collect()
    }

    /// Keys of every protocol connection that is not closing, but `except`.
    fn open_keys(&self, except: Option<ConnKey>) -> smallvec::SmallVec<[ConnKey; 4]> {
        self.conns
            .borrow()
            .iter()
            .filter(|(_, c)| !c.is_echo() && c.phase != Phase::Closing)
            .map(|(i, c)| ConnKey {
                index: i as u32,
                generation: c.generation(),
            })
            .filter(|k| Some(*k) != except)
            .collect()
    }

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
                self.close_conn(key, CloseReason::SLOW_CONSUMER);
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
            .with_conn(key, |c| {
                !c.flags.has(Flags::WRITE_BLOCKED) && c.phase != Phase::Registering
            })
            .unwrap_or(false);
        if writable {
            self.flush(key);
        }
    }

    /// Starts closing a connection: count the reason, queue a close frame
    /// (dropping what was queued when the reason says so), stop reading
    /// messages, and cut the socket if the peer does not answer in time.
    pub fn close_conn(&self, key: ConnKey, reason: CloseReason) {
        let deadline = self.now_ms().wrapping_add(reason.grace_ms);
        self.with_conn(key, |c| {
            if c.phase == Phase::Closing {
                return;
            }
            if let Some(counter) = reason.counter {
                self.metrics.incr(counter);
            }
            if reason.discard_queue {
                c.discard_unsent();
            }
            if c.ending == Ending::Unknown {
                c.ending = if reason.unexpected {
                    Ending::Unexpected
                } else {
                    Ending::Expected
                };
            }
            let frame = close_frame(reason.code, &reason.text);
            c.queued_bytes += frame.len() as u32;
            c.queue.push_back(OutFrame {
                frame,
                sent_at_us: 0,
            });
            c.phase = Phase::Closing;
            c.flags.set(Flags::CLOSE_AFTER_FLUSH, true);
            c.clock_ms = deadline;
            self.schedule_flush(key, c);
        });
    }
}
