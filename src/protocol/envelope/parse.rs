//! Reading a client message: one serde pass over the envelope's known keys
//! (each kept as raw JSON), then the checks of the version 1 messages
//! (`chat_message`, `broadcast`, `heartbeat`, `latency_report`); any other
//! `type` goes to the version 2 parser (`v2.rs`).

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{
    depth, v2, ClientMessage, ErrorCode, Rejection, MAX_ID_BYTES, MAX_LATENCY_MS,
    MAX_TYPE_ECHO_BYTES,
};
use crate::protocol::is_valid_user_id;

/// The envelope's known keys, each the raw JSON text of its value.
#[derive(Deserialize)]
pub(super) struct Fields<'a> {
    /// `type`: which message this is; raw so a non-string is ours to report.
    #[serde(rename = "type", default, borrow, deserialize_with = "present")]
    pub(super) kind: Option<&'a RawValue>,
    /// `receiverID`: the contract's receiver key.
    #[serde(rename = "receiverID", default, borrow, deserialize_with = "present")]
    pub(super) receiver_upper: Option<&'a RawValue>,
    /// `receiverId`: the spelling some original clients sent.
    #[serde(rename = "receiverId", default, borrow, deserialize_with = "present")]
    pub(super) receiver_lower: Option<&'a RawValue>,
    /// `payload`: passed through untouched (or read as latency).
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) payload: Option<&'a RawValue>,
    /// `id`: the client's message id; raw so a non-string is ours to report.
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) id: Option<&'a RawValue>,
    /// Version 2 `channel`.
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) channel: Option<&'a RawValue>,
    /// Version 2 `recover` of `subscribe`: `{"offset", "epoch"}`.
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) recover: Option<&'a RawValue>,
    /// Version 2 `since` of `history` and `inbox`: `{"offset", "epoch"}`.
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) since: Option<&'a RawValue>,
    /// Version 2 `limit` of `history` and `inbox`.
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) limit: Option<&'a RawValue>,
    /// Version 2 `token` of `refresh`.
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) token: Option<&'a RawValue>,
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
        "publish" => {
            // A publication reaches every subscriber's parser: the same
            // depth rule as a chat message.
            check_depth(fields.payload, max_depth, id.as_deref())?;
            v2::parse("publish", &fields, id)
        }
        other => v2::parse(other, &fields, id),
    }
}

/// The string inside a raw JSON value, borrowed unless it has escapes.
pub(super) fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
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

pub(super) fn missing(message: &'static str, id: Option<&str>) -> Rejection {
    Rejection::new(ErrorCode::MissingField, message, id)
}

pub(super) fn unknown_type(kind: &str, id: Option<&str>) -> Rejection {
    let mut end = kind.len().min(MAX_TYPE_ECHO_BYTES);
    while !kind.is_char_boundary(end) {
        end -= 1;
    }
    let shown = kind.get(..end).unwrap_or_default();
    Rejection::new(ErrorCode::UnknownType, format!("unknown type: {shown}"), id)
}
