//! The settings that bound what one client may make the server accept
//! (`JWT_LEEWAY_SECS`, `MAX_JSON_DEPTH`): defaults in [`super::cli::HardeningArgs`],
//! validated here, in one place.

use std::time::Duration;

use super::cli::HardeningArgs;
use super::error::{invalid, ConfigError};

/// Most clock skew accepted on JWT `exp`/`nbf`: beyond a few minutes a
/// "leeway" would be a second, hidden token lifetime.
pub(super) const MAX_JWT_LEEWAY_SECS: u64 = 300;
/// Deepest payload nesting that can be allowed: common JSON parsers on the
/// receiving side (Python's `json`, ~1,000 levels) stop not far above.
pub(super) const MAX_JSON_DEPTH_LIMIT: usize = 1000;

/// The validated hardening settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardening {
    /// `JWT_LEEWAY_SECS`: clock skew allowed on `exp` and `nbf`.
    pub jwt_leeway: Duration,
    /// `MAX_JSON_DEPTH`: deepest nesting of a chat, broadcast or publish payload.
    pub max_json_depth: usize,
}

/// Checks the hardening settings of `a`.
pub(super) fn settings(a: &HardeningArgs) -> Result<Hardening, ConfigError> {
    if a.jwt_leeway_secs > MAX_JWT_LEEWAY_SECS {
        return Err(invalid(
            "JWT_LEEWAY_SECS",
            format!(
                "{} is outside 0..={MAX_JWT_LEEWAY_SECS} seconds",
                a.jwt_leeway_secs
            ),
        ));
    }
    if !(1..=MAX_JSON_DEPTH_LIMIT).contains(&a.max_json_depth) {
        return Err(invalid(
            "MAX_JSON_DEPTH",
            format!(
                "{} is outside 1..={MAX_JSON_DEPTH_LIMIT} levels",
                a.max_json_depth
            ),
        ));
    }
    Ok(Hardening {
        jwt_leeway: Duration::from_secs(a.jwt_leeway_secs),
        max_json_depth: a.max_json_depth,
    })
}
