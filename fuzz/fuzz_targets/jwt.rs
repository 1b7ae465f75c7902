//! JWT verification after the signature: token splitting, the header's
//! `crit` check, and the claims (`sub`, `channels`, `subs`, `broadcast`,
//! `exp`, `nbf`).
//!
//! Byte 0 picks the mode:
//! - 0: the rest is a whole token: never valid (it is not signed with the
//!   secret), always a 401 whose answer can be written.
//! - 1: the rest is the claims part, any bytes, signed with the secret: a
//!   token accepted is one whose claims are a JSON object with a valid
//!   `sub`, bounded `channels`/`subs`, valid `subs` channels and times that
//!   hold; the identity says exactly what the claims say.
//! - else: structured claims (`arbitrary`), signed: the verdict must be
//!   exactly the one the contract gives (accepted, or 401).
#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use websocket_app::auth::{crit::has_crit, Authenticator, Identity, Refusal, MAX_CLAIM_ENTRIES};
use websocket_app::protocol::channel::is_valid_channel;
use websocket_app::protocol::is_valid_user_id;

const SECRET: &[u8] = b"fuzz-secret";
const NOW: u64 = 1_700_000_000;

fn auth() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| Authenticator::token(SECRET, None))
}

/// `header.claims.signature` with an HS256 signature by the secret.
fn signed(header: &[u8], claims: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = EncodingKey::from_secret(SECRET);
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256)
        .expect("HS256 signs");
    format!("{message}.{sig}")
}

fn check_refusal(r: &Refusal) {
    assert_eq!((r.status, r.code), (401, "unauthorized"), "{}", r.message);
    let response = r.to_response();
    assert!(response.starts_with(b"HTTP/1.1 401 "));
}

/// Structured claims: each field absent, or a value of the right type.
#[derive(Arbitrary, Debug)]
struct Claims {
    sub: Option<String>,
    channels: Option<Vec<String>>,
    subs: Option<Vec<String>>,
    broadcast: Option<bool>,
    /// Seconds relative to `NOW`.
    exp: Option<i32>,
    nbf: Option<i32>,
    /// Whether the header lists `crit`.
    crit: bool,
    /// An extra claim the server must ignore.
    extra: Option<(String, String)>,
}

/// What the contract says of `c`: accepted with these grants, or refused.
fn expected(c: &Claims) -> Option<(&str, bool, Option<u64>)> {
    let sub = c.sub.as_deref().filter(|s| is_valid_user_id(s))?;
    let channels = c.channels.as_deref().unwrap_or_default();
    let subs = c.subs.as_deref().unwrap_or_default();
    if c.crit || channels.len() > MAX_CLAIM_ENTRIES || subs.len() > MAX_CLAIM_ENTRIES {
        return None;
    }
    if !subs.iter().all(|s| is_valid_channel(s)) {
        return None;
    }
    let exp = c.exp.map(|e| NOW as i64 + i64::from(e));
    let nbf = c.nbf.map(|n| NOW as i64 + i64::from(n));
    if exp.is_some_and(|e| NOW as i64 >= e) || nbf.is_some_and(|n| (NOW as i64) < n) {
        return None;
    }
    Some((
        sub,
        c.broadcast.unwrap_or(false),
        exp.map(|e| e.max(0) as u64),
    ))
}

fn structured(c: &Claims) {
    let mut obj = Map::new();
    const KNOWN: [&str; 6] = ["sub", "channels", "subs", "broadcast", "exp", "nbf"];
    if let Some((k, v)) = c
        .extra
        .as_ref()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
    {
        obj.insert(k.clone(), json!(v));
    }
    let mut put = |k: &str, v: Value| {
        obj.insert(k.to_owned(), v);
    };
    if let Some(s) = &c.sub {
        put("sub", json!(s));
    }
    if let Some(v) = &c.channels {
        put("channels", json!(v));
    }
    if let Some(v) = &c.subs {
        put("subs", json!(v));
    }
    if let Some(b) = c.broadcast {
        put("broadcast", json!(b));
    }
    if let Some(e) = c.exp {
        put("exp", json!(NOW as i64 + i64::from(e)));
    }
    if let Some(n) = c.nbf {
        put("nbf", json!(NOW as i64 + i64::from(n)));
    }
    let header = if c.crit {
        br#"{"alg":"HS256","typ":"JWT","crit":["exp"]}"#.as_slice()
    } else {
        br#"{"alg":"HS256","typ":"JWT"}"#.as_slice()
    };
    let claims = Value::Object(obj).to_string();
    let token = signed(header, claims.as_bytes());
    assert_eq!(has_crit(&token), c.crit);
    let got = auth().verify_token(&token, NOW);
    match (expected(c), got) {
        (None, Err(r)) => check_refusal(&r),
        (Some((sub, broadcast, expires)), Ok(id)) => {
            assert_eq!(&*id.user, sub);
            let g = id.grants.as_deref().cloned().unwrap_or_default();
            assert_eq!(g.broadcast, broadcast);
            assert_eq!(id.expires_at, expires);
            let channels: Vec<&str> = g.channels.iter().map(|s| &**s).collect();
            let want: Vec<&str> = c.channels.iter().flatten().map(String::as_str).collect();
            assert_eq!(channels, want);
            let subs: Vec<&str> = g.subs.iter().map(|s| &**s).collect();
            let want: Vec<&str> = c.subs.iter().flatten().map(String::as_str).collect();
            assert_eq!(subs, want);
            assert!(!id.insecure);
        }
        (want, got) => panic!("claims {claims}: expected {want:?}, got {got:?}"),
    }
}

/// Claims bytes that were accepted say what the identity says.
fn raw_claims(claims: &[u8]) {
    let token = signed(br#"{"alg":"HS256","typ":"JWT"}"#, claims);
    let id: Identity = match auth().verify_token(&token, NOW) {
        Ok(id) => id,
        Err(r) => return check_refusal(&r),
    };
    let v: Map<String, Value> =
        serde_json::from_slice(claims).expect("accepted claims are an object");
    assert_eq!(v.get("sub").and_then(Value::as_str), Some(&*id.user));
    let g = id.grants.as_deref().cloned().unwrap_or_default();
    assert!(g.channels.len() <= MAX_CLAIM_ENTRIES && g.subs.len() <= MAX_CLAIM_ENTRIES);
    assert!(g.subs.iter().all(|s| is_valid_channel(s)));
    assert_eq!(g.broadcast, v.get("broadcast") == Some(&Value::Bool(true)));
    let time = |k: &str| v.get(k).and_then(Value::as_f64);
    if let Some(exp) = time("exp") {
        assert!((NOW as f64) < exp, "expired token accepted");
        assert_eq!(id.expires_at, Some(exp.max(0.0) as u64));
    }
    if let Some(nbf) = time("nbf") {
        assert!(nbf <= NOW as f64, "token accepted before nbf");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            let _ = has_crit(token);
            match auth().verify_token(token, NOW) {
                Err(r) => check_refusal(&r),
                Ok(id) => panic!("an unsigned token was accepted: {id:?}"),
            }
        }
        1 => raw_claims(rest),
        _ => {
            if let Ok(c) = Claims::arbitrary_take_rest(Unstructured::new(rest)) {
                structured(&c);
            }
        }
    }
});
