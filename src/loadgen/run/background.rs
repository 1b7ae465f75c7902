//! What runs beside the phases: the progress line on stderr (once a second:
//! phase, connections, subscriptions, sent, delivered, acks, errors, closes,
//! the running p99) and the signal watcher that stops a run early.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::shared::Shared;

/// The running progress line.
pub struct Progress {
    task: Option<JoinHandle<()>>,
    /// The phase shown.
    phase: Arc<Mutex<&'static str>>,
    /// Counted messages sent so far (the driver owns the real count).
    sent: Arc<AtomicU64>,
}

fn p99_ms(h: &Mutex<Histogram<u64>>) -> f64 {
    let h = h.lock().unwrap();
    h.value_at_quantile(0.99) as f64 / 1000.0
}

impl Progress {
    /// Starts printing unless `--quiet`.
    pub fn start(sh: &Arc<Shared>, t0: Instant) -> Self {
        let phase = Arc::new(Mutex::new("connect"));
        let sent = Arc::new(AtomicU64::new(0));
        let task = (!sh.args.quiet).then(|| {
            let (sh, phase, sent) = (sh.clone(), phase.clone(), sent.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    eprintln!("{}", line(&sh, t0, *phase.lock().unwrap(), &sent));
                }
            })
        });
        Progress { task, phase, sent }
    }

    /// Names the current phase.
    pub fn phase(&self, p: &'static str) {
        *self.phase.lock().unwrap() = p;
    }

    /// Updates the sent count shown.
    pub fn sent(&self, n: u64) {
        self.sent.store(n, Relaxed);
    }

    /// Stops printing.
    pub fn stop(self) {
        if let Some(t) = self.task {
            t.abort();
        }
    }
}

fn line(sh: &Shared, t0: Instant, phase: &str, sent: &AtomicU64) -> String {
    let errs: u64 = sh.errors.lock().unwrap().values().sum();
    let closes: u64 = sh.closes.lock().unwrap().values().sum();
    let subs = if sh.plan.is_some() {
        format!(
            " subs {}/{}",
            sh.subscribed.load(Relaxed),
            sh.sub_wanted.load(Relaxed)
        )
    } else {
        String::new()
    };
    format!(
        "[{:>6.1}s {:<7}] conns {}/{} up {} failed {}{subs} | sent {} delivered {} acks {} | errors {} closes {} | p99 {:.2} ms",
        t0.elapsed().as_secs_f64(),
        phase,
        sh.established.load(Relaxed),
        sh.args.clients,
        sh.alive.load(Relaxed),
        sh.failed.load(Relaxed),
        sent.load(Relaxed),
        sh.delivered.load(Relaxed),
        sh.answered.load(Relaxed),
        errs,
        closes,
        p99_ms(&sh.lat_hist),
    )
}

/// Resolves on Ctrl-C or SIGTERM.
async fn signalled() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// On Ctrl-C or SIGTERM: stops the run (every phase ends, the connections
/// close) and marks the report partial. Returns the mark.
pub fn stop_on_signal(shutdown: watch::Sender<bool>) -> Arc<AtomicBool> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let mark = interrupted.clone();
    tokio::spawn(async move {
        signalled().await;
        eprintln!("loadgen: signal: stopping, writing a partial report");
        mark.store(true, Relaxed);
        let _ = shutdown.send(true);
    });
    interrupted
}
