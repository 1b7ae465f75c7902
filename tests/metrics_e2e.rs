//! Metrics end to end: known traffic through the real server, read back from
//! `/metrics` and from a real CloudWatch-compatible endpoint (moto), including
//! the flush on graceful shutdown.

mod support;

use support::moto;

use std::time::Duration;

use serde_json::json;
use support::{http_get, ServerProcess};

const NS: &str = "wss/metrics-e2e";

/// Value of one Prometheus sample line (`name{labels} value`).
fn prom(addr: std::net::SocketAddr, name: &str) -> f64 {
    let (_, body) = http_get(addr, "/metrics");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
}

/// Sends `n` acked chat messages alice → bob and waits for each delivery.
fn traffic(s: &ServerProcess, n: usize) -> (support::Client, support::Client) {
    let mut alice = s.user("alice");
    let mut bob = s.user("bob");
    for i in 0..n {
        alice.send(&json!({"type": "chat_message", "receiverID": "bob", "payload": i, "id": format!("m{i}")}));
        bob.recv_type("chat_message");
        assert_eq!(alice.recv_type("ack")["status"], "delivered");
    }
    alice.send(&json!({"type": "latency_report", "payload": 12.5}));
    alice.send(&json!({"type": "latency_report", "payload": 30}));
    alice.send(&json!({"type": "heartbeat"}));
    alice.recv_type("heartbeat_ack");
    (alice, bob)
}

#[test]
fn prometheus_figures_match_the_traffic() {
    let s = ServerProcess::start(&["--shards", "2"], &[]);
    let _clients = traffic(&s, 5);
    // 5 chats + 2 latency reports + 1 heartbeat received; 5 chats delivered.
    support::eventually("counters to settle", || {
        (prom(s.addr, "wss_messages_delivered_total") == 5.0).then_some(())
    });
    assert_eq!(prom(s.addr, "wss_messages_total"), 8.0);
    assert_eq!(prom(s.addr, "wss_active_connections"), 2.0);
    assert_eq!(prom(s.addr, "wss_latency_report_ms_count"), 2.0);
    assert_eq!(prom(s.addr, "wss_latency_report_ms_sum"), 42.5);
    assert_eq!(prom(s.addr, "wss_delivery_latency_seconds_count"), 5.0);
    assert_eq!(prom(s.addr, "wss_unexpected_disconnects_total"), 0.0);
    assert!(prom(s.addr, "wss_connections_opened_total") >= 2.0);
}

#[test]
fn cloudwatch_receives_deltas_dimensions_units_and_a_shutdown_flush() {
    let moto = moto::Moto::start();
    let env = [
        ("CLOUDWATCH_ENABLED", "true"),
        ("CLOUDWATCH_NAMESPACE", NS),
        ("METRICS_INTERVAL_SECS", "1"),
        ("SERVER_ID", "e2e-1"),
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let mut s = ServerProcess::start(&["--shards", "2"], &env);
    let _clients = traffic(&s, 4);
    let reader = moto.reader();
    let wait = Duration::from_secs(20);
    let total = reader.wait_for(
        NS,
        "MessagesTotal",
        Some("e2e-1"),
        wait,
        "7 messages",
        |st| st.sum >= 7.0,
    );
    assert_eq!(
        total.sum, 7.0,
        "deltas sum to the traffic, never cumulative re-sends"
    );
    let delivered = reader.wait_for(
        NS,
        "MessagesDelivered",
        Some("e2e-1"),
        wait,
        "4 deliveries",
        |st| st.sum >= 4.0,
    );
    assert_eq!(delivered.sum, 4.0);
    let latency = reader.wait_for(
        NS,
        "AverageLatencyMs",
        Some("e2e-1"),
        wait,
        "two reports",
        |st| st.samples >= 2.0,
    );
    assert_eq!(latency.sum, 42.5);
    assert!(
        latency.units.iter().all(|u| u.as_str() == "Milliseconds"),
        "{:?}",
        latency.units
    );
    assert!(
        total.units.iter().all(|u| u.as_str() == "Count"),
        "{:?}",
        total.units
    );
    assert!(
        !reader
            .list(NS, "MessagesTotal")
            .iter()
            .all(|m| !m.dimensions().is_empty()),
        "the aggregate without dimensions exists"
    );

    // Traffic after the last push, then SIGTERM: the final flush must carry it.
    {
        let mut carol = s.user("carol");
        carol.send(&json!({"type": "heartbeat"}));
        carol.recv_type("heartbeat_ack");
        carol.close();
    }
    s.signal(libc::SIGTERM);
    assert_eq!(
        s.wait_exit(Duration::from_secs(20)),
        Some(0),
        "log:\n{}",
        s.log_text()
    );
    let total = reader.wait_for(
        NS,
        "MessagesTotal",
        Some("e2e-1"),
        wait,
        "flushed heartbeat",
        |st| st.sum >= 8.0,
    );
    assert_eq!(total.sum, 8.0);
}
