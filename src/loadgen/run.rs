//! The run: connect phase, warm-up, measured phase, grace, report.

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch};

use crate::conn::{self, Out};
use crate::report::{self, Report};
use crate::shared::{now_unix, resolve, Claims, Shared};
use crate::{RunArgs, Scenario};

/// Resolves on Ctrl-C or SIGTERM.
async fn signalled() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// Counters the driver owns.
#[derive(Default)]
struct Sent {
    sent: u64,
    expected: u64,
    dropped: u64,
}

struct Driver {
    sh: Arc<Shared>,
    senders: Vec<mpsc::Sender<Out>>,
    rng: SmallRng,
    seq: u64,
    counting: bool,
    c: Sent,
}

impl Driver {
    /// Sends one message of the scenario from a random live connection.
    fn send_one(&mut self) {
        let sh = &self.sh;
        let n = self.senders.len();
        let mut from = None;
        for _ in 0..16 {
            let i = self.rng.random_range(0..n);
            if sh.client_alive[i].load(Relaxed) {
                from = Some(i);
                break;
            }
        }
        let Some(from) = from else {
            if self.counting {
                self.c.dropped += 1;
            }
            return;
        };
        let kind = match sh.args.scenario {
            Scenario::Mixed => match self.rng.random_range(0..10u32) {
                0 => Scenario::Broadcast,
                1 => Scenario::Echo,
                _ => Scenario::Direct,
            },
            s => s,
        };
        let seq = self.seq;
        let my_user = from % sh.users;
        let (out, expected) = match kind {
            Scenario::Broadcast => (
                Out::Broadcast { seq },
                sh.alive.load(Relaxed).saturating_sub(1),
            ),
            Scenario::Echo => (
                Out::Chat {
                    seq,
                    to: my_user as u32,
                },
                sh.user_alive[my_user].load(Relaxed) as u64,
            ),
            _ => {
                let mut to = self.rng.random_range(0..sh.users);
                if sh.users > 1 && to == my_user {
                    to = (to + 1 + self.rng.random_range(0..sh.users - 1)) % sh.users;
                }
                (
                    Out::Chat { seq, to: to as u32 },
                    sh.user_alive[to].load(Relaxed) as u64,
                )
            }
        };
        match self.senders[from].try_send(out) {
            Ok(()) => {
                self.seq += 1;
                if self.counting {
                    self.c.sent += 1;
                    self.c.expected += expected;
                }
            }
            Err(_) => {
                if self.counting {
                    self.c.dropped += 1;
                }
            }
        }
    }
}

fn p99_ms(h: &Mutex<Histogram<u64>>) -> f64 {
    let h = h.lock().unwrap();
    h.value_at_quantile(0.99) as f64 / 1000.0
}

/// Runs the load; returns the process exit code.
pub async fn run(args: RunArgs) -> i32 {
    if args.clients == 0 {
        eprintln!("loadgen: --clients must be at least 1");
        return 2;
    }
    let users = args.users.unwrap_or(args.clients).clamp(1, args.clients);
    let mut targets = Vec::new();
    for u in &args.urls {
        match resolve(u).await {
            Ok(t) => targets.push(t),
            Err(e) => {
                eprintln!("loadgen: {e}");
                return 2;
            }
        }
    }
    let tokens = match &args.jwt_secret {
        Some(secret) if !secret.is_empty() => {
            let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
            let exp = now_unix() + 3600;
            let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            (0..users)
                .map(|u| {
                    let claims = Claims {
                        sub: format!("{}{u}", args.user_prefix),
                        exp,
                        broadcast: true,
                        channels: vec!["*".to_owned()],
                    };
                    jsonwebtoken::encode(&header, &claims, &key).expect("jwt encode")
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let clients = args.clients;
    let sh = Arc::new(Shared {
        targets,
        users,
        tokens,
        run_id: rand::random::<u32>() as u64,
        count_from: AtomicU64::new(u64::MAX),
        shutdown_rx,
        attempted: AtomicU64::new(0),
        established: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        alive: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        user_alive: (0..users).map(|_| AtomicU32::new(0)).collect(),
        client_alive: (0..clients).map(|_| AtomicBool::new(false)).collect(),
        delivered: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        answered: AtomicU64::new(0),
        ack_delivered: AtomicU64::new(0),
        ack_offline: AtomicU64::new(0),
        ack_failed: AtomicU64::new(0),
        ack_rate_limited: AtomicU64::new(0),
        heartbeats: AtomicU64::new(0),
        failures: Mutex::default(),
        errors: Mutex::default(),
        closes: Mutex::default(),
        lat_hist: Mutex::new(report::new_hist()),
        connect_hist: Mutex::new(report::new_hist()),
        hb_hist: Mutex::new(report::new_hist()),
        args: args.clone(),
    });

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = interrupted.clone();
        let tx = shutdown_tx.clone();
        tokio::spawn(async move {
            signalled().await;
            eprintln!("loadgen: signal: stopping, writing a partial report");
            interrupted.store(true, Relaxed);
            let _ = tx.send(true);
        });
    }
    let stopped = || *sh.shutdown_rx.borrow();

    let started_at = SystemTime::now();
    let t0 = Instant::now();

    // Progress line.
    let phase = Arc::new(Mutex::new("connect"));
    let progress = if args.quiet {
        None
    } else {
        let sh = sh.clone();
        let phase = phase.clone();
        let sent_view = Arc::new(AtomicU64::new(0));
        Some((
            tokio::spawn({
                let sent_view = sent_view.clone();
                async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        let errs: u64 = sh.errors.lock().unwrap().values().sum();
                        let closes: u64 = sh.closes.lock().unwrap().values().sum();
                        eprintln!(
                            "[{:>6.1}s {:<7}] conns {}/{} up {} failed {} | sent {} delivered {} acks {} | errors {} closes {} | p99 {:.2} ms",
                            t0.elapsed().as_secs_f64(),
                            *phase.lock().unwrap(),
                            sh.established.load(Relaxed),
                            sh.args.clients,
                            sh.alive.load(Relaxed),
                            sh.failed.load(Relaxed),
                            sent_view.load(Relaxed),
                            sh.delivered.load(Relaxed),
                            sh.answered.load(Relaxed),
                            errs,
                            closes,
                            p99_ms(&sh.lat_hist),
                        );
                    }
                }
            }),
            sent_view,
        ))
    };
    let set_phase = |p: &'static str| *phase.lock().unwrap() = p;

    // Connect phase: spawn at --connect-rate, wait until every attempt resolved.
    let mut senders = Vec::with_capacity(clients);
    let rate = args.connect_rate.max(1.0);
    let mut spawned = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let cstart = Instant::now();
    while spawned < clients && !stopped() {
        tick.tick().await;
        let due = ((cstart.elapsed().as_secs_f64() * rate) as usize + 1).min(clients);
        while spawned < due {
            let (tx, rx) = mpsc::channel(conn::OUT_QUEUE);
            senders.push(tx);
            tokio::spawn(conn::run(sh.clone(), spawned, rx));
            spawned += 1;
        }
    }
    while !stopped() && sh.established.load(Relaxed) + sh.failed.load(Relaxed) < spawned as u64 {
        tick.tick().await;
    }
    let established = sh.established.load(Relaxed);
    if args.hold && !stopped() {
        println!("ESTABLISHED {established}");
        let _ = std::io::stdout().flush();
    }

    // Warm-up and measured phase.
    let mut driver = Driver {
        sh: sh.clone(),
        senders,
        rng: SmallRng::from_os_rng(),
        seq: 0,
        counting: false,
        c: Sent::default(),
    };
    let sends = args.scenario != Scenario::Idle && !driver.senders.is_empty();
    if established == 0 && !stopped() {
        eprintln!("loadgen: no connection could be established; skipping the traffic phases");
    }
    let msg_rate = args.rate.max(0.0);
    let mut measure_start = Instant::now();
    let mut measure_started_at = SystemTime::now();
    for (p, len, counting) in [
        ("warmup", args.warmup, false),
        ("measure", args.duration, true),
    ] {
        if stopped() || established == 0 {
            break;
        }
        set_phase(p);
        if counting {
            sh.count_from.store(driver.seq, Relaxed);
            driver.counting = true;
            measure_start = Instant::now();
            measure_started_at = SystemTime::now();
        }
        let pstart = Instant::now();
        let mut done = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while pstart.elapsed() < len && !stopped() {
            tick.tick().await;
            if sends {
                let el = pstart.elapsed().min(len).as_secs_f64();
                let due = (el * msg_rate) as u64;
                let n = due.saturating_sub(done).min(100_000);
                for _ in 0..n {
                    driver.send_one();
                }
                done += n;
                if let Some((_, v)) = &progress {
                    v.store(driver.c.sent, Relaxed);
                }
            }
        }
    }
    let measured = if driver.counting {
        measure_start.elapsed()
    } else {
        Duration::ZERO
    };

    // Grace: wait for stragglers (ends early when everything arrived).
    set_phase("grace");
    let gstart = Instant::now();
    if sends {
        while gstart.elapsed() < args.grace && !stopped() {
            if sh.delivered.load(Relaxed) >= driver.c.expected
                && sh.answered.load(Relaxed) >= driver.c.sent
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let interrupted_flag = interrupted.load(Relaxed);

    // Snapshot, then close every connection (1000) and wait a little for them.
    let mut rep = Report {
        scenario: args.scenario.name().into(),
        interrupted: interrupted_flag,
        processes: 1,
        ..Default::default()
    };
    rep.connections.attempted = sh.attempted.load(Relaxed).max(spawned as u64);
    rep.connections.established = sh.established.load(Relaxed);
    rep.connections.failed = sh.failed.load(Relaxed);
    rep.connections.failures = sh.failures.lock().unwrap().clone();
    rep.messages.sent = driver.c.sent;
    rep.messages.expected = driver.c.expected;
    rep.messages.delivered = sh.delivered.load(Relaxed);
    rep.messages.duplicates = sh.duplicates.load(Relaxed);
    rep.messages.send_dropped = driver.c.dropped;
    rep.acks.delivered = sh.ack_delivered.load(Relaxed);
    rep.acks.offline = sh.ack_offline.load(Relaxed);
    rep.acks.failed = sh.ack_failed.load(Relaxed);
    rep.acks.rate_limited = sh.ack_rate_limited.load(Relaxed);
    rep.errors = sh.errors.lock().unwrap().clone();
    rep.heartbeats = sh.heartbeats.load(Relaxed);
    let _ = measure_started_at;
    set_phase("close");
    let _ = shutdown_tx.send(true);
    drop(driver);
    let cstart = Instant::now();
    while sh.closed.load(Relaxed) < sh.established.load(Relaxed)
        && cstart.elapsed() < Duration::from_secs(3)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some((h, _)) = progress {
        h.abort();
    }
    // Closes seen before our own close count (ours are never counted).
    rep.closes = sh.closes.lock().unwrap().clone();
    let ended_at = SystemTime::now();
    rep.started_at = report::rfc3339(started_at);
    rep.ended_at = report::rfc3339(ended_at);
    rep.duration_s = (measured.as_secs_f64() * 1000.0).round() / 1000.0;
    if measured > Duration::ZERO {
        let s = measured.as_secs_f64();
        rep.rates.sent_per_s = (rep.messages.sent as f64 / s * 10.0).round() / 10.0;
        rep.rates.delivered_per_s = (rep.messages.delivered as f64 / s * 10.0).round() / 10.0;
    }
    let mut config = serde_json::to_value(&args).unwrap_or_default();
    if let Some(obj) = config.as_object_mut() {
        obj.insert("users".into(), users.into());
        obj.insert(
            "auth".into(),
            if sh.tokens.is_empty() {
                "insecure"
            } else {
                "jwt"
            }
            .into(),
        );
        obj.insert("run_id".into(), sh.run_id.into());
    }
    rep.config = config;
    {
        let lat = sh.lat_hist.lock().unwrap();
        let con = sh.connect_hist.lock().unwrap();
        rep.finish(&lat, &con);
    }
    print!("{}", rep.human());
    let _ = std::io::stdout().flush();
    if let Some(path) = &args.json {
        if let Err(e) = rep.write(path) {
            eprintln!("loadgen: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    let _ = t0;
    0
}
