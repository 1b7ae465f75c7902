//! The JSON envelope: client messages in, server messages out (I/O-free).
//!
//! [`parse_client_message`] reads one text frame in a single serde pass into
//! borrowed [`RawValue`]s, then validates: strings without escapes and every
//! payload borrow from the frame (a payload is never re-serialized), and only
//! a string with JSON escapes becomes a `Cow::Owned`. The writers live in
//! [`super::envelope_encode`] and are re-exported here.
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

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::protocol::channel::ChannelName;
use crate::protocol::is_valid_user_id;

pub mod depth;
pub mod encode;
pub mod server_v2;
mod v2;

pub use v2::{Position, MAX_EPOCH_BYTES, MAX_HISTORY_LIMIT};

pub use encode::{
    timestamp, write_ack, write_broadcast, write_chat, write_error, write_heartbeat_ack,
    write_server_broadcast, write_welcome, AckStatus, InboxTop, Timestamp, Welcome,
};

/// Longest client message id, in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Largest accepted latency report, in milliseconds (one hour).
pub const MAX_LATENCY_MS: f64 = 3_600_000.0;
/// How much of an unknown `type` an error message repeats, in bytes.
const MAX_TYPE_ECHO_BYTES: usize = 64;

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

/// The envelope's known keys, each the raw JSON text of its value.
#[derive(Deserialize)]
struct Fields<'a> {
    /// `type`: which message this is; raw so a non-string is ours to report.
    #[serde(rename = "type", default, borrow, deserialize_with = "present")]
    kind: Option<&'a RawValue>,
    /// `receiverID`: the contract's receiver key.
    #[serde(rename = "receiverID", default, borrow, deserialize_with = "present")]
    receiver_upper: Option<&'a RawValue>,
    /// `receiverId`: the spelling some original clients sent.
    #[serde(rename = "receiverId", default, borrow, deserialize_with = "present")]
    receiver_lower: Option<&'a RawValue>,
    /// `payload`: passed through untouched (or read as latency).
    #[serde(default, borrow, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    /// `id`: the client's message id; raw so a non-string is ours to report.
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    /// Version 2 `channel`.
    #[serde(default, borrow, deserialize_with = "present")]
    channel: Option<&'a RawValue>,
    /// Version 2 `recover` of `subscribe`: `{"offset", "epoch"}`.
    #[serde(default, borrow, deserialize_with = "present")]
    recover: Option<&'a RawValue>,
    /// Version 2 `since` of `history` and `inbox`: `{"offset", "epoch"}`.
    #[serde(default, borrow, deserialize_with = "present")]
    since: Option<&'a RawValue>,
    /// Version 2 `limit` of `history` and `inbox`.
    #[serde(default, borrow, deserialize_with = "present")]
    limit: Option<&'a RawValue>,
    /// Version 2 `token` of `refresh`.
    #[serde(default, borrow, deserialize_with = "present")]
    token: Option<&'a RawValue>,
}

/// A present key is `Some`, even with a `null` value (serde would say `None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Parses and validates one client text message, with the default payload
/// depth limit ([`depth::DEFAULT_MAX_DEPTH`]).
pub fn parse_client_message(text: &str) -> Result<ClientMessage<'_>, Rejection> {
    parse_client_message_limited(text, depth::DEFAULT_MAX_DEPTH)
}

/// Parses and validates one client text message; payloads may nest at
/// most `max_depth` levels.
pub fn parse_client_message_limited(
    text: &str,
    max_depth: usize,
) -> Result<ClientMessage<'_>, Rejection> {
    // serde would also accept a JSON array for a struct, field by position.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(Rejection::new(
            ErrorCode::BadJson,
            "message must be a JSON object",
            None,
        ));
    }
    let fields: Fields<'_> = serde_json::from_str(text)
        .map_err(|e| Rejection::new(ErrorCode::BadJson, format!("invalid JSON: {e}"), None))?;
    let id = read_id(fields.id)?;
    let kind = read_type(fields.kind, id.as_deref())?;
    match kind.as_ref() {
        "chat_message" => {
            check_depth(fields.payload, max_depth, id.as_deref())?;
            chat(&fields, id)
        }
        "broadcast" => match fields.payload {
            Some(payload) => {
                check_depth(Some(payload), max_depth, id.as_deref())?;
                Ok(ClientMessage::Broadcast { payload, id })
            }
            None => Err(missing("broadcast needs payload", id.as_deref())),
        },
        "heartbeat" => Ok(ClientMessage::Heartbeat),
        "latency_report" => latency(fields.payload, id.as_deref()),
        other => v2::parse(other, &fields, id),
    }
}

/// The string inside a raw JSON value, borrowed unless it has escapes.
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        // Valid JSON without escapes: the text between the quotes is the string.
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

fn read_id(raw: Option<&RawValue>) -> Result<Option<Cow<'_, str>>, Rejection> {
    let Some(raw) = raw else { return Ok(None) };
    let id = json_str(raw)
        .ok_or_else(|| Rejection::new(ErrorCode::BadJson, "id must be a string", None))?;
    if id.len() > MAX_ID_BYTES {
        return Err(Rejection::new(
            ErrorCode::TooLarge,
            "id is longer than 64 bytes",
            None,
        ));
    }
    Ok(Some(id))
}

fn read_type<'a>(raw: Option<&'a RawValue>, id: Option<&str>) -> Result<Cow<'a, str>, Rejection> {
    let raw = raw.ok_or_else(|| missing("missing field: type", id))?;
    json_str(raw).ok_or_else(|| Rejection::new(ErrorCode::BadJson, "type must be a string", id))
}

fn chat<'a>(f: &Fields<'a>, id: Option<Cow<'a, str>>) -> Result<ClientMessage<'a>, Rejection> {
    let receiver = receiver(f, id.as_deref())?;
    match f.payload {
        Some(payload) => Ok(ClientMessage::Chat {
            receiver,
            payload,
            id,
        }),
        None => Err(missing("chat_message needs payload", id.as_deref())),
    }
}

fn receiver<'a>(f: &Fields<'a>, id: Option<&str>) -> Result<Cow<'a, str>, Rejection> {
    let upper = f.receiver_upper.map(|r| user_id(r, id)).transpose()?;
    let lower = f.receiver_lower.map(|r| user_id(r, id)).transpose()?;
    match (upper, lower) {
        (Some(a), Some(b)) if a != b => Err(Rejection::new(
            ErrorCode::BadJson,
            "receiverID and receiverId disagree",
            id,
        )),
        (Some(r), _) | (None, Some(r)) => Ok(r),
        (None, None) => Err(missing("chat_message needs receiverID", id)),
    }
}

fn user_id<'a>(raw: &'a RawValue, id: Option<&str>) -> Result<Cow<'a, str>, Rejection> {
    json_str(raw)
        .filter(|r| is_valid_user_id(r))
        .ok_or_else(|| {
            Rejection::new(
                ErrorCode::BadUserId,
                "receiverID is not a valid user id",
                id,
            )
        })
}

fn latency(
    payload: Option<&RawValue>,
    id: Option<&str>,
) -> Result<ClientMessage<'static>, Rejection> {
    // A valid JSON value parses as a Rust float only if it is a JSON number
    // (strings keep their quotes); an overflow becomes infinity, out of range.
    payload
        .and_then(|p| p.get().parse::<f64>().ok())
        .filter(|millis| (0.0..=MAX_LATENCY_MS).contains(millis))
        .map(|millis| ClientMessage::LatencyReport { millis })
        .ok_or_else(|| {
            let why = "latency_report payload must be a number of milliseconds, 0 to 3600000";
            Rejection::new(ErrorCode::BadLatency, why, id)
        })
}

/// `bad_json` when a payload nests deeper than `max` levels.
fn check_depth(payload: Option<&RawValue>, max: usize, id: Option<&str>) -> Result<(), Rejection> {
    match payload {
        Some(p) if depth::deeper_than(p.get().as_bytes(), max) => Err(Rejection::new(
            ErrorCode::BadJson,
            format!("payload is nested deeper than {max} levels"),
            id,
        )),
        _ => Ok(()),
    }
}

fn missing(message: &'static str, id: Option<&str>) -> Rejection {
    Rejection::new(ErrorCode::MissingField, message, id)
}

fn unknown_type(kind: &str, id: Option<&str>) -> Rejection {
    let mut end = kind.len().min(MAX_TYPE_ECHO_BYTES);
    while !kind.is_char_boundary(end) {
        end -= 1;
    }
    let shown = kind.get(..end).unwrap_or_default();
    Rejection::new(ErrorCode::UnknownType, format!("unknown type: {shown}"), id)
}

#[cfg(test)]
mod tests;
