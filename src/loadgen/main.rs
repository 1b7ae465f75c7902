//! `loadgen`: a WebSocket load generator for websocket-app.
//!
//! It speaks only the public wire protocol (docs/PROTOCOL.md) and knows
//! nothing of the server's internals. See docs/LOADGEN.md.

mod conn;
mod report;
mod run;
mod shared;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "Load generator for websocket-app", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Open connections, run a scenario, report.
    Run(RunArgs),
    /// Merge several JSON reports (from concurrent processes) into one.
    Merge {
        /// Report files written by `loadgen run --json`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the merged report.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

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
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Direct => "direct",
            Scenario::Broadcast => "broadcast",
            Scenario::Echo => "echo",
            Scenario::Mixed => "mixed",
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
    /// Number of connections.
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
    /// Total messages per second (all senders together).
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
    /// Idle memory measurement: print `ESTABLISHED <n>` once all connections are up.
    #[arg(long)]
    pub hold: bool,
    /// Write the JSON report here.
    #[arg(long)]
    #[serde(skip)]
    pub json: Option<PathBuf>,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
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

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            let mut n = r;
            n.rlim_cur = r.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &n) == 0 {
                return n.rlim_cur as u64;
            }
        }
        r.rlim_cur as u64
    }
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Merge { files, json } => {
            let code = match report::merge_files(&files) {
                Ok(r) => {
                    print!("{}", r.human());
                    if let Some(path) = json {
                        if let Err(e) = r.write(&path) {
                            eprintln!("loadgen: cannot write {}: {e}", path.display());
                            std::process::exit(1);
                        }
                    }
                    0
                }
                Err(e) => {
                    eprintln!("loadgen: merge: {e}");
                    1
                }
            };
            std::process::exit(code);
        }
        Cmd::Run(args) => {
            let limit = raise_nofile();
            if args.clients as u64 + 64 > limit {
                eprintln!(
                    "loadgen: warning: {} clients but the open-file limit is {limit}; \
                     one process holds at most that many connections (run several and `loadgen merge`)",
                    args.clients
                );
            }
            let mut b = if args.threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(args.threads);
                b
            };
            let rt = b.enable_all().build().expect("tokio runtime");
            let code = rt.block_on(run::run(args));
            // Do not wait for stray tasks.
            rt.shutdown_timeout(Duration::from_millis(100));
            std::process::exit(code);
        }
    }
}

/// mimalloc as the global allocator: fast, and returns memory to the OS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
