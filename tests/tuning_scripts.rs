//! The host-tuning scripts in `tuning/` parse, and `check-host.sh` runs on
//! this machine: `--report` exits 0 whatever the host's state (CI runners are
//! not tuned), prints one OK/WARN line per checked setting, and `--strict`
//! fails exactly when something is off. The Node benchmarks in
//! `tuning/bench/` parse (`node --check`) and answer `--help` without a
//! server.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tuning(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tuning")
        .join(file)
}

fn bash_available() -> bool {
    Command::new("bash")
        .arg("-c")
        .arg("true")
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn scripts_parse() {
    if !bash_available() {
        eprintln!("bash not found: skipped");
        return;
    }
    for script in ["check-host.sh", "measure-idle.sh", "compare-load.sh"] {
        let path = tuning(script);
        assert!(path.exists(), "{} missing", path.display());
        let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "bash -n {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The Node benchmarks (tuning/bench/*.mjs; BENCHMARKS.md runs them).
const BENCH_SCRIPTS: &[&str] = &[
    "recovery-storm.mjs",
    "history-cost.mjs",
    "presence.mjs",
    "deflate.mjs",
];

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn bench_scripts_parse_and_answer_help() {
    if !node_available() {
        eprintln!("node not found: skipped");
        return;
    }
    let dir = tuning("bench");
    for script in BENCH_SCRIPTS.iter().chain(&["common.mjs"]) {
        let path = dir.join(script);
        assert!(path.exists(), "{} missing", path.display());
        let out = Command::new("node")
            .arg("--check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "node --check {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // --help needs no WebSocket and no server: it exits 0 with the usage,
    // the common server options included. A bad option is a usage error (2).
    for script in BENCH_SCRIPTS {
        let out = Command::new("node")
            .arg(dir.join(script))
            .arg("--help")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{script} --help: {stdout}");
        assert!(
            stdout.starts_with(script) && stdout.contains("--spawn") && stdout.contains("--url"),
            "{script} --help: {stdout}"
        );
        let out = Command::new("node")
            .arg(dir.join(script))
            .arg("--bogus")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{script} --bogus");
    }
}

/// `node` arguments that give it a global `WebSocket` (none from Node 22 on,
/// `--experimental-websocket` on 20 and 21), or `None` without one.
fn node_websocket_flags() -> Option<Vec<&'static str>> {
    let probe = |flags: &[&'static str]| {
        Command::new("node")
            .args(flags)
            .args([
                "-e",
                "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    [vec![], vec!["--experimental-websocket"]]
        .into_iter()
        .find(|f| probe(f))
}

/// Each benchmark, tiny, against this build of the server (`--spawn`,
/// embedded): it exits 0 only when its own checks held (every recovery
/// exact, no delivery missing, presence counts right). No figure is
/// asserted; this keeps the scripts working as the protocol evolves.
#[test]
fn bench_scripts_run_small() {
    let Some(flags) = node_websocket_flags() else {
        eprintln!("node with WebSocket not found: skipped");
        return;
    };
    let bin = env!("CARGO_BIN_EXE_websocket-app");
    let runs: &[(&str, &[&str])] = &[
        (
            "recovery-storm.mjs",
            &["--clients", "20", "--publications", "5", "--rounds", "2"],
        ),
        (
            "history-cost.mjs",
            &["--subscribers", "5", "--duration", "1", "--warmup", "0"],
        ),
        (
            "presence.mjs",
            &["--members", "50", "--requests", "10", "--duration", "1"],
        ),
        (
            "deflate.mjs",
            &["--subscribers", "20", "--rate", "20", "--duration", "1"],
        ),
    ];
    for (script, args) in runs {
        let out = Command::new("node")
            .args(&flags)
            .arg(tuning("bench").join(script))
            .args([
                "--spawn",
                "--shards",
                "1",
                "--bin",
                bin,
                "--time-limit",
                "60",
            ])
            .args(*args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: exit {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn check_host(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("bash")
        .arg(tuning("check-host.sh"))
        .args(args)
        .output()
        .expect("run check-host.sh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The OK/WARN lines of a run, and the rest.
fn lines(stdout: &str) -> (Vec<&str>, Vec<&str>) {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| l.starts_with("OK ") || l.starts_with("WARN "))
}

#[test]
fn check_host_report_runs_here() {
    if !bash_available() {
        eprintln!("bash not found: skipped");
        return;
    }
    let (code, stdout, stderr) = check_host(&["--report"]);
    assert_eq!(code, 0, "--report must not fail: {stdout}\n{stderr}");
    assert!(stderr.trim().is_empty(), "unexpected stderr: {stderr}");
    let (checks, other) = lines(&stdout);
    // Only the final summary line is not a check.
    assert_eq!(other.len(), 1, "unexpected lines: {other:?}");
    assert!(other[0].starts_with("check-host: "), "{}", other[0]);
    // One line per setting, each named once.
    for setting in [
        "fs.file-max",
        "fs.nr_open",
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.core.netdev_max_backlog",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_tw_reuse",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_mem",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.netfilter.nf_conntrack_max",
        "vm.max_map_count",
        "RLIMIT_NOFILE",
        "RLIMIT_MEMLOCK",
        "memory",
        "irqbalance",
    ] {
        let n = checks
            .iter()
            .filter(|l| l.split_whitespace().nth(1) == Some(setting))
            .count();
        assert_eq!(n, 1, "{setting}: {n} lines in\n{stdout}");
    }
    for l in &checks {
        assert!(l.contains(" = "), "check line without a value: {l}");
    }
    let warns = checks.iter().filter(|l| l.starts_with("WARN ")).count();
    if warns > 0 {
        assert!(
            other[0].contains(&format!("{warns} setting(s) off")),
            "{}",
            other[0]
        );
    }
}

#[test]
fn check_host_strict_fails_exactly_when_something_is_off() {
    if !bash_available() {
        eprintln!("bash not found: skipped");
        return;
    }
    let (_, report, _) = check_host(&["--report"]);
    let warns = lines(&report)
        .0
        .iter()
        .filter(|l| l.starts_with("WARN "))
        .count();
    let (code, strict, _) = check_host(&["--strict"]);
    assert_eq!(lines(&strict).0.len(), lines(&report).0.len());
    if warns > 0 {
        assert_eq!(code, 1, "--strict with {warns} WARN lines must exit 1");
    } else {
        assert_eq!(code, 0);
    }
    // A tiny target is met by almost any host's memory; the line stays.
    let (code, small, _) = check_host(&["--report", "--connections", "1000"]);
    assert_eq!(code, 0);
    assert!(
        small.lines().any(|l| l.starts_with("OK   memory = ")),
        "{small}"
    );
    // Bad arguments are usage errors, not a report.
    let (code, _, _) = check_host(&["--bogus"]);
    assert_eq!(code, 2);
}
