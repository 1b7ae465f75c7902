//! Channel names and the channels configuration file (`CHANNELS_CONFIG`).
//!
//! The same text is read two ways:
//! - as a channel name: validation agrees with `ChannelName::parse`, the
//!   namespace is the part before the first `:`, and a valid name survives
//!   the trips every layer makes with it (the Redis pub/sub channel
//!   `ch:{<name>}`, the server API path, percent-encoded);
//! - as TOML: the loader answers `Ok` or a non-empty message, never
//!   panics; what it accepts is within every limit (history size and TTL,
//!   `join_leave` only with `presence`, valid namespace names), each listed
//!   namespace applies to its channels, and writing it back as TOML reads
//!   back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use websocket_app::api::http::Method;
use websocket_app::api::route::route;
use websocket_app::config::{parse_channels_config, MAX_HISTORY_SIZE, MAX_HISTORY_TTL_SECS};
use websocket_app::namespaces::{NamespaceOptions, Namespaces};
use websocket_app::protocol::channel::{is_valid_channel, namespace_of, ChannelName};
use websocket_app::redis_coord::publication::{channel_of, redis_channel};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_name(text);
    check_config(text);
});

fn check_name(s: &str) {
    let parsed = ChannelName::parse(s);
    assert_eq!(parsed.is_some(), is_valid_channel(s));
    let Some(name) = parsed else {
        assert_eq!(channel_of(redis_channel(s).as_bytes()), None);
        return;
    };
    assert_eq!(&*name, s);
    match name.namespace() {
        Some(ns) => {
            assert!(s.starts_with(ns) && s[ns.len()..].starts_with(':'));
            assert!(!ns.contains(':'));
        }
        None => assert!(!s.contains(':')),
    }
    assert_eq!(name.namespace(), namespace_of(s));
    assert_eq!(channel_of(redis_channel(s).as_bytes()), Some(name.clone()));
    let encoded = utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let path = format!("/api/v1/channels/{encoded}/history");
    let routed = route(Method::Get, &path).expect("a valid channel routes");
    assert_eq!(routed.target.as_deref(), Some(s));
    // The defaults apply to every channel of an empty configuration.
    assert_eq!(
        Namespaces::default().options(s),
        &NamespaceOptions::default()
    );
}

fn check_config(text: &str) {
    let ns = match parse_channels_config(text) {
        Ok(ns) => ns,
        Err(message) => {
            assert!(!message.trim().is_empty(), "an error says why");
            return;
        }
    };
    check_options(&ns.default);
    for (name, options) in &ns.named {
        assert!((1..=64).contains(&name.len()), "{name:?}");
        assert!(!name.contains(':') && is_valid_channel(name), "{name:?}");
        check_options(options);
        assert_eq!(ns.options(&format!("{name}:x")), options);
    }
    assert_eq!(ns.options("no-namespace"), &ns.default);
    let written = to_toml(&ns);
    let again = parse_channels_config(&written)
        .unwrap_or_else(|e| panic!("written back, refused: {e}\n{written}"));
    assert_eq!(again, ns, "{written}");
}

fn check_options(o: &NamespaceOptions) {
    assert!(o.history_size <= MAX_HISTORY_SIZE);
    assert!(o.history_ttl.as_secs() <= MAX_HISTORY_TTL_SECS);
    assert_eq!(o.history_ttl.subsec_nanos(), 0);
    assert!(o.history_size == 0 || !o.history_ttl.is_zero());
    assert!(!o.join_leave || o.presence);
}

/// The configuration as a file that sets every key of every table.
fn to_toml(ns: &Namespaces) -> String {
    let mut out = String::from("[default]\n");
    table(&mut out, &ns.default);
    for (name, o) in &ns.named {
        out.push_str(&format!("[namespaces.\"{name}\"]\n"));
        table(&mut out, o);
    }
    out
}

fn table(out: &mut String, o: &NamespaceOptions) {
    out.push_str(&format!(
        "public = {}\nclient_publish = {}\nhistory_size = {}\nhistory_ttl_secs = {}\n\
         presence = {}\njoin_leave = {}\njoin_leave_per_sec = {}\n",
        o.public,
        o.client_publish,
        o.history_size,
        o.history_ttl.as_secs(),
        o.presence,
        o.join_leave,
        o.join_leave_per_sec
    ));
}
