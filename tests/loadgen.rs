//! The load generator against the real server: every scenario for about two
//! seconds, nothing lost, nothing duplicated, and the server's own counters
//! agree. The channels scenario also runs across two instances over a real
//! Redis, and holds its subscriptions for a memory measurement.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::channels::config_file;
use support::{eventually, http_get, ServerProcess};

/// The namespace of the loadgen's channels (`lg:<n>`): insecure-mode
/// clients may subscribe and publish.
const LG_NAMESPACE: &str = "[namespaces.lg]\npublic = true\nclient_publish = true\n";

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        let k = k.split('{').next()?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Runs `loadgen run` against `servers` (2 s measured after 0.5 s of
/// warm-up, unless `args` say otherwise) and returns its JSON report.
fn loadgen(servers: &[&ServerProcess], args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.arg("run");
    for s in servers {
        cmd.args(["--url", &s.url("/ws")]);
    }
    let out = cmd
        .args(["--duration", "2", "--warmup", "0.5", "--quiet", "--json"])
        .arg(&json)
        .args(args)
        .env_remove("JWT_SECRET")
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed\n{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&json).expect("report written");
    serde_json::from_str(&text).expect("report is JSON")
}

fn run_scenario(scenario: &str, extra: &[&str]) -> (ServerProcess, Value) {
    let server = ServerProcess::start(&["--shards", "2"], &[]);
    let mut args = vec!["--scenario", scenario, "--clients", "40", "--rate", "200"];
    args.extend_from_slice(extra);
    let report = loadgen(&[&server], &args);
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
    // 40 clients over 21 users: client i and i+21 share a user and land on
    // different instances (round-robin over the two URLs).
    let r = loadgen(
        &[&a, &b],
        &[
            "--scenario",
            "direct",
            "--clients",
            "40",
            "--users",
            "21",
            "--rate",
            "200",
        ],
    );
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

/// A server (`shards` shards) with the `lg` namespace, Redis when given;
/// keep the file alive while it runs.
fn channels_server(
    shards: &str,
    redis: Option<(&str, &str)>,
) -> (ServerProcess, tempfile::NamedTempFile) {
    let file = config_file(LG_NAMESPACE);
    let path = file.path().to_str().unwrap().to_owned();
    let mut env = vec![("CHANNELS_CONFIG", path.as_str())];
    if let Some((uri, id)) = redis {
        env.extend([("REDIS_URI", uri), ("SERVER_ID", id)]);
    }
    (ServerProcess::start(&["--shards", shards], &env), file)
}

/// Everything published arrived once, in one order per channel, and each
/// publisher's order was kept: `subs` subscriptions, `per_channel` each.
fn check_channels(r: &Value, conns: u64, subs: u64, per_channel: u64) {
    let ctx = serde_json::to_string_pretty(r).unwrap();
    let n = |ptr: &str| {
        r.pointer(ptr)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{ptr} in {ctx}"))
    };
    assert_eq!(r["scenario"], "channels");
    assert_eq!(n("/connections/established"), conns, "{ctx}");
    assert_eq!(n("/connections/failed"), 0, "{ctx}");
    assert_eq!(n("/channels/subscriptions/wanted"), subs, "{ctx}");
    assert_eq!(n("/channels/subscriptions/subscribed"), subs, "{ctx}");
    let sent = n("/messages/sent");
    // 200/s for 2 s: never more; fewer only when the machine is starved.
    assert!((100..=420).contains(&sent), "{ctx}");
    assert_eq!(n("/messages/expected"), sent * per_channel, "{ctx}");
    assert_eq!(n("/messages/delivered"), n("/messages/expected"), "{ctx}");
    for ptr in [
        "/messages/missing",
        "/messages/duplicates",
        "/messages/send_dropped",
        "/channels/out_of_order",
        "/channels/unexpected",
        "/channels/order/violations",
        "/channels/order/incomplete",
        "/acks/failed",
        "/acks/rate_limited",
    ] {
        assert_eq!(n(ptr), 0, "{ptr}: {ctx}");
    }
    assert_eq!(n("/acks/published"), sent, "{ctx}");
    assert_eq!(n("/channels/order/compared"), subs, "{ctx}");
    assert_eq!(n("/latency_ms/count"), n("/messages/delivered"), "{ctx}");
    assert!(r["errors"].as_object().unwrap().is_empty(), "{ctx}");
    assert!(r["closes"].as_object().unwrap().is_empty(), "{ctx}");
}

fn server_metric(server: &ServerProcess, name: &str) -> f64 {
    let (status, body) = http_get(server.addr, "/metrics");
    assert_eq!(status, 200);
    metric(&body, name).unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// One instance: 4 channels × 10 subscribers, 2 subscriptions per
/// connection, over two source addresses.
#[test]
fn loadgen_channels() {
    let (server, _f) = channels_server("2", None);
    let r = loadgen(
        &[&server],
        &[
            "--scenario",
            "channels",
            "--channels",
            "4",
            "--subscribers-per-channel",
            "10",
            "--subscriptions-per-connection",
            "2",
            "--rate",
            "200",
            "--source-addrs",
            "127.0.0.1-127.0.0.2",
        ],
    );
    // 20 subscriber connections and 4 publishers (one per 50/s).
    check_channels(&r, 24, 40, 10);
    let delivered = r["messages"]["delivered"].as_f64().unwrap();
    // The server counted at least what the loadgen saw (it also counts warm-up).
    eventually("server delivery counter", || {
        (server_metric(&server, "wss_publication_deliveries_total") >= delivered).then_some(())
    });
}

/// Two instances over Redis: every channel has subscribers and publishers
/// on both, and still one order per channel, nothing lost or repeated.
#[test]
fn loadgen_channels_across_two_instances_over_redis() {
    let redis = support::redis::RedisServer::start();
    let uri = redis.uri();
    let (a, _fa) = channels_server("1", Some((&uri, "lg-a")));
    let (b, _fb) = channels_server("1", Some((&uri, "lg-b")));
    let r = loadgen(
        &[&a, &b],
        &[
            "--scenario",
            "channels",
            "--channels",
            "4",
            "--subscribers-per-channel",
            "6",
            "--rate",
            "200",
        ],
    );
    check_channels(&r, 28, 24, 6);
    for s in [&a, &b] {
        assert!(
            server_metric(s, "wss_publications_in_total") > 0.0,
            "publishers on both"
        );
        assert!(
            server_metric(s, "wss_publication_deliveries_total") > 0.0,
            "subscribers on both"
        );
    }
}

/// `--hold` with no publishing: every connection holds its subscriptions
/// until `--duration` ends, announced on stdout for a memory measurement.
#[test]
fn loadgen_channels_hold_subscriptions() {
    let (server, _f) = channels_server("2", None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["run", "--url", &server.url("/ws"), "--quiet", "--hold"])
        .args(["--scenario", "channels", "--channels", "16", "--rate", "0"])
        .args([
            "--subscribers-per-channel",
            "5",
            "--subscriptions-per-connection",
            "8",
        ])
        .args(["--duration", "3"])
        .env_remove("JWT_SECRET")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn loadgen");
    // Bounded by the loadgen's own run (connect timeout + duration): at its
    // exit stdout ends.
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let first: Vec<String> = lines.by_ref().take(2).collect();
    assert_eq!(
        first,
        ["ESTABLISHED 10", "SUBSCRIBED 80"],
        "16 × 5 / 8 connections, no publisher"
    );
    eventually("the server holds 80 subscriptions", || {
        (server_metric(&server, "wss_subscriptions") == 80.0).then_some(())
    });
    let rest: Vec<String> = lines.collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.starts_with("messages     sent 0 ")),
        "{rest:?}"
    );
}
