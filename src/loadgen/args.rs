//! The `run` command line: every setting of a run, defined and defaulted
//! here once, plus the parsers of durations and source-address lists.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// What the connections do once they are up.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Connections and heartbeats only.
    Idle,
    /// Random sender to random receiver user.
    Direct,
    /// Random senders broadcast to everyone.
    Broadcast,
    /// chat_message to the sender's own user id.
    Echo,
    /// 80% direct, 10% broadcast, 10% echo.
    Mixed,
    /// Subscribers on channels, publishers publishing to them.
    Channels,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Direct => "direct",
            Scenario::Broadcast => "broadcast",
            Scenario::Echo => "echo",
            Scenario::Mixed => "mixed",
            Scenario::Channels => "channels",
        }
    }
}

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct RunArgs {
    /// Server WebSocket URL(s) (ws:// only); clients pick one round-robin.
    #[arg(
        long = "url",
        required = true,
        env = "LOADGEN_URL",
        value_delimiter = ','
    )]
    pub urls: Vec<String>,
    /// Number of connections (channels: derived from the channel options, this is ignored).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Number of distinct users (default: as many as clients); connection i is user i % users.
    #[arg(long)]
    pub users: Option<usize>,
    /// Prefix of the user ids (`<prefix><n>`).
    #[arg(long, default_value = "lg-")]
    pub user_prefix: String,
    /// HS256 secret: mint `?token=` JWTs (sub, exp = now + 1 h, broadcast and every channel granted); without it, insecure `?userId=`.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    #[serde(skip)]
    pub jwt_secret: Option<String>,
    /// New connections per second.
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Source IPs to bind, round-robin: `127.0.0.1-127.0.0.20` and/or a comma list.
    #[arg(long, value_parser = parse_addrs)]
    #[serde(serialize_with = "ser_addrs")]
    pub source_addrs: Option<AddrList>,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Scenario.
    #[arg(long, value_enum, default_value_t = Scenario::Direct)]
    pub scenario: Scenario,
    /// Total messages (channels: publications) per second, all senders together.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Measured duration (seconds, or humantime like `1m`).
    #[arg(long, value_parser = parse_secs, default_value = "10")]
    #[serde(serialize_with = "ser_dur")]
    pub duration: Duration,
    /// Warm-up before measuring (not counted).
    #[arg(long, value_parser = parse_secs, default_value = "0")]
    #[serde(serialize_with = "ser_dur")]
    pub warmup: Duration,
    /// Wait this long for stragglers after sending stops.
    #[arg(long, value_parser = parse_secs, default_value = "2")]
    #[serde(serialize_with = "ser_dur")]
    pub grace: Duration,
    /// Timeout of one connection attempt (TCP + upgrade + welcome).
    #[arg(long, value_parser = parse_secs, default_value = "10")]
    #[serde(serialize_with = "ser_dur")]
    pub connect_timeout: Duration,
    /// Send `latency_report` with each heartbeat round-trip time.
    #[arg(long)]
    pub latency_reports: bool,
    /// Memory measurement: print `ESTABLISHED <n>` once all connections are up (channels: and subscribed).
    #[arg(long)]
    pub hold: bool,
    /// Write the JSON report here.
    #[arg(long)]
    #[serde(skip)]
    pub json: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub channels: ChannelArgs,
}

/// Options of the `channels` scenario (see docs/LOADGEN.md).
#[derive(Args, Debug, Clone, serde::Serialize)]
#[command(next_help_heading = "Channels scenario")]
pub struct ChannelArgs {
    /// Number of channels (`<prefix><n>`, n = 0..C).
    #[arg(long = "channels", default_value_t = 10)]
    pub count: usize,
    /// Subscriptions per channel.
    #[arg(long, default_value_t = 10)]
    pub subscribers_per_channel: usize,
    /// Channels each subscriber connection subscribes to (at most --channels).
    #[arg(long, default_value_t = 1)]
    pub subscriptions_per_connection: usize,
    /// Publisher connections [default: one per 50 publications/s of --rate, at least one per URL; 0 when --rate is 0].
    #[arg(long)]
    pub publishers: Option<usize>,
    /// Channel names are `<prefix><n>`; the prefix's namespace needs `public` and `client_publish`.
    #[arg(long, default_value = "lg:")]
    pub channel_prefix: String,
}

fn ser_dur<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn ser_addrs<S: serde::Serializer>(a: &Option<AddrList>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(a.as_ref().map_or(0, |v| v.0.len() as u64))
}

/// Seconds as a float (`0.5`, `2`) or a humantime duration (`500ms`, `1m`).
fn parse_secs(s: &str) -> Result<Duration, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() && f >= 0.0 {
            return Ok(Duration::from_secs_f64(f));
        }
        return Err(format!("bad duration {s:?}"));
    }
    humantime::parse_duration(s).map_err(|e| format!("bad duration {s:?}: {e}"))
}

/// Source IPs to bind connections to.
#[derive(Debug, Clone)]
pub struct AddrList(pub Vec<IpAddr>);

/// `a.b.c.d-a.b.c.e` ranges (IPv4) and single addresses, comma separated.
fn parse_addrs(s: &str) -> Result<AddrList, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: std::net::Ipv4Addr = a.trim().parse().map_err(|e| format!("{a}: {e}"))?;
            let b: std::net::Ipv4Addr = b.trim().parse().map_err(|e| format!("{b}: {e}"))?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a || b - a > 65_535 {
                return Err(format!("bad range {part}"));
            }
            out.extend((a..=b).map(|n| IpAddr::V4(n.into())));
        } else {
            out.push(part.parse().map_err(|e| format!("{part}: {e}"))?);
        }
    }
    if out.is_empty() {
        return Err("no addresses".into());
    }
    Ok(AddrList(out))
}
