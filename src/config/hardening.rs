//! The settings that bound what one client may make the server accept
//! (`MAX_JSON_DEPTH`): defaults in [`super::Args`],
//! validated here, in one place.

use super::cli::Args;
use super::error::{invalid, ConfigError};

/// Deepest payload nesting that can be allowed: common JSON parsers on the
/// receiving side (Python's `json`, ~1,000 levels) stop not far above.
pub(super) const MAX_JSON_DEPTH_LIMIT: usize = 1000;

/// The validated hardening settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardening {
    /// `MAX_JSON_DEPTH`: deepest nesting of a chat or broadcast payload.
    pub max_json_depth: usize,
}

/// Checks the hardening settings of `a`.
pub(super) fn settings(a: &Args) -> Result<Hardening, ConfigError> {
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
        max_json_depth: a.max_json_depth,
    })
}
