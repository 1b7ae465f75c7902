//! What every connection task and the driver share: targets, identities,
//! and the run's counters (atomics, written from many tasks).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::sync::watch;

use crate::args::RunArgs;
use crate::channels::order::SubResult;
use crate::channels::Plan;
use crate::report;

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
    /// Server URLs; client `i` uses `targets[i % len]` (non-sticky
    /// round-robin), or in the channels scenario the plan's choice.
    pub targets: Vec<Target>,
    /// Number of distinct users; client `i` is user `i % users`.
    pub users: usize,
    /// One minted JWT per user (empty in insecure mode).
    pub(crate) tokens: Vec<String>,
    /// Random per run, carried in payloads so concurrent runs never count each other's broadcasts.
    pub run_id: u64,
    /// First seq that counts (u64::MAX during warm-up).
    pub count_from: AtomicU64,
    /// Set when the report's snapshot is taken: nothing received after it
    /// counts, so the figures and the order digests agree with each other.
    pub frozen: AtomicBool,
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
    /// Acks `published` (channels).
    pub ack_published: AtomicU64,
    /// Acks `failed`.
    pub ack_failed: AtomicU64,
    /// Acks `rate_limited`.
    pub ack_rate_limited: AtomicU64,
    /// Heartbeat round trips completed.
    pub heartbeats: AtomicU64,

    /// The channels scenario's plan (None for the other scenarios).
    pub plan: Option<Plan>,
    /// Live subscriptions per channel (answered `subscribed`, connection
    /// open): what a publication of that channel should reach.
    pub chan_subs: Vec<AtomicU32>,
    /// Subscriptions requested by connections that got their welcome.
    pub sub_wanted: AtomicU64,
    /// `subscribed` answers.
    pub subscribed: AtomicU64,
    /// Subscribes answered with an `error`.
    pub sub_refused: AtomicU64,
    /// Subscribes still unanswered when their connection ended.
    pub sub_lost: AtomicU64,
    /// Counted publications older than one already seen from the same
    /// publisher on the same subscription.
    pub out_of_order: AtomicU64,
    /// Counted publications of a channel the connection was not subscribed to.
    pub unexpected: AtomicU64,
    /// Each subscription's count and order digest, handed in when its
    /// connection ends or the run stops (see `channels::order`).
    pub sub_results: Mutex<Vec<SubResult>>,

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
    /// Fresh state for a run of `clients` connections.
    pub fn new(
        args: RunArgs,
        targets: Vec<Target>,
        users: usize,
        plan: Option<Plan>,
        shutdown_rx: watch::Receiver<bool>,
    ) -> Self {
        let clients = args.clients;
        let channels = plan.as_ref().map_or(0, |p| p.channels as usize);
        let tokens = match &args.jwt_secret {
            Some(secret) if !secret.is_empty() => mint_tokens(secret, &args.user_prefix, users),
            _ => Vec::new(),
        };
        let zero = || AtomicU64::new(0);
        Shared {
            targets,
            users,
            tokens,
            run_id: rand::random::<u32>() as u64,
            count_from: AtomicU64::new(u64::MAX),
            frozen: AtomicBool::new(false),
            shutdown_rx,
            attempted: zero(),
            established: zero(),
            failed: zero(),
            alive: zero(),
            closed: zero(),
            user_alive: (0..users).map(|_| AtomicU32::new(0)).collect(),
            client_alive: (0..clients).map(|_| AtomicBool::new(false)).collect(),
            delivered: zero(),
            duplicates: zero(),
            answered: zero(),
            ack_delivered: zero(),
            ack_offline: zero(),
            ack_published: zero(),
            ack_failed: zero(),
            ack_rate_limited: zero(),
            heartbeats: zero(),
            plan,
            chan_subs: (0..channels).map(|_| AtomicU32::new(0)).collect(),
            sub_wanted: zero(),
            subscribed: zero(),
            sub_refused: zero(),
            sub_lost: zero(),
            out_of_order: zero(),
            unexpected: zero(),
            sub_results: Mutex::default(),
            failures: Mutex::default(),
            errors: Mutex::default(),
            closes: Mutex::default(),
            lat_hist: Mutex::new(report::new_hist()),
            connect_hist: Mutex::new(report::new_hist()),
            hb_hist: Mutex::new(report::new_hist()),
            args,
        }
    }

    /// Whether a message of this run with global sequence `seq` counts.
    pub fn counts(&self, seq: u64) -> bool {
        seq >= self.count_from.load(Relaxed) && !self.frozen.load(Relaxed)
    }

    /// The server client `idx` connects to.
    pub fn target(&self, idx: usize) -> &Target {
        let i = match &self.plan {
            Some(plan) => plan.url_of(idx),
            None => idx,
        };
        &self.targets[i % self.targets.len()]
    }

    /// The upgrade URL of client `idx`.
    pub fn client_url(&self, idx: usize) -> String {
        let t = self.target(idx);
        let user = idx % self.users;
        if self.tokens.is_empty() {
            format!("{}userId={}{user}", t.base, self.args.user_prefix)
        } else {
            format!("{}token={}", t.base, self.tokens[user])
        }
    }
}

#[derive(serde::Serialize)]
struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry (unix seconds).
    pub exp: u64,
    /// May broadcast (the server refuses client broadcasts without it).
    pub broadcast: bool,
    /// Channels it may subscribe to (every one: this is a load test).
    pub channels: Vec<String>,
}

/// One HS256 token per user: `sub`, `exp` = now + 1 h, broadcast and every
/// channel granted (this is a load test).
fn mint_tokens(secret: &str, prefix: &str, users: usize) -> Vec<String> {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let exp = now_unix() + 3600;
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    (0..users)
        .map(|u| {
            let claims = Claims {
                sub: format!("{prefix}{u}"),
                exp,
                broadcast: true,
                channels: vec!["*".to_owned()],
            };
            jsonwebtoken::encode(&header, &claims, &key).expect("jwt encode")
        })
        .collect()
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
