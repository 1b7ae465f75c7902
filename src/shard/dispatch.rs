//! Executing what client messages and mailbox messages ask of the shard.

use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::coordinator::ReplyTo;
use crate::metrics::Counter;
use crate::protocol::envelope::AckStatus;
use crate::protocol::UserId;
use crate::session::{self, ack_frame, Outcome, Rules, Sender, SessionState};

use super::directory::{Registration, Waiter};
use super::pending::{PendingAck, Remote};
use super::{ConnKey, Ending, Shard, ShardMsg};

/// Unix time in microseconds.
pub fn unix_micros(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Shard {
    /// A text message from an open protocol connection.
    pub fn on_text(self: &Rc<Self>, key: ConnKey, text: &str) {
        self.metrics.incr(Counter::MessagesTotal);
        let now = SystemTime::now();
        let now_ms = self.now_ms();
        let settings = &self.instance.settings;
        let rules = Rules {
            max_message_bytes: settings.max_message_bytes,
            broadcast_enabled: settings.broadcast_enabled,
            rate_limit: settings.rate_limit,
        };
        let outcome = self.with_conn(key, |c| {
            let connection_id = self.connection_id(c.seq);
            let from = Sender {
                user: &c.user,
                connection_id: &connection_id,
                now,
                now_ms,
            };
            let state = SessionState {
                bucket: &mut c.bucket,
                next_message: &mut c.next_message,
            };
            session::handle_text(text, &from, state, &rules)
        });
        let Some(outcome) = outcome else { return };
        self.execute(key, outcome, unix_micros(now));
    }

    fn execute(self: &Rc<Self>, key: ConnKey, outcome: Outcome, sent_at_us: u64) {
        match outcome {
            Outcome::Reply(frame) => {
                self.enqueue(key, frame, 0);
            }
            Outcome::Latency(ms) => self.metrics.record_latency_report(ms),
            Outcome::RateLimited(frame) => {
                self.metrics.incr(Counter::RateLimited);
                self.enqueue(key, frame, 0);
            }
            Outcome::Close(code, reason) => {
                self.metrics.incr(Counter::RateLimited);
                self.close_conn(key, code, reason, Ending::Unexpected, false);
            }
            Outcome::Direct {
                receiver,
                frame,
                ack,
            } => self.send_direct(key, receiver, frame, ack, sent_at_us),
            Outcome::Broadcast { frame, ack } => self.send_broadcast(key, frame, ack, sent_at_us),
        }
    }

    fn pending_for(&self, key: ConnKey, id: String, token: u64, remote: Remote) -> ReplyTo {
        let deadline_ms = self
            .now_ms()
            .wrapping_add(self.instance.settings.delivery_timeout.as_millis() as u32);
        let pending = PendingAck {
            conn: key,
            id,
            parts: 0,
            reported: 0,
            connections: 0,
            remote,
            deadline_ms,
        };
        self.pending.borrow_mut().insert(token, pending);
        ReplyTo::Shard {
            shard: self.index,
            token,
        }
    }

    fn send_direct(
        self: &Rc<Self>,
        key: ConnKey,
        receiver: UserId,
        frame: Bytes,
        ack: Option<String>,
        sent_at_us: u64,
    ) {
        let token = if ack.is_some() { self.token() } else { 0 };
        let remote = self.instance.coordinator.send_direct(
            &receiver,
            frame.clone(),
            self.index,
            token,
            sent_at_us,
        );
        let remote = if remote {
            Remote::Waiting
        } else {
            Remote::None
        };
        let reply = ack.map(|id| self.pending_for(key, id, token, remote));
        let owner = self.instance.owner_of(&receiver);
        let msg = ShardMsg::Route {
            user: receiver,
            frame,
            reply,
            sent_at_us,
        };
        if owner == self.index {
            self.on_mailbox(msg);
        } else {
            self.instance.send(owner, msg);
        }
    }

    fn send_broadcast(
        self: &Rc<Self>,
        key: ConnKey,
        frame: Bytes,
        ack: Option<String>,
        sent_at_us: u64,
    ) {
        let reply = ack.map(|id| self.pending_for(key, id, self.token(), Remote::None));
        let parts = self.instance.shard_count() as u32;
        self.instance
            .coordinator
            .send_broadcast(frame.clone(), sent_at_us);
        for shard in 0..self.instance.shard_count() as u16 {
            if shard != self.index {
                let msg = ShardMsg::Broadcast {
                    frame: frame.clone(),
                    reply,
                    parts,
                    sent_at_us,
                };
                self.instance.send(shard, msg);
            }
        }
        let count = self.deliver_to_all(&frame, sent_at_us, Some(key));
        self.report(reply, count, parts);
    }

    /// A message from another shard or the coordination layer.
    pub fn on_mailbox(self: &Rc<Self>, msg: ShardMsg) {
        match msg {
            ShardMsg::Register { user, shard, token } => {
                self.on_register(user, Waiter { shard, token })
            }
            ShardMsg::RouteAdded { token } => {
                let waiters = self.directory.borrow_mut().route_added(token);
                waiters
                    .into_iter()
                    .for_each(|w| self.answer_registration(w));
            }
            ShardMsg::Registered { token } => self.on_registered(token),
            ShardMsg::Unregister { user, shard } => {
                if self.directory.borrow_mut().unregister(&user, shard) {
                    self.instance.coordinator.remove_route(&user);
                }
            }
            ShardMsg::Route {
                user,
                frame,
                reply,
                sent_at_us,
            } => self.on_route(user, frame, reply, sent_at_us),
            ShardMsg::Deliver {
                user,
                frame,
                reply,
                parts,
                sent_at_us,
            } => {
                let n = self.deliver_to_user(&user, &frame, sent_at_us);
                self.report(reply, n, parts);
            }
            ShardMsg::Broadcast {
                frame,
                reply,
                parts,
                sent_at_us,
            } => {
                let n = self.deliver_to_all(&frame, sent_at_us, None);
                self.report(reply, n, parts);
            }
            ShardMsg::DeliveryReport {
                token,
                connections,
                parts,
            } => self.on_delivery_report(token, connections, parts),
            ShardMsg::RemoteOutcome { token, outcome } => {
                let done = self.pending.borrow_mut().remote(token, outcome);
                if let Some((p, status)) = done {
                    self.send_ack(p.conn, &p.id, status);
                }
            }
            ShardMsg::Reregister => self.reregister_routes(),
            ShardMsg::CloseAll(how) => self.begin_close_all(how),
        }
    }

    fn on_register(self: &Rc<Self>, user: UserId, waiter: Waiter) {
        let registration = self.directory.borrow_mut().register(&user, waiter);
        match registration {
            Registration::Ready => self.answer_registration(waiter),
            Registration::Waiting => {}
            Registration::AddRoute => {
                let token = self.token();
                if self
                    .instance
                    .coordinator
                    .add_route(&user, self.index, token)
                {
                    self.directory.borrow_mut().route_requested(token, user);
                } else {
                    let waiters = self.directory.borrow_mut().take_waiters(&user);
                    waiters
                        .into_iter()
                        .for_each(|w| self.answer_registration(w));
                }
            }
        }
    }

    fn answer_registration(self: &Rc<Self>, w: Waiter) {
        if w.shard == self.index {
            self.on_registered(w.token);
        } else {
            self.instance
                .send(w.shard, ShardMsg::Registered { token: w.token });
        }
    }

    fn on_route(
        self: &Rc<Self>,
        user: UserId,
        frame: Bytes,
        reply: Option<ReplyTo>,
        sent_at_us: u64,
    ) {
        let shards: smallvec::SmallVec<[u16; 4]> = self.directory.borrow().shards_of(&user).into();
        if shards.is_empty() {
            self.report(reply, 0, 1);
            return;
        }
        let parts = shards.len() as u32;
        for shard in shards {
            if shard == self.index {
                let n = self.deliver_to_user(&user, &frame, sent_at_us);
                self.report(reply, n, parts);
            } else {
                let msg = ShardMsg::Deliver {
                    user: user.clone(),
                    frame: frame.clone(),
                    reply,
                    parts,
                    sent_at_us,
                };
                self.instance.send(shard, msg);
            }
        }
    }

    /// One part of a delivery count for a pending ack here.
    pub fn on_delivery_report(self: &Rc<Self>, token: u64, connections: u32, parts: u32) {
        let done = self.pending.borrow_mut().report(token, connections, parts);
        if let Some((p, status)) = done {
            self.send_ack(p.conn, &p.id, status);
        }
    }

    /// Answers the sender with an ack.
    pub fn send_ack(self: &Rc<Self>, conn: ConnKey, id: &str, status: AckStatus) {
        if matches!(status, AckStatus::Failed) {
            self.metrics.incr(Counter::DeliveryFailed);
        }
        self.enqueue(conn, ack_frame(id, status), 0);
    }
}
