//! Who a client is, decided before the WebSocket upgrade.
//!
//! Two modes (see the protocol's "Connecting"): JWTs whose `sub` is the
//! user id (`?token=` or `Authorization: Bearer`; HS256 with `JWT_SECRET`,
//! RS256 or ES256 with `JWT_PUBLIC_KEY_FILE`, see [`keys`]), or the
//! original server's insecure `?userId=`. An `Origin` allow-list applies
//! to both.
//!
//! I/O-free and deterministic: the current time is passed in, so `exp` and
//! `nbf` are checked here against it rather than by `jsonwebtoken` against
//! the system clock, with the configured clock-skew leeway
//! (`JWT_LEEWAY_SECS`): `exp` is exclusive (RFC 7519 §4.1.4), `nbf`
//! inclusive, each widened by the leeway.
//!
//! Ambiguity is refused rather than resolved: a request whose `?token=` and
//! `Authorization: Bearer` differ, or that repeats `token` (or `userId` in
//! insecure mode), could mean different users to a proxy that picks the
//! other one. A token whose header has `crit` is refused (see [`crit`]).

pub mod crit;
pub mod keys;
pub mod origin;

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;

use serde::Deserialize;

use crate::protocol::channel::ChannelName;
pub use crate::protocol::handshake::Refusal;
use crate::protocol::handshake::Request;
use crate::protocol::UserId;

mod grants;

pub use grants::{may_broadcast, may_subscribe, Grants, GrantsCache, Identity, MAX_CLAIM_ENTRIES};
pub use keys::PublicKey;
use keys::VerifyKey;

/// How identities are established.
#[derive(Clone)]
pub enum AuthMode {
    /// JWTs, each verified by the one configured key of its `alg`.
    Token {
        /// Built once: HS256 from `JWT_SECRET`, RS256 or ES256 from
        /// `JWT_PUBLIC_KEY_FILE`.
        keys: Vec<VerifyKey>,
    },
    /// `?userId=` taken on trust (loopback or explicit opt-in only).
    Insecure,
}

/// Hand-written so that the secret never reaches a log.
impl fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token { keys } => {
                let algs: Vec<_> = keys.iter().map(|k| k.alg).collect();
                write!(f, "Token({algs:?}, <keys hidden>)")
            }
            Self::Insecure => f.write_str("Insecure"),
        }
    }
}

/// The claims we read; anything else in the token is ignored.
#[derive(Deserialize)]
struct Claims {
    /// Channels the token may subscribe to (exact names or `prefix*`).
    #[serde(default)]
    channels: Option<Vec<String>>,
    /// Channels the connection is subscribed to at connect.
    #[serde(default)]
    subs: Option<Vec<String>>,
    /// Whether the client may broadcast.
    #[serde(default)]
    broadcast: Option<bool>,
    /// The user id; `Option` so that a missing `sub` is a clear refusal.
    sub: Option<String>,
    /// Expiry (NumericDate; fractions allowed), honoured when present.
    exp: Option<f64>,
    /// Not-before (NumericDate), honoured when present.
    nbf: Option<f64>,
}

/// Decides who connects, from the request head and the current time.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// Token or insecure mode.
    mode: AuthMode,
    /// `ALLOWED_ORIGINS`: when set, the accepted origins, serialized.
    allowed_origins: Option<Vec<String>>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    leeway_secs: u64,
}

/// The allow-list in serialized form. The configuration has already
/// refused entries that are not origins; any other caller's such entry
/// could never match a request, so it is left out.
fn serialized(list: Option<Vec<String>>) -> Option<Vec<String>> {
    list.map(|l| l.iter().filter_map(|o| origin::serialize(o).ok()).collect())
}

impl Authenticator {
    /// JWT mode with the HS256 secret (the configuration refuses an empty one).
    pub fn token(secret: &[u8], allowed_origins: Option<Vec<String>>) -> Self {
        Self::with_keys(Some(secret), None, allowed_origins)
    }

    /// JWT mode with an HS256 secret, an RS256/ES256 public key, or both
    /// (at least one: the configuration sees to it).
    pub fn with_keys(
        secret: Option<&[u8]>,
        public: Option<&PublicKey>,
        allowed_origins: Option<Vec<String>>,
    ) -> Self {
        let mode = AuthMode::Token {
            keys: keys::verify_keys(secret, public),
        };
        Self {
            mode,
            allowed_origins: serialized(allowed_origins),
            leeway_secs: 0,
        }
    }

    /// Insecure `?userId=` mode.
    pub fn insecure(allowed_origins: Option<Vec<String>>) -> Self {
        Self {
            mode: AuthMode::Insecure,
            allowed_origins: serialized(allowed_origins),
            leeway_secs: 0,
        }
    }

    /// Allows `leeway` of clock skew between the token's issuer and this
    /// server on `exp` and `nbf` (none unless set; the configuration's
    /// default is `JWT_LEEWAY_SECS`). Whole seconds: NumericDates are.
    pub fn with_leeway(mut self, leeway: std::time::Duration) -> Self {
        self.leeway_secs = leeway.as_secs();
        self
    }

    /// Whether identities are taken on trust (the server warns at start).
    pub fn is_insecure(&self) -> bool {
        matches!(self.mode, AuthMode::Insecure)
    }

    /// The user a request connects as, or the refusal to send (see [`Self::identify`]).
    pub fn authenticate(&self, req: &Request, now_unix: u64) -> Result<UserId, Refusal> {
        self.identify(req, now_unix).map(|id| id.user)
    }

    /// Who a request connects as and what the token allows, or the refusal
    /// to send: the origin check first, then the identity of the active mode.
    pub fn identify(&self, req: &Request, now_unix: u64) -> Result<Identity, Refusal> {
        self.check_origin(req)?;
        match &self.mode {
            AuthMode::Token { .. } => {
                let token = the_token(req)?;
                self.verify_token(&token, now_unix)
            }
            AuthMode::Insecure => insecure_identity(req).map(Identity::insecure),
        }
    }

    /// Verifies a token (at connect, or a `refresh` on a live connection):
    /// signature, algorithm, `crit`, times (with the leeway), `sub`, and
    /// the grants it carries.
    pub fn verify_token(&self, token: &str, now_unix: u64) -> Result<Identity, Refusal> {
        let AuthMode::Token { keys } = &self.mode else {
            return Err(unauthorized("tokens are not used in insecure mode"));
        };
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| unauthorized(jwt_error(e.kind())))?;
        let verify = keys
            .iter()
            .find(|k| k.alg == header.alg)
            .ok_or_else(|| unauthorized("token algorithm not allowed"))?;
        let claims = jsonwebtoken::decode::<Claims>(token, &verify.key, &verify.validation)
            .map_err(|e| unauthorized(jwt_error(e.kind())))?
            .claims;
        if crit::has_crit(token) {
            return Err(unauthorized(
                "token header lists critical extensions (crit) this server does not support",
            ));
        }
        check_times(&claims, now_unix, self.leeway_secs)?;
        identity_of(claims)
    }

    /// 403 unless no allow-list is set or `Origin` is a listed origin
    /// (compared serialized: scheme and host case-insensitive, default
    /// port implied; see [`origin`]).
    fn check_origin(&self, req: &Request) -> Result<(), Refusal> {
        let Some(allowed) = &self.allowed_origins else {
            return Ok(());
        };
        match req.origin.as_deref().map(origin::serialize) {
            Some(Ok(origin)) if allowed.contains(&origin) => Ok(()),
            Some(_) => Err(Refusal::new(
                403,
                "origin_not_allowed",
                "origin not allowed",
            )),
            None => Err(Refusal::new(
                403,
                "origin_not_allowed",
                "missing Origin header",
            )),
        }
    }
}

/// A 401 with the given reason.
fn unauthorized(message: &str) -> Refusal {
    Refusal::new(401, "unauthorized", message)
}

/// The identity and grants of verified claims.
fn identity_of(claims: Claims) -> Result<Identity, Refusal> {
    let sub = claims
        .sub
        .ok_or_else(|| unauthorized("token has no sub claim"))?;
    let user =
        UserId::parse(&sub).ok_or_else(|| unauthorized("token sub is not a valid user id"))?;
    let channels = claims.channels.unwrap_or_default();
    let subs = claims.subs.unwrap_or_default();
    if channels.len() > MAX_CLAIM_ENTRIES || subs.len() > MAX_CLAIM_ENTRIES {
        return Err(unauthorized("token channels or subs claim is too long"));
    }
    let subs = subs
        .iter()
        .map(|s| ChannelName::parse(s))
        .collect::<Option<Box<[_]>>>()
        .ok_or_else(|| unauthorized("token subs claim names an invalid channel"))?;
    let grants = Grants {
        channels: channels.into_iter().map(String::into_boxed_str).collect(),
        subs,
        broadcast: claims.broadcast.unwrap_or(false),
    };
    let grants = (!grants.is_empty()).then(|| Arc::new(grants));
    Ok(Identity {
        user,
        grants,
        insecure: false,
        expires_at: claims.exp.map(|e| e.max(0.0) as u64),
    })
}

/// `?token=` (if non-empty) or the bearer token; both only when equal.
fn the_token(req: &Request) -> Result<String, Refusal> {
    let query = req
        .unique_query_param("token")
        .map_err(|_| unauthorized("ambiguous token: the token parameter is given more than once"))?
        .filter(|t| !t.is_empty());
    match (query, req.bearer.as_deref()) {
        (Some(q), Some(b)) if q != b => Err(unauthorized(
            "ambiguous token: the query and the Authorization header carry different tokens",
        )),
        (Some(q), _) => Ok(q),
        (None, Some(b)) => Ok(b.to_owned()),
        (None, None) => Err(unauthorized("missing token")),
    }
}

/// Refuses an expired or not-yet-valid token, `leeway` seconds of clock
/// skew allowed either way.
fn check_times(claims: &Claims, now: u64, leeway: u64) -> Result<(), Refusal> {
    // Real timestamps are far below 2^53, where the conversion is exact.
    let (now, leeway) = (now as f64, leeway as f64);
    if claims.exp.is_some_and(|exp| now >= exp + leeway) {
        return Err(unauthorized("token expired"));
    }
    if claims.nbf.is_some_and(|nbf| now + leeway < nbf) {
        return Err(unauthorized("token not yet valid"));
    }
    Ok(())
}

/// A short reason for a failed decode; never includes the token.
fn jwt_error(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSignature => "bad token signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "token algorithm not allowed"
        }
        ErrorKind::Json(_) => "malformed token header or claims",
        _ => "malformed token",
    }
}

/// Insecure mode: the user id is whatever `?userId=` says, if valid.
fn insecure_identity(req: &Request) -> Result<UserId, Refusal> {
    let raw = req
        .unique_query_param("userId")
        .map_err(|_| Refusal::new(400, "bad_user_id", "userId is given more than once"))?
        .filter(|u| !u.is_empty());
    let raw = raw.ok_or_else(|| Refusal::new(400, "missing_user", "missing userId"))?;
    UserId::parse(&raw).ok_or_else(|| Refusal::new(400, "bad_user_id", "invalid userId"))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_keys;
