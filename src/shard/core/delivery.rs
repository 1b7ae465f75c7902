//! Delivering on this shard and counting: a routed frame (or user
//! operation) is queued on the local connections it is for, each shard's
//! count goes back to the sender's shard (or the coordination layer), and
//! once every part (and the remote instances' answer) is in, the sender
//! gets its `ack` (a client) or its outcome (the server API).

use bytes::Bytes;

use crate::coordinator::{Delivery, RemoteOutcome, ReplyTo};
use crate::metrics::Counter;
use crate::protocol::envelope::AckStatus;
use crate::protocol::UserId;
use crate::session::ack_frame_at;

use super::api::ApiOutcome;
use super::pending::{AckTarget, PendingAck, Remote};
use super::{Action, ConnKey, CoordinatorCall, Report, ShardCore, ShardMsg, Target};

impl ShardCore {
    /// A delivery's count, once the I/O side queued the frame.
    pub fn delivered(&mut self, report: Report, connections: u32) {
        match report.reply {
            ReplyTo::Shard { shard, token } if shard == self.cfg.index => {
                self.on_delivery_report(token, connections, report.parts)
            }
            ReplyTo::Shard { shard, token } => {
                let parts = report.parts;
                let msg = ShardMsg::DeliveryReport {
                    token,
                    connections,
                    parts,
                };
                self.send(shard, msg);
            }
            ReplyTo::Coordinator { token } => self.coordinator(CoordinatorCall::DeliveryReport {
                token,
                connections,
                parts: report.parts,
            }),
        }
    }

    pub(super) fn pending_for(&mut self, target: AckTarget, remote: Remote) -> ReplyTo {
        let token = self.token();
        let deadline_ms = self.now_ms.wrapping_add(self.cfg.delivery_timeout_ms);
        let pending = PendingAck {
            target,
            parts: 0,
            reported: 0,
            connections: 0,
            remote,
            deadline_ms,
            inbox: None,
        };
        self.pending.insert(token, pending);
        ReplyTo::Shard {
            shard: self.cfg.index,
            token,
        }
    }

    /// Queues a frame on (or applies an operation to) every local
    /// connection of `user`; the count goes to `reply`.
    pub(super) fn deliver_to_user(
        &mut self,
        user: &UserId,
        what: Delivery,
        sent_at_us: u64,
        reply: Option<ReplyTo>,
        parts: u32,
    ) {
        let report = reply.map(|reply| Report { reply, parts });
        let Some(local) = self.users.get(&**user) else {
            if let Some(report) = report {
                self.delivered(report, 0);
            }
            return;
        };
        let conns = local.conns.clone();
        let action = match what {
            Delivery::Frame(frame) => Action::Deliver {
                to: Target::Indices(conns),
                frame,
                sent_at_us,
                report,
            },
            Delivery::Op(op) => Action::UserOp {
                conns,
                user: user.clone(),
                op,
                report,
            },
        };
        self.act(action);
    }

    /// Queues `frame` on every connection of the shard but `except`.
    pub(super) fn deliver_to_all(
        &mut self,
        frame: Bytes,
        sent_at_us: u64,
        except: Option<ConnKey>,
        reply: Option<ReplyTo>,
        parts: u32,
    ) {
        let report = reply.map(|reply| Report { reply, parts });
        self.act(Action::Deliver {
            to: Target::All { except },
            frame,
            sent_at_us,
            report,
        });
    }

    /// One part of a delivery count for a pending ack here.
    pub(super) fn on_delivery_report(&mut self, token: u64, connections: u32, parts: u32) {
        if let Some((p, status)) = self.pending.report(token, connections, parts) {
            self.send_ack(&p, status);
        }
    }

    /// The coordination layer's answer for the remote part of a direct message.
    pub(super) fn on_remote_outcome(&mut self, token: u64, outcome: RemoteOutcome) {
        if let Some((p, status)) = self.pending.remote(token, outcome) {
            self.send_ack(&p, status);
        }
    }

    /// Answers the sender with an ack.
    pub(super) fn send_ack(&mut self, p: &PendingAck, status: AckStatus) {
        if matches!(status, AckStatus::Failed) {
            self.metrics.incr(Counter::DeliveryFailed);
        }
        if matches!(status, AckStatus::Stored { .. }) {
            self.metrics.incr(Counter::InboxStored);
        }
        let offset = p.inbox.flatten();
        match &p.target {
            AckTarget::Client { conn, id } => self.reply(*conn, ack_frame_at(id, status, offset)),
            AckTarget::Api {
                token,
                counts: false,
            } => {
                let outcome = ApiOutcome::Sent { status, offset };
                self.api_reply(*token, outcome);
            }
            AckTarget::Api {
                token,
                counts: true,
            } => {
                let outcome = ApiOutcome::Connections {
                    connections: p.total(),
                    complete: p.is_complete(),
                };
                self.api_reply(*token, outcome);
            }
        }
    }
}
