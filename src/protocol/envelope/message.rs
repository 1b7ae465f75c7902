//! What a valid client message is: one variant per `type`, borrowing
//! from the frame's text (ids and user ids only own their text when it had
//! JSON escapes; payloads are always the client's bytes).

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::Position;
use crate::protocol::channel::ChannelName;

/// One valid client message, borrowing from the frame's text.
#[derive(Debug, Clone)]
pub enum ClientMessage<'a> {
    /// A direct message to every connection of one user.
    Chat {
        /// The receiver's user id (already validated).
        receiver: Cow<'a, str>,
        /// The payload, byte-exact as the client sent it.
        payload: &'a RawValue,
        /// The client's message id, when it wants an ack.
        id: Option<Cow<'a, str>>,
    },
    /// A message to every connection but the sender's.
    Broadcast {
        /// The payload, byte-exact as the client sent it.
        payload: &'a RawValue,
        /// The client's message id, when it wants an ack.
        id: Option<Cow<'a, str>>,
    },
    /// A sign of life; answered with `heartbeat_ack`.
    Heartbeat,
    /// A client-measured latency sample.
    LatencyReport {
        /// Milliseconds, finite, within `0..=MAX_LATENCY_MS`.
        millis: f64,
    },
    /// Version 2: subscribe the connection to a channel.
    Subscribe {
        /// The channel.
        channel: ChannelName,
        /// Where the client's last publication was, to recover from.
        recover: Option<Position<'a>>,
        /// The client's message id, echoed in the answer.
        id: Option<Cow<'a, str>>,
    },
    /// Version 2: end the connection's subscription.
    Unsubscribe {
        /// The channel.
        channel: ChannelName,
        /// The client's message id, echoed in the answer.
        id: Option<Cow<'a, str>>,
    },
    /// Version 2: publish to a channel.
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The payload, byte-exact as the client sent it.
        payload: &'a RawValue,
        /// The client's message id, echoed in the ack.
        id: Option<Cow<'a, str>>,
    },
    /// Version 2: the channel's kept publications.
    History {
        /// The channel.
        channel: ChannelName,
        /// Only publications after this position.
        since: Option<Position<'a>>,
        /// At most this many (default and maximum [`MAX_HISTORY_LIMIT`]).
        limit: u32,
        /// The client's message id, echoed in the answer.
        id: Option<Cow<'a, str>>,
    },
    /// Version 2: who is subscribed to the channel.
    Presence {
        /// The channel.
        channel: ChannelName,
        /// The client's message id, echoed in the answer.
        id: Option<Cow<'a, str>>,
    },
    /// Version 2: how many users and connections are subscribed.
    PresenceStats {
        /// The channel.
        channel: ChannelName,
        /// The client's message id, echoed in the answer.
        id: Option<Cow<'a, str>>,
    },
    /// Version 2: the direct messages kept in the user's inbox.
    Inbox {
        /// Only messages after this position.
        since: Option<Position<'a>>,
        /// At most this many (default and maximum [`MAX_HISTORY_LIMIT`]).
        limit: u32,
        /// The client's message id, echoed in the answer.
        id: Option<Cow<'a, str>>,
    },
    /// Version 2: replace the connection's token.
    Refresh {
        /// The new token (checked like at connect).
        token: Cow<'a, str>,
        /// The client's message id, echoed in the answer.
        id: Option<Cow<'a, str>>,
    },
}

impl ClientMessage<'_> {
    /// The client's message id, if it gave one.
    pub fn id(&self) -> Option<&str> {
        match self {
            ClientMessage::Chat { id, .. }
            | ClientMessage::Broadcast { id, .. }
            | ClientMessage::Subscribe { id, .. }
            | ClientMessage::Unsubscribe { id, .. }
            | ClientMessage::Publish { id, .. }
            | ClientMessage::History { id, .. }
            | ClientMessage::Presence { id, .. }
            | ClientMessage::PresenceStats { id, .. }
            | ClientMessage::Inbox { id, .. }
            | ClientMessage::Refresh { id, .. } => id.as_deref(),
            ClientMessage::Heartbeat | ClientMessage::LatencyReport { .. } => None,
        }
    }
}
