//! A request's JSON body (or path and query) as a typed [`Command`],
//! borrowing from the body: payloads stay [`RawValue`]s, copied byte-exact
//! into the frames, never re-serialized. Every refusal is a 400 that names
//! its field.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::answer::ApiError;
use super::route::query_param;
use crate::metrics::ApiEndpoint;
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::{MAX_EPOCH_BYTES, MAX_HISTORY_LIMIT};
use crate::protocol::UserId;

/// Longest `idempotencyKey`, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 64;
/// Longest disconnect `reason`: what fits a close frame (125 bytes less the code).
pub const MAX_REASON_BYTES: usize = 123;

/// One command of the API.
#[derive(Debug, Clone)]
pub enum Command<'a> {
    /// Publish `payload` to `channel`.
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The payload, raw.
        payload: &'a RawValue,
    },
    /// Send `payload` to every connection of `user` as a `server_message`.
    Send {
        /// The user.
        user: UserId,
        /// The payload, raw.
        payload: &'a RawValue,
    },
    /// Broadcast `payload` to every connection.
    Broadcast {
        /// The payload, raw.
        payload: &'a RawValue,
    },
    /// Close every connection of `user` with 4010 and `reason`.
    Disconnect {
        /// The user.
        user: UserId,
        /// The close frame's reason (may be empty).
        reason: Arc<str>,
    },
    /// Subscribe every connection of `user` to `channel`.
    Subscribe {
        /// The user.
        user: UserId,
        /// The channel.
        channel: ChannelName,
    },
    /// Unsubscribe every connection of `user` from `channel`.
    Unsubscribe {
        /// The user.
        user: UserId,
        /// The channel.
        channel: ChannelName,
    },
    /// Who is subscribed to `channel`.
    Presence {
        /// The channel.
        channel: ChannelName,
    },
    /// The kept publications of `channel`.
    History {
        /// The channel.
        channel: ChannelName,
        /// Only those after this position.
        since: Option<(u64, Arc<str>)>,
        /// At most this many.
        limit: u32,
    },
    /// Where `user` is connected.
    User {
        /// The user.
        user: UserId,
    },
}

/// A write: its command and its idempotency key, if any.
#[derive(Debug, Clone)]
pub struct Write<'a> {
    /// The command.
    pub command: Command<'a>,
    /// The `idempotencyKey`.
    pub key: Option<Cow<'a, str>>,
}

/// Every key a write body may have, each the raw JSON of its value.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    channel: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    #[serde(rename = "userId", default, borrow, deserialize_with = "present")]
    user: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    reason: Option<&'a RawValue>,
    #[serde(
        rename = "idempotencyKey",
        default,
        borrow,
        deserialize_with = "present"
    )]
    key: Option<&'a RawValue>,
}

/// A present key is `Some`, even with a `null` value.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Parses `text` as a JSON object into `T`; `what` names it in errors.
pub fn object<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, ApiError> {
    // serde would also take an array for a struct, field by position.
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::bad_request(format!(
            "{what} must be a JSON object"
        )));
    }
    serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("{what} is not valid JSON: {e}")))
}

/// The body of a POST endpoint (not `batch`) as a write.
pub fn parse_write<'a>(
    endpoint: ApiEndpoint,
    text: &'a str,
    what: &str,
) -> Result<Write<'a>, ApiError> {
    let f: Fields<'_> = object(text, what)?;
    let key = idempotency_key(f.key)?;
    let payload = || f.payload.ok_or_else(|| ApiError::missing("payload"));
    let command = match endpoint {
        ApiEndpoint::Publish => Command::Publish {
            channel: channel(f.channel)?,
            payload: payload()?,
        },
        ApiEndpoint::Send => Command::Send {
            user: user(f.user)?,
            payload: payload()?,
        },
        ApiEndpoint::Broadcast => Command::Broadcast {
            payload: payload()?,
        },
        ApiEndpoint::Disconnect => Command::Disconnect {
            user: user(f.user)?,
            reason: reason(f.reason)?,
        },
        ApiEndpoint::Subscribe => Command::Subscribe {
            user: user(f.user)?,
            channel: channel(f.channel)?,
        },
        ApiEndpoint::Unsubscribe => Command::Unsubscribe {
            user: user(f.user)?,
            channel: channel(f.channel)?,
        },
        _ => return Err(ApiError::bad_request("not a write")),
    };
    Ok(Write { command, key })
}

/// The command of a GET endpoint: `target` from the path, `query` for history.
pub fn parse_read(
    endpoint: ApiEndpoint,
    target: &str,
    query: Option<&str>,
) -> Result<Command<'static>, ApiError> {
    match endpoint {
        ApiEndpoint::Presence => Ok(Command::Presence {
            channel: channel_name(target)?,
        }),
        ApiEndpoint::History => history(channel_name(target)?, query),
        ApiEndpoint::User => Ok(Command::User {
            user: user_id(target)?,
        }),
        _ => Err(ApiError::bad_request("not a read")),
    }
}

fn history(channel: ChannelName, query: Option<&str>) -> Result<Command<'static>, ApiError> {
    let since = query_param(query, "since");
    let epoch = query_param(query, "epoch");
    let since = match (since, epoch) {
        (None, None) => None,
        (Some(_), None) => return Err(ApiError::missing("epoch (since needs it)")),
        (None, Some(_)) => return Err(ApiError::missing("since (epoch needs it)")),
        (Some(offset), Some(epoch)) => {
            let offset = offset.parse::<u64>().map_err(|_| {
                ApiError::bad_request("since must be a non-negative integer offset")
            })?;
            if epoch.is_empty() || epoch.len() > MAX_EPOCH_BYTES {
                return Err(ApiError::bad_request(format!(
                    "epoch must be 1 to {MAX_EPOCH_BYTES} bytes"
                )));
            }
            Some((offset, Arc::from(epoch)))
        }
    };
    let limit = match query_param(query, "limit") {
        None => MAX_HISTORY_LIMIT,
        Some(n) => n
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request("limit must be a non-negative integer"))?
            .min(u64::from(MAX_HISTORY_LIMIT)) as u32,
    };
    Ok(Command::History {
        channel,
        since,
        limit,
    })
}

/// The string inside a raw JSON value, if it is a string.
fn json_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A required string field.
fn string<'a>(raw: Option<&'a RawValue>, field: &str) -> Result<Cow<'a, str>, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::missing(field))?;
    json_str(raw).ok_or_else(|| ApiError::bad_request(format!("{field} must be a string")))
}

fn channel(raw: Option<&RawValue>) -> Result<ChannelName, ApiError> {
    channel_name(&string(raw, "channel")?)
}

fn channel_name(s: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "channel is not a valid channel name (1 to 255 bytes of A-Z a-z 0-9 . _ : @ - / = ,)",
        )
    })
}

fn user(raw: Option<&RawValue>) -> Result<UserId, ApiError> {
    user_id(&string(raw, "userId")?)
}

fn user_id(s: &str) -> Result<UserId, ApiError> {
    UserId::parse(s).ok_or_else(|| {
        ApiError::bad_request(
            "userId is not a valid user id (1 to 128 bytes of A-Z a-z 0-9 . _ : @ -)",
        )
    })
}

fn reason(raw: Option<&RawValue>) -> Result<Arc<str>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Arc::from(""));
    };
    let reason = json_str(raw).ok_or_else(|| ApiError::bad_request("reason must be a string"))?;
    if reason.len() > MAX_REASON_BYTES {
        return Err(ApiError::bad_request(format!(
            "reason is longer than {MAX_REASON_BYTES} bytes"
        )));
    }
    Ok(Arc::from(reason.as_ref()))
}

/// An optional `idempotencyKey`: a string of 1 to 64 bytes.
pub fn idempotency_key(raw: Option<&RawValue>) -> Result<Option<Cow<'_, str>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let key =
        json_str(raw).ok_or_else(|| ApiError::bad_request("idempotencyKey must be a string"))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(ApiError::bad_request(format!(
            "idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes"
        )));
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(endpoint: ApiEndpoint, text: &str) -> String {
        let e = parse_write(endpoint, text, "body").expect_err(text);
        assert_eq!((e.status, e.code), (400, "bad_request"), "{text}");
        e.message.into_owned()
    }

    #[test]
    fn writes_borrow_their_payload() {
        let text = r#"{"channel":"chat:1","payload":{"b": [1, 2.50]},"idempotencyKey":"k1"}"#;
        let w = parse_write(ApiEndpoint::Publish, text, "body").unwrap();
        let Command::Publish { channel, payload } = w.command else {
            panic!()
        };
        assert_eq!(
            (&*channel, payload.get()),
            ("chat:1", r#"{"b": [1, 2.50]}"#)
        );
        assert_eq!(w.key.as_deref(), Some("k1"));
        let w = parse_write(ApiEndpoint::Send, r#"{"userId":"bob","payload":null}"#, "b").unwrap();
        assert!(matches!(w.command, Command::Send { payload, .. } if payload.get() == "null"));
        let w = parse_write(ApiEndpoint::Disconnect, r#"{"userId":"bob"}"#, "b").unwrap();
        assert!(matches!(w.command, Command::Disconnect { ref reason, .. } if reason.is_empty()));
    }

    #[test]
    fn refusals_name_the_field() {
        use ApiEndpoint::*;
        assert!(err(Publish, "[1]").contains("JSON object"));
        assert!(err(Publish, "{").contains("not valid JSON"));
        assert!(err(Publish, r#"{"payload":1}"#).contains("channel"));
        assert!(err(Publish, r#"{"channel":"chat:1"}"#).contains("payload"));
        assert!(err(Publish, r#"{"channel":"bad channel","payload":1}"#).contains("channel"));
        assert!(err(Publish, r#"{"channel":7,"payload":1}"#).contains("channel must be a string"));
        assert!(err(Send, r#"{"userId":"a b","payload":1}"#).contains("userId"));
        assert!(err(Subscribe, r#"{"userId":"a"}"#).contains("channel"));
        let long = format!(r#"{{"userId":"a","reason":"{}"}}"#, "r".repeat(124));
        assert!(err(Disconnect, &long).contains("reason"));
        let key = format!(r#"{{"payload":1,"idempotencyKey":"{}"}}"#, "k".repeat(65));
        assert!(err(Broadcast, &key).contains("idempotencyKey"));
        assert!(err(Broadcast, r#"{"payload":1,"idempotencyKey":5}"#).contains("idempotencyKey"));
    }

    #[test]
    fn reads_take_the_path_and_query() {
        let c = parse_read(
            ApiEndpoint::History,
            "chat:1",
            Some("since=4&epoch=ab&limit=500"),
        )
        .unwrap();
        let Command::History { since, limit, .. } = c else {
            panic!()
        };
        assert_eq!(
            (since, limit),
            (Some((4, Arc::from("ab"))), MAX_HISTORY_LIMIT)
        );
        let c = parse_read(ApiEndpoint::History, "chat:1", None).unwrap();
        assert!(matches!(
            c,
            Command::History {
                since: None,
                limit: MAX_HISTORY_LIMIT,
                ..
            }
        ));
        for (query, field) in [
            ("since=4", "epoch"),
            ("epoch=e", "since"),
            ("since=x&epoch=e", "since"),
            ("limit=-1", "limit"),
        ] {
            let e = parse_read(ApiEndpoint::History, "chat:1", Some(query)).unwrap_err();
            assert!(e.message.contains(field), "{query}: {}", e.message);
        }
        assert!(parse_read(ApiEndpoint::User, "a b", None)
            .unwrap_err()
            .message
            .contains("userId"));
        let e = parse_read(ApiEndpoint::Presence, "", None).unwrap_err();
        assert!(e.message.contains("channel"));
    }
}
