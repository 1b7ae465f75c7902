//! The channels configuration file (`CHANNELS_CONFIG`, TOML): namespaces
//! and their options, read and validated once at start. An unknown key, a
//! value of the wrong type or out of range, or an unreadable file fails with
//! a message naming the file and the key.
//!
//! ```toml
//! [default]
//! public = false
//! client_publish = false
//! history_size = 0
//! history_ttl_secs = 0
//! presence = false
//! join_leave = false
//! join_leave_per_sec = 50   # most join/leave events per channel per second (0: no limit)
//!
//! [namespaces.chat]     # unlisted keys take the [default] value
//! public = true
//! history_size = 100
//! history_ttl_secs = 3600
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::namespaces::{NamespaceOptions, Namespaces};

/// Most publications a channel may keep.
pub const MAX_HISTORY_SIZE: u32 = 10_000;
/// Longest history TTL: 30 days.
pub const MAX_HISTORY_TTL_SECS: u64 = 30 * 86_400;

/// The file as written: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// `[default]`.
    #[serde(default)]
    default: Options,
    /// `[namespaces.<name>]`.
    #[serde(default)]
    namespaces: HashMap<String, Options>,
}

/// One table's keys.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    public: Option<bool>,
    client_publish: Option<bool>,
    history_size: Option<u32>,
    history_ttl_secs: Option<u64>,
    presence: Option<bool>,
    join_leave: Option<bool>,
    join_leave_per_sec: Option<u32>,
}

impl Options {
    /// These options over `base` (unset keys keep the base's value).
    fn over(&self, base: &NamespaceOptions) -> NamespaceOptions {
        NamespaceOptions {
            public: self.public.unwrap_or(base.public),
            client_publish: self.client_publish.unwrap_or(base.client_publish),
            history_size: self.history_size.unwrap_or(base.history_size),
            history_ttl: self
                .history_ttl_secs
                .map(Duration::from_secs)
                .unwrap_or(base.history_ttl),
            presence: self.presence.unwrap_or(base.presence),
            join_leave: self.join_leave.unwrap_or(base.join_leave),
            join_leave_per_sec: self.join_leave_per_sec.unwrap_or(base.join_leave_per_sec),
        }
    }
}

/// Reads and validates the file at `path`; `None` gives the defaults.
pub fn load(path: Option<&Path>) -> Result<Namespaces, ConfigError> {
    let Some(path) = path else {
        return Ok(Namespaces::default());
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| invalid(path, format!("cannot read it: {e}")))?;
    parse(&text).map_err(|msg| invalid(path, msg))
}

/// Parses and validates the file's text.
pub fn parse(text: &str) -> Result<Namespaces, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let default = file.default.over(&NamespaceOptions::default());
    check("[default]", &default)?;
    let mut named = HashMap::new();
    for (name, options) in &file.namespaces {
        if !valid_namespace(name) {
            return Err(format!(
                "[namespaces.{name}]: a namespace is 1 to 64 characters of A-Z a-z 0-9 . _ @ - / = , (no ':')"
            ));
        }
        let resolved = options.over(&default);
        check(&format!("[namespaces.{name}]"), &resolved)?;
        named.insert(name.clone(), resolved);
    }
    Ok(Namespaces { default, named })
}

fn check(table: &str, o: &NamespaceOptions) -> Result<(), String> {
    if o.history_size > MAX_HISTORY_SIZE {
        return Err(format!(
            "{table} history_size = {} is above the maximum {MAX_HISTORY_SIZE}",
            o.history_size
        ));
    }
    if o.history_ttl.as_secs() > MAX_HISTORY_TTL_SECS {
        return Err(format!(
            "{table} history_ttl_secs = {} is above the maximum {MAX_HISTORY_TTL_SECS} (30 days)",
            o.history_ttl.as_secs()
        ));
    }
    if o.history_size > 0 && o.history_ttl.is_zero() {
        return Err(format!(
            "{table} history_size = {} needs history_ttl_secs > 0 (how long an idle channel's history is kept)",
            o.history_size
        ));
    }
    if o.join_leave && !o.presence {
        return Err(format!(
            "{table} join_leave = true needs presence = true (join and leave are computed from presence)"
        ));
    }
    Ok(())
}

fn valid_namespace(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-' | b'/' | b'=' | b',')
        })
}

fn invalid(path: &Path, reason: String) -> ConfigError {
    ConfigError::Invalid {
        setting: "CHANNELS_CONFIG",
        reason: format!("{}: {reason}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_example_parses_and_namespaces_inherit_the_default() {
        let ns = parse(
            "[default]\npublic = false\nclient_publish = true\n\
             [namespaces.chat]\npublic = true\nhistory_size = 100\nhistory_ttl_secs = 3600\n\
             presence = true\njoin_leave = true\n",
        )
        .unwrap();
        let chat = ns.options("chat:1");
        assert!(chat.public && chat.client_publish && chat.join_leave);
        assert_eq!(chat.history_size, 100);
        assert!(!ns.options("other").public);
        assert!(ns.options("other").client_publish);
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            ("[default]\npublik = true\n", "publik"),
            ("[namespaces.chat]\nhistory_size = -1\n", "history_size"),
            ("[namespaces.chat]\nhistory_size = 10\n", "history_ttl_secs"),
            ("[namespaces.chat]\njoin_leave = true\n", "presence"),
            ("[namespaces.\"a:b\"]\npublic = true\n", "a:b"),
            ("[other]\n", "other"),
            ("[default]\npublic = \"yes\"\n", "public"),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "{text:?} -> {err}");
        }
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let err = load(Some(Path::new("/nonexistent/channels.toml"))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("CHANNELS_CONFIG") && text.contains("/nonexistent/channels.toml"),
            "{text}"
        );
    }
}
