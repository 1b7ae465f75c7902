//! JWTs for the integration tests: the shared HS256 secret, the clock, and
//! signing.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::Value;

/// `JWT_SECRET` of the token-mode test servers.
pub const SECRET: &str = "an-hs256-test-secret-of-at-least-32-bytes";

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `claims` signed HS256 with `secret`.
pub fn hs256_with(claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

/// `claims` signed HS256 with [`SECRET`].
pub fn hs256(claims: Value) -> String {
    hs256_with(&claims, SECRET)
}
