//! Channel requests and publications through the core: subscribing and
//! unsubscribing connections, the owner's interest bookkeeping, publishing
//! (through the owner in embedded mode, straight to the coordination layer
//! with Redis), delivering publications, and the acks of publishers.

use bytes::Bytes;

use crate::coordinator::{PublishOutcome, Retention, StreamKey};
use crate::metrics::Counter;
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::server_v2::{
    write_subscribed, write_unsubscribed, UnsubscribeReason,
};
use crate::protocol::envelope::{AckStatus, ErrorCode};
use crate::protocol::frame::text_frame_with;
use crate::session::{ack_frame, error_frame};

use super::api::ApiOutcome;
use super::channels::{Joined, Joining, Kind, Leaving, Targets};
use super::interest::{Asker, InterestStep};
use super::pending::AckTarget;
use super::{Action, ConnKey, CoordinatorCall, ShardCore, ShardMsg, Target};

/// A publish waiting for the owner's or the coordination layer's answer.
#[derive(Debug)]
pub struct PendingPublish {
    /// Who waits for the answer.
    pub target: AckTarget,
    /// Shard clock (ms) after which the ack says `failed`.
    pub deadline_ms: u32,
}

impl ShardCore {
    /// A connection asks to subscribe (permission already checked).
    pub(super) fn subscribe(&mut self, joining: Joining, channel: ChannelName) {
        let (conn, at_connect) = (joining.conn, joining.at_connect);
        let token = self.token();
        let max = self.cfg.max_channels;
        let options = self.namespaces.options(&channel);
        let kind = Kind {
            history: options.has_history(),
            presence: options.presence,
        };
        match self.subs.join(&channel, &joining, max, token, kind) {
            Joined::Already | Joined::Now => self.joined(&channel, &joining),
            Joined::Read(token) => self.read_position(&channel, &joining, token),
            Joined::AskOwner(token) => {
                let owner = self.owner_of(&channel);
                let shard = self.cfg.index;
                let msg = ShardMsg::Interest {
                    channel,
                    shard,
                    want: true,
                    token,
                };
                self.send(owner, msg);
            }
            Joined::Waiting => {}
            Joined::TooMany if at_connect => self.subscription_ready(conn.index),
            Joined::TooMany => {
                let frame = error_frame(
                    ErrorCode::TooManyChannels,
                    "this connection has the maximum number of subscriptions",
                    joining.id.as_deref(),
                );
                self.reply(conn, frame);
            }
        }
        self.note_subscriptions();
    }

    /// A connection is subscribed: answer it (or count it toward its welcome).
    fn joined(&mut self, channel: &ChannelName, j: &Joining) {
        self.member_counted(channel, j);
        if j.at_connect {
            self.subscription_ready(j.conn.index);
            return;
        }
        let frame =
            text_frame_with(|out| write_subscribed(out, channel, j.id.as_deref(), None, None));
        self.reply(j.conn, frame);
    }

    /// A member joined: presence counts it (once).
    pub(super) fn member_counted(&mut self, channel: &ChannelName, j: &Joining) {
        if self.subs.count_in(channel, j.conn.index, &j.user) {
            self.presence_delta(channel.clone(), j.user.clone(), 1);
        }
    }

    /// A connection left a channel: the owner learns when it was the
    /// shard's last subscriber, presence counts it out.
    pub(super) fn left(&mut self, leaving: Leaving) {
        if let Some(user) = leaving.counted {
            self.presence_delta(leaving.channel.clone(), user, -1);
        }
        if let Some(token) = leaving.emptied {
            self.lost_interest(leaving.channel, token);
        }
    }

    /// A connection asks to unsubscribe; idempotent.
    pub(super) fn unsubscribe(&mut self, conn: ConnKey, channel: ChannelName, id: Option<String>) {
        self.answer_unanswered(conn, &channel, None);
        if let Some(leaving) = self.subs.leave(&channel, conn.index) {
            self.left(leaving);
        }
        self.note_subscriptions();
        let frame = text_frame_with(|out| write_unsubscribed(out, &channel, id.as_deref(), None));
        self.reply(conn, frame);
    }

    /// Ends a subscription the client did not ask to end (server API, or
    /// a refreshed token that no longer allows it): `unsubscribed` with
    /// `reason`. False when the connection was not subscribed.
    pub fn end_subscription(
        &mut self,
        conn: ConnKey,
        channel: &ChannelName,
        reason: UnsubscribeReason,
    ) -> bool {
        if self.answer_unanswered(conn, channel, Some(reason)) {
            // That answer says it ended; the one below would say it twice.
            if let Some(leaving) = self.subs.leave(channel, conn.index) {
                self.left(leaving);
            }
            self.note_subscriptions();
            return true;
        }
        let Some(leaving) = self.subs.leave(channel, conn.index) else {
            return false;
        };
        self.left(leaving);
        self.note_subscriptions();
        let frame = text_frame_with(|out| write_unsubscribed(out, channel, None, Some(reason)));
        self.reply(conn, frame);
        true
    }

    /// A subscription ends while its `subscribe` is still in progress: that
    /// request gets its one answer now, `unsubscribed` with its `id` (and
    /// `reason` when the server ended it), so no request goes unanswered.
    /// True when there was such a request.
    fn answer_unanswered(
        &mut self,
        conn: ConnKey,
        channel: &ChannelName,
        reason: Option<UnsubscribeReason>,
    ) -> bool {
        let Some(id) = self.subs.unanswered(channel, conn.index) else {
            return false;
        };
        let frame = text_frame_with(|out| write_unsubscribed(out, channel, id.as_deref(), reason));
        self.reply(conn, frame);
        true
    }

    /// After a token refresh: ends (`reason: forbidden`) every subscription
    /// of `conn` that `allowed` now refuses.
    pub fn drop_forbidden(&mut self, conn: ConnKey, allowed: impl Fn(&ChannelName) -> bool) {
        for channel in self.subs.of_conn(conn.index) {
            if !allowed(&channel) {
                self.end_subscription(conn, &channel, UnsubscribeReason::Forbidden);
            }
        }
    }

    /// The shard's last subscriber of `channel` left: tell the owner.
    pub(super) fn lost_interest(&mut self, channel: ChannelName, token: u64) {
        let owner = self.owner_of(&channel);
        let shard = self.cfg.index;
        let msg = ShardMsg::Interest {
            channel,
            shard,
            want: false,
            token,
        };
        self.send(owner, msg);
    }

    /// Owner: a shard wants (or stops wanting) a channel.
    pub(super) fn on_interest(&mut self, channel: ChannelName, shard: u16, want: bool, token: u64) {
        let step = if want {
            let asker = Asker { shard, token };
            let coordinator_token = self.token();
            self.interests
                .want(&channel, asker, self.cfg.remote, coordinator_token)
        } else {
            self.interests.unwant(&channel, shard)
        };
        match step {
            InterestStep::Answer => self.send(shard, ShardMsg::InterestReady { channel, token }),
            InterestStep::Subscribe(token) => {
                let shard = self.cfg.index;
                self.coordinator(CoordinatorCall::SubscribeChannel {
                    channel,
                    shard,
                    token,
                });
            }
            InterestStep::Unsubscribe if self.cfg.remote => {
                self.coordinator(CoordinatorCall::UnsubscribeChannel { channel })
            }
            InterestStep::Unsubscribe | InterestStep::Wait | InterestStep::Nothing => {}
        }
        self.metrics
            .set_gauge(crate::metrics::Gauge::Channels, self.interests.len() as i64);
    }

    /// Owner: the coordination layer subscribed the instance.
    pub(super) fn on_channel_subscribed(&mut self, token: u64) {
        if let Some((channel, askers)) = self.interests.subscribed(token) {
            for a in askers {
                let msg = ShardMsg::InterestReady {
                    channel: channel.clone(),
                    token: a.token,
                };
                self.send(a.shard, msg);
            }
        }
    }

    /// The owner answered: the channel's publications reach this shard.
    pub(super) fn on_interest_ready(&mut self, channel: ChannelName, token: u64) {
        let joined = self.subs.ready(&channel, token);
        if !self.namespaces.options(&channel).has_history() {
            self.subs.admit(&channel, &joined);
            for j in &joined {
                self.joined(&channel, j);
            }
            return;
        }
        let reads: Vec<(Joining, u64)> = joined.into_iter().map(|j| (j, self.token())).collect();
        for (j, token) in &reads {
            self.read_position(&channel, j, *token);
        }
        self.subs.begin_reads(&channel, reads);
    }

    /// A connection (or the server API) publishes (permission and size
    /// already checked).
    pub(super) fn publish(
        &mut self,
        target: Option<AckTarget>,
        channel: ChannelName,
        json: Bytes,
        sent_at_us: u64,
    ) {
        self.metrics.incr(Counter::PublicationsIn);
        let token = match target {
            Some(target) => {
                let token = self.token();
                let deadline_ms = self.now_ms.wrapping_add(self.cfg.delivery_timeout_ms);
                let pending = PendingPublish {
                    target,
                    deadline_ms,
                };
                self.publishes.insert(token, pending);
                token
            }
            None => 0,
        };
        let shard = self.cfg.index;
        if self.cfg.remote {
            self.coordinator(CoordinatorCall::Publish {
                channel,
                json,
                shard,
                token,
                sent_at_us,
            });
            return;
        }
        let owner = self.owner_of(&channel);
        let reply = (token != 0).then_some((shard, token));
        let msg = ShardMsg::Publish {
            channel,
            json,
            reply,
            sent_at_us,
        };
        self.send(owner, msg);
    }

    /// Owner (embedded mode): number the publication when the channel
    /// keeps history, frame it once and fan it out.
    pub(super) fn on_publish(
        &mut self,
        channel: ChannelName,
        json: Bytes,
        reply: Option<(u16, u64)>,
        sent_at_us: u64,
    ) {
        let history = Retention::of(self.namespaces.options(&channel));
        let (json, at) = match history {
            Some(retention) => {
                let key = StreamKey::Channel(channel.clone());
                let (at, entry) = self.streams.append(&key, &json, retention, self.now_ms);
                self.metrics.incr(Counter::PublicationsKept);
                (entry, Some(at))
            }
            None => (json, None),
        };
        let frame = text_frame_with(|out| out.extend_from_slice(&json));
        let offset = at.as_ref().map(|a| a.offset);
        self.fan_out(channel, frame, offset, sent_at_us);
        if let Some((shard, token)) = reply {
            let outcome = PublishOutcome::Published {
                offset,
                epoch: at.map(|a| a.epoch),
            };
            self.send(shard, ShardMsg::Published { token, outcome });
        }
    }

    /// Owner: forward a publication to every interested shard, in order.
    pub(super) fn fan_out(
        &mut self,
        channel: ChannelName,
        frame: Bytes,
        offset: Option<u64>,
        sent_at_us: u64,
    ) {
        let shards: smallvec::SmallVec<[u16; 4]> = self.interests.shards(&channel).into();
        for shard in shards {
            let msg = ShardMsg::Publication {
                channel: channel.clone(),
                frame: frame.clone(),
                offset,
                sent_at_us,
            };
            self.send(shard, msg);
        }
    }

    /// Deliver a publication to this shard's subscribers of the channel.
    pub(super) fn on_publication(
        &mut self,
        channel: &str,
        frame: Bytes,
        offset: Option<u64>,
        sent_at_us: u64,
    ) {
        let to = match self.subs.publication(channel, offset, &frame) {
            Some(Targets::Shared(members)) if !members.is_empty() => Target::Members(members),
            Some(Targets::Some(indices)) if !indices.is_empty() => Target::Indices(indices.into()),
            _ => return,
        };
        self.act(Action::Deliver {
            to,
            frame,
            sent_at_us,
            report: None,
        });
    }

    /// The answer to a publish of this shard.
    pub(super) fn on_published(&mut self, token: u64, outcome: PublishOutcome) {
        let Some(p) = self.publishes.remove(&token) else {
            return;
        };
        if outcome == PublishOutcome::Failed {
            self.metrics.incr(Counter::DeliveryFailed);
        }
        match p.target {
            AckTarget::Client { conn, id } => {
                let status = match outcome {
                    PublishOutcome::Published { offset, .. } => AckStatus::Published { offset },
                    PublishOutcome::Failed => AckStatus::Failed,
                };
                self.reply(conn, ack_frame(&id, status));
            }
            AckTarget::Api { token, .. } => {
                let outcome = match outcome {
                    PublishOutcome::Published { offset, epoch } => {
                        ApiOutcome::Published { offset, epoch }
                    }
                    PublishOutcome::Failed => ApiOutcome::Unavailable,
                };
                self.api_reply(token, outcome);
            }
        }
    }

    /// Publishes whose answer is overdue are acked `failed`.
    pub(super) fn expire_publishes(&mut self, now_ms: u32) {
        let overdue: Vec<u64> = self
            .publishes
            .iter()
            .filter(|(_, p)| now_ms.wrapping_sub(p.deadline_ms) < u32::MAX / 2)
            .map(|(t, _)| *t)
            .collect();
        for token in overdue {
            self.on_published(token, PublishOutcome::Failed);
        }
    }

    /// A closed connection leaves every channel.
    pub(super) fn drop_subscriptions(&mut self, conn: ConnKey) {
        for leaving in self.subs.remove_conn(conn.index) {
            self.left(leaving);
        }
        self.welcome_waits.remove(&conn.index);
        self.note_subscriptions();
    }

    pub(super) fn note_subscriptions(&self) {
        self.metrics.set_gauge(
            crate::metrics::Gauge::Subscriptions,
            self.subs.count() as i64,
        );
    }
}

#[cfg(test)]
mod read_overflow;
#[cfg(test)]
mod tests;
