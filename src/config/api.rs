//! The server API settings (`API_KEYS`, `API_MAX_BODY_BYTES`,
//! `API_REQUEST_TIMEOUT_MS`, `API_RATE_LIMIT`): validated here, once, into
//! the [`ApiSettings`] the shards take as they are (`Settings::api`).
//!
//! Every value is checked even while `API_KEYS` is unset, so that a typo
//! shows before the day the API is turned on. Keys are never echoed in an
//! error, only their position in the list.

use std::sync::Arc;

use super::cli::ApiArgs;
use super::error::{invalid, ConfigError};
use super::validate::{millis, range};
use crate::api::{ApiKeys, ApiSettings};

/// Shortest accepted key: a guessable key is no key.
pub(super) const MIN_KEY_BYTES: usize = 16;
/// Longest accepted key.
const MAX_KEY_BYTES: usize = 256;

/// The API's settings; `None` while `API_KEYS` is unset.
pub(super) fn settings(a: &ApiArgs) -> Result<Option<ApiSettings>, ConfigError> {
    let max_body_bytes = range("API_MAX_BODY_BYTES", a.api_max_body_bytes, 1024, 64 << 20)?;
    let request_timeout = millis(
        "API_REQUEST_TIMEOUT_MS",
        a.api_request_timeout_ms,
        100,
        600_000,
    )?;
    let rate_limit = range("API_RATE_LIMIT", a.api_rate_limit, 0, 1_000_000)?;
    let Some(raw) = a.api_keys.as_ref().filter(|k| !k.0.trim().is_empty()) else {
        return Ok(None);
    };
    let keys = keys(&raw.0)?;
    Ok(Some(ApiSettings {
        keys: Arc::new(ApiKeys::new(&keys, rate_limit)),
        max_body_bytes,
        request_timeout,
        rate_limit,
    }))
}

/// The comma-separated keys, trimmed, without duplicates.
fn keys(raw: &str) -> Result<Vec<&str>, ConfigError> {
    let mut keys: Vec<&str> = Vec::new();
    for (i, key) in raw.split(',').map(str::trim).enumerate() {
        if key.is_empty() {
            continue;
        }
        let visible = key.bytes().all(|b| b.is_ascii_graphic());
        if !visible || !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(invalid(
                "API_KEYS",
                format!(
                    "key #{} must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes of visible ASCII \
                     (no spaces or commas); generate one with `openssl rand -hex 32`",
                    i + 1
                ),
            ));
        }
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(invalid("API_KEYS", "lists no key"));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::super::tests::load_with;

    const KEY: &str = "0123456789abcdef0123";

    #[test]
    fn keys_turn_the_api_on_with_defaults() {
        let c = load_with(&[], &[]).unwrap();
        assert!(c.settings.api.is_none(), "off without API_KEYS");
        let both = format!(" {KEY} , other-key-0123456789,{KEY}");
        let c = load_with(&[], &[("API_KEYS", &both)]).unwrap();
        let api = c.settings.api.clone().unwrap();
        assert_eq!(api.keys.len(), 2, "trimmed and deduplicated");
        assert!(api.keys.find(b"other-key-0123456789").is_some());
        assert_eq!(api.max_body_bytes, 1 << 20);
        assert_eq!(api.request_timeout.as_millis(), 10_000);
        assert_eq!(api.rate_limit, 1_000);
        assert!(c.summary().contains("api=on(keys=2"));
        assert!(!c.summary().contains(KEY) && !format!("{api:?}").contains(KEY));
    }

    #[test]
    fn bad_values_are_named_without_the_key() {
        for (var, value) in [
            ("API_KEYS", "short-key"),
            ("API_KEYS", "has space 0123456789"),
            ("API_KEYS", ","),
            ("API_MAX_BODY_BYTES", "10"),
            ("API_REQUEST_TIMEOUT_MS", "0"),
            ("API_RATE_LIMIT", "2000000"),
        ] {
            let err = load_with(&[], &[("API_KEYS", KEY), (var, value)]).unwrap_err();
            assert_eq!(err.setting(), Some(var), "{var}={value}: {err}");
            if var == "API_KEYS" {
                assert!(!err.to_string().contains(value), "{err}");
            }
        }
        let err = load_with(&[], &[("API_RATE_LIMIT", "x"), ("API_KEYS", KEY)]).unwrap_err();
        assert_eq!(err.setting(), Some("API_RATE_LIMIT"));
        let err = load_with(&[], &[("API_KEYS", KEY), ("API_MAX_BODY_BYTES", "1x")]).unwrap_err();
        assert!(!err.to_string().contains(KEY), "{err}");
    }
}
