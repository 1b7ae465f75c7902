//! Fuzzes the envelope parser: arbitrary bytes must never panic, every
//! rejection must be encodable, and whatever parses must survive a round
//! trip through the writers (same receiver, same id, byte-exact payload),
//! and a payload that passed is within the depth limit by the depth scan,
//! whose verdict matches the limit it is given at every level.
//!
//! Version 2 messages (`subscribe`, `unsubscribe`, `publish`, `history`,
//! `presence`, `presence_stats`, `inbox`, `refresh`) must respect their
//! limits (valid channel, epoch and id lengths, `limit` capped), survive a
//! round trip through a client-side writer (same fields), and a published
//! payload must come out byte-exact in the server's `publication`, with
//! and without its `offset`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use websocket_app::protocol::channel::is_valid_channel;
use websocket_app::protocol::envelope::server_v2::{with_offset, write_publication};
use websocket_app::protocol::envelope::{
    depth, parse_client_message, parse_client_message_limited, write_broadcast, write_chat,
    write_error, write_heartbeat_ack, ClientMessage, ErrorCode, Position, Rejection,
    MAX_EPOCH_BYTES, MAX_HISTORY_LIMIT, MAX_ID_BYTES,
};

const TS: &str = "2026-11-28T16:08:37.123456Z";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_client_message(text) {
        Ok(msg) => round_trip(&msg),
        Err(rejection) => check_rejection(&rejection),
    }
});

/// Writes what parsed and parses the output again.
fn round_trip(msg: &ClientMessage<'_>) {
    if let ClientMessage::Chat { payload, .. } | ClientMessage::Broadcast { payload, .. } = msg {
        check_depth(payload.get());
    }
    let mut out = Vec::new();
    match msg {
        ClientMessage::Chat {
            receiver,
            payload,
            id,
        } => {
            let id = id.as_deref().unwrap_or("srv-1-0-7.1");
            write_chat(&mut out, id, "alice", receiver, payload, TS);
            match parse_client_message(utf8(&out)) {
                Ok(ClientMessage::Chat {
                    receiver: r,
                    payload: p,
                    id: i,
                }) => {
                    assert_eq!(r, *receiver);
                    assert_eq!(p.get(), payload.get());
                    assert_eq!(i.as_deref(), Some(id));
                }
                other => panic!("chat did not round-trip: {other:?}"),
            }
        }
        ClientMessage::Broadcast { payload, id } => {
            let id = id.as_deref().unwrap_or("");
            write_broadcast(&mut out, id, "alice", payload, TS);
            match parse_client_message(utf8(&out)) {
                Ok(ClientMessage::Broadcast { payload: p, id: i }) => {
                    assert_eq!(p.get(), payload.get());
                    assert_eq!(i.as_deref(), Some(id));
                }
                other => panic!("broadcast did not round-trip: {other:?}"),
            }
        }
        ClientMessage::Heartbeat => {
            write_heartbeat_ack(&mut out, TS);
            expect_unknown_type(&out);
        }
        ClientMessage::LatencyReport { millis } => {
            assert!(millis.is_finite() && *millis >= 0.0 && *millis <= 3_600_000.0);
            let text = format!(r#"{{"type":"latency_report","payload":{millis}}}"#);
            match parse_client_message(&text) {
                Ok(ClientMessage::LatencyReport { millis: m }) => assert_eq!(m, *millis),
                other => panic!("latency did not round-trip: {other:?}"),
            }
        }
        v2 => round_trip_v2(v2),
    }
}

/// A version 2 message respects its limits and reads back the same after
/// a client-side writer wrote it.
fn round_trip_v2(msg: &ClientMessage<'_>) {
    if let Some(id) = msg.id() {
        assert!(id.len() <= MAX_ID_BYTES);
    }
    let mut obj = Map::new();
    if let Some(id) = msg.id() {
        obj.insert("id".into(), json!(id));
    }
    let (kind, channel) = match msg {
        ClientMessage::Subscribe {
            channel, recover, ..
        } => {
            put_position(&mut obj, "recover", recover.as_ref());
            ("subscribe", Some(channel))
        }
        ClientMessage::Unsubscribe { channel, .. } => ("unsubscribe", Some(channel)),
        ClientMessage::Publish {
            channel, payload, ..
        } => {
            check_publication(channel, payload.get(), msg.id());
            let payload: Value = serde_json::from_str(payload.get()).expect("valid JSON");
            obj.insert("payload".into(), payload);
            ("publish", Some(channel))
        }
        ClientMessage::History {
            channel,
            since,
            limit,
            ..
        } => {
            assert!(*limit <= MAX_HISTORY_LIMIT);
            put_position(&mut obj, "since", since.as_ref());
            obj.insert("limit".into(), json!(limit));
            ("history", Some(channel))
        }
        ClientMessage::Presence { channel, .. } => ("presence", Some(channel)),
        ClientMessage::PresenceStats { channel, .. } => ("presence_stats", Some(channel)),
        ClientMessage::Inbox { since, limit, .. } => {
            assert!(*limit <= MAX_HISTORY_LIMIT);
            put_position(&mut obj, "since", since.as_ref());
            obj.insert("limit".into(), json!(limit));
            ("inbox", None)
        }
        ClientMessage::Refresh { token, .. } => {
            obj.insert("token".into(), json!(token));
            ("refresh", None)
        }
        other => unreachable!("version 1 message {other:?}"),
    };
    if let Some(channel) = channel {
        assert!(is_valid_channel(channel), "{channel:?}");
        obj.insert("channel".into(), json!(&**channel));
    }
    obj.insert("type".into(), json!(kind));
    let text = Value::Object(obj).to_string();
    let again = parse_client_message(&text)
        .unwrap_or_else(|r| panic!("{kind} did not round-trip: {r:?} for {text}"));
    assert_eq!(summary(msg), summary(&again), "{text}");
}

fn put_position(obj: &mut Map<String, Value>, key: &str, p: Option<&Position<'_>>) {
    if let Some(p) = p {
        assert!(p.epoch.len() <= MAX_EPOCH_BYTES);
        obj.insert(key.into(), json!({"offset": p.offset, "epoch": &*p.epoch}));
    }
}

/// Everything a message says, payloads as parsed JSON (the writer may
/// reformat them; byte-exactness is checked on the server's side).
fn summary(msg: &ClientMessage<'_>) -> String {
    match msg {
        ClientMessage::Publish {
            channel,
            payload,
            id,
        } => {
            let v: Value = serde_json::from_str(payload.get()).expect("valid JSON");
            format!("publish {channel:?} {v:?} {id:?}")
        }
        other => format!("{other:?}"),
    }
}

/// The server's `publication` carries the payload byte-exact, is one JSON
/// object, and stays one with its offset added.
fn check_publication(channel: &str, payload: &str, id: Option<&str>) {
    let mut out = Vec::new();
    let raw: &serde_json::value::RawValue = serde_json::from_str(payload).expect("raw");
    write_publication(
        &mut out,
        channel,
        id.unwrap_or("p-1"),
        Some("alice"),
        raw,
        TS,
    );
    let text = utf8(&out);
    assert!(text.contains(payload), "payload not byte-exact in {text}");
    let v: Value = serde_json::from_str(text).expect("publication is JSON");
    assert_eq!(v["type"], "publication");
    assert_eq!(v["channel"], channel);
    let numbered = with_offset(&out, 42);
    let v: Value = serde_json::from_slice(&numbered).expect("numbered publication is JSON");
    assert_eq!(v["offset"], 42);
    assert!(utf8(&numbered).contains(payload));
}

/// The scan agrees with itself and with the parser's limit at each level.
fn check_depth(payload: &str) {
    let d = depth::scan(payload.as_bytes(), usize::MAX).expect("no limit");
    assert!(d <= depth::DEFAULT_MAX_DEPTH, "passed at depth {d}");
    let text = format!(r#"{{"type":"broadcast","payload":{payload}}}"#);
    for max in d.saturating_sub(1)..=d + 1 {
        assert_eq!(depth::deeper_than(payload.as_bytes(), max), d > max);
        assert_eq!(parse_client_message_limited(&text, max).is_ok(), d <= max);
    }
}

/// A rejection's id is bounded and its error is a well-formed JSON object.
fn check_rejection(rejection: &Rejection) {
    if let Some(id) = &rejection.id {
        assert!(id.len() <= MAX_ID_BYTES);
    }
    let mut out = Vec::new();
    write_error(
        &mut out,
        rejection.code,
        &rejection.message,
        rejection.id.as_deref(),
    );
    expect_unknown_type(&out);
}

/// Server messages are JSON objects with a string `type` clients never send.
fn expect_unknown_type(out: &[u8]) {
    match parse_client_message(utf8(out)) {
        Err(r) => assert_eq!(r.code, ErrorCode::UnknownType, "{}", r.message),
        Ok(msg) => panic!("server message parsed as a client one: {msg:?}"),
    }
}

fn utf8(out: &[u8]) -> &str {
    std::str::from_utf8(out).expect("writers emit UTF-8")
}
