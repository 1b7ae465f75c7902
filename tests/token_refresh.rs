//! Token refresh on a live connection (protocol version 2): `expiresAt`
//! in `welcome`, `refresh` → `refreshed`, subscriptions the new token no
//! longer allows end `forbidden`, `token_expiring` once, 4001 after the
//! grace; RS256/ES256 tokens with `JWT_PUBLIC_KEY_FILE` (keys generated
//! by `openssl` for each run).

mod support;

use std::time::{Duration, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::channels::{config_file, publish, subscribe, NAMESPACES};
use support::tokens::{hs256, now, GeneratedKey, SECRET};
use support::{Client, ServerProcess};

/// `exp` as the server writes `expiresAt`.
fn rfc3339(exp: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(exp)).to_string()
}

/// A token server on two shards with the test namespaces (`team` is
/// private: a `channels` claim is needed).
fn server(extra: &[(&str, &str)]) -> (ServerProcess, tempfile::NamedTempFile) {
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    let mut env = vec![("CHANNELS_CONFIG", path.as_str()), ("JWT_SECRET", SECRET)];
    env.extend_from_slice(extra);
    (ServerProcess::start(&["--shards", "2"], &env), file)
}

fn connect(s: &ServerProcess, token: &str) -> (Client, Value) {
    let mut c = Client::connect(s.addr, &format!("/ws?token={token}")).unwrap();
    let welcome = c.recv_type("welcome");
    (c, welcome)
}

/// Reads `n` messages and returns them sorted by `type` (for answers
/// whose relative order the protocol does not fix).
fn recv_sorted(c: &mut Client, n: usize) -> Vec<Value> {
    let mut got: Vec<Value> = (0..n).map(|_| c.recv()).collect();
    got.sort_by_key(|v| v["type"].as_str().unwrap_or_default().to_owned());
    got
}

/// An `exp` past 2106-02-07T06:28:15Z (the last second the connection's
/// 32 bits of Unix time hold) counts as that instant, in `welcome` and in
/// `refreshed` alike.
#[test]
fn an_exp_past_2106_counts_as_the_last_32_bit_second() {
    let (s, _file) = server(&[]);
    let last = rfc3339(u64::from(u32::MAX));
    assert_eq!(last, "2106-02-07T06:28:15Z");
    let far = hs256(json!({"sub": "ann", "exp": 5_000_000_000u64}));
    let (mut c, welcome) = connect(&s, &far);
    assert_eq!(welcome["expiresAt"], last, "{welcome}");
    c.send(&json!({"type": "refresh", "token": far, "id": "r"}));
    let refreshed = c.recv_type("refreshed");
    assert_eq!(refreshed["expiresAt"], last, "{refreshed}");
}

#[test]
fn refresh_replaces_the_token_and_ends_what_it_no_longer_allows() {
    let (s, _file) = server(&[]);
    let exp = now() + 3600;
    let first = hs256(json!({"sub": "ann", "exp": exp, "channels": ["team:a", "team:b"]}));
    let (mut c, welcome) = connect(&s, &first);
    assert_eq!(welcome["expiresAt"], rfc3339(exp), "{welcome}");
    subscribe(&mut c, "team:a");
    subscribe(&mut c, "team:b");

    let exp2 = now() + 7200;
    let second = hs256(json!({"sub": "ann", "exp": exp2, "channels": ["team:a"]}));
    c.send(&json!({"type": "refresh", "token": second, "id": "r1"}));
    let got = recv_sorted(&mut c, 2);
    assert_eq!(got[0]["type"], "refreshed", "{got:?}");
    assert_eq!(got[0]["id"], "r1");
    assert_eq!(got[0]["expiresAt"], rfc3339(exp2));
    assert_eq!(got[1]["type"], "unsubscribed", "{got:?}");
    assert_eq!(got[1]["channel"], "team:b");
    assert_eq!(got[1]["reason"], "forbidden");

    // team:a is still subscribed; team:b is now refused.
    publish(&mut c, "team:a", 1, "p1");
    let got = recv_sorted(&mut c, 2);
    assert_eq!(got[0]["type"], "ack", "{got:?}");
    assert_eq!(got[1]["type"], "publication", "{got:?}");
    assert_eq!(got[1]["channel"], "team:a");
    publish(&mut c, "team:b", 2, "p2");
    let refused = c.recv_type("error");
    assert_eq!(refused["code"], "forbidden", "{refused}");
    c.send(&json!({"type": "subscribe", "channel": "team:b", "id": "s"}));
    assert_eq!(c.recv_type("error")["code"], "forbidden");
}

#[test]
fn a_refused_refresh_keeps_the_old_token() {
    let (s, _file) = server(&[]);
    let token = hs256(json!({"sub": "ann", "exp": now() + 3600, "channels": ["team:a"]}));
    let (mut c, _) = connect(&s, &token);
    subscribe(&mut c, "team:a");
    let cases = [
        (
            hs256(json!({"sub": "bob", "exp": now() + 3600})),
            "another user",
        ),
        (hs256(json!({"sub": "ann", "exp": now() - 60})), "expired"),
        ("not-a-jwt".to_owned(), "malformed"),
        (
            encode(
                &Header::new(Algorithm::HS256),
                &json!({"sub": "ann"}),
                &EncodingKey::from_secret(b"another-secret-another-secret-another"),
            )
            .unwrap(),
            "signature",
        ),
    ];
    for (i, (bad, why)) in cases.iter().enumerate() {
        let id = format!("r{i}");
        c.send(&json!({"type": "refresh", "token": bad, "id": id}));
        let err = c.recv_type("error");
        assert_eq!(err["code"], "forbidden", "{why}: {err}");
        assert_eq!(err["id"], id.as_str());
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(why), "{why}: {message}");
    }
    // Still ann, still subscribed, still allowed.
    publish(&mut c, "team:a", 1, "p1");
    let got = recv_sorted(&mut c, 2);
    assert_eq!(got[0]["type"], "ack", "{got:?}");
    assert_eq!(got[1]["type"], "publication", "{got:?}");
}

#[test]
fn an_expiring_token_is_announced_once_then_closed_4001_unless_refreshed() {
    let (s, _file) = server(&[("TOKEN_NOTICE_MS", "5000"), ("TOKEN_GRACE_MS", "300")]);
    let exp = now() + 2;
    // Subscribed at connect (`subs`), so the refresh must keep a subscription.
    let short = hs256(json!({"sub": "ann", "exp": exp, "subs": ["team:a"]}));
    let (mut stays, stays_welcome) = connect(&s, &short);
    assert_eq!(stays_welcome["subscriptions"], json!(["team:a"]));
    let (mut ends, welcome) = connect(&s, &short);
    assert_eq!(welcome["expiresAt"], rfc3339(exp));
    for c in [&mut stays, &mut ends] {
        let notice = c.recv_type("token_expiring");
        assert_eq!(notice["expiresAt"], rfc3339(exp), "{notice}");
    }
    let exp2 = now() + 3600;
    let long = hs256(json!({"sub": "ann", "exp": exp2, "channels": ["team:a"]}));
    stays.send(&json!({"type": "refresh", "token": long}));
    assert_eq!(stays.recv_type("refreshed")["expiresAt"], rfc3339(exp2));
    // Once per token: the next message `ends` sees is the close.
    assert_eq!(ends.expect_close(), 4001);
    // The refreshed connection outlives the old token's grace by a full
    // second (more than a sweep period) and still answers.
    assert!(stays.silent_for(Duration::from_millis(1200)));
    stays.send(&json!({"type": "heartbeat"}));
    stays.recv_type("heartbeat_ack");
    // And its subscription lived through the refresh and the old grace.
    publish(&mut stays, "team:a", 7, "after");
    let got = recv_sorted(&mut stays, 2);
    assert_eq!(got[0]["type"], "ack", "{got:?}");
    assert_eq!(got[1]["type"], "publication", "{got:?}");
    assert_eq!(got[1]["payload"]["n"], 7, "{got:?}");
}

#[test]
fn refresh_in_insecure_mode_is_not_available() {
    let s = ServerProcess::start(&[], &[]);
    let mut c = s.user("ann");
    c.send(&json!({"type": "refresh", "token": "x", "id": "r"}));
    let err = c.recv_type("error");
    assert_eq!(err["code"], "not_available", "{err}");
}

#[test]
fn es256_and_rs256_tokens_verify_with_the_public_key_file() {
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let key = GeneratedKey::new(alg);
        let key_file = key.public_path();
        let (s, _file) = server(&[("JWT_PUBLIC_KEY_FILE", &key_file)]);
        let pem = key.private_pem();
        let signer = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
            _ => EncodingKey::from_rsa_pem(&pem).unwrap(),
        };
        let claims = json!({"sub": "ann", "exp": now() + 60});
        let token = encode(&Header::new(alg), &claims, &signer).unwrap();
        let (mut c, welcome) = connect(&s, &token);
        assert_eq!(welcome["userId"], "ann", "{alg:?}");
        // HS256 still works beside it (JWT_SECRET is set too).
        let (_, hs) = connect(&s, &hs256(json!({"sub": "bo", "exp": now() + 60})));
        assert_eq!(hs["userId"], "bo");
        // The classic confusion: HS256 "signed" with the public PEM.
        let public_pem = std::fs::read(&key_file).unwrap();
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "admin"}),
            &EncodingKey::from_secret(&public_pem),
        )
        .unwrap();
        let refused = Client::connect(s.addr, &format!("/ws?token={forged}")).err();
        assert_eq!(refused.expect("forged token refused").status, 401);
        // Refresh takes a token of the public key's algorithm too.
        let claims = json!({"sub": "ann", "exp": now() + 120});
        let again = encode(&Header::new(alg), &claims, &signer).unwrap();
        c.send(&json!({"type": "refresh", "token": again}));
        c.recv_type("refreshed");
    }
}
