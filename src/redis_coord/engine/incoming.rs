//! What Redis pushes to us: channel publications, and envelopes published
//! to this server's channel or the broadcast channel.

use std::time::Instant;

use bytes::Bytes;

use crate::coordinator::ReplyTo;
use crate::metrics::Counter;
use crate::protocol::channel::ChannelName;
use crate::protocol::frame::text_frame_with;

use super::super::envelope::{self, Envelope};
use super::super::publication;
use super::Engine;

impl Engine {
    /// A message published to one of our Redis channels (`channel` is its name).
    pub fn on_push(&mut self, channel: &[u8], payload: Bytes, now: Instant) {
        match publication::channel_of(channel) {
            Some(name) => self.on_publication(name, payload),
            None => self.on_message(payload, now),
        }
    }

    fn on_publication(&mut self, channel: ChannelName, payload: Bytes) {
        let Some(p) = publication::decode(payload) else {
            self.metrics.incr(Counter::RedisErrors);
            tracing::debug!(%channel, "dropped an undecodable publication");
            return;
        };
        // Framed once here for every subscriber of the instance.
        let frame = text_frame_with(|out| out.extend_from_slice(&p.json));
        self.router
            .deliver_publication(channel, frame, p.offset, p.sent_at_us);
    }

    /// A message published to this server's or the broadcast channel.
    pub fn on_message(&mut self, payload: Bytes, now: Instant) {
        match envelope::decode(payload) {
            Ok(Envelope::Direct {
                origin,
                token,
                sent_at_us,
                user,
                frame,
            }) => {
                let reply = (token != 0).then(|| ReplyTo::Coordinator {
                    token: self.inbound.begin(origin, token, now),
                });
                self.router.deliver_direct(user, frame, reply, sent_at_us);
            }
            Ok(Envelope::UserOp {
                origin,
                token,
                user,
                op,
            }) => {
                let reply = (token != 0).then(|| ReplyTo::Coordinator {
                    token: self.inbound.begin(origin, token, now),
                });
                self.router.deliver_user_op(user, op, reply);
            }
            Ok(Envelope::Confirm {
                origin,
                token,
                connections,
            }) => {
                let done = self.outbound.on_confirm(token, origin, connections);
                self.answer_opt(done);
            }
            Ok(Envelope::Broadcast {
                origin,
                sent_at_us,
                frame,
            }) => {
                if origin != self.cfg.server_id {
                    self.router.deliver_broadcast(frame, sent_at_us);
                }
            }
            Err(e) => {
                self.metrics.incr(Counter::RedisErrors);
                tracing::debug!(error = %e, "dropped an undecodable pub/sub message");
            }
        }
    }
}
