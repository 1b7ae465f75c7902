//! What Redis pushes to us: channel publications, envelopes published to
//! this server's channel or the broadcast channel, and notices that a
//! subscription ended.

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

    /// Redis says we are no longer subscribed to `channel` (an
    /// `unsubscribe`/`sunsubscribe` notice): true when Redis dropped the
    /// subscription on its own rather than confirming one of our
    /// unsubscribes. A Cluster node does that when it loses a slot (a
    /// failover or a resharding) to every sharded subscription in it; the
    /// link must then be replaced, which subscribes everything again on
    /// the new owners (see `worker::serve`). We never unsubscribe this
    /// server's or the broadcast channel, so a notice for them is never ours.
    pub fn on_unsubscribed(&mut self, channel: &[u8]) -> bool {
        match publication::channel_of(channel) {
            Some(name) => !self.channels.unsubscribe_confirmed(&name),
            None => true,
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
