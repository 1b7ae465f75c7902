//! WebSocket conformance: the Autobahn|Testsuite cases (sections 1–7, 9, 10)
//! run by `kosoku` against the real server's echo path.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::ServerProcess;

fn kosoku() -> PathBuf {
    let path = std::env::var_os("KOSOKU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/kosoku")));
    assert!(
        path.exists(),
        "kosoku not found at {} (run tests/run-all.sh, which installs it)",
        path.display()
    );
    path
}

#[test]
fn autobahn_sections_1_to_7_9_10_have_no_failures() {
    let s = ServerProcess::start(
        &[
            "--echo-path",
            "/autobahn",
            "--shards",
            "2",
            "--max-message-bytes",
            "16777216",
            "--send-queue-bytes",
            "67108864",
            "--rate-limit",
            "0",
            // Four 16 MiB cases at a time may be assembled on one shard.
            "--partial-message-bytes-per-shard",
            "1073741824",
        ],
        &[],
    );
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(kosoku());
    for section in [
        "1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*",
    ] {
        cmd.args(["-i", section]);
    }
    cmd.args(["-x", "12.*", "-x", "13.*", "-p", "4", "-o"])
        .arg(out.path())
        .arg(s.url("/autobahn"));
    let status = cmd.status().expect("run kosoku");
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let mut failed = Vec::new();
    let mut total = 0;
    for (_agent, cases) in index.as_object().unwrap() {
        for (case, result) in cases.as_object().unwrap() {
            total += 1;
            let behavior = result["behavior"].as_str().unwrap_or("?");
            let close = result["behaviorClose"].as_str().unwrap_or("?");
            let ok = |b: &str| matches!(b, "OK" | "NON-STRICT" | "INFORMATIONAL" | "UNIMPLEMENTED");
            if !ok(behavior) || !ok(close) {
                failed.push(format!("{case}: {behavior}/{close}"));
            }
        }
    }
    assert!(
        total > 250,
        "only {total} cases ran (kosoku exit {status:?})"
    );
    assert!(
        failed.is_empty(),
        "{} of {total} Autobahn cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
