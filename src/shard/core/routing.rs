//! Routing client messages: direct messages through the receiver's owner,
//! broadcasts to every shard, delivery counts back to the sender, acks.
//!
//! A direct message is framed once on the sender's shard and sent to the
//! receiver's owner (`Route`), which forwards it to each shard holding the
//! receiver (`Deliver`). Each of those queues it on the receiver's
//! connections and reports its count to the sender's shard, which adds the
//! parts (and the remote instances' answer) into the `ack`. `docs/DESIGN.md`
//! says why the owner hop stays (measured against a replicated directory).
//!
//! Local delivery, delivery counts and acks are in `delivery.rs`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::coordinator::{Delivery, ReplyTo, UserOp};
use crate::metrics::Counter;
use crate::protocol::UserId;
use crate::session::Outcome;

use super::api::Who;
use super::channels::Joining;
use super::inbox::Storing;
use super::pending::{AckTarget, Remote};
use super::{Action, ConnKey, CoordinatorCall, Report, ShardCore, ShardMsg, Target};

/// Unix time in microseconds.
pub fn unix_micros(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl ShardCore {
    /// What the session made of one client message from `from`.
    pub fn client_outcome(
        &mut self,
        from: ConnKey,
        outcome: Outcome,
        sent_at_us: u64,
        now_ms: u32,
    ) {
        self.now_ms = now_ms;
        match outcome {
            Outcome::Subscribe {
                channel,
                recover,
                id,
                user,
            } => {
                let joining = Joining {
                    conn: from,
                    id,
                    recover,
                    at_connect: false,
                    user,
                };
                self.subscribe(joining, channel)
            }
            Outcome::Unsubscribe { channel, id } => self.unsubscribe(from, channel, id),
            Outcome::Publish { channel, json, ack } => {
                let target = ack.map(|id| AckTarget::Client { conn: from, id });
                self.publish(target, channel, json, sent_at_us)
            }
            Outcome::History {
                channel,
                since,
                limit,
                id,
            } => {
                let since = since.map(|p| (p.offset, std::sync::Arc::from(&*p.epoch)));
                self.history(Who::Client { conn: from, id }, channel, since, limit)
            }
            Outcome::Inbox {
                user,
                since,
                limit,
                id,
            } => self.inbox(from, user, since, limit, id),
            Outcome::Presence { channel, stats, id } => {
                self.presence_request(Who::Client { conn: from, id }, channel, stats)
            }
            // Verified on the I/O side (`Shard::refresh`): the core never
            // sees tokens. A caller that forwards one anyway gets an error.
            Outcome::Refresh { id, .. } => {
                let frame = crate::session::error_frame(
                    crate::protocol::envelope::ErrorCode::NotAvailable,
                    "not available on this server",
                    id.as_deref(),
                );
                self.reply(from, frame);
            }
            Outcome::Reply(frame) => self.reply(from, frame),
            Outcome::Latency(ms) => self.metrics.record_latency_report(ms),
            Outcome::RateLimited(frame) => {
                self.metrics.incr(Counter::RateLimited);
                self.reply(from, frame);
            }
            Outcome::Close(reason) => self.act(Action::Close { conn: from, reason }),
            Outcome::Direct {
                receiver,
                frame,
                ack,
            } => self.send_direct(from, receiver, frame, ack, sent_at_us),
            Outcome::Broadcast { frame, ack } => {
                self.send_broadcast(Some(from), frame, ack, sent_at_us)
            }
        }
    }

    pub(super) fn reply(&mut self, to: ConnKey, frame: Bytes) {
        self.act(Action::Deliver {
            to: Target::Conn(to),
            frame,
            sent_at_us: 0,
            report: None,
        });
    }

    fn send_direct(
        &mut self,
        from: ConnKey,
        receiver: UserId,
        frame: Bytes,
        ack: Option<String>,
        sent_at_us: u64,
    ) {
        let target = ack.map(|id| AckTarget::Client { conn: from, id });
        self.send_direct_to(target, receiver, frame, sent_at_us);
    }

    /// A direct message (from a client, or the server API's `send`) with
    /// whoever waits for its outcome.
    pub(super) fn send_direct_to(
        &mut self,
        target: Option<AckTarget>,
        receiver: UserId,
        frame: Bytes,
        sent_at_us: u64,
    ) {
        let remote = if self.cfg.remote && target.is_some() {
            Remote::Waiting
        } else {
            Remote::None
        };
        let reply = target.map(|t| self.pending_for(t, remote));
        match self.cfg.inbox {
            Some(retention) => {
                if let Some(ReplyTo::Shard { token, .. }) = reply {
                    self.pending.stored_at(token, None);
                }
                let storing = Storing {
                    receiver,
                    frame,
                    reply,
                    sent_at_us,
                };
                self.store_direct(retention, storing);
            }
            None => self.route_direct(receiver, frame, reply, sent_at_us),
        }
    }

    /// Routes a framed direct message: to the receiver's owner (which
    /// forwards it to the shards holding the receiver) and, with other
    /// instances, through the coordination layer.
    pub(super) fn route_direct(
        &mut self,
        receiver: UserId,
        frame: Bytes,
        reply: Option<ReplyTo>,
        sent_at_us: u64,
    ) {
        if self.cfg.remote {
            let token = match reply {
                Some(ReplyTo::Shard { token, .. }) => token,
                _ => 0,
            };
            self.coordinator(CoordinatorCall::SendDirect {
                user: receiver.clone(),
                frame: frame.clone(),
                shard: self.cfg.index,
                token,
                sent_at_us,
            });
        }
        let owner = self.owner_of(&receiver);
        let msg = ShardMsg::Route {
            user: receiver,
            what: Delivery::Frame(frame),
            reply,
            sent_at_us,
        };
        self.send(owner, msg);
    }

    /// Routes an operation on a user's connections like a direct message.
    pub(super) fn route_op(&mut self, user: UserId, op: UserOp, reply: ReplyTo) {
        if self.cfg.remote {
            let token = match reply {
                ReplyTo::Shard { token, .. } => token,
                ReplyTo::Coordinator { .. } => 0,
            };
            let shard = self.cfg.index;
            let call = CoordinatorCall::SendUserOp {
                user: user.clone(),
                op: op.clone(),
                shard,
                token,
            };
            self.coordinator(call);
        }
        let owner = self.owner_of(&user);
        let msg = ShardMsg::Route {
            user,
            what: Delivery::Op(op),
            reply: Some(reply),
            sent_at_us: 0,
        };
        self.send(owner, msg);
    }

    pub(super) fn send_broadcast(
        &mut self,
        from: Option<ConnKey>,
        frame: Bytes,
        ack: Option<String>,
        sent_at_us: u64,
    ) {
        let target = from
            .zip(ack)
            .map(|(conn, id)| AckTarget::Client { conn, id });
        let reply = target.map(|t| self.pending_for(t, Remote::None));
        let parts = u32::from(self.cfg.shards);
        if self.cfg.remote {
            let frame = frame.clone();
            self.coordinator(CoordinatorCall::Broadcast { frame, sent_at_us });
        }
        for shard in 0..self.cfg.shards {
            if shard != self.cfg.index {
                let msg = ShardMsg::Broadcast {
                    frame: frame.clone(),
                    reply,
                    parts,
                    sent_at_us,
                };
                self.send(shard, msg);
            }
        }
        self.deliver_to_all(frame, sent_at_us, from, reply, parts);
    }

    /// Owner: forward a direct message to every shard holding the receiver.
    pub(super) fn on_route(
        &mut self,
        user: UserId,
        what: Delivery,
        reply: Option<ReplyTo>,
        sent_at_us: u64,
    ) {
        let shards: smallvec::SmallVec<[u16; 4]> = self.directory.shards_of(&user).into();
        if shards.is_empty() {
            if let Some(reply) = reply {
                self.delivered(Report { reply, parts: 1 }, 0);
            }
            return;
        }
        let parts = shards.len() as u32;
        for shard in shards {
            if shard == self.cfg.index {
                self.deliver_to_user(&user, what.clone(), sent_at_us, reply, parts);
            } else {
                let msg = ShardMsg::Deliver {
                    user: user.clone(),
                    what: what.clone(),
                    reply,
                    parts,
                    sent_at_us,
                };
                self.send(shard, msg);
            }
        }
    }
}
