//! Version 2 server messages: channel answers and publications (I/O-free).
//!
//! Like the version 1 writers, each appends one JSON object to a buffer the
//! caller frames once. A publication's `offset` is only known once the
//! channel's history numbered it (on the channel's owner shard, or in Redis),
//! so [`with_offset`] adds it to publication JSON written without one.
//!
//! # Layout
//!
//! - this file: the shared types ([`StreamTop`], [`UnsubscribeReason`])
//!   and the answers about the connection itself (`subscribed`,
//!   `unsubscribed`, `refreshed`, `token_expiring`);
//! - `streams.rs`: what a stream carries (`publication`, `server_message`)
//!   and its reads (`history`, `inbox`), and [`with_offset`];
//! - `presence.rs`: `presence`, `presence_stats`, `join` and `leave`.

mod presence;
mod streams;

use serde::Serialize;
use serde_json::value::RawValue;

use super::encode::append;

pub use presence::{
    presence_users, write_join_leave, write_presence, write_presence_stats, PresenceUser,
};
pub use streams::{
    with_offset, write_history, write_inbox, write_publication, write_server_message,
};

/// Why the server ended a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsubscribeReason {
    /// The server API unsubscribed the user.
    Server,
    /// A refreshed token no longer allows the channel.
    Forbidden,
}

impl UnsubscribeReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnsubscribeReason::Server => "server",
            UnsubscribeReason::Forbidden => "forbidden",
        }
    }
}

/// A channel's position: the newest offset and its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTop<'a> {
    /// Offset of the newest publication (0: none yet).
    pub offset: u64,
    /// The run of offsets it belongs to.
    pub epoch: &'a str,
}

/// `subscribed`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "subscribed")]
struct SubscribedOut<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publications: Option<&'a [&'a RawValue]>,
}

/// `unsubscribed`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "unsubscribed")]
struct UnsubscribedOut<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// Appends `subscribed`; `top` for channels with history, `recovered` (and
/// the recovered publications, raw JSON) when the client asked to recover.
pub fn write_subscribed(
    out: &mut Vec<u8>,
    channel: &str,
    id: Option<&str>,
    top: Option<StreamTop<'_>>,
    recovered: Option<(bool, &[&RawValue])>,
) {
    append(
        out,
        &SubscribedOut {
            channel,
            id,
            offset: top.map(|t| t.offset),
            epoch: top.map(|t| t.epoch),
            recovered: recovered.map(|r| r.0),
            publications: recovered.map(|r| r.1),
        },
    );
}

/// Appends `unsubscribed`; `reason` when the server ended it.
pub fn write_unsubscribed(
    out: &mut Vec<u8>,
    channel: &str,
    id: Option<&str>,
    reason: Option<UnsubscribeReason>,
) {
    let reason = reason.map(UnsubscribeReason::as_str);
    append(
        out,
        &UnsubscribedOut {
            channel,
            id,
            reason,
        },
    );
}

/// `refreshed` and `token_expiring`.
#[derive(Serialize)]
struct TokenOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "expiresAt", skip_serializing_if = "Option::is_none")]
    expires_at: Option<&'a str>,
}

/// Appends `refreshed` (the new token's expiry, if it has one).
pub fn write_refreshed(out: &mut Vec<u8>, id: Option<&str>, expires_at: Option<&str>) {
    let msg = TokenOut {
        kind: "refreshed",
        id,
        expires_at,
    };
    append(out, &msg);
}

/// Appends `token_expiring`.
pub fn write_token_expiring(out: &mut Vec<u8>, expires_at: &str) {
    let msg = TokenOut {
        kind: "token_expiring",
        id: None,
        expires_at: Some(expires_at),
    };
    append(out, &msg);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(out: &[u8]) -> Value {
        serde_json::from_slice(out).unwrap()
    }

    #[test]
    fn subscribed_carries_only_what_applies() {
        let mut out = Vec::new();
        write_subscribed(&mut out, "chat:1", None, None, None);
        assert_eq!(out, br#"{"type":"subscribed","channel":"chat:1"}"#);
        let mut out = Vec::new();
        let p = RawValue::from_string(r#"{"a":1}"#.into()).unwrap();
        let top = StreamTop {
            offset: 9,
            epoch: "e1",
        };
        write_subscribed(&mut out, "c", Some("s1"), Some(top), Some((true, &[&*p])));
        let v = json(&out);
        assert_eq!(v["offset"], 9);
        assert_eq!(v["epoch"], "e1");
        assert_eq!(v["recovered"], true);
        assert_eq!(v["publications"][0]["a"], 1);
        assert_eq!(v["id"], "s1");
    }

    #[test]
    fn unsubscribed_says_why_when_the_server_ended_it() {
        let mut out = Vec::new();
        write_unsubscribed(&mut out, "c", None, Some(UnsubscribeReason::Forbidden));
        assert_eq!(json(&out)["reason"], "forbidden");
        let mut out = Vec::new();
        write_unsubscribed(&mut out, "c", Some("u1"), None);
        assert!(json(&out).get("reason").is_none());
    }
}
