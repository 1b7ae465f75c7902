//! The keys tokens are verified with: an HS256 secret (`JWT_SECRET`), an
//! RS256 or ES256 public key in PEM (`JWT_PUBLIC_KEY_FILE`), or both.
//!
//! Each key verifies exactly one algorithm, chosen from the key itself and
//! never from the token: a token's `alg` only selects among the configured
//! keys. So the classic confusion (an `HS256` token "signed" with the
//! public key's PEM as its HMAC secret) finds no HS256 key unless
//! `JWT_SECRET` is set, and then it is checked against that secret only.

use std::fmt;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// DER of the `prime256v1` (P-256) curve's object identifier.
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// A public key for RS256 or ES256, checked at start.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// `RS256` for an RSA key, `ES256` for a P-256 key.
    pub alg: Algorithm,
    /// The PEM as read.
    pem: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({:?}, {} PEM bytes)", self.alg, self.pem.len())
    }
}

impl PublicKey {
    /// Reads a PEM public key (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC
    /// KEY`): RSA gives RS256, EC on P-256 gives ES256; anything else
    /// (another curve, Ed25519, a private key, not PEM) is an error that
    /// says which.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("PRIVATE KEY-----") {
            // jsonwebtoken would take an RSA private key and then fail
            // every token; say what to give instead.
            return Err(
                "holds a private key; give the public key (openssl pkey -in key.pem -pubout)"
                    .into(),
            );
        }
        if DecodingKey::from_rsa_pem(pem).is_ok() {
            return Ok(Self {
                alg: Algorithm::RS256,
                pem: pem.to_vec(),
            });
        }
        if DecodingKey::from_ec_pem(pem).is_ok() {
            if !der_of(pem).is_some_and(|der| contains(&der, &P256_OID)) {
                return Err("is an EC key on a curve other than P-256 (ES256 needs P-256)".into());
            }
            return Ok(Self {
                alg: Algorithm::ES256,
                pem: pem.to_vec(),
            });
        }
        Err("is not a PEM RSA or P-256 EC public key (-----BEGIN PUBLIC KEY-----)".into())
    }

    fn decoding_key(&self) -> DecodingKey {
        let key = match self.alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(&self.pem),
            _ => DecodingKey::from_ec_pem(&self.pem),
        };
        key.expect("checked by PublicKey::from_pem")
    }
}

/// One algorithm and the key that verifies it.
#[derive(Clone)]
pub struct VerifyKey {
    /// The one algorithm this key verifies.
    pub(super) alg: Algorithm,
    /// The secret or public key.
    pub(super) key: DecodingKey,
    /// Exactly `alg`, no claim required by the library, no time checks
    /// there (`exp`/`nbf` are checked against the passed-in time).
    pub(super) validation: Validation,
}

impl VerifyKey {
    fn new(alg: Algorithm, key: DecodingKey) -> Self {
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        // No audience is configured: tokens carrying `aud` are not refused for it.
        validation.validate_aud = false;
        validation.leeway = 0;
        Self {
            alg,
            key,
            validation,
        }
    }
}

/// The verification keys of the configured secret and public key.
pub(super) fn verify_keys(secret: Option<&[u8]>, public: Option<&PublicKey>) -> Vec<VerifyKey> {
    let hs = secret.map(|s| VerifyKey::new(Algorithm::HS256, DecodingKey::from_secret(s)));
    let pk = public.map(|p| VerifyKey::new(p.alg, p.decoding_key()));
    hs.into_iter().chain(pk).collect()
}

/// The DER inside the first PEM block.
fn der_of(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    #[test]
    fn the_key_decides_the_algorithm() {
        let rsa = PublicKey::from_pem(&fixture("rsa-public.pem")).unwrap();
        assert_eq!(rsa.alg, Algorithm::RS256);
        let ec = PublicKey::from_pem(&fixture("ec-public.pem")).unwrap();
        assert_eq!(ec.alg, Algorithm::ES256);
    }

    #[test]
    fn other_keys_are_refused_saying_why() {
        let p384 = PublicKey::from_pem(&fixture("p384-public.pem")).unwrap_err();
        assert!(p384.contains("P-256"), "{p384}");
        let private = PublicKey::from_pem(&fixture("rsa-private.pem")).unwrap_err();
        assert!(private.contains("private key"), "{private}");
        for name in ["ed25519-public.pem", "README.md"] {
            let err = PublicKey::from_pem(&fixture(name)).unwrap_err();
            assert!(err.contains("not a PEM RSA or P-256"), "{name}: {err}");
        }
        assert!(PublicKey::from_pem(b"").is_err());
    }
}
