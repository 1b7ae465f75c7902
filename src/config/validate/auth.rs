//! Who may connect: the auth resolution (`JWT_SECRET`,
//! `JWT_PUBLIC_KEY_FILE`, `AUTH_MODE`, the host) and `ALLOWED_ORIGINS`.

use std::net::IpAddr;

use super::super::cli::AuthMode;
use super::super::error::{invalid, ConfigError};
use super::super::ResolvedAuth;
use crate::auth::PublicKey;

/// Shortest accepted JWT secret: HS256's key should be as long as its hash.
const MIN_SECRET_BYTES: usize = 32;

/// `JWT_PUBLIC_KEY_FILE`, read and checked at start.
pub(super) fn public_key(path: Option<&std::path::Path>) -> Result<Option<PublicKey>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| invalid("JWT_PUBLIC_KEY_FILE", format!("cannot read {shown}: {e}")))?;
    PublicKey::from_pem(&pem)
        .map(Some)
        .map_err(|why| invalid("JWT_PUBLIC_KEY_FILE", format!("{shown} {why}")))
}

/// The contract's rule: token whenever `JWT_SECRET` (or
/// `JWT_PUBLIC_KEY_FILE`) is set (`AUTH_MODE` insecure with it is an
/// error); `token` needs a key; insecure only without a key and either
/// asked for or on a loopback host.
pub(super) fn resolve_auth(
    secret: Option<&str>,
    public_key: Option<PublicKey>,
    mode: AuthMode,
    host: IpAddr,
) -> Result<ResolvedAuth, ConfigError> {
    if let Some(s) = secret.filter(|s| s.len() < MIN_SECRET_BYTES) {
        return Err(invalid(
            "JWT_SECRET",
            format!(
                "is {} bytes; it must be at least {MIN_SECRET_BYTES} bytes",
                s.len()
            ),
        ));
    }
    let has_key = secret.is_some() || public_key.is_some();
    match (has_key, mode) {
        (true, AuthMode::Insecure) => Err(invalid(
            "AUTH_MODE",
            "insecure cannot be combined with JWT_SECRET or JWT_PUBLIC_KEY_FILE (token auth is always on when one is set); unset one of them",
        )),
        (true, _) => Ok(ResolvedAuth::Token {
            secret: secret.map(|s| s.as_bytes().to_vec()),
            public_key,
        }),
        (false, AuthMode::Token) => Err(invalid(
            "JWT_SECRET",
            "is required by AUTH_MODE=token (at least 32 bytes), unless JWT_PUBLIC_KEY_FILE is set",
        )),
        (false, AuthMode::Insecure) => Ok(ResolvedAuth::Insecure { explicit: true }),
        (false, AuthMode::Auto) if is_loopback(host) => {
            Ok(ResolvedAuth::Insecure { explicit: false })
        }
        (false, AuthMode::Auto) => Err(invalid(
            "JWT_SECRET",
            format!(
                "is unset and the server listens on {host}, which is not a loopback address: \
                 set JWT_SECRET (token auth), or AUTH_MODE=insecure to accept unverified ?userId= identities"
            ),
        )),
    }
}

/// Loopback, including IPv4-mapped IPv6 (`::ffff:127.0.0.1`). The
/// unspecified addresses (`0.0.0.0`, `::`) listen everywhere: not loopback.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}
/// `ALLOWED_ORIGINS` as serialized origins (RFC 6454: `scheme://host[:port]`,
/// scheme and host lower-cased, the scheme's default port left out), the
/// form requests' `Origin` headers are compared in.
pub(super) fn origins(raw: Option<&str>) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let mut list = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if origin == "*" {
            return Err(invalid(
                "ALLOWED_ORIGINS",
                "'*' is not an origin; leave ALLOWED_ORIGINS unset to accept any",
            ));
        }
        let serialized = crate::auth::origin::serialize(origin).map_err(|why| {
            invalid(
                "ALLOWED_ORIGINS",
                format!("{origin:?} is not an origin like https://app.example.com[:port]: {why}"),
            )
        })?;
        if !list.contains(&serialized) {
            list.push(serialized);
        }
    }
    if list.is_empty() {
        return Err(invalid("ALLOWED_ORIGINS", "lists no origin"));
    }
    Ok(Some(list))
}
