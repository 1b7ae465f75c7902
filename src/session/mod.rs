//! What one client text message means: I/O-free, clock passed in.
//!
//! [`handle_text`] turns a text frame from an authenticated connection into
//! one [`Outcome`]: a reply for the sender, a direct message or broadcast to
//! route (already framed once, so every receiver shares the same bytes), a
//! latency sample, or a close. The shard executes outcomes; nothing here
//! touches sockets, shards or time sources.

use std::time::SystemTime;

use bytes::Bytes;

use crate::close::CloseReason;
use crate::protocol::envelope::{
    self, parse_client_message_limited, AckStatus, ClientMessage, ErrorCode,
};
use crate::protocol::frame::text_frame_with;
use crate::protocol::UserId;
use crate::ratelimit::{RateLimit, TokenBucket, Verdict};

/// The per-instance rules a message is judged by.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Largest outgoing message; a message whose envelope would exceed it is `too_large`.
    pub max_message_bytes: usize,
    /// Whether `broadcast` is allowed.
    pub broadcast_enabled: bool,
    /// The rate limit.
    pub rate_limit: RateLimit,
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
}

/// The connection state a message may change.
pub struct SessionState<'a> {
    /// The sender's token bucket.
    pub bucket: &'a mut TokenBucket,
    /// Counter for server-made message ids.
    pub next_message: &'a mut u32,
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
}

/// Handles one client text message.
pub fn handle_text(
    text: &str,
    from: &Sender<'_>,
    state: SessionState<'_>,
    rules: &Rules,
) -> Outcome {
    let msg = match parse_client_message_limited(text, rules.max_json_depth) {
        Ok(msg) => msg,
        Err(rej) => return error(rej.code, &rej.message, rej.id.as_deref()),
    };
    if !matches!(msg, ClientMessage::Heartbeat) {
        match state.bucket.check(&rules.rate_limit, from.now_ms) {
            Verdict::Allow => {}
            Verdict::Refuse => return rate_limited(&msg),
            Verdict::Close => return Outcome::Close(CloseReason::RATE_LIMITED),
        }
    }
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
            let msg_id = message_id(id.as_deref(), from.connection_id, state.next_message);
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
            let msg_id = message_id(id.as_deref(), from.connection_id, state.next_message);
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
    }
}

/// The frame for an `ack`.
pub fn ack_frame(id: &str, status: AckStatus) -> Bytes {
    text_frame_with(|out| envelope::write_ack(out, id, status))
}

/// The frame for an `error`.
pub fn error_frame(code: ErrorCode, message: &str, id: Option<&str>) -> Bytes {
    text_frame_with(|out| envelope::write_error(out, code, message, id))
}

fn error(code: ErrorCode, message: &str, id: Option<&str>) -> Outcome {
    Outcome::Reply(error_frame(code, message, id))
}

fn rate_limited(msg: &ClientMessage<'_>) -> Outcome {
    let id = match msg {
        ClientMessage::Chat { id, .. } | ClientMessage::Broadcast { id, .. } => id.as_deref(),
        _ => None,
    };
    Outcome::RateLimited(match id {
        Some(id) => ack_frame(id, AckStatus::RateLimited),
        None => error_frame(
            ErrorCode::RateLimited,
            "rate limit exceeded; message dropped",
            None,
        ),
    })
}

fn check_size(frame: &Bytes, rules: &Rules, id: Option<&str>) -> Option<Outcome> {
    // The frame header is at most 10 bytes; the limit is on the message itself.
    (frame.len() > rules.max_message_bytes + 10).then(|| {
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
    next: &mut u32,
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
