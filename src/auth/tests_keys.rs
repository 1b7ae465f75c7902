//! RS256 and ES256 tokens (`JWT_PUBLIC_KEY_FILE`), with and without an
//! HS256 secret beside them, and the algorithm confusions they must resist.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;

const SECRET: &[u8] = b"an-hs256-secret-of-at-least-32-bytes!";
const NOW: u64 = 1_700_000_000;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(path).unwrap()
}

fn public(name: &str) -> PublicKey {
    PublicKey::from_pem(&fixture(name)).unwrap()
}

fn sign(alg: Algorithm, key: &EncodingKey, sub: &str) -> String {
    let claims = json!({"sub": sub, "exp": NOW + 60});
    encode(&Header::new(alg), &claims, key).unwrap()
}

fn rsa_signer() -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture("rsa-private.pem")).unwrap()
}

fn ec_signer() -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture("ec-private.pem")).unwrap()
}

fn user(auth: &Authenticator, token: &str) -> Result<String, String> {
    auth.verify_token(token, NOW)
        .map(|id| id.user.to_string())
        .map_err(|r| r.message)
}

#[test]
fn rs256_and_es256_tokens_verify_with_their_public_key() {
    let rsa = Authenticator::with_keys(None, Some(&public("rsa-public.pem")), None);
    assert_eq!(
        user(&rsa, &sign(Algorithm::RS256, &rsa_signer(), "ann")),
        Ok("ann".into())
    );
    let ec = Authenticator::with_keys(None, Some(&public("ec-public.pem")), None);
    assert_eq!(
        user(&ec, &sign(Algorithm::ES256, &ec_signer(), "bo")),
        Ok("bo".into())
    );
}

#[test]
fn each_key_verifies_only_its_own_algorithm() {
    let rsa = Authenticator::with_keys(None, Some(&public("rsa-public.pem")), None);
    // An RSA key cannot check an EC signature, nor another RSA variant.
    let es = sign(Algorithm::ES256, &ec_signer(), "ann");
    assert_eq!(user(&rsa, &es), Err("token algorithm not allowed".into()));
    let ps = sign(Algorithm::PS256, &rsa_signer(), "ann");
    assert_eq!(user(&rsa, &ps), Err("token algorithm not allowed".into()));
    let rs512 = sign(Algorithm::RS512, &rsa_signer(), "ann");
    assert_eq!(
        user(&rsa, &rs512),
        Err("token algorithm not allowed".into())
    );
    // Without JWT_SECRET there is no HS256 key at all.
    let hs = sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), "ann");
    assert_eq!(user(&rsa, &hs), Err("token algorithm not allowed".into()));
}

#[test]
fn an_hs256_token_signed_with_the_public_pem_is_refused() {
    // The classic confusion: the attacker knows the public key and uses
    // its PEM bytes as an HMAC secret.
    for (name, with_secret) in [("rsa-public.pem", false), ("ec-public.pem", true)] {
        let pem = fixture(name);
        let secret = with_secret.then_some(SECRET);
        let auth = Authenticator::with_keys(secret, Some(&public(name)), None);
        let forged = sign(Algorithm::HS256, &EncodingKey::from_secret(&pem), "admin");
        let err = user(&auth, &forged).unwrap_err();
        assert!(
            err == "token algorithm not allowed" || err == "bad token signature",
            "{name}: {err}"
        );
    }
}

#[test]
fn a_secret_and_a_public_key_work_side_by_side() {
    let auth = Authenticator::with_keys(Some(SECRET), Some(&public("ec-public.pem")), None);
    let hs = sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET), "hs");
    assert_eq!(user(&auth, &hs), Ok("hs".into()));
    let es = sign(Algorithm::ES256, &ec_signer(), "es");
    assert_eq!(user(&auth, &es), Ok("es".into()));
    // A token signed by another EC key fails on its signature.
    let other = EncodingKey::from_ec_pem(&fixture("ec-other-private.pem")).unwrap();
    let err = user(&auth, &sign(Algorithm::ES256, &other, "es")).unwrap_err();
    assert_eq!(err, "bad token signature");
}
