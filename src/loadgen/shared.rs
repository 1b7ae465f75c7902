//! What every connection task and the driver share: targets, identities,
//! and the run's counters (atomics, written from many tasks).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::sync::watch;

use crate::RunArgs;

/// One server URL, resolved.
pub struct Target {
    /// Where to connect (resolved once, before the connect phase).
    pub addr: SocketAddr,
    /// The URL with `?` or `&` appended, ready for the identity parameter.
    pub base: String,
}

/// State shared by the driver and all connection tasks.
pub struct Shared {
    /// The command line, for every task to read.
    pub args: RunArgs,
    /// Server URLs; client `i` uses `targets[i % len]` (non-sticky round-robin).
    pub targets: Vec<Target>,
    /// Number of distinct users; client `i` is user `i % users`.
    pub users: usize,
    /// One minted JWT per user (empty in insecure mode).
    pub(crate) tokens: Vec<String>,
    /// Random per run, carried in payloads so concurrent runs never count each other's broadcasts.
    pub run_id: u64,
    /// First seq that counts (u64::MAX during warm-up).
    pub count_from: AtomicU64,
    /// Flips to true when every task must close its connection.
    pub shutdown_rx: watch::Receiver<bool>,

    /// Connections tried.
    pub attempted: AtomicU64,
    /// Connections that got their welcome.
    pub established: AtomicU64,
    /// Connections that never got a welcome.
    pub failed: AtomicU64,
    /// Connections open now.
    pub alive: AtomicU64,
    /// Connections that ended.
    pub closed: AtomicU64,
    /// Open connections per user (what a direct message should reach).
    pub user_alive: Vec<AtomicU32>,
    /// Whether each client is open (senders are picked among open ones).
    pub client_alive: Vec<AtomicBool>,

    /// Counted messages received (unique).
    pub delivered: AtomicU64,
    /// Messages a connection received more than once.
    pub duplicates: AtomicU64,
    /// Counted messages answered by an ack or an error.
    pub answered: AtomicU64,
    /// Acks by status.
    pub ack_delivered: AtomicU64,
    /// Acks `offline`.
    pub ack_offline: AtomicU64,
    /// Acks `failed`.
    pub ack_failed: AtomicU64,
    /// Acks `rate_limited`.
    pub ack_rate_limited: AtomicU64,
    /// Heartbeat round trips completed.
    pub heartbeats: AtomicU64,

    /// Connection failures by reason (`http_401`, `refused`, `timeout`, ...).
    pub failures: Mutex<BTreeMap<String, u64>>,
    /// Server `error` messages by code.
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// Unexpected closes by close code.
    pub closes: Mutex<BTreeMap<String, u64>>,
    /// End-to-end latency (µs) of counted deliveries.
    pub lat_hist: Mutex<Histogram<u64>>,
    /// Connect time (µs): TCP + upgrade + welcome.
    pub connect_hist: Mutex<Histogram<u64>>,
    /// Heartbeat round-trip time (µs).
    pub hb_hist: Mutex<Histogram<u64>>,
}

impl Shared {
    /// The upgrade URL of client `idx`.
    pub fn client_url(&self, idx: usize) -> String {
        let t = &self.targets[idx % self.targets.len()];
        let user = idx % self.users;
        if self.tokens.is_empty() {
            format!("{}userId={}{user}", t.base, self.args.user_prefix)
        } else {
            format!("{}token={}", t.base, self.tokens[user])
        }
    }
}

#[derive(serde::Serialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry (unix seconds).
    pub exp: u64,
    /// May broadcast (the server refuses client broadcasts without it).
    pub broadcast: bool,
    /// Channels it may subscribe to (every one: this is a load test).
    pub channels: Vec<String>,
}

/// Resolves a `ws://` URL to an address and the base for identity parameters.
pub async fn resolve(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = tokio::net::lookup_host(&hostport)
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: no address"))?;
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    Ok(Target {
        addr,
        base: format!("ws://{authority}{path}{sep}"),
    })
}

/// Unix time in seconds.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
