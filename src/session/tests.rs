use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::*;

static NAMESPACES: std::sync::LazyLock<Namespaces> = std::sync::LazyLock::new(Namespaces::default);

const LIMIT: RateLimit = RateLimit {
    per_sec: 10,
    burst: 2,
    strikes: 3,
    bytes_per_sec: 0,
    bytes_burst: 0,
};

fn rules() -> Rules<'static> {
    Rules {
        max_message_bytes: 1024,
        broadcast_enabled: true,
        rate_limit: LIMIT,
        namespaces: &NAMESPACES,
        inbox: false,
        max_json_depth: 4,
    }
}

struct Conn {
    bucket: TokenBucket,
    next: u64,
}

impl Conn {
    fn new() -> Self {
        Self {
            bucket: TokenBucket::default(),
            next: 0,
        }
    }

    fn handle(&mut self, text: &str, rules: &Rules<'_>) -> Outcome {
        let from = Sender {
            user: "alice",
            connection_id: &"srv-1-0-7",
            now: UNIX_EPOCH + Duration::from_micros(1_764_000_000_123_456),
            now_ms: 5,
            insecure: true,
            grants: None,
        };
        let state = SessionState {
            bucket: &mut self.bucket,
            next_message: &mut self.next,
        };
        handle_text(text, &from, state, rules)
    }
}

/// The JSON inside a server frame (unmasked, short header).
fn json_of(frame: &Bytes) -> Value {
    let len = frame[1] & 0x7f;
    let start = match len {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    serde_json::from_slice(&frame[start..]).unwrap()
}

fn refused(outcome: Outcome) -> Value {
    match outcome {
        Outcome::RateLimited(frame) => json_of(&frame),
        other => panic!("expected a rate-limit refusal, got {other:?}"),
    }
}

fn reply(outcome: Outcome) -> Value {
    match outcome {
        Outcome::Reply(frame) => json_of(&frame),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn heartbeat_is_answered_with_the_server_time() {
    let v = reply(Conn::new().handle(r#"{"type":"heartbeat"}"#, &rules()));
    assert_eq!(v["type"], "heartbeat_ack");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn chat_message_is_framed_once_with_server_fields() {
    let text = r#"{"type":"chat_message","receiverID":"bob","payload":{"x":[1,2]},"id":"m1","senderId":"mallory","timestamp":"x"}"#;
    match Conn::new().handle(text, &rules()) {
        Outcome::Direct {
            receiver,
            frame,
            ack,
        } => {
            assert_eq!(&*receiver, "bob");
            assert_eq!(ack.as_deref(), Some("m1"));
            let v = json_of(&frame);
            assert_eq!(v["type"], "chat_message");
            assert_eq!(
                v["senderId"], "alice",
                "the server sets the sender, never the client"
            );
            assert_eq!(v["receiverID"], "bob");
            assert_eq!(v["id"], "m1");
            assert_eq!(v["payload"], serde_json::json!({"x":[1,2]}));
            assert!(v["timestamp"].as_str().unwrap().starts_with("2025-11-24T"));
        }
        other => panic!("expected Direct, got {other:?}"),
    }
}

#[test]
fn server_makes_an_id_when_the_client_gave_none() {
    let mut c = Conn::new();
    let text = r#"{"type":"chat_message","receiverId":"bob","payload":1}"#;
    let Outcome::Direct { frame, ack, .. } = c.handle(text, &rules()) else {
        panic!()
    };
    assert!(ack.is_none());
    assert_eq!(json_of(&frame)["id"], "srv-1-0-7.1");
}

#[test]
fn bad_receiver_is_an_error_carrying_the_id() {
    let v = reply(Conn::new().handle(
        r#"{"type":"chat_message","receiverID":"b b","payload":1,"id":"m2"}"#,
        &rules(),
    ));
    assert_eq!(v["type"], "error");
    assert_eq!(v["code"], "bad_user_id");
    assert_eq!(v["id"], "m2");
}

#[test]
fn broadcast_can_be_forbidden() {
    let rules = Rules {
        broadcast_enabled: false,
        ..rules()
    };
    let v = reply(Conn::new().handle(r#"{"type":"broadcast","payload":"hi","id":"b1"}"#, &rules));
    assert_eq!(v["code"], "forbidden");
    assert_eq!(v["id"], "b1");
}

#[test]
fn payload_depth_follows_the_rules() {
    let ok = r#"{"type":"broadcast","payload":[[[{}]]],"id":"d1"}"#;
    assert!(matches!(
        Conn::new().handle(ok, &rules()),
        Outcome::Broadcast { .. }
    ));
    let deep = r#"{"type":"chat_message","receiverID":"bob","payload":[[[[[]]]]],"id":"d2"}"#;
    let v = reply(Conn::new().handle(deep, &rules()));
    assert_eq!(
        (v["code"].as_str(), v["id"].as_str()),
        (Some("bad_json"), Some("d2"))
    );
    let deep = r#"{"type":"publish","channel":"room:1","payload":[[[[[]]]]],"id":"d3"}"#;
    let v = reply(Conn::new().handle(deep, &rules()));
    assert_eq!(
        (v["code"].as_str(), v["id"].as_str()),
        (Some("bad_json"), Some("d3"))
    );
}

#[test]
fn oversized_envelope_is_too_large() {
    let payload = "x".repeat(1000);
    let text = format!(r#"{{"type":"broadcast","payload":"{payload}"}}"#);
    let v = reply(Conn::new().handle(&text, &rules()));
    assert_eq!(v["code"], "too_large");
}

#[test]
fn rate_limit_acks_then_closes() {
    let mut c = Conn::new();
    let msg = r#"{"type":"chat_message","receiverID":"bob","payload":1,"id":"r"}"#;
    assert!(matches!(c.handle(msg, &rules()), Outcome::Direct { .. }));
    assert!(matches!(c.handle(msg, &rules()), Outcome::Direct { .. }));
    let v = refused(c.handle(msg, &rules()));
    assert_eq!(
        (v["type"].as_str(), v["status"].as_str()),
        (Some("ack"), Some("rate_limited"))
    );
    let v = refused(c.handle(r#"{"type":"broadcast","payload":1}"#, &rules()));
    assert_eq!(v["code"], "rate_limited");
    assert!(matches!(
        c.handle(msg, &rules()),
        Outcome::Close(r) if r == CloseReason::RATE_LIMITED
    ));
}

#[test]
fn heartbeats_count_against_the_rate_limit() {
    let mut c = Conn::new();
    for _ in 0..2 {
        let v = reply(c.handle(r#"{"type":"heartbeat"}"#, &rules()));
        assert_eq!(v["type"], "heartbeat_ack");
    }
    let v = refused(c.handle(r#"{"type":"heartbeat"}"#, &rules()));
    assert_eq!(
        v["code"], "rate_limited",
        "a flood of heartbeats is refused"
    );
}

#[test]
fn the_byte_budget_counts_what_reaches_receivers() {
    // Messages are plentiful; bytes are not: 1,000 at once, 1,000 a second.
    let rules = Rules {
        rate_limit: RateLimit {
            per_sec: 1000,
            burst: 1000,
            strikes: 3,
            bytes_per_sec: 1000,
            bytes_burst: 1000,
        },
        ..rules()
    };
    let mut c = Conn::new();
    let payload = "x".repeat(600);
    let text = format!(r#"{{"type":"broadcast","payload":"{payload}","id":"b"}}"#);
    let Outcome::Broadcast { frame, .. } = c.handle(&text, &rules) else {
        panic!("the first broadcast fits the budget")
    };
    assert!(frame.len() > text.len(), "the envelope adds bytes");
    // 1,000 - frame.len() bytes are left: less than another broadcast.
    let v = refused(c.handle(&text, &rules));
    assert_eq!(
        (v["type"].as_str(), v["status"].as_str()),
        (Some("ack"), Some("rate_limited"))
    );
    // A small message still fits what is left; heartbeats pay their bytes too.
    let left = 1000 - frame.len();
    let hb = r#"{"type":"heartbeat"}"#;
    for _ in 0..left / hb.len() {
        assert_eq!(reply(c.handle(hb, &rules))["type"], "heartbeat_ack");
    }
    assert_eq!(refused(c.handle(hb, &rules))["code"], "rate_limited");
}

#[test]
fn latency_report_and_its_errors() {
    assert!(
        matches!(Conn::new().handle(r#"{"type":"latency_report","payload":12.5}"#, &rules()), Outcome::Latency(m) if m == 12.5)
    );
    let v = reply(Conn::new().handle(r#"{"type":"latency_report","payload":"fast"}"#, &rules()));
    assert_eq!(v["code"], "bad_latency");
}

#[test]
fn garbage_and_unknown_types_are_errors() {
    assert_eq!(
        reply(Conn::new().handle("not json", &rules()))["code"],
        "bad_json"
    );
    assert_eq!(
        reply(Conn::new().handle(r#"{"type":"dance"}"#, &rules()))["code"],
        "unknown_type"
    );
    assert_eq!(
        reply(Conn::new().handle(r#"{"payload":1}"#, &rules()))["code"],
        "missing_field"
    );
}
