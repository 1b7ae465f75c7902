//! The CloudWatch push against a real moto server: sums, units, the
//! dimensionless aggregate, no fake latency, the final flush, and bounded
//! failure handling. Every wait polls with a deadline.

mod support;

use support::moto;

use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::StandardUnit;
use moto::{Moto, Reader};
use websocket_app::config::CloudWatchSettings;
use websocket_app::metrics::{spawn_cloudwatch, Counter, MetricsRegistry};

/// How long a push may take to show up.
const WAIT: Duration = Duration::from_secs(20);

fn config(
    endpoint: &str,
    namespace: &str,
    server_id: &str,
    interval: Duration,
) -> CloudWatchSettings {
    CloudWatchSettings {
        namespace: namespace.to_owned(),
        server_id: server_id.to_owned(),
        region: Some("us-east-1".to_owned()),
        interval,
        endpoint_url: Some(endpoint.to_owned()),
    }
}

/// Asserts that every datapoint of `s` carried `unit` (and that there were some).
#[track_caller]
fn assert_unit(what: &str, s: &moto::Stats, unit: StandardUnit) {
    assert!(
        !s.units.is_empty() && s.units.iter().all(|u| *u == unit),
        "{what}: expected {unit:?}: {s:?}"
    );
}

/// Waits until the `ServerID` stream of `metric` sums to `expected`.
#[track_caller]
fn wait_sum(reader: &Reader, ns: &str, metric: &str, server: &str, expected: f64) -> moto::Stats {
    reader.wait_for(
        ns,
        metric,
        Some(server),
        WAIT,
        &format!("Sum == {expected}"),
        |s| s.sum == expected,
    )
}

#[test]
fn pushes_interval_deltas_with_units_and_an_aggregate() {
    let moto = Moto::start();
    let reader = moto.reader();
    let (ns, srv) = ("wss/test-deltas", "srv-a");
    let reg = MetricsRegistry::new(2);
    let (s0, s1) = (reg.shard(0), reg.shard(1));
    s0.add(Counter::MessagesTotal, 3);
    s1.add(Counter::MessagesTotal, 4);
    s0.add(Counter::MessagesDelivered, 5);
    (0..5).for_each(|_| s1.record_delivery_latency(1_000));
    s0.connection_opened();
    s0.connection_opened();
    s1.connection_opened();
    s0.connection_closed(true);
    s1.connection_closed(false);
    let cw = spawn_cloudwatch(
        config(&moto.endpoint, ns, srv, Duration::from_secs(1)),
        reg.clone(),
    )
    .unwrap();

    wait_sum(&reader, ns, "MessagesTotal", srv, 7.0);
    s1.add(Counter::MessagesTotal, 3);
    let s = wait_sum(&reader, ns, "MessagesTotal", srv, 10.0);
    // Two more intervals publish zeros: the Sum stays (deltas, not running totals).
    let more = s.samples + 2.0;
    let s = reader.wait_for(
        ns,
        "MessagesTotal",
        Some(srv),
        WAIT,
        "two more intervals",
        |s| s.samples >= more,
    );
    assert_eq!(s.sum, 10.0, "cumulative values were pushed: {s:?}");
    assert_unit("MessagesTotal", &s, StandardUnit::Count);

    for (metric, expected) in [
        ("MessagesDelivered", 5.0),
        ("ConnectionsOpened", 3.0),
        ("UnexpectedDisconnects", 1.0),
    ] {
        let s = wait_sum(&reader, ns, metric, srv, expected);
        assert_unit(metric, &s, StandardUnit::Count);
    }
    let active = reader.stats(ns, "ActiveConnections", Some(srv));
    assert_eq!(
        (active.min, active.max),
        (Some(1.0), Some(1.0)),
        "gauge: {active:?}"
    );
    assert_unit("ActiveConnections", &active, StandardUnit::Count);
    let latency = reader.stats(ns, "DeliveryLatencyMs", Some(srv));
    assert_eq!(latency.samples, 5.0, "one sample per delivery: {latency:?}");
    assert_unit("DeliveryLatencyMs", &latency, StandardUnit::Milliseconds);
    assert!(
        reader.list(ns, "AverageLatencyMs").is_empty(),
        "no latency reports, so no AverageLatencyMs at all"
    );

    // The aggregate: a dimensionless stream with the same sum.
    let streams = reader.list(ns, "MessagesTotal");
    assert!(
        streams.iter().any(|m| m.dimensions().is_empty()),
        "no dimensionless stream: {streams:?}"
    );
    assert!(
        !reader.list_for_server(ns, "MessagesTotal", srv).is_empty(),
        "no ServerID stream"
    );
    // moto answers a query without dimensions with every stream (CloudWatch:
    // the dimensionless one only); either way the aggregate sums to 10.
    let all = reader.stats(ns, "MessagesTotal", None).sum;
    assert!(all - 10.0 == 10.0 || all == 10.0, "aggregate sum: {all}");

    cw.shutdown_and_flush(Duration::from_secs(5));
    assert_eq!(reg.snapshot().get(Counter::CloudWatchFailures), 0);
}

#[test]
fn latency_reports_arrive_as_a_statistic_set() {
    let moto = Moto::start();
    let reader = moto.reader();
    let (ns, srv) = ("wss/test-latency", "srv-b");
    let reg = MetricsRegistry::new(2);
    reg.shard(0).record_latency_report(10.0);
    reg.shard(1).record_latency_report(20.0);
    reg.shard(1).record_latency_report(30.5);
    let cw = spawn_cloudwatch(
        config(&moto.endpoint, ns, srv, Duration::from_secs(1)),
        reg.clone(),
    )
    .unwrap();

    let s = reader.wait_for(ns, "AverageLatencyMs", Some(srv), WAIT, "3 samples", |s| {
        s.samples == 3.0
    });
    assert_eq!(
        (s.sum, s.min, s.max),
        (60.5, Some(10.0), Some(30.5)),
        "{s:?}"
    );
    assert_unit("AverageLatencyMs", &s, StandardUnit::Milliseconds);
    // Later intervals without reports add nothing (no fake zeros).
    let messages = reader.stats(ns, "MessagesTotal", Some(srv)).samples;
    reader.wait_for(
        ns,
        "MessagesTotal",
        Some(srv),
        WAIT,
        "two more intervals",
        |s| s.samples >= messages + 2.0,
    );
    assert_eq!(reader.stats(ns, "AverageLatencyMs", Some(srv)).samples, 3.0);
    cw.shutdown_and_flush(Duration::from_secs(5));
}

#[test]
fn shutdown_flushes_the_last_interval() {
    let moto = Moto::start();
    let reader = moto.reader();
    let (ns, srv) = ("wss/test-flush", "srv-c");
    let reg = MetricsRegistry::new(1);
    let shard = reg.shard(0);
    shard.add(Counter::MessagesTotal, 5);
    let cw = spawn_cloudwatch(
        config(&moto.endpoint, ns, srv, Duration::from_secs(1)),
        reg.clone(),
    )
    .unwrap();
    wait_sum(&reader, ns, "MessagesTotal", srv, 5.0);

    // Counted after the last push: only the final flush can deliver these.
    shard.add(Counter::MessagesTotal, 7);
    shard.connection_opened();
    shard.connection_closed(true);
    let started = Instant::now();
    cw.shutdown_and_flush(Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "flush took {:?}",
        started.elapsed()
    );
    assert_eq!(reader.stats(ns, "MessagesTotal", Some(srv)).sum, 12.0);
    assert_eq!(
        reader.stats(ns, "UnexpectedDisconnects", Some(srv)).sum,
        1.0
    );
}

#[test]
fn shutdown_flushes_before_the_first_interval() {
    let moto = Moto::start();
    let reader = moto.reader();
    let (ns, srv) = ("wss/test-flush-early", "srv-d");
    let reg = MetricsRegistry::new(1);
    let cw = spawn_cloudwatch(
        config(&moto.endpoint, ns, srv, Duration::from_secs(3600)),
        reg.clone(),
    )
    .unwrap();
    reg.shard(0).add(Counter::MessagesTotal, 42);
    cw.shutdown_and_flush(Duration::from_secs(10));
    assert_eq!(reader.stats(ns, "MessagesTotal", Some(srv)).sum, 42.0);
}

#[test]
fn unreachable_endpoint_counts_failures_and_stays_bounded() {
    moto::set_test_credentials();
    let endpoint = format!("http://127.0.0.1:{}", moto::free_port());
    let reg = MetricsRegistry::new(1);
    reg.shard(0).incr(Counter::MessagesTotal);
    let cw = spawn_cloudwatch(
        config(&endpoint, "wss/test-down", "srv-e", Duration::from_secs(1)),
        reg.clone(),
    )
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while reg.snapshot().get(Counter::CloudWatchFailures) == 0 {
        assert!(
            Instant::now() < deadline,
            "no CloudWatchFailures counted within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    cw.shutdown_and_flush(Duration::from_secs(2));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
}
