//! Server messages: JSON appended to a caller's buffer (I/O-free).
//!
//! The caller frames the bytes once and shares the frame with every receiver,
//! so each writer only appends one JSON object to `out`. Strings are escaped
//! by `serde_json`; payloads are copied raw, byte-exact as the sender wrote
//! them. Field names follow the contract exactly; `type` comes first.
//!
//! [`timestamp`] formats RFC 3339 UTC with microseconds into a fixed-size
//! [`Timestamp`] on the stack: no allocation, and no panic for any clock value.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::value::RawValue;

use super::ErrorCode;

/// The first message on every connection.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "type", rename = "welcome", rename_all = "camelCase")]
pub struct Welcome<'a> {
    /// This connection's id, unique across servers and restarts (for support and logs).
    pub connection_id: &'a str,
    /// The authenticated user, so the client knows who it is connected as.
    pub user_id: &'a str,
    /// The server holding the connection (diagnostics, stickiness).
    pub server_id: &'a str,
    /// How often the client must show a sign of life.
    pub heartbeat_interval_ms: u64,
    /// The largest message the server accepts, so clients can check before sending.
    pub max_message_bytes: usize,
    /// Version 2: channels the token's `subs` claim subscribed at connect.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub subscriptions: &'a [&'a str],
    /// Version 2: the user's inbox position (when the server keeps inboxes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbox: Option<InboxTop<'a>>,
    /// Version 2: when the connection's token expires (RFC 3339), if it does.
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<&'a str>,
}

/// The newest message of a user's inbox, in `welcome`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct InboxTop<'a> {
    /// Its offset (0: empty).
    pub offset: u64,
    /// The inbox's epoch.
    pub epoch: &'a str,
}

/// The outcome an `ack` reports for a client message with an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckStatus {
    /// At least one receiver connection took the message.
    Delivered {
        /// How many receiver connections took it.
        connections: u32,
    },
    /// The receiver has no open connection anywhere.
    Offline,
    /// Routing failed or timed out; the message may or may not have arrived.
    Failed,
    /// Refused by the sender's rate limit; nothing was sent.
    RateLimited,
    /// Version 2: a publication was handed to the channel (with its offset
    /// when the channel keeps history).
    Published {
        /// The publication's offset in its channel's history.
        offset: Option<u64>,
    },
    /// Version 2: the receiver has no open connection; the message waits in
    /// its inbox at this offset.
    Stored {
        /// The message's offset in the receiver's inbox.
        offset: u64,
    },
}

impl AckStatus {
    /// The wire name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            AckStatus::Delivered { .. } => "delivered",
            AckStatus::Offline => "offline",
            AckStatus::Failed => "failed",
            AckStatus::RateLimited => "rate_limited",
            AckStatus::Published { .. } => "published",
            AckStatus::Stored { .. } => "stored",
        }
    }
}

/// A server-to-client `chat_message`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "chat_message")]
struct ChatOut<'a> {
    /// The message id (the sender's, or one the server made).
    id: &'a str,
    /// The verified sender, set by the server.
    #[serde(rename = "senderId")]
    sender: &'a str,
    /// The receiver, spelled as the original clients expect.
    #[serde(rename = "receiverID")]
    receiver: &'a str,
    /// The sender's payload, raw.
    payload: &'a RawValue,
    /// When the sender's server received it.
    timestamp: &'a str,
}

/// A server-to-client `broadcast`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "broadcast")]
struct BroadcastOut<'a> {
    /// The message id (the sender's, or one the server made).
    id: &'a str,
    /// The verified sender, set by the server; absent for the server API.
    #[serde(rename = "senderId", skip_serializing_if = "Option::is_none")]
    sender: Option<&'a str>,
    /// The sender's payload, raw.
    payload: &'a RawValue,
    /// When the sender's server received it.
    timestamp: &'a str,
}

/// The answer to a `heartbeat`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "heartbeat_ack")]
struct HeartbeatAckOut<'a> {
    /// Server time, so a client can estimate clock skew and round trips.
    timestamp: &'a str,
}

/// An `ack` for a client message that had an id.
#[derive(Serialize)]
#[serde(tag = "type", rename = "ack")]
struct AckOut<'a> {
    /// The client's message id.
    id: &'a str,
    /// The [`AckStatus`] wire name.
    status: &'static str,
    /// Receiver connections reached; only for `delivered`.
    #[serde(skip_serializing_if = "Option::is_none")]
    connections: Option<u32>,
    /// The message's place in its channel's history or the receiver's inbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
}

/// An `error` answering one refused message.
#[derive(Serialize)]
#[serde(tag = "type", rename = "error")]
struct ErrorOut<'a> {
    /// The [`ErrorCode`] wire name.
    code: &'static str,
    /// A human-readable reason.
    message: &'a str,
    /// The refused message's id, when it had a readable one.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

/// Appends `msg` as JSON; on the (unreachable) error, leaves `out` as it was.
pub(super) fn append(out: &mut Vec<u8>, msg: &impl Serialize) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, msg).is_err() {
        out.truncate(start);
    }
}

/// Appends a `welcome`.
pub fn write_welcome(out: &mut Vec<u8>, w: &Welcome<'_>) {
    append(out, w);
}

/// Appends a `chat_message` carrying `payload` raw.
pub fn write_chat(
    out: &mut Vec<u8>,
    id: &str,
    sender: &str,
    receiver: &str,
    payload: &RawValue,
    timestamp: &str,
) {
    out.reserve(payload.get().len() + id.len() + sender.len() + receiver.len() + 112);
    append(
        out,
        &ChatOut {
            id,
            sender,
            receiver,
            payload,
            timestamp,
        },
    );
}

/// Appends a `broadcast` carrying `payload` raw.
pub fn write_broadcast(
    out: &mut Vec<u8>,
    id: &str,
    sender: &str,
    payload: &RawValue,
    timestamp: &str,
) {
    out.reserve(payload.get().len() + id.len() + sender.len() + 96);
    append(
        out,
        &BroadcastOut {
            id,
            sender: Some(sender),
            payload,
            timestamp,
        },
    );
}

/// Appends a `broadcast` of the server API: no `senderId`.
pub fn write_server_broadcast(out: &mut Vec<u8>, id: &str, payload: &RawValue, timestamp: &str) {
    out.reserve(payload.get().len() + id.len() + 80);
    append(
        out,
        &BroadcastOut {
            id,
            sender: None,
            payload,
            timestamp,
        },
    );
}

/// Appends a `heartbeat_ack`.
pub fn write_heartbeat_ack(out: &mut Vec<u8>, timestamp: &str) {
    append(out, &HeartbeatAckOut { timestamp });
}

/// Appends an `ack`; `connections` only for `delivered`; `offset` when the
/// status carries one, or (for a `delivered` direct message kept in the
/// receiver's inbox) as given.
pub fn write_ack(out: &mut Vec<u8>, id: &str, status: AckStatus, offset: Option<u64>) {
    let connections = match status {
        AckStatus::Delivered { connections } => Some(connections),
        _ => None,
    };
    let offset = match status {
        AckStatus::Published { offset } => offset,
        AckStatus::Stored { offset } => Some(offset),
        AckStatus::Delivered { .. } => offset,
        _ => None,
    };
    append(
        out,
        &AckOut {
            id,
            status: status.as_str(),
            connections,
            offset,
        },
    );
}

/// Appends an `error`; `id` only when the refused message had one.
pub fn write_error(out: &mut Vec<u8>, code: ErrorCode, message: &str, id: Option<&str>) {
    append(
        out,
        &ErrorOut {
            code: code.as_str(),
            message,
            id,
        },
    );
}

/// Length of `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
const TIMESTAMP_LEN: usize = 27;
/// The last second of year 9999, the largest four-digit-year instant.
pub(super) const MAX_SECS: u64 = 253_402_300_799;

/// An RFC 3339 UTC timestamp with microseconds, e.g. `2026-11-28T16:08:37.123456Z`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// The ASCII text; fixed-size so making a timestamp never allocates.
    bytes: [u8; TIMESTAMP_LEN],
}

impl Timestamp {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Always ASCII digits and separators, so this never falls back.
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

impl AsRef<str> for Timestamp {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Formats `now` in UTC with microseconds. Clock values before 1970 read as
/// the epoch and values after year 9999 as its last microsecond (neither
/// happens on a sane clock; both keep the fixed four-digit-year shape).
pub fn timestamp(now: SystemTime) -> Timestamp {
    let (secs, micros) = match now.duration_since(UNIX_EPOCH) {
        Ok(d) if d.as_secs() <= MAX_SECS => (d.as_secs(), u64::from(d.subsec_micros())),
        Ok(_) => (MAX_SECS, 999_999),
        Err(_) => (0, 0),
    };
    let (year, month, day) = civil_from_days(secs / 86_400);
    let second_of_day = secs % 86_400;
    let mut bytes = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut bytes[0..4], year);
    put_digits(&mut bytes[5..7], month);
    put_digits(&mut bytes[8..10], day);
    put_digits(&mut bytes[11..13], second_of_day / 3600);
    put_digits(&mut bytes[14..16], second_of_day / 60 % 60);
    put_digits(&mut bytes[17..19], second_of_day % 60);
    put_digits(&mut bytes[20..26], micros);
    Timestamp { bytes }
}

/// Writes `value` as zero-padded decimal filling `dst`.
fn put_digits(dst: &mut [u8], mut value: u64) {
    for digit in dst.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// (year, month, day) of a day count since 1970-01-01, proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`, for non-negative counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
