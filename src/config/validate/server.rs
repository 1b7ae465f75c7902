//! The instance and its connections: shard count, server id, heartbeat
//! timeout and the echo path.

use std::time::Duration;

use super::super::cli::LifecycleArgs;
use super::super::error::{invalid, ConfigError};
use super::super::ResolvedAuth;
use super::{millis, range};

/// Most shards accepted (`WSS_SHARDS`); also the cap for "one per core".
const MAX_SHARDS: usize = 1024;
/// Longest accepted server id (it is a Redis key part and a metric dimension).
const MAX_SERVER_ID_BYTES: usize = 64;
/// Paths the server already answers; the echo path must differ.
const RESERVED_PATHS: [&str; 6] = ["/", "/ws", "/health", "/ready", "/metrics", "/stats"];

/// `WSS_SHARDS`, where 0 means one per available core (up to [`MAX_SHARDS`]).
pub(super) fn shards(n: usize) -> Result<usize, ConfigError> {
    match range("WSS_SHARDS", n, 0, MAX_SHARDS)? {
        0 => Ok(std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_SHARDS)),
        n => Ok(n),
    }
}
/// `HEARTBEAT_TIMEOUT_MS`, which must exceed the interval: a client that
/// pings on time must never look silent.
pub(super) fn heartbeat_timeout(a: &LifecycleArgs) -> Result<Duration, ConfigError> {
    let (interval, timeout) = (a.heartbeat_interval_ms, a.heartbeat_timeout_ms);
    if timeout <= interval {
        return Err(invalid(
            "HEARTBEAT_TIMEOUT_MS",
            format!("{timeout} must be greater than HEARTBEAT_INTERVAL_MS ({interval})"),
        ));
    }
    millis("HEARTBEAT_TIMEOUT_MS", timeout, 11, 86_400_000)
}

/// `SERVER_ID`, or `<hostname>-<port>` (`<hostname>-0-<pid>` on port 0,
/// where the port is not known yet and several processes may share a host).
pub(super) fn server_id(given: Option<&str>, port: u16) -> Result<String, ConfigError> {
    let (id, how) = match given {
        Some(id) => (id.to_owned(), "SERVER_ID"),
        None if port == 0 => (
            format!("{}-0-{}", hostname(), std::process::id()),
            "the default from the host name",
        ),
        None => (
            format!("{}-{port}", hostname()),
            "the default from the host name",
        ),
    };
    let valid =
        (1..=MAX_SERVER_ID_BYTES).contains(&id.len()) && crate::protocol::is_valid_user_id(&id);
    if !valid {
        return Err(invalid(
            "SERVER_ID",
            format!(
                "{id:?} ({how}) must be 1 to {MAX_SERVER_ID_BYTES} bytes of A-Z a-z 0-9 . _ : @ -; set SERVER_ID"
            ),
        ));
    }
    Ok(id)
}

/// The kernel's host name, else `HOSTNAME`, else `localhost`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `ECHO_PATH`: insecure auth only, and never a path the server already serves.
pub(super) fn echo_path(
    path: Option<&str>,
    auth: &ResolvedAuth,
) -> Result<Option<String>, ConfigError> {
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if matches!(auth, ResolvedAuth::Token { .. }) {
        return Err(invalid(
            "ECHO_PATH",
            "needs no identity, so it is only allowed with insecure auth (JWT_SECRET unset)",
        ));
    }
    let well_formed = path.starts_with('/')
        && !path.contains(['?', '#'])
        && path.bytes().all(|b| b.is_ascii_graphic());
    if !well_formed || RESERVED_PATHS.contains(&path) {
        return Err(invalid(
            "ECHO_PATH",
            format!(
                "{path:?} must be an absolute path without query, other than {RESERVED_PATHS:?}"
            ),
        ));
    }
    Ok(Some(path.to_owned()))
}
