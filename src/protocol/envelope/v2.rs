//! Parsing the version 2 client messages: channels (`subscribe`,
//! `unsubscribe`, `publish`, `history`, `presence`, `presence_stats`), the
//! inbox and token refresh. Same rules as version 1: the id is read first so
//! every rejection carries it, a key present with `null` counts as present,
//! and a known key given twice is `bad_json`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{json_str, missing, unknown_type, ClientMessage, ErrorCode, Fields, Rejection};
use crate::protocol::channel::ChannelName;

/// Largest (and default) number of publications or messages per answer.
pub const MAX_HISTORY_LIMIT: u32 = 100;
/// Longest accepted epoch, in bytes (ours are 16).
pub const MAX_EPOCH_BYTES: usize = 64;

/// A place in a channel's history or a user's inbox: `{"offset", "epoch"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position<'a> {
    /// The offset of the last publication the client saw.
    pub offset: u64,
    /// The run of offsets it belongs to.
    pub epoch: Cow<'a, str>,
}

impl Position<'_> {
    /// The same position, owning its epoch.
    pub fn into_owned(self) -> Position<'static> {
        Position {
            offset: self.offset,
            epoch: Cow::Owned(self.epoch.into_owned()),
        }
    }
}

/// The raw shape of a position, validated below.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPosition<'a> {
    /// The offset.
    offset: u64,
    /// The epoch.
    #[serde(borrow)]
    epoch: Cow<'a, str>,
}

/// Parses a version 2 message of type `kind` (or refuses an unknown type).
pub(super) fn parse<'a>(
    kind: &str,
    f: &Fields<'a>,
    id: Option<Cow<'a, str>>,
) -> Result<ClientMessage<'a>, Rejection> {
    let i = id.as_deref();
    match kind {
        "subscribe" => Ok(ClientMessage::Subscribe {
            channel: channel(f, i)?,
            recover: position(f.recover, "recover", i)?,
            id,
        }),
        "unsubscribe" => Ok(ClientMessage::Unsubscribe {
            channel: channel(f, i)?,
            id,
        }),
        "publish" => {
            let channel = channel(f, i)?;
            let payload = f
                .payload
                .ok_or_else(|| missing("publish needs payload", i))?;
            Ok(ClientMessage::Publish {
                channel,
                payload,
                id,
            })
        }
        "history" => Ok(ClientMessage::History {
            channel: channel(f, i)?,
            since: position(f.since, "since", i)?,
            limit: limit(f.limit, i)?,
            id,
        }),
        "presence" => Ok(ClientMessage::Presence {
            channel: channel(f, i)?,
            id,
        }),
        "presence_stats" => Ok(ClientMessage::PresenceStats {
            channel: channel(f, i)?,
            id,
        }),
        "inbox" => Ok(ClientMessage::Inbox {
            since: position(f.since, "since", i)?,
            limit: limit(f.limit, i)?,
            id,
        }),
        "refresh" => {
            let raw = f.token.ok_or_else(|| missing("refresh needs token", i))?;
            let token = json_str(raw).ok_or_else(|| bad_json("token must be a string", i))?;
            Ok(ClientMessage::Refresh { token, id })
        }
        other => Err(unknown_type(other, i)),
    }
}

fn bad_json(message: &'static str, id: Option<&str>) -> Rejection {
    Rejection::new(ErrorCode::BadJson, message, id)
}

fn channel(f: &Fields<'_>, id: Option<&str>) -> Result<ChannelName, Rejection> {
    let raw = f
        .channel
        .ok_or_else(|| missing("missing field: channel", id))?;
    json_str(raw)
        .and_then(|c| ChannelName::parse(&c))
        .ok_or_else(|| Rejection::new(ErrorCode::BadChannel, "channel is not a valid name", id))
}

fn position<'a>(
    raw: Option<&'a RawValue>,
    name: &'static str,
    id: Option<&str>,
) -> Result<Option<Position<'a>>, Rejection> {
    let Some(raw) = raw else { return Ok(None) };
    let shape = || {
        let text = format!("{name} must be {{\"offset\": <integer>, \"epoch\": <string>}}");
        Rejection::new(ErrorCode::BadJson, text, id)
    };
    let p: RawPosition<'a> = serde_json::from_str(raw.get()).map_err(|_| shape())?;
    if p.epoch.len() > MAX_EPOCH_BYTES {
        return Err(Rejection::new(ErrorCode::TooLarge, "epoch is too long", id));
    }
    Ok(Some(Position {
        offset: p.offset,
        epoch: p.epoch,
    }))
}

fn limit(raw: Option<&RawValue>, id: Option<&str>) -> Result<u32, Rejection> {
    let Some(raw) = raw else {
        return Ok(MAX_HISTORY_LIMIT);
    };
    let n: u64 = serde_json::from_str(raw.get())
        .map_err(|_| bad_json("limit must be a non-negative integer", id))?;
    Ok(n.min(u64::from(MAX_HISTORY_LIMIT)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::envelope::parse_client_message;

    fn code_of(text: &str) -> ErrorCode {
        parse_client_message(text).expect_err(text).code
    }

    #[test]
    fn subscribe_reads_channel_and_recover() {
        let m = parse_client_message(
            r#"{"type":"subscribe","channel":"chat:1","recover":{"offset":7,"epoch":"ab"},"id":"s"}"#,
        )
        .unwrap();
        let ClientMessage::Subscribe {
            channel,
            recover,
            id,
        } = m
        else {
            panic!("{m:?}")
        };
        assert_eq!(&*channel, "chat:1");
        assert_eq!(recover.unwrap().offset, 7);
        assert_eq!(id.as_deref(), Some("s"));
    }

    #[test]
    fn bad_channels_and_positions_are_refused_with_the_right_code() {
        use ErrorCode::*;
        let cases = [
            (r#"{"type":"subscribe"}"#, MissingField),
            (r#"{"type":"subscribe","channel":"a b"}"#, BadChannel),
            (r#"{"type":"subscribe","channel":7}"#, BadChannel),
            (r#"{"type":"subscribe","channel":"a","recover":5}"#, BadJson),
            (
                r#"{"type":"subscribe","channel":"a","recover":{"offset":-1,"epoch":"e"}}"#,
                BadJson,
            ),
            (
                r#"{"type":"subscribe","channel":"a","recover":{"offset":1,"epoch":"e","x":1}}"#,
                BadJson,
            ),
            (r#"{"type":"publish","channel":"a"}"#, MissingField),
            (r#"{"type":"history","channel":"a","limit":"x"}"#, BadJson),
            (r#"{"type":"refresh"}"#, MissingField),
            (r#"{"type":"refresh","token":1}"#, BadJson),
            (
                r#"{"type":"subscribe","channel":"a","channel":"b"}"#,
                BadJson,
            ),
        ];
        for (text, code) in cases {
            assert_eq!(code_of(text), code, "{text}");
        }
        let long = format!(
            r#"{{"type":"inbox","since":{{"offset":1,"epoch":"{}"}}}}"#,
            "e".repeat(65)
        );
        assert_eq!(code_of(&long), TooLarge);
    }

    #[test]
    fn limits_default_to_and_are_capped_at_100() {
        let m = parse_client_message(r#"{"type":"history","channel":"a","limit":5000}"#).unwrap();
        assert!(matches!(m, ClientMessage::History { limit: 100, .. }));
        let m = parse_client_message(r#"{"type":"inbox"}"#).unwrap();
        assert!(matches!(
            m,
            ClientMessage::Inbox {
                limit: 100,
                since: None,
                ..
            }
        ));
    }
}
