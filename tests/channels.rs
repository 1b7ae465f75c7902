//! Channels on one instance (embedded mode, two shards): subscribe,
//! publish, order, unsubscribe, limits, namespaces, and the token's
//! `channels`, `subs` and `broadcast` claims.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::channels::{
    ack, config_file, publications, publish, subscribe, unsubscribe, NAMESPACES,
};
use support::{eventually, http_get, Client, ServerProcess};

const SECRET: &str = "an-hs256-test-secret-of-at-least-32-bytes";

fn server(extra: &[(&str, &str)]) -> (ServerProcess, tempfile::NamedTempFile) {
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    let mut env = vec![("CHANNELS_CONFIG", path.as_str())];
    env.extend_from_slice(extra);
    (ServerProcess::start(&["--shards", "2"], &env), file)
}

fn token(claims: Value) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let mut claims = claims;
    claims["exp"] = exp.into();
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn with_token(s: &ServerProcess, claims: Value) -> Client {
    let mut c = Client::connect(s.addr, &format!("/ws?token={}", token(claims))).unwrap();
    c.recv_type("welcome");
    c
}

#[test]
fn publications_reach_every_subscriber_once_in_one_order() {
    let (s, _f) = server(&[]);
    // Enough connections that both shards hold subscribers.
    let mut subs: Vec<Client> = (0..6).map(|i| s.user(&format!("sub{i}"))).collect();
    for c in &mut subs {
        subscribe(c, "chat:room");
    }
    let mut p1 = s.user("pub1");
    let mut p2 = s.user("pub2");
    for n in 0..20 {
        publish(&mut p1, "chat:room", n, &format!("a{n}"));
        publish(&mut p2, "chat:room", 100 + n, &format!("b{n}"));
    }
    for n in 0..20 {
        assert_eq!(ack(&mut p1, &format!("a{n}"))["status"], "published");
        assert_eq!(ack(&mut p2, &format!("b{n}"))["status"], "published");
    }
    let first = publications(&mut subs[0], "chat:room", 40);
    let from_p1: Vec<u64> = first.iter().copied().filter(|n| *n < 100).collect();
    assert_eq!(
        from_p1,
        (0..20).collect::<Vec<_>>(),
        "a publisher's order kept"
    );
    for c in &mut subs[1..] {
        assert_eq!(publications(c, "chat:room", 40), first, "one channel order");
    }
    for c in subs.iter_mut().chain([&mut p1, &mut p2]) {
        assert!(c.silent_for(Duration::from_millis(200)), "nothing twice");
    }
}

#[test]
fn the_publisher_sees_its_own_publication_only_when_subscribed() {
    let (s, _f) = server(&[]);
    let mut alice = s.user("alice");
    publish(&mut alice, "chat:x", 1, "p1");
    assert_eq!(ack(&mut alice, "p1")["status"], "published");
    assert!(alice.silent_for(Duration::from_millis(200)));
    subscribe(&mut alice, "chat:x");
    publish(&mut alice, "chat:x", 2, "p2");
    let mut got = vec![alice.recv(), alice.recv()];
    got.sort_by_key(|v| v["type"].as_str().unwrap_or_default().to_owned());
    assert_eq!(got[0]["status"], "published", "{got:?}");
    assert_eq!(got[1]["payload"]["n"], 2, "{got:?}");
    assert_eq!(got[1]["senderId"], "alice");
}

#[test]
fn unsubscribe_stops_delivery_and_both_are_idempotent() {
    let (s, _f) = server(&[]);
    let mut sub = s.user("sub");
    let mut publisher = s.user("pub");
    subscribe(&mut sub, "chat:a");
    subscribe(&mut sub, "chat:a");
    publish(&mut publisher, "chat:a", 1, "p1");
    ack(&mut publisher, "p1");
    assert_eq!(
        publications(&mut sub, "chat:a", 1),
        vec![1],
        "once despite two subscribes"
    );
    unsubscribe(&mut sub, "chat:a");
    unsubscribe(&mut sub, "chat:a");
    publish(&mut publisher, "chat:a", 2, "p2");
    ack(&mut publisher, "p2");
    assert!(sub.silent_for(Duration::from_millis(300)));
}

#[test]
fn bad_names_limits_and_namespace_options_are_refused_with_the_right_code() {
    let (s, _f) = server(&[("MAX_CHANNELS_PER_CONNECTION", "2")]);
    let mut c = s.user("alice");
    let error = |c: &mut Client, msg: Value| -> String {
        c.send(&msg);
        let e = c.recv_type("error");
        assert_eq!(e["id"], "x", "{e}");
        e["code"].as_str().unwrap().to_owned()
    };
    let bad = error(
        &mut c,
        json!({"type": "subscribe", "channel": "a b", "id": "x"}),
    );
    assert_eq!(bad, "bad_channel");
    subscribe(&mut c, "chat:1");
    subscribe(&mut c, "news:1");
    let full = error(
        &mut c,
        json!({"type": "subscribe", "channel": "chat:3", "id": "x"}),
    );
    assert_eq!(full, "too_many_channels");
    let server_only = error(
        &mut c,
        json!({"type": "publish", "channel": "news:1", "payload": 1, "id": "x"}),
    );
    assert_eq!(server_only, "forbidden", "news has no client_publish");
    let history = error(
        &mut c,
        json!({"type": "history", "channel": "chat:1", "id": "x"}),
    );
    assert_eq!(history, "not_available", "chat keeps no history");
    unsubscribe(&mut c, "news:1");
    subscribe(&mut c, "chat:3");
}

#[test]
fn a_closed_connection_leaves_its_channels() {
    let (s, _f) = server(&[]);
    let gauge = |name: &str| -> u64 {
        let (_, text) = http_get(s.addr, "/metrics");
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    let mut c = s.user("alice");
    subscribe(&mut c, "chat:1");
    subscribe(&mut c, "chat:2");
    assert_eq!(gauge("wss_subscriptions"), 2);
    assert_eq!(gauge("wss_channels"), 2);
    c.close();
    eventually("subscriptions released", || {
        (gauge("wss_subscriptions") == 0 && gauge("wss_channels") == 0).then_some(())
    });
}

#[test]
fn token_claims_grant_channels_subscriptions_and_broadcast() {
    let (s, _f) = server(&[("JWT_SECRET", SECRET)]);
    let mut plain = with_token(&s, json!({"sub": "plain"}));
    plain.send(&json!({"type": "subscribe", "channel": "team:red", "id": "x"}));
    assert_eq!(
        plain.recv_type("error")["code"],
        "forbidden",
        "private without a claim"
    );
    subscribe(&mut plain, "chat:lobby");
    plain.send(&json!({"type": "broadcast", "payload": 1, "id": "b"}));
    assert_eq!(
        plain.recv_type("error")["code"],
        "forbidden",
        "broadcast is granted"
    );

    let mut member = with_token(&s, json!({"sub": "member", "channels": ["team:*"]}));
    subscribe(&mut member, "team:red");

    let t = token(json!({"sub": "auto", "subs": ["team:red", "chat:lobby"]}));
    let mut auto = Client::connect(s.addr, &format!("/ws?token={t}")).unwrap();
    let welcome = auto.recv_type("welcome");
    assert_eq!(welcome["subscriptions"], json!(["team:red", "chat:lobby"]));

    publish(&mut member, "team:red", 7, "p");
    let mut got = [member.recv(), member.recv()];
    got.sort_by_key(|v| v["type"].to_string());
    assert_eq!(
        (&got[0]["type"], &got[1]["payload"]["n"]),
        (&json!("ack"), &json!(7))
    );
    assert_eq!(
        publications(&mut auto, "team:red", 1),
        vec![7],
        "subscribed at connect"
    );

    let mut caster = with_token(&s, json!({"sub": "caster", "broadcast": true}));
    caster.send(&json!({"type": "broadcast", "payload": 1, "id": "b"}));
    assert_eq!(ack(&mut caster, "b")["status"], "delivered");
}

#[test]
fn a_bad_channels_file_stops_the_server_with_a_message_naming_it() {
    let file = config_file("[namespaces.chat]\npublik = true\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_websocket-app"))
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env("CHANNELS_CONFIG", file.path())
        .env_remove("JWT_SECRET")
        .env_remove("REDIS_URI")
        .output()
        .expect("run the server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CHANNELS_CONFIG") && err.contains("publik"),
        "{err}"
    );
}
