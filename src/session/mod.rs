//! What one client text message means: I/O-free, clock passed in.
//!
//! [`handle_text`] turns a text frame from an authenticated connection into
//! one [`Outcome`]: a reply for the sender, a direct message or broadcast to
//! route (already framed once, so every receiver shares the same bytes), a
//! latency sample, a close, or (version 2, [`channels`]) a channel request
//! already checked against the namespace's options and the token's grants.
//! The shard's core executes outcomes; nothing here touches sockets, shards
//! or time sources.

use std::time::SystemTime;

use bytes::Bytes;

use crate::auth::{may_broadcast, Grants};
use crate::close::CloseReason;
use crate::namespaces::Namespaces;
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::{
    self, parse_client_message_limited, AckStatus, ClientMessage, ErrorCode, Position,
};
use crate::protocol::frame::text_frame_with;
use crate::protocol::UserId;
use crate::ratelimit::{RateLimit, TokenBucket, Verdict};

mod channels;

/// The per-instance rules a message is judged by.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Largest outgoing message; a message whose envelope would exceed it is `too_large`.
    pub max_message_bytes: usize,
    /// Whether `broadcast` is allowed.
    pub broadcast_enabled: bool,
    /// The rate limit.
    pub rate_limit: RateLimit,
    /// Channel namespaces and their options.
    pub namespaces: &'a Namespaces,
    /// Whether users have an inbox (`INBOX_SIZE` > 0).
    pub inbox: bool,
    /// Deepest payload nesting accepted (`MAX_JSON_DEPTH`).
    pub max_json_depth: usize,
}

/// Who sent the message and the time it arrived.
pub struct Sender<'a> {
    /// The sender's verified user id.
    pub user: &'a str,
    /// The sending connection's id (prefix of server-made message ids).
    pub connection_id: &'a dyn std::fmt::Display,
    /// Wall-clock arrival time (the `timestamp` field).
    pub now: SystemTime,
    /// Shard clock in ms (rate limiting).
    pub now_ms: u32,
    /// Identity taken on trust (insecure mode): every channel allowed.
    pub insecure: bool,
    /// What the connection's token allows beyond its identity.
    pub grants: Option<&'a Grants>,
}

/// The connection state a message may change.
pub struct SessionState<'a> {
    /// The sender's token bucket.
    pub bucket: &'a mut TokenBucket,
    /// The shard's counter for server-made message ids (`<connectionId>.<n>`:
    /// unique because `n` never repeats on the shard, though not consecutive
    /// per connection; one shard-wide counter costs a connection nothing).
    pub next_message: &'a mut u64,
}

/// What the shard must do with one client message.
#[derive(Debug)]
pub enum Outcome {
    /// Send this frame to the sender only.
    Reply(Bytes),
    /// Deliver `frame` to every connection of `receiver`; answer `ack` with the outcome.
    Direct {
        /// The receiver.
        receiver: UserId,
        /// The framed `chat_message`.
        frame: Bytes,
        /// The client's message id, when it wants an ack.
        ack: Option<String>,
    },
    /// Deliver `frame` to every connection but the sender's.
    Broadcast {
        /// The framed `broadcast`.
        frame: Bytes,
        /// The client's message id, when it wants an ack.
        ack: Option<String>,
    },
    /// Refused by the rate limit: count it and send this `ack`/`error`.
    RateLimited(Bytes),
    /// A latency report to fold into the metric, and nothing to answer.
    Latency(f64),
    /// Close the connection for this reason.
    Close(CloseReason),
    /// Version 2: subscribe the connection (permission already checked).
    Subscribe {
        /// The subscribing user (presence counts users).
        user: UserId,
        /// The channel.
        channel: ChannelName,
        /// Where the client's last publication was, to recover from.
        recover: Option<Position<'static>>,
        /// The client's id, echoed in the answer.
        id: Option<String>,
    },
    /// Version 2: end the connection's subscription.
    Unsubscribe {
        /// The channel.
        channel: ChannelName,
        /// The client's id, echoed in the answer.
        id: Option<String>,
    },
    /// Version 2: publish (permission checked, size checked).
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The `publication` JSON without `offset` (added where the
        /// channel's history numbers it), framed once per instance.
        json: Bytes,
        /// The client's id, for the `ack`.
        ack: Option<String>,
    },
    /// Version 2: read the channel's history (the namespace keeps one).
    History {
        /// The channel.
        channel: ChannelName,
        /// Only publications after this position.
        since: Option<Position<'static>>,
        /// At most this many.
        limit: u32,
        /// The client's id, echoed in the answer.
        id: Option<String>,
    },
    /// Version 2: list or count who is subscribed (the namespace has presence).
    Presence {
        /// The channel.
        channel: ChannelName,
        /// Counts only (`presence_stats`) rather than the list.
        stats: bool,
        /// The client's id, echoed in the answer.
        id: Option<String>,
    },
    /// Version 2: read the user's inbox (the server keeps one).
    Inbox {
        /// The user whose inbox it is (the sender).
        user: UserId,
        /// Only messages after this position.
        since: Option<Position<'static>>,
        /// At most this many.
        limit: u32,
        /// The client's id, echoed in the answer.
        id: Option<String>,
    },
    /// Version 2: replace the connection's token.
    Refresh {
        /// The new token, to verify.
        token: String,
        /// The client's id, echoed in the answer.
        id: Option<String>,
    },
}

/// Handles one client text message.
pub fn handle_text(
    text: &str,
    from: &Sender<'_>,
    state: SessionState<'_>,
    rules: &Rules<'_>,
) -> Outcome {
    let msg = match parse_client_message_limited(text, rules.max_json_depth) {
        Ok(msg) => msg,
        Err(rej) => return error(rej.code, &rej.message, rej.id.as_deref()),
    };
    // Every message counts, heartbeats too: a flood of them costs the
    // server an answer each. Its bytes count against the byte budget.
    match state
        .bucket
        .check(&rules.rate_limit, from.now_ms, text.len())
    {
        Verdict::Allow => {}
        Verdict::Refuse => return rate_limited(&msg),
        Verdict::Close => return Outcome::Close(CloseReason::RATE_LIMITED),
    }
    let outcome = judge(msg, from, state.next_message, rules);
    // What a delivery puts on receivers' queues beyond the message itself
    // (the server's envelope) is charged too, so the byte budget bounds what
    // reaches another connection, not only what this one sent.
    let extra = outcome.delivered_len().saturating_sub(text.len());
    state.bucket.charge_extra(&rules.rate_limit, extra);
    outcome
}

/// What an allowed message leads to.
fn judge(
    msg: ClientMessage<'_>,
    from: &Sender<'_>,
    next_message: &mut u64,
    rules: &Rules<'_>,
) -> Outcome {
    let timestamp = envelope::timestamp(from.now);
    match msg {
        ClientMessage::Heartbeat => Outcome::Reply(text_frame_with(|out| {
            envelope::write_heartbeat_ack(out, timestamp.as_str())
        })),
        ClientMessage::LatencyReport { millis } => Outcome::Latency(millis),
        ClientMessage::Chat {
            receiver,
            payload,
            id,
        } => {
            let Some(receiver) = UserId::parse(&receiver) else {
                return error(
                    ErrorCode::BadUserId,
                    "receiverID is not a valid user id",
                    id.as_deref(),
                );
            };
            let msg_id = message_id(id.as_deref(), from.connection_id, next_message);
            let frame = text_frame_with(|out| {
                envelope::write_chat(
                    out,
                    &msg_id,
                    from.user,
                    &receiver,
                    payload,
                    timestamp.as_str(),
                )
            });
            if let Some(too_large) = check_size(&frame, rules, id.as_deref()) {
                return too_large;
            }
            Outcome::Direct {
                receiver,
                frame,
                ack: id.map(|s| s.into_owned()),
            }
        }
        ClientMessage::Broadcast { payload, id } => {
            if !rules.broadcast_enabled {
                return error(
                    ErrorCode::Forbidden,
                    "broadcast is disabled on this server",
                    id.as_deref(),
                );
            }
            if !may_broadcast(from.insecure, from.grants) {
                return error(
                    ErrorCode::Forbidden,
                    "broadcast needs a token with \"broadcast\": true",
                    id.as_deref(),
                );
            }
            let msg_id = message_id(id.as_deref(), from.connection_id, next_message);
            let frame = text_frame_with(|out| {
                envelope::write_broadcast(out, &msg_id, from.user, payload, timestamp.as_str())
            });
            if let Some(too_large) = check_size(&frame, rules, id.as_deref()) {
                return too_large;
            }
            Outcome::Broadcast {
                frame,
                ack: id.map(|s| s.into_owned()),
            }
        }
        v2 => channels::handle(v2, from, next_message, rules, &timestamp),
    }
}

/// Most bytes a message grows by on its way to a receiver after the
/// session built it: `,"offset":` and 20 digits (a publication in a channel
/// with history, a direct message kept in an inbox), and a frame header.
const OFFSET_AND_HEADER: usize = 30 + 10;

impl Outcome {
    /// At most how many bytes this outcome puts on each receiving
    /// connection's queue (0 when it reaches no other connection).
    pub fn delivered_len(&self) -> usize {
        match self {
            Outcome::Broadcast { frame, .. } => frame.len(),
            Outcome::Direct { frame, .. } => frame.len() + OFFSET_AND_HEADER,
            Outcome::Publish { json, .. } => json.len() + OFFSET_AND_HEADER,
            _ => 0,
        }
    }
}

/// The frame for an `ack`.
pub fn ack_frame(id: &str, status: AckStatus) -> Bytes {
    ack_frame_at(id, status, None)
}

/// The frame for an `ack` of a direct message kept at `offset` in the
/// receiver's inbox.
pub fn ack_frame_at(id: &str, status: AckStatus, offset: Option<u64>) -> Bytes {
    text_frame_with(|out| envelope::write_ack(out, id, status, offset))
}

/// The frame for an `error`.
pub fn error_frame(code: ErrorCode, message: &str, id: Option<&str>) -> Bytes {
    text_frame_with(|out| envelope::write_error(out, code, message, id))
}

fn error(code: ErrorCode, message: &str, id: Option<&str>) -> Outcome {
    Outcome::Reply(error_frame(code, message, id))
}

fn rate_limited(msg: &ClientMessage<'_>) -> Outcome {
    let acked = matches!(
        msg,
        ClientMessage::Chat { .. }
            | ClientMessage::Broadcast { .. }
            | ClientMessage::Publish { .. }
    );
    Outcome::RateLimited(match msg.id() {
        Some(id) if acked => ack_frame(id, AckStatus::RateLimited),
        id => error_frame(
            ErrorCode::RateLimited,
            "rate limit exceeded; message dropped",
            id,
        ),
    })
}

fn check_size(frame: &Bytes, rules: &Rules<'_>, id: Option<&str>) -> Option<Outcome> {
    // The frame header is at most 10 bytes; the limit is on the message itself.
    check_size_json(frame.len().saturating_sub(10), rules, id)
}

/// `too_large` when a message's JSON (with its envelope) exceeds the limit.
fn check_size_json(len: usize, rules: &Rules<'_>, id: Option<&str>) -> Option<Outcome> {
    (len > rules.max_message_bytes).then(|| {
        error(
            ErrorCode::TooLarge,
            "message with its envelope exceeds the maximum message size",
            id,
        )
    })
}

fn message_id(
    client_id: Option<&str>,
    connection_id: &dyn std::fmt::Display,
    next: &mut u64,
) -> String {
    match client_id {
        Some(id) => id.to_owned(),
        None => {
            *next = next.wrapping_add(1);
            format!("{connection_id}.{next}")
        }
    }
}

#[cfg(test)]
mod tests;
