//! The load generator against the real server: every scenario for about two
//! seconds, nothing lost, nothing duplicated, and the server's own counters
//! agree.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{eventually, http_get, ServerProcess};

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        let k = k.split('{').next()?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

fn run_scenario(scenario: &str, extra: &[&str]) -> (ServerProcess, Value) {
    let server = ServerProcess::start(&["--shards", "2"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "--url", &server.url("/ws")])
        .args(["--scenario", scenario, "--clients", "40", "--rate", "200"])
        .args(["--duration", "2", "--warmup", "0.5", "--quiet", "--json"])
        .arg(&json)
        .args(extra)
        .env_remove("JWT_SECRET")
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed\n{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&json).expect("report written");
    let report: Value = serde_json::from_str(&text).expect("report is JSON");
    (server, report)
}

fn check(scenario: &str) {
    // Broadcast binds to two loopback source addresses; mixed has two
    // connections per user.
    let extra: &[&str] = match scenario {
        "broadcast" => &["--source-addrs", "127.0.0.1-127.0.0.2"],
        "mixed" => &["--users", "20", "--threads", "2"],
        _ => &[],
    };
    let (server, r) = run_scenario(scenario, extra);
    let ctx = serde_json::to_string_pretty(&r).unwrap();
    let n = |ptr: &str| {
        r.pointer(ptr)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{ptr} in {ctx}"))
    };
    assert_eq!(r["scenario"], scenario);
    assert_eq!(n("/connections/attempted"), 40, "{ctx}");
    assert_eq!(n("/connections/established"), 40, "{ctx}");
    assert_eq!(n("/connections/failed"), 0, "{ctx}");
    assert!(r["connect_ms"]["max"].as_f64().unwrap() > 0.0, "{ctx}");
    assert_eq!(n("/messages/missing"), 0, "{ctx}");
    assert_eq!(n("/messages/duplicates"), 0, "{ctx}");
    assert_eq!(n("/messages/delivered"), n("/messages/expected"), "{ctx}");
    assert!(r["errors"].as_object().unwrap().is_empty(), "{ctx}");
    assert!(r["closes"].as_object().unwrap().is_empty(), "{ctx}");
    for key in ["started_at", "ended_at"] {
        assert!(r[key].as_str().is_some_and(|s| s.ends_with('Z')), "{ctx}");
    }
    assert!(r["duration_s"].as_f64().unwrap() >= 1.9, "{ctx}");
    if scenario == "idle" {
        assert_eq!(n("/messages/sent"), 0, "{ctx}");
        return;
    }
    let sent = n("/messages/sent");
    // 200/s for 2 s: never more; fewer only when the machine is starved.
    assert!((100..=420).contains(&sent), "{ctx}");
    assert!(n("/latency_ms/count") > 0, "{ctx}");
    assert_eq!(n("/latency_ms/count"), n("/messages/delivered"), "{ctx}");
    assert!(
        !r["histogram"]["counts"].as_array().unwrap().is_empty(),
        "{ctx}"
    );
    assert!(r["rates"]["sent_per_s"].as_f64().unwrap() > 100.0, "{ctx}");
    assert_eq!(n("/acks/delivered"), sent, "{ctx}");
    assert_eq!(
        n("/acks/offline") + n("/acks/failed") + n("/acks/rate_limited"),
        0,
        "{ctx}"
    );
    match scenario {
        // One connection per user: one delivery per message.
        "direct" | "echo" => assert_eq!(n("/messages/expected"), sent, "{ctx}"),
        // Everyone but the sender.
        "broadcast" => assert_eq!(n("/messages/expected"), sent * 39, "{ctx}"),
        _ => assert!(n("/messages/expected") > sent, "{ctx}"),
    }
    // The server counted at least what the loadgen saw (it also counts warm-up).
    let delivered = n("/messages/delivered") as f64;
    eventually("server delivered counter", || {
        let (status, body) = http_get(server.addr, "/metrics");
        assert_eq!(status, 200);
        let v = metric(&body, "wss_messages_delivered_total")?;
        (v >= delivered).then_some(())
    });
}

#[test]
fn loadgen_idle() {
    check("idle");
}

#[test]
fn loadgen_direct() {
    check("direct");
}

#[test]
fn loadgen_broadcast() {
    check("broadcast");
}

#[test]
fn loadgen_echo() {
    check("echo");
}

#[test]
fn loadgen_mixed() {
    check("mixed");
}

/// Several processes' reports merge: counts add up, the histogram merges.
#[test]
fn loadgen_merge() {
    let (_server, r) = run_scenario("direct", &[]);
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    let out = dir.path().join("out.json");
    std::fs::write(&a, r.to_string()).unwrap();
    std::fs::write(&b, r.to_string()).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("merge")
        .args([&a, &b])
        .arg("--json")
        .arg(&out)
        .output()
        .expect("run merge");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let n = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_u64).unwrap();
    for p in [
        "/messages/sent",
        "/messages/delivered",
        "/connections/established",
        "/latency_ms/count",
    ] {
        assert_eq!(n(&m, p), 2 * n(&r, p), "{p}");
    }
    assert_eq!(n(&m, "/processes"), 2);
    assert_eq!(m["latency_ms"]["max"], r["latency_ms"]["max"]);
}

/// Cross-instance: two servers sharing a real Redis, clients spread over both
/// (non-sticky), users with a connection on each instance. Nothing is lost.
#[test]
fn direct_across_two_instances_over_redis() {
    let redis = support::redis::RedisServer::start();
    let uri = redis.uri();
    let a = ServerProcess::start(
        &["--shards", "1"],
        &[("REDIS_URI", &uri), ("SERVER_ID", "lg-a")],
    );
    let b = ServerProcess::start(
        &["--shards", "1"],
        &[("REDIS_URI", &uri), ("SERVER_ID", "lg-b")],
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("cross.json");
    // 40 clients over 21 users: client i and i+21 share a user and land on
    // different instances (round-robin over the two URLs).
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "--url", &a.url("/ws"), "--url", &b.url("/ws")])
        .args([
            "--scenario",
            "direct",
            "--clients",
            "40",
            "--users",
            "21",
            "--rate",
            "200",
        ])
        .args(["--duration", "2", "--warmup", "0.5", "--quiet", "--json"])
        .arg(&json)
        .env_remove("JWT_SECRET")
        .output()
        .expect("run loadgen");
    assert!(
        out.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let ctx = serde_json::to_string_pretty(&r).unwrap();
    let n = |ptr: &str| {
        r.pointer(ptr)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{ptr} in {ctx}"))
    };
    assert_eq!(n("/connections/established"), 40, "{ctx}");
    assert!(n("/messages/sent") > 0, "{ctx}");
    assert!(
        n("/messages/expected") > n("/messages/sent"),
        "users span both instances: {ctx}"
    );
    assert_eq!(n("/messages/missing"), 0, "{ctx}");
    assert_eq!(n("/messages/duplicates"), 0, "{ctx}");
    assert_eq!(n("/acks/delivered"), n("/messages/sent"), "{ctx}");
}
