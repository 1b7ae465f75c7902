//! Fuzzes the envelope parser: arbitrary bytes must never panic, every
//! rejection must be encodable, and whatever parses must survive a round
//! trip through the writers (same receiver, same id, byte-exact payload),
//! and a payload that passed is within the depth limit by the depth scan,
//! whose verdict matches the limit it is given at every level.
#![no_main]

use libfuzzer_sys::fuzz_target;
use websocket_app::protocol::envelope::{
    depth, parse_client_message, parse_client_message_limited, write_broadcast, write_chat, write_error, write_heartbeat_ack,
    ClientMessage, ErrorCode, Rejection, MAX_ID_BYTES,
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
    }
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
