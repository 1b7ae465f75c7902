//! `loadgen`: a WebSocket load generator for websocket-app.
//!
//! It speaks only the public wire protocol (docs/PROTOCOL.md) and knows
//! nothing of the server's internals. See docs/LOADGEN.md.
//!
//! # Layout
//! - `args`: the `run` command line (every setting, defaulted once).
//! - `shared`: what the driver and every connection task share: targets,
//!   identities, the run's counters.
//! - `run`: the phases of a run (connect, subscribe, warm-up, measure,
//!   grace, close), the driver that paces messages, the progress line and the
//!   snapshot that becomes the report.
//! - `conn`: one connection task: connect, subscribe, send, tally.
//! - `channels`: the channels scenario's plan (who subscribes to what, who
//!   publishes where) and its checks (duplicates, per-publisher order, one
//!   order per channel).
//! - `report`: the report, its human summary, merging several.

mod args;
mod channels;
mod conn;
mod report;
mod run;
mod shared;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use args::RunArgs;

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "Load generator for websocket-app", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Open connections, run a scenario, report.
    Run(Box<RunArgs>),
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
            let mut b = if args.threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(args.threads);
                b
            };
            let rt = b.enable_all().build().expect("tokio runtime");
            let code = rt.block_on(run::run(*args, limit));
            // Do not wait for stray tasks.
            rt.shutdown_timeout(Duration::from_millis(100));
            std::process::exit(code);
        }
    }
}

/// mimalloc as the global allocator: fast, and returns memory to the OS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
