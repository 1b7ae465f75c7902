//! What a stream carries and its reads: `publication` (a channel's) and
//! `server_message` (a user inbox's), written without their `offset`, which
//! [`with_offset`] adds once the stream numbered them; `history` and `inbox`
//! answer with kept ones.

use serde::Serialize;
use serde_json::value::RawValue;

use super::StreamTop;
use crate::protocol::envelope::encode::append;

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

/// Appends `inbox`: a page of the messages after `since` (oldest first),
/// the inbox's newest position (more wait when it is past the page's last
/// message), and `recovered`: none after `since` was lost (the page
/// continues right after it), not that the page holds them all.
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
}
