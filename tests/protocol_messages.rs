//! Every message row of the contract against the real server over loopback.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{http_get, ServerProcess};

fn server() -> ServerProcess {
    ServerProcess::start(&["--shards", "2"], &[])
}

#[test]
fn welcome_comes_first_with_every_field_and_unique_ids() {
    let s = server();
    let mut ids = HashSet::new();
    for _ in 0..4 {
        let mut c = support::Client::connect(s.addr, "/ws?userId=alice").unwrap();
        let w = c.recv_type("welcome");
        assert_eq!(w["userId"], "alice");
        assert!(w["serverId"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(w["heartbeatIntervalMs"], 30_000);
        assert_eq!(w["maxMessageBytes"], 65_536);
        assert!(
            ids.insert(w["connectionId"].as_str().unwrap().to_string()),
            "duplicate connection id"
        );
    }
}

#[test]
fn heartbeat_gets_heartbeat_ack() {
    let s = server();
    let mut a = s.user("alice");
    a.send(&json!({"type": "heartbeat"}));
    let v = a.recv_type("heartbeat_ack");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn chat_message_is_delivered_with_server_set_fields_and_acked() {
    let s = server();
    let mut alice = s.user("alice");
    let mut bob = s.user("bob");
    alice.send(
        &json!({"type": "chat_message", "receiverID": "bob", "payload": {"text": "hi"}, "id": "m1",
        "senderId": "mallory", "timestamp": "1999-01-01T00:00:00Z"}),
    );
    let m = bob.recv_type("chat_message");
    assert_eq!(m["senderId"], "alice");
    assert_eq!(m["receiverID"], "bob");
    assert_eq!(m["payload"], json!({"text": "hi"}));
    assert_eq!(m["id"], "m1");
    let ts = m["timestamp"].as_str().unwrap();
    assert!(
        ts.starts_with("20") && !ts.starts_with("1999") && ts.len() == 27,
        "timestamp {ts}"
    );
    let ack = alice.recv_type("ack");
    assert_eq!(
        (ack["id"].as_str(), ack["status"].as_str()),
        (Some("m1"), Some("delivered"))
    );
    assert_eq!(ack["connections"], 1);
}

#[test]
fn receiver_id_alias_and_no_ack_without_id() {
    let s = server();
    let mut alice = s.user("alice");
    let mut bob = s.user("bob");
    alice.send(&json!({"type": "chat_message", "receiverId": "bob", "payload": 7}));
    let m = bob.recv_type("chat_message");
    assert_eq!(m["payload"], 7);
    assert!(m["id"].as_str().unwrap().contains('.'), "server-made id");
    alice.send(&json!({"type": "heartbeat"}));
    alice.recv_type("heartbeat_ack"); // no ack came before it
}

#[test]
fn every_connection_of_the_receiver_on_every_shard_gets_it() {
    let s = server();
    let mut bobs: Vec<_> = Vec::new();
    let mut shards = HashSet::new();
    while shards.len() < 2 && bobs.len() < 64 {
        let mut c = support::Client::connect(s.addr, "/ws?userId=bob").unwrap();
        let w = c.recv_type("welcome");
        let shard = w["connectionId"]
            .as_str()
            .unwrap()
            .rsplit('-')
            .nth(1)
            .unwrap()
            .to_string();
        shards.insert(shard);
        bobs.push(c);
    }
    assert_eq!(shards.len(), 2, "connections never spread over both shards");
    let mut alice = s.user("alice");
    alice.send(&json!({"type": "chat_message", "receiverID": "bob", "payload": "x", "id": "m"}));
    for b in &mut bobs {
        assert_eq!(b.recv_type("chat_message")["payload"], "x");
    }
    let ack = alice.recv_type("ack");
    assert_eq!(ack["status"], "delivered");
    assert_eq!(ack["connections"], bobs.len());
}

#[test]
fn offline_receiver_is_acked_offline() {
    let s = server();
    let mut alice = s.user("alice");
    alice.send(&json!({"type": "chat_message", "receiverID": "nobody", "payload": 1, "id": "m"}));
    let ack = alice.recv_type("ack");
    assert_eq!(ack["status"], "offline");
    assert!(ack.get("connections").is_none());
}

#[test]
fn a_closed_connection_no_longer_receives_but_the_users_other_one_does() {
    let s = server();
    let b1 = s.user("bob");
    let mut b2 = s.user("bob");
    let mut alice = s.user("alice");
    b1.close();
    // The close is processed asynchronously: wait until delivery counts one connection.
    support::eventually("bob's first connection to be gone", || {
        alice.send(&json!({"type": "chat_message", "receiverID": "bob", "payload": 1, "id": "m"}));
        b2.recv_type("chat_message");
        let ack = alice.recv_type("ack");
        (ack["connections"] == 1).then_some(())
    });
}

#[test]
fn broadcast_reaches_everyone_else_exactly_once() {
    let s = server();
    let mut sender = s.user("alice");
    let mut others: Vec<_> = (0..6).map(|i| s.user(&format!("u{i}"))).collect();
    sender.send(&json!({"type": "broadcast", "payload": {"n": 1}, "id": "b1"}));
    for o in &mut others {
        let m = o.recv_type("broadcast");
        assert_eq!(m["senderId"], "alice");
        assert_eq!(m["payload"], json!({"n": 1}));
        assert_eq!(m["id"], "b1");
    }
    let ack = sender.recv_type("ack");
    assert_eq!(ack["status"], "delivered");
    assert_eq!(ack["connections"], 6);
    // Exactly once: a heartbeat round trip on each shows nothing else was queued.
    for o in &mut others {
        o.send(&json!({"type": "heartbeat"}));
        o.recv_type("heartbeat_ack");
    }
}

#[test]
fn latency_report_is_silent_and_counted() {
    let s = server();
    let mut a = s.user("alice");
    a.send(&json!({"type": "latency_report", "payload": 42}));
    a.send(&json!({"type": "heartbeat"}));
    a.recv_type("heartbeat_ack");
    let metrics = support::eventually("latency report in /metrics", || {
        let (_, body) = http_get(s.addr, "/metrics");
        body.lines()
            .any(|l| {
                l.starts_with("wss_latency_report") && l.contains("count") && l.ends_with(" 1")
            })
            .then_some(body)
    });
    assert!(metrics.contains("wss_messages_total"));
}

#[test]
fn errors_answer_one_message_and_keep_the_connection() {
    let s = ServerProcess::start(&["--shards", "1"], &[("BROADCAST_ENABLED", "false")]);
    let mut a = s.user("alice");
    let cases = [
        ("not json".to_string(), "bad_json", None),
        (r#"{"type":5}"#.to_string(), "bad_json", None),
        (
            r#"{"type":"dance","id":"d"}"#.to_string(),
            "unknown_type",
            Some("d"),
        ),
        (r#"{"payload":1}"#.to_string(), "missing_field", None),
        (
            r#"{"type":"chat_message","payload":1,"id":"c"}"#.to_string(),
            "missing_field",
            Some("c"),
        ),
        (
            r#"{"type":"chat_message","receiverID":"bob"}"#.to_string(),
            "missing_field",
            None,
        ),
        (
            r#"{"type":"chat_message","receiverID":"no spaces","payload":1,"id":"u"}"#.to_string(),
            "bad_user_id",
            Some("u"),
        ),
        (
            r#"{"type":"latency_report","payload":-1}"#.to_string(),
            "bad_latency",
            None,
        ),
        (
            r#"{"type":"latency_report","payload":3600001}"#.to_string(),
            "bad_latency",
            None,
        ),
        (
            format!(
                r#"{{"type":"chat_message","receiverID":"bob","payload":1,"id":"{}"}}"#,
                "i".repeat(65)
            ),
            "too_large",
            None,
        ),
        (
            r#"{"type":"broadcast","payload":1,"id":"b"}"#.to_string(),
            "forbidden",
            Some("b"),
        ),
    ];
    for (text, code, id) in cases {
        a.send_text(&text);
        let e = a.recv_type("error");
        assert_eq!(e["code"], code, "for {text}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        if let Some(id) = id {
            assert_eq!(e["id"], id, "for {text}");
        }
    }
    a.send(&json!({"type": "heartbeat"}));
    a.recv_type("heartbeat_ack");
}

#[test]
fn payloads_nested_deeper_than_max_json_depth_are_refused() {
    let s = server();
    let mut alice = s.user("alice");
    let mut bob = s.user("bob");
    let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let chat = |n: usize, id: &str| {
        format!(
            r#"{{"type":"chat_message","receiverID":"bob","payload":{},"id":"{id}"}}"#,
            nested(n)
        )
    };
    // The default limit, 64 levels: one more is refused, nothing delivered.
    alice.send_text(&chat(65, "deep"));
    let e = alice.recv_type("error");
    assert_eq!(
        (e["code"].as_str(), e["id"].as_str()),
        (Some("bad_json"), Some("deep")),
        "{e}"
    );
    alice.send_text(&format!(
        r#"{{"type":"broadcast","payload":{}}}"#,
        nested(5_000)
    ));
    assert_eq!(alice.recv_type("error")["code"], "bad_json");
    alice.send_text(&chat(64, "ok"));
    let m = bob.recv_type("chat_message");
    assert_eq!(m["id"], "ok", "the deep ones never reached bob: {m}");
    assert_eq!(alice.recv_type("ack")["status"], "delivered");
}

#[test]
fn max_json_depth_is_configurable() {
    let s = ServerProcess::start(&[], &[("MAX_JSON_DEPTH", "2")]);
    let mut alice = s.user("alice");
    alice.send(&json!({"type": "broadcast", "payload": [[1]], "id": "b2"}));
    alice.recv_type("ack");
    alice.send(&json!({"type": "broadcast", "payload": [[[1]]], "id": "b3"}));
    let e = alice.recv_type("error");
    assert_eq!(
        (e["code"].as_str(), e["id"].as_str()),
        (Some("bad_json"), Some("b3")),
        "{e}"
    );
}

#[test]
fn rate_limit_acks_rate_limited_then_closes_4029() {
    let s = ServerProcess::start(
        &[
            "--rate-limit",
            "1",
            "--rate-limit-burst",
            "2",
            "--rate-limit-strikes",
            "3",
        ],
        &[],
    );
    let mut a = s.user("alice");
    let _bob = s.user("bob");
    let msg = json!({"type": "chat_message", "receiverID": "bob", "payload": 1, "id": "r"});
    for _ in 0..2 {
        a.send(&msg);
        assert_eq!(a.recv_type("ack")["status"], "delivered");
    }
    a.send(&msg);
    assert_eq!(a.recv_type("ack")["status"], "rate_limited");
    a.send(&json!({"type": "chat_message", "receiverID": "bob", "payload": 1}));
    assert_eq!(a.recv_type("error")["code"], "rate_limited");
    a.send(&msg);
    assert_eq!(a.expect_close(), 4029);
}

/// Issue 17 #12: heartbeats spend the rate limit like any message. A burst
/// past `RATE_LIMIT_BURST` is refused `rate_limited` (and counted) instead
/// of answered; the connection stays open, and other connections, the same
/// user's included, keep their own budgets.
#[test]
fn a_burst_of_heartbeats_past_the_burst_is_refused_and_others_are_unaffected() {
    let s = ServerProcess::start(&["--rate-limit", "1", "--rate-limit-burst", "5"], &[]);
    let mut flooder = s.user("alice");
    let mut twin = s.user("alice");
    let mut bob = s.user("bob");
    let started = Instant::now();
    for _ in 0..20 {
        flooder.send(&json!({"type": "heartbeat"}));
    }
    let answers: Vec<_> = (0..20).map(|_| flooder.recv()).collect();
    // One token a second: a slow run may earn one more ack per second.
    let earned = started.elapsed().as_secs() as usize + 1;
    let acks = answers
        .iter()
        .filter(|a| a["type"] == "heartbeat_ack")
        .count();
    let refused = answers.iter().filter(|a| a["type"] == "error").count();
    assert!(
        answers[..5].iter().all(|a| a["type"] == "heartbeat_ack"),
        "the burst is answered: {answers:?}"
    );
    assert!(acks <= 5 + earned, "{acks} acks to 20 heartbeats");
    assert_eq!(
        acks + refused,
        20,
        "ack or error, nothing else: {answers:?}"
    );
    for e in answers.iter().filter(|a| a["type"] == "error") {
        assert_eq!(e["code"], "rate_limited", "{e}");
    }
    let (_, m) = http_get(s.addr, "/metrics");
    let counted =
        |l: &str| l.starts_with("wss_rate_limited_total{") && l.ends_with(&format!(" {refused}"));
    assert!(
        m.lines().any(counted),
        "want {refused} refusals counted:\n{m}"
    );
    // Other connections have their whole burst; the flooder still receives.
    for _ in 0..5 {
        twin.send(&json!({"type": "heartbeat"}));
        twin.recv_type("heartbeat_ack");
    }
    bob.send(&json!({"type": "chat_message", "receiverID": "alice", "payload": 1, "id": "m"}));
    assert_eq!(bob.recv_type("ack")["connections"], 2);
    for _ in 0..4 {
        bob.send(&json!({"type": "heartbeat"}));
        bob.recv_type("heartbeat_ack");
    }
    assert_eq!(flooder.recv_type("chat_message")["payload"], 1);
    assert_eq!(twin.recv_type("chat_message")["payload"], 1);
}

#[test]
fn http_endpoints_and_404() {
    let s = server();
    let (status, body) = http_get(s.addr, "/health");
    assert_eq!(status, 200);
    assert!(body.ends_with(r#"{"status":"ok"}"#));
    assert_eq!(http_get(s.addr, "/ready").0, 200);
    assert_eq!(http_get(s.addr, "/metrics").0, 200);
    let (status, body) = http_get(s.addr, "/nope");
    assert_eq!(status, 404);
    assert!(body.contains(r#""error":"not_found""#));
}

#[test]
fn silence_is_not_an_answer() {
    let s = server();
    let mut a = s.user("alice");
    assert!(
        a.silent_for(Duration::from_millis(200)),
        "nothing unsolicited after welcome"
    );
}
