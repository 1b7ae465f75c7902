//! Version 2 server messages: channel answers and publications (I/O-free).
//!
//! Like the version 1 writers, each appends one JSON object to a buffer the
//! caller frames once. A publication's `offset` is only known once the
//! channel's history numbered it (on the channel's owner shard, or in Redis),
//! so [`with_offset`] adds it to publication JSON written without one.

use serde::Serialize;
use serde_json::value::RawValue;

use super::encode::append;

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

/// `history`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "history")]
struct HistoryOut<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    publications: &'a [&'a RawValue],
    offset: u64,
    epoch: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered: Option<bool>,
}

/// `inbox`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "inbox")]
struct InboxOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    messages: &'a [&'a RawValue],
    offset: u64,
    epoch: &'a str,
    recovered: bool,
}

/// `publication`, without its offset.
#[derive(Serialize)]
#[serde(tag = "type", rename = "publication")]
struct PublicationOut<'a> {
    channel: &'a str,
    id: &'a str,
    #[serde(rename = "senderId", skip_serializing_if = "Option::is_none")]
    sender: Option<&'a str>,
    payload: &'a RawValue,
    timestamp: &'a str,
}

/// `server_message`: a direct message from the server API.
#[derive(Serialize)]
#[serde(tag = "type", rename = "server_message")]
struct ServerMessageOut<'a> {
    id: &'a str,
    payload: &'a RawValue,
    timestamp: &'a str,
}

/// Appends a `server_message` (the server API's `send`); the core adds the
/// inbox `offset` when it keeps the message (see [`with_offset`]).
pub fn write_server_message(out: &mut Vec<u8>, id: &str, payload: &RawValue, timestamp: &str) {
    out.reserve(payload.get().len() + id.len() + 80);
    append(
        out,
        &ServerMessageOut {
            id,
            payload,
            timestamp,
        },
    );
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

/// Appends a `publication` without `offset` (see [`with_offset`]);
/// `sender` is absent for server API publications.
pub fn write_publication(
    out: &mut Vec<u8>,
    channel: &str,
    id: &str,
    sender: Option<&str>,
    payload: &RawValue,
    timestamp: &str,
) {
    out.reserve(payload.get().len() + channel.len() + id.len() + 112);
    append(
        out,
        &PublicationOut {
            channel,
            id,
            sender,
            payload,
            timestamp,
        },
    );
}

/// Appends `history`: the publications (oldest first), the channel's
/// position, and with `since` whether they are its complete continuation.
pub fn write_history(
    out: &mut Vec<u8>,
    channel: &str,
    id: Option<&str>,
    publications: &[&RawValue],
    top: StreamTop<'_>,
    recovered: Option<bool>,
) {
    append(
        out,
        &HistoryOut {
            channel,
            id,
            publications,
            offset: top.offset,
            epoch: top.epoch,
            recovered,
        },
    );
}

/// Appends `inbox`: the messages after `since` (oldest first), the inbox's
/// position, and whether they are the complete continuation.
pub fn write_inbox(
    out: &mut Vec<u8>,
    id: Option<&str>,
    messages: &[&RawValue],
    top: StreamTop<'_>,
    recovered: bool,
) {
    append(
        out,
        &InboxOut {
            id,
            messages,
            offset: top.offset,
            epoch: top.epoch,
            recovered,
        },
    );
}

/// `presence`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "presence")]
struct PresenceOut<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    users: Vec<PresenceUser<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

/// One entry of `presence.users`.
#[derive(Serialize)]
struct PresenceUser<'a> {
    #[serde(rename = "userId")]
    user_id: &'a str,
    connections: u32,
}

/// `presence_stats`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "presence_stats")]
struct PresenceStatsOut<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    users: u64,
    connections: u64,
}

/// `join` / `leave`.
#[derive(Serialize)]
struct JoinLeaveOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    channel: &'a str,
    #[serde(rename = "userId")]
    user_id: &'a str,
}

/// Appends `presence`; `truncated` when more users are subscribed than listed.
pub fn write_presence(
    out: &mut Vec<u8>,
    channel: &str,
    id: Option<&str>,
    users: &[(String, u32)],
    truncated: bool,
) {
    let users = users
        .iter()
        .map(|(u, n)| PresenceUser {
            user_id: u,
            connections: *n,
        })
        .collect();
    append(
        out,
        &PresenceOut {
            channel,
            id,
            users,
            truncated,
        },
    );
}

/// Appends `presence_stats`.
pub fn write_presence_stats(
    out: &mut Vec<u8>,
    channel: &str,
    id: Option<&str>,
    users: u64,
    connections: u64,
) {
    append(
        out,
        &PresenceStatsOut {
            channel,
            id,
            users,
            connections,
        },
    );
}

/// Appends `join` or `leave` (`kind`).
pub fn write_join_leave(out: &mut Vec<u8>, kind: &str, channel: &str, user: &str) {
    append(
        out,
        &JoinLeaveOut {
            kind,
            channel,
            user_id: user,
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

/// The JSON object `json` with `"offset": offset` added as its last field.
pub fn with_offset(json: &[u8], offset: u64) -> Vec<u8> {
    let body = json.strip_suffix(b"}").unwrap_or(json);
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(body);
    if body.last() != Some(&b'{') {
        out.push(b',');
    }
    out.extend_from_slice(b"\"offset\":");
    out.extend_from_slice(offset.to_string().as_bytes());
    out.push(b'}');
    out
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
    fn publications_get_their_offset_appended() {
        let mut out = Vec::new();
        let p = RawValue::from_string("[1,2]".into()).unwrap();
        write_publication(
            &mut out,
            "c",
            "m1",
            Some("alice"),
            &p,
            "2026-01-01T00:00:00.000000Z",
        );
        let v = json(&with_offset(&out, 42));
        assert_eq!(v["type"], "publication");
        assert_eq!(v["senderId"], "alice");
        assert_eq!(v["payload"], serde_json::json!([1, 2]));
        assert_eq!(v["offset"], 42);
        let mut out = Vec::new();
        write_publication(&mut out, "c", "m1", None, &p, "t");
        assert!(json(&out).get("senderId").is_none());
        assert_eq!(with_offset(b"{}", 1), br#"{"offset":1}"#);
    }

    #[test]
    fn server_messages_and_broadcasts_have_no_sender() {
        let p = RawValue::from_string(r#"{"n":1}"#.into()).unwrap();
        let mut out = Vec::new();
        write_server_message(&mut out, "m1", &p, "t");
        assert_eq!(
            out,
            br#"{"type":"server_message","id":"m1","payload":{"n":1},"timestamp":"t"}"#
        );
        let v = json(&with_offset(&out, 3));
        assert_eq!(v["offset"], 3);
        let mut out = Vec::new();
        crate::protocol::envelope::write_server_broadcast(&mut out, "b1", &p, "t");
        assert_eq!(
            out,
            br#"{"type":"broadcast","id":"b1","payload":{"n":1},"timestamp":"t"}"#
        );
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
