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

/// A fresh key pair for RS256/ES256 tests, made by `openssl` in a
/// temporary directory (removed when this is dropped): no key is shared
/// between runs or checked in for the integration tests.
pub struct GeneratedKey {
    dir: tempfile::TempDir,
}

impl GeneratedKey {
    /// A new RSA-2048 (`Algorithm::RS256`) or P-256 (`Algorithm::ES256`) key.
    pub fn new(alg: Algorithm) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private.pem");
        let algorithm: &[&str] = match alg {
            Algorithm::RS256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Algorithm::ES256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            other => panic!("no key generation for {other:?}"),
        };
        openssl(&[&["genpkey"], algorithm, &["-out", path_str(&private)]].concat());
        let public = dir.path().join("public.pem");
        openssl(&[
            "pkey",
            "-in",
            path_str(&private),
            "-pubout",
            "-out",
            path_str(&public),
        ]);
        Self { dir }
    }

    /// Path of the public key (PEM), for `JWT_PUBLIC_KEY_FILE`.
    pub fn public_path(&self) -> String {
        path_str(&self.dir.path().join("public.pem")).to_owned()
    }

    /// The private key (PEM), to sign with.
    pub fn private_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("private.pem")).unwrap()
    }
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Runs `openssl` with `args`; fails the test with its stderr otherwise.
fn openssl(args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl not found: tests/run-all.sh installs it");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}
