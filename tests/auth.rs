//! Identity and origin checks before the upgrade, on the real server.

mod support;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use support::tokens::{hs256_with, now, SECRET};
use support::{Client, ServerProcess};

fn token(claims: serde_json::Value, secret: &str) -> String {
    hs256_with(&claims, secret)
}

fn token_server() -> ServerProcess {
    ServerProcess::start(&[], &[("JWT_SECRET", SECRET)])
}

fn refused(s: &ServerProcess, path: &str) -> (u16, String) {
    let r = Client::connect(s.addr, path)
        .err()
        .expect("upgrade should be refused");
    (r.status, r.body)
}

#[test]
fn valid_token_in_query_or_bearer_header() {
    let s = token_server();
    let t = token(json!({"sub": "alice", "exp": now() + 60}), SECRET);
    let mut c = Client::connect(s.addr, &format!("/ws?token={t}")).unwrap();
    assert_eq!(c.recv_type("welcome")["userId"], "alice");
    let bearer = format!("Bearer {t}");
    let mut c = Client::connect_with(s.addr, "/ws", &[("Authorization", &bearer)]).unwrap();
    assert_eq!(c.recv_type("welcome")["userId"], "alice");
}

#[test]
fn refused_tokens_get_401() {
    let s = token_server();
    let expired = token(json!({"sub": "alice", "exp": now() - 120}), SECRET);
    let not_yet = token(json!({"sub": "alice", "nbf": now() + 3600}), SECRET);
    let wrong_key = token(
        json!({"sub": "alice"}),
        "another-secret-another-secret-another",
    );
    let no_sub = token(json!({"name": "alice", "exp": now() + 60}), SECRET);
    let bad_sub = token(json!({"sub": "a b", "exp": now() + 60}), SECRET);
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &json!({"sub": "alice"}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let alg_none = {
        use base64_like::b64;
        format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(br#"{"sub":"alice"}"#)
        )
    };
    for (what, t) in [
        ("expired", expired),
        ("nbf", not_yet),
        ("wrong key", wrong_key),
        ("no sub", no_sub),
        ("bad sub", bad_sub),
        ("hs512", hs512),
        ("alg none", alg_none),
        ("garbage", "x.y.z".into()),
        (
            "broadcast not a boolean",
            token(json!({"sub": "alice", "broadcast": "yes"}), SECRET),
        ),
    ] {
        let (status, body) = refused(&s, &format!("/ws?token={t}"));
        assert_eq!(status, 401, "{what}");
        assert!(body.contains(r#""error":"unauthorized""#), "{what}: {body}");
    }
    let (status, _) = refused(&s, "/ws");
    assert_eq!(status, 401, "no token");
    let (status, _) = refused(&s, "/ws?userId=alice");
    assert_eq!(status, 401, "insecure ids are not accepted in token mode");
}

#[test]
fn ambiguous_or_critical_tokens_are_refused() {
    let s = token_server();
    let alice = token(json!({"sub": "alice", "exp": now() + 60}), SECRET);
    let bob = token(json!({"sub": "bob", "exp": now() + 60}), SECRET);
    let bearer = |t: &str| format!("Bearer {t}");
    // A different token in the query and the header: neither wins.
    let r = Client::connect_with(
        s.addr,
        &format!("/ws?token={alice}"),
        &[("Authorization", &bearer(&bob))],
    )
    .err()
    .expect("query and header disagree");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("ambiguous"), "{}", r.body);
    // The same token in both is one token.
    let mut c = Client::connect_with(
        s.addr,
        &format!("/ws?token={alice}"),
        &[("Authorization", &bearer(&alice))],
    )
    .unwrap();
    assert_eq!(c.recv_type("welcome")["userId"], "alice");
    for twice in [
        format!("/ws?token={alice}&token={bob}"),
        format!("/ws?token={alice}&token={alice}"),
    ] {
        let (status, body) = refused(&s, &twice);
        assert_eq!(status, 401, "{twice}");
        assert!(body.contains("more than once"), "{body}");
    }
    // A validly signed token whose header lists a critical extension.
    let claims = alice.split('.').nth(1).unwrap();
    let header = base64_like::b64(br#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#);
    let input = format!("{header}.{claims}");
    let sig = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    )
    .unwrap();
    let (status, body) = refused(&s, &format!("/ws?token={input}.{sig}"));
    assert_eq!(status, 401);
    assert!(body.contains("crit"), "{body}");
    // Insecure mode: a repeated userId.
    let insecure = ServerProcess::start(&[], &[]);
    let (status, body) = refused(&insecure, "/ws?userId=alice&userId=bob");
    assert_eq!(status, 400);
    assert!(body.contains("bad_user_id"), "{body}");
}

#[test]
fn clock_skew_within_the_leeway_is_tolerated() {
    // Default JWT_LEEWAY_SECS is 5: a token expired 2 s ago, or valid from
    // 2 s on, passes; beyond the leeway it does not.
    let s = token_server();
    for claims in [
        json!({"sub": "alice", "exp": now() - 2}),
        json!({"sub": "alice", "nbf": now() + 2}),
    ] {
        let t = token(claims.clone(), SECRET);
        let mut c = Client::connect(s.addr, &format!("/ws?token={t}"))
            .unwrap_or_else(|r| panic!("{claims} refused: {r:?}"));
        c.recv_type("welcome");
    }
    let late = token(json!({"sub": "alice", "exp": now() - 30}), SECRET);
    assert_eq!(refused(&s, &format!("/ws?token={late}")).0, 401);
    // JWT_LEEWAY_SECS=0: no skew at all.
    let strict = ServerProcess::start(&[], &[("JWT_SECRET", SECRET), ("JWT_LEEWAY_SECS", "0")]);
    let t = token(json!({"sub": "alice", "exp": now() - 2}), SECRET);
    assert_eq!(refused(&strict, &format!("/ws?token={t}")).0, 401);
}

#[test]
fn insecure_mode_refusals() {
    let s = ServerProcess::start(&[], &[]);
    let (status, body) = refused(&s, "/ws");
    assert_eq!(status, 400);
    assert!(body.contains("missing_user"), "{body}");
    let (status, body) = refused(&s, "/ws?userId=not%20valid");
    assert_eq!(status, 400);
    assert!(body.contains("bad_user_id"), "{body}");
    let long = "u".repeat(129);
    assert_eq!(refused(&s, &format!("/ws?userId={long}")).0, 400);
    let ok = "u".repeat(128);
    let mut c = Client::connect(s.addr, &format!("/ws?userId={ok}")).unwrap();
    c.recv_type("welcome");
}

#[test]
fn origin_allow_list() {
    let s = ServerProcess::start(&[], &[("ALLOWED_ORIGINS", "https://app.example")]);
    let r = Client::connect_with(
        s.addr,
        "/ws?userId=a",
        &[("Origin", "https://evil.example")],
    )
    .err()
    .unwrap();
    assert_eq!(r.status, 403);
    assert!(r.body.contains("origin_not_allowed"));
    let mut c =
        Client::connect_with(s.addr, "/ws?userId=a", &[("Origin", "https://app.example")]).unwrap();
    c.recv_type("welcome");
}

#[test]
fn origins_compare_case_insensitively_with_default_ports() {
    let s = ServerProcess::start(&[], &[("ALLOWED_ORIGINS", "https://App.Example.com")]);
    for same in [
        "HTTPS://APP.EXAMPLE.COM",
        "https://app.example.com",
        "https://app.example.com:443",
    ] {
        let mut c = Client::connect_with(s.addr, "/ws?userId=a", &[("Origin", same)])
            .unwrap_or_else(|r| panic!("{same} refused: {r:?}"));
        c.recv_type("welcome");
    }
    for other in ["https://app.example.com:8443", "http://app.example.com"] {
        let r = Client::connect_with(s.addr, "/ws?userId=a", &[("Origin", other)])
            .err()
            .unwrap_or_else(|| panic!("{other} accepted"));
        assert_eq!(r.status, 403, "{other}");
    }
}

#[test]
fn insecure_mode_on_a_public_address_refuses_to_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_websocket-app"))
        .args(["--host", "0.0.0.0", "--port", "0"])
        .env_remove("JWT_SECRET")
        .env_remove("AUTH_MODE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("JWT_SECRET"),
        "the error names the setting: {err}"
    );
}

#[test]
fn explicit_insecure_mode_warns_loudly() {
    let s = ServerProcess::start(&[], &[("AUTH_MODE", "insecure")]);
    let line = s.wait_log("WARN");
    assert!(line.to_lowercase().contains("insecure"), "{line}");
}

/// Minimal base64url (no padding) for hand-made tokens.
mod base64_like {
    pub fn b64(data: &[u8]) -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
