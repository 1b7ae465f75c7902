//! Tests of authentication: JWT, insecure mode, user ids, origins.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::protocol::handshake::parse_request;
use crate::protocol::is_valid_user_id;

const SECRET: &[u8] = b"test-secret-please-change";
const NOW: u64 = 1_700_000_000;
/// `{"alg":"none","typ":"JWT"}`, base64url.
const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
/// `{"alg":"RS256","typ":"JWT"}`, base64url.
const RS256_HEADER: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

fn mint_with(alg: Algorithm, secret: &[u8], claims: Value) -> String {
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn mint(claims: Value) -> String {
    mint_with(Algorithm::HS256, SECRET, claims)
}

fn request(target: &str, headers: &str) -> Request {
    let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    parse_request(head.as_bytes()).unwrap().unwrap()
}

fn with_query_token(token: &str) -> Request {
    request(&format!("/ws?token={token}"), "")
}

fn jwt() -> Authenticator {
    Authenticator::token(SECRET, None)
}

fn refusal(auth: &Authenticator, req: &Request) -> (u16, &'static str, String) {
    let r = auth.authenticate(req, NOW).unwrap_err();
    (r.status, r.code, r.message)
}

fn assert_unauthorized(token: &str, reason: &str) {
    let (status, code, message) = refusal(&jwt(), &with_query_token(token));
    assert_eq!((status, code), (401, "unauthorized"), "{reason}");
    assert!(
        message.contains(reason),
        "{message:?} should say {reason:?}"
    );
    assert!(!message.contains(token));
}

#[test]
fn user_id_validation() {
    assert!(is_valid_user_id("alice"));
    assert!(is_valid_user_id("A-z_0.9:x@y"));
    assert!(is_valid_user_id(&"a".repeat(128)));
    assert!(!is_valid_user_id(&"a".repeat(129)));
    for bad in ["", "a b", "a/b", "é", "a\0", "a+b", "<script>"] {
        assert!(!is_valid_user_id(bad), "{bad:?}");
    }
    let id = UserId::parse("bob").unwrap();
    assert_eq!((&*id, id.to_string()), ("bob", "bob".to_owned()));
    assert_eq!(UserId::parse("b b"), None);
}

#[test]
fn valid_token_via_query_and_bearer() {
    let token = mint(json!({"sub": "alice", "exp": NOW + 60, "nbf": NOW}));
    assert_eq!(
        &*jwt().authenticate(&with_query_token(&token), NOW).unwrap(),
        "alice"
    );
    let req = request("/ws", &format!("Authorization: Bearer {token}\r\n"));
    assert_eq!(&*jwt().authenticate(&req, NOW).unwrap(), "alice");
    // Without exp or nbf the token does not expire.
    let forever = mint(json!({"sub": "bob"}));
    assert_eq!(
        &*jwt()
            .authenticate(&with_query_token(&forever), u64::MAX)
            .unwrap(),
        "bob"
    );
}

#[test]
fn empty_query_token_falls_back_to_bearer() {
    let token = mint(json!({"sub": "carol"}));
    let req = request("/ws?token=", &format!("Authorization: Bearer {token}\r\n"));
    assert_eq!(&*jwt().authenticate(&req, NOW).unwrap(), "carol");
}

#[test]
fn missing_token_is_unauthorized() {
    assert_eq!(refusal(&jwt(), &request("/ws", "")).0, 401);
    assert_eq!(
        refusal(&jwt(), &request("/ws?userId=alice", "")).2,
        "missing token"
    );
}

#[test]
fn expiry_and_not_before() {
    assert_unauthorized(&mint(json!({"sub": "a", "exp": NOW - 1})), "expired");
    assert_unauthorized(&mint(json!({"sub": "a", "exp": NOW})), "expired");
    assert_unauthorized(&mint(json!({"sub": "a", "nbf": NOW + 1})), "not yet valid");
    assert_unauthorized(&mint(json!({"sub": "a", "exp": "soon"})), "malformed");
    let fractional = mint(json!({"sub": "a", "exp": NOW as f64 + 0.5}));
    assert!(jwt()
        .authenticate(&with_query_token(&fractional), NOW)
        .is_ok());
}

#[test]
fn leeway_widens_exp_and_nbf_by_whole_seconds() {
    let lenient = jwt().with_leeway(std::time::Duration::from_secs(5));
    let at = |claims: Value| lenient.authenticate(&with_query_token(&mint(claims)), NOW);
    assert!(at(json!({"sub": "a", "exp": NOW - 4})).is_ok());
    assert!(at(json!({"sub": "a", "exp": NOW - 5})).is_err());
    assert!(at(json!({"sub": "a", "nbf": NOW + 5})).is_ok());
    assert!(at(json!({"sub": "a", "nbf": NOW + 6})).is_err());
    assert_unauthorized(&mint(json!({"sub": "a", "exp": NOW})), "expired");
}

#[test]
fn ambiguous_tokens_are_refused() {
    let alice = mint(json!({"sub": "alice"}));
    let bob = mint(json!({"sub": "bob"}));
    let both = |query: &str, bearer: &str| {
        request(
            &format!("/ws?token={query}"),
            &format!("Authorization: Bearer {bearer}\r\n"),
        )
    };
    let (status, _, message) = refusal(&jwt(), &both(&alice, &bob));
    assert_eq!(status, 401);
    assert!(message.contains("ambiguous"), "{message}");
    assert_eq!(
        &*jwt().authenticate(&both(&alice, &alice), NOW).unwrap(),
        "alice"
    );
    for twice in [
        format!("/ws?token={alice}&token={bob}"),
        format!("/ws?token={alice}&token={alice}"),
        format!("/ws?token={alice}&%74oken="),
    ] {
        let (status, _, message) = refusal(&jwt(), &request(&twice, ""));
        assert_eq!(status, 401, "{twice}");
        assert!(message.contains("more than once"), "{message}");
    }
}

#[test]
fn a_crit_header_is_refused() {
    // {"alg":"HS256","crit":["exp"]}: signed properly, with claims that pass.
    const CRIT_HEADER: &str = "eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiZXhwIl19";
    let good = mint(json!({"sub": "alice", "exp": NOW + 60}));
    let claims = good.split('.').nth(1).unwrap();
    let signing_input = format!("{CRIT_HEADER}.{claims}");
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    )
    .unwrap();
    assert_unauthorized(&format!("{signing_input}.{signature}"), "crit");
    assert!(jwt().authenticate(&with_query_token(&good), NOW).is_ok());
}

#[test]
fn wrong_secret_is_refused() {
    assert_unauthorized(
        &mint_with(Algorithm::HS256, b"other", json!({"sub": "a"})),
        "signature",
    );
}

#[test]
fn other_algorithms_are_refused() {
    assert_unauthorized(
        &mint_with(Algorithm::HS512, SECRET, json!({"sub": "a"})),
        "algorithm",
    );
    let good = mint(json!({"sub": "a"}));
    let (_, rest) = good.split_once('.').unwrap();
    assert_unauthorized(&format!("{RS256_HEADER}.{rest}"), "algorithm");
    let payload = rest.split_once('.').unwrap().0;
    assert_unauthorized(&format!("{NONE_HEADER}.{payload}."), "malformed");
    assert_unauthorized(&format!("{NONE_HEADER}.{rest}"), "malformed");
}

#[test]
fn garbage_tokens_are_refused() {
    for token in ["x", "a.b", "a.b.c", "...", "%FF%FE.x.y"] {
        let (status, code, _) = refusal(&jwt(), &with_query_token(token));
        assert_eq!((status, code), (401, "unauthorized"), "{token:?}");
    }
}

/// Claims the `jwt` fuzz target exercises, pinned: wrong types, lists too
/// long or naming invalid channels, and extreme times.
#[test]
fn nasty_claims_are_refused_or_bounded() {
    assert_unauthorized(&mint(json!({"sub": "a", "channels": "x"})), "malformed");
    assert_unauthorized(&mint(json!({"sub": "a", "subs": [1]})), "malformed");
    assert_unauthorized(&mint(json!({"sub": "a", "broadcast": 1})), "malformed");
    assert_unauthorized(&mint(json!({"sub": "a", "exp": "soon"})), "malformed");
    assert_unauthorized(
        &mint(json!({"sub": "a", "subs": ["a b"]})),
        "invalid channel",
    );
    let many = vec!["c"; MAX_CLAIM_ENTRIES + 1];
    assert_unauthorized(&mint(json!({"sub": "a", "channels": many})), "too long");
    assert_unauthorized(&mint(json!({"sub": "a", "exp": -1e300})), "expired");
    assert_unauthorized(&mint(json!({"sub": "a", "nbf": 1e300})), "not yet valid");
    let far = jwt()
        .verify_token(&mint(json!({"sub": "a", "exp": 1e300})), NOW)
        .unwrap();
    assert_eq!(far.expires_at, Some(u64::MAX));
    let dated = jwt()
        .verify_token(&mint(json!({"sub": "a", "exp": NOW + 60})), NOW)
        .unwrap();
    assert_eq!(dated.expires_at, Some(NOW + 60));
    assert!(dated.grants.is_none(), "an expiry alone is not a grant");
    let bare = jwt()
        .verify_token(
            &mint(json!({"sub": "a", "channels": [], "subs": null})),
            NOW,
        )
        .unwrap();
    assert!(bare.grants.is_none(), "nothing granted beyond the sub");
}

#[test]
fn sub_is_required_and_validated() {
    assert_unauthorized(&mint(json!({"exp": NOW + 60})), "no sub");
    assert_unauthorized(&mint(json!({"sub": "a b"})), "not a valid user id");
    assert_unauthorized(&mint(json!({"sub": ""})), "not a valid user id");
    assert_unauthorized(
        &mint(json!({"sub": "a".repeat(129)})),
        "not a valid user id",
    );
    assert_unauthorized(&mint(json!({"sub": 42})), "malformed");
}

#[test]
fn insecure_mode() {
    let auth = Authenticator::insecure(None);
    assert!(auth.is_insecure() && !jwt().is_insecure());
    let ok = auth
        .authenticate(&request("/ws?userId=alice%40home", ""), NOW)
        .unwrap();
    assert_eq!(&*ok, "alice@home");
    for target in ["/ws", "/ws?userId=", "/ws?userid=alice"] {
        let (status, code, message) = refusal(&auth, &request(target, ""));
        assert_eq!(
            (status, code, message.as_str()),
            (400, "missing_user", "missing userId"),
            "{target}"
        );
    }
    assert_eq!(
        refusal(&auth, &request("/ws?userId=a%20b", "")).1,
        "bad_user_id"
    );
    assert_eq!(
        refusal(&auth, &request("/ws?userId=alice&userId=bob", "")),
        (
            400,
            "bad_user_id",
            "userId is given more than once".to_owned()
        )
    );
    let long = |n| request(&format!("/ws?userId={}", "u".repeat(n)), "");
    assert!(auth.authenticate(&long(128), NOW).is_ok());
    assert_eq!(
        refusal(&auth, &long(129)),
        (400, "bad_user_id", "invalid userId".to_owned())
    );
    // A token is not an identity in insecure mode.
    let token = mint(json!({"sub": "alice"}));
    assert_eq!(refusal(&auth, &with_query_token(&token)).1, "missing_user");
}

#[test]
fn origins() {
    let allowed = Some(vec![
        "https://app.example".to_owned(),
        "http://localhost:3000".to_owned(),
    ]);
    let auth = Authenticator::insecure(allowed.clone());
    let with_origin = |o: &str| request("/ws?userId=u", &format!("Origin: {o}\r\n"));
    assert!(auth
        .authenticate(&with_origin("https://app.example"), NOW)
        .is_ok());
    assert!(auth
        .authenticate(&with_origin("http://localhost:3000"), NOW)
        .is_ok());
    // RFC 6454: scheme and host are case-insensitive, the default port implied.
    for same in [
        "HTTPS://APP.EXAMPLE",
        "https://App.Example:443",
        "http://LOCALHOST:3000",
    ] {
        assert!(auth.authenticate(&with_origin(same), NOW).is_ok(), "{same}");
    }
    for bad in [
        "https://evil.example",
        "https://app.example.evil",
        "https://app.example:8443",
        "http://app.example",
        "https://app.example/",
        "http://localhost",
        "null",
        "",
    ] {
        assert_eq!(refusal(&auth, &with_origin(bad)).0, 403, "{bad}");
    }
    // An allow-list written in another case matches too.
    let upper = Authenticator::insecure(Some(vec!["HTTPS://App.Example:443".to_owned()]));
    assert!(upper
        .authenticate(&with_origin("https://app.example"), NOW)
        .is_ok());
    let (status, code, _) = refusal(&auth, &request("/ws?userId=u", ""));
    assert_eq!((status, code), (403, "origin_not_allowed"));
    // The origin is checked before identity, in token mode too.
    let token_auth = Authenticator::token(SECRET, allowed);
    assert_eq!(
        refusal(
            &token_auth,
            &request("/ws", "Origin: https://evil.example\r\n")
        )
        .0,
        403
    );
    // Without an allow-list any origin, or none, is fine.
    assert!(Authenticator::insecure(None)
        .authenticate(&with_origin("https://x"), NOW)
        .is_ok());
}

#[test]
fn refusal_response_is_json() {
    let r = jwt().authenticate(&request("/ws", ""), NOW).unwrap_err();
    let resp = String::from_utf8(r.to_response()).unwrap();
    assert!(resp.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    assert!(resp.ends_with(r#"{"error":"unauthorized","message":"missing token"}"#));
}

#[test]
fn debug_does_not_leak_the_secret() {
    assert!(!format!("{:?}", jwt()).contains("test-secret"));
}
