//! The run: connect phase, subscribe phase (channels), warm-up, measured
//! phase, grace, report.
//!
//! # Layout
//! - `driver`: paces the scenario's messages and picks their senders.
//! - `background`: the progress line on stderr, the signal watcher.
//! - `snapshot`: from the counters to the report.

mod background;
mod driver;
mod snapshot;

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::args::{RunArgs, Scenario};
use crate::channels::Plan;
use crate::conn;
use crate::shared::{resolve, Shared};
use background::Progress;
use driver::Driver;

/// Polls `done` every 2 ms until it holds, the run stops, or `limit` passes.
async fn wait_until(sh: &Shared, limit: Duration, done: impl Fn() -> bool) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !done() && !*sh.shutdown_rx.borrow() && start.elapsed() < limit {
        tick.tick().await;
    }
}

/// Runs the load; returns the process exit code. `nofile` is the process's
/// open-file limit.
pub async fn run(mut args: RunArgs, nofile: u64) -> i32 {
    let plan = if args.scenario == Scenario::Channels {
        match Plan::new(&args) {
            Ok(p) => {
                args.clients = p.connections();
                Some(p)
            }
            Err(e) => {
                eprintln!("loadgen: {e}");
                return 2;
            }
        }
    } else {
        None
    };
    if args.clients == 0 {
        eprintln!("loadgen: --clients must be at least 1");
        return 2;
    }
    if args.clients as u64 + 64 > nofile {
        eprintln!(
            "loadgen: warning: {} connections but the open-file limit is {nofile}; \
             one process holds at most that many connections (run several and `loadgen merge`)",
            args.clients
        );
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
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let clients = args.clients;
    let sh = Arc::new(Shared::new(args.clone(), targets, users, plan, shutdown_rx));

    let interrupted = background::stop_on_signal(shutdown_tx.clone());
    let stopped = || *sh.shutdown_rx.borrow();
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let progress = Progress::start(&sh, t0);

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
    wait_until(&sh, Duration::MAX, || {
        sh.established.load(Relaxed) + sh.failed.load(Relaxed) >= spawned as u64
    })
    .await;
    // Subscribe phase (channels): publishing starts only once every
    // subscription was answered, so each publication has its whole audience;
    // bounded by --connect-timeout.
    if sh.plan.is_some() {
        progress.phase("subscribe");
        wait_until(&sh, args.connect_timeout, || {
            sh.subscribed.load(Relaxed) + sh.sub_refused.load(Relaxed) + sh.sub_lost.load(Relaxed)
                >= sh.sub_wanted.load(Relaxed)
        })
        .await;
    }
    let subscribed_after = t0.elapsed();
    let established = sh.established.load(Relaxed);
    if args.hold && !stopped() {
        println!("ESTABLISHED {established}");
        if sh.plan.is_some() {
            println!("SUBSCRIBED {}", sh.subscribed.load(Relaxed));
        }
        let _ = std::io::stdout().flush();
    }

    // Warm-up and measured phase.
    let mut driver = Driver::new(sh.clone(), senders);
    if established == 0 && !stopped() {
        eprintln!("loadgen: no connection could be established; skipping the traffic phases");
    }
    let msg_rate = args.rate.max(0.0);
    let mut measure_start = Instant::now();
    for (p, len, counting) in [
        ("warmup", args.warmup, false),
        ("measure", args.duration, true),
    ] {
        if stopped() || established == 0 {
            break;
        }
        progress.phase(p);
        if counting {
            sh.count_from.store(driver.seq, Relaxed);
            driver.counting = true;
            measure_start = Instant::now();
        }
        driver.phase(len, msg_rate, |c| progress.sent(c.sent)).await;
    }
    let measured = if driver.counting {
        measure_start.elapsed()
    } else {
        Duration::ZERO
    };

    // Grace: wait for in-flight messages (ends early when everything arrived).
    progress.phase("grace");
    if driver.sends() {
        wait_until(&sh, args.grace, || {
            sh.delivered.load(Relaxed) >= driver.c.expected
                && sh.answered.load(Relaxed) >= driver.c.sent
        })
        .await;
    }

    // Snapshot, then close every connection (1000) and wait a little for them.
    let mut rep = snapshot::take(&sh, spawned, &driver.c, interrupted.load(Relaxed));
    progress.phase("close");
    let _ = shutdown_tx.send(true);
    drop(driver);
    let cstart = Instant::now();
    while sh.closed.load(Relaxed) < sh.established.load(Relaxed)
        && cstart.elapsed() < Duration::from_secs(3)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    progress.stop();
    let times = snapshot::Times {
        started_at,
        measured,
        subscribed_after,
    };
    snapshot::complete(&mut rep, &sh, &times);
    print!("{}", rep.human());
    let _ = std::io::stdout().flush();
    if let Some(path) = &args.json {
        if let Err(e) = rep.write(path) {
            eprintln!("loadgen: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    0
}
