//! The JSON envelope: client messages in, server messages out (I/O-free).
//!
//! [`parse_client_message`] reads one text frame in a single serde pass into
//! borrowed [`RawValue`](serde_json::value::RawValue)s, then validates:
//! strings without escapes and every payload borrow from the frame (a payload
//! is never re-serialized), and only a string with JSON escapes becomes a
//! `Cow::Owned`. The writers live in [`encode`] and are re-exported here.
//!
//! Parsing rules beyond the contract:
//! - A known key (`type`, `receiverID`, `receiverId`, `payload`, `id`) given
//!   twice is `bad_json`: taking the first or the last would let two readers of
//!   the same frame disagree. Unknown keys, repeated or not, are ignored.
//! - `receiverID` and `receiverId` may both be given only with equal values.
//! - A key present with `null` counts as present: `"payload": null` is a null
//!   payload, `"id": null` is `bad_json`, `"receiverID": null` is `bad_user_id`.
//! - Client `senderId` and `timestamp` are ignored: the server sets both.
//! - A `chat_message` or `broadcast` payload nested deeper than the limit
//!   (`MAX_JSON_DEPTH`, see [`depth`]) is `bad_json`: it would be forwarded to
//!   receivers whose parsers may not read it.
//! - The id is read first, so every later rejection carries it; an id that is
//!   not a string or too long is never echoed.
//!
//! # Layout
//!
//! - this file: the limits, the error codes and [`Rejection`];
//! - `message.rs`: [`ClientMessage`], what a valid client message is;
//! - `parse.rs`: [`parse_client_message`] and the version 1 messages;
//!   `v2.rs`: the version 2 messages (channels, history, presence, inbox,
//!   token refresh);
//! - [`depth`]: the payload nesting limit;
//! - [`encode`] and [`server_v2`]: the server's messages.

use std::borrow::Cow;

pub mod depth;
pub mod encode;
mod message;
mod parse;
pub mod server_v2;
mod v2;

pub use message::ClientMessage;
pub use parse::{parse_client_message, parse_client_message_limited};
pub use v2::{Position, MAX_EPOCH_BYTES, MAX_HISTORY_LIMIT};

pub use encode::{
    timestamp, write_ack, write_broadcast, write_chat, write_error, write_heartbeat_ack,
    write_server_broadcast, write_welcome, AckStatus, InboxTop, Timestamp, Welcome,
};

// The version 2 parser builds on the version 1 one's pieces.
use parse::{json_str, missing, unknown_type, Fields};

/// Longest client message id, in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Largest accepted latency report, in milliseconds (one hour).
pub const MAX_LATENCY_MS: f64 = 3_600_000.0;
/// How much of an unknown `type` an error message repeats, in bytes.
const MAX_TYPE_ECHO_BYTES: usize = 64;

/// The contract's `error.code` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// Not JSON, not an object, or a field of the wrong JSON type.
    BadJson,
    /// A `type` this server does not know.
    UnknownType,
    /// A required field is absent.
    MissingField,
    /// `receiverID` is not a valid user id.
    BadUserId,
    /// A `latency_report` payload that is not a number in range.
    BadLatency,
    /// Something exceeds a size limit.
    TooLarge,
    /// Not allowed by this server's configuration.
    Forbidden,
    /// Refused by the sender's rate limit.
    RateLimited,
    /// Version 2: not a valid channel name.
    BadChannel,
    /// Version 2: the connection has `MAX_CHANNELS_PER_CONNECTION` subscriptions.
    TooManyChannels,
    /// Version 2: history or presence asked of a namespace that has none.
    NotAvailable,
}

impl ErrorCode {
    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::BadUserId => "bad_user_id",
            ErrorCode::BadLatency => "bad_latency",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BadChannel => "bad_channel",
            ErrorCode::TooManyChannels => "too_many_channels",
            ErrorCode::NotAvailable => "not_available",
        }
    }
}

/// A refused client message: what to answer with an `error`.
#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Rejection {
    /// The `error.code` to answer with.
    pub code: ErrorCode,
    /// A human-readable reason (`error.message`); never echoes a payload.
    pub message: Cow<'static, str>,
    /// The message's id when it could be read, so the error carries it.
    pub id: Option<String>,
}

impl Rejection {
    fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>, id: Option<&str>) -> Self {
        Rejection {
            code,
            message: message.into(),
            id: id.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests;
