//! Rendering a [`Snapshot`]: Prometheus text exposition format 0.0.4 for
//! `GET /metrics`, and a small JSON document for the dashboard's `GET /stats`.

use std::fmt::Write;

use serde_json::{json, Map, Value};

use super::api::ApiSnapshot;
use super::counter::Counter;
use super::gauge::Gauge;
use super::histogram::HistogramSnapshot;
use super::snapshot::Snapshot;

/// The Prometheus text for `s`, every series labelled `server_id`.
pub fn render_prometheus(s: &Snapshot, server_id: &str) -> String {
    let label = format!("server_id=\"{}\"", escape_label(server_id));
    let mut out = String::with_capacity(8 * 1024);
    family(
        &mut out,
        "wss_active_connections",
        "Open WebSocket connections.",
        "gauge",
    );
    sample(
        &mut out,
        "wss_active_connections",
        &label,
        s.active_connections(),
    );
    for g in Gauge::ALL {
        let info = g.info();
        family(&mut out, info.prometheus, info.help, "gauge");
        sample(&mut out, info.prometheus, &label, s.gauge(g));
    }
    for c in Counter::ALL {
        let info = c.info();
        family(&mut out, info.prometheus, info.help, "counter");
        sample(&mut out, info.prometheus, &label, s.get(c));
    }
    histogram(
        &mut out,
        "wss_latency_report_ms",
        "Latency reported by clients (latency_report messages), in milliseconds.",
        &label,
        s.latency_reports(),
        1000.0,
    );
    histogram(
        &mut out,
        "wss_delivery_latency_seconds",
        "Server-measured delivery latency: receipt at the sender's instance to the write at the receiver's connection.",
        &label,
        s.delivery_latency(),
        1_000_000.0,
    );
    api_families(&mut out, &label, s.api());
    out
}

/// The server API's families: requests by endpoint and status (non-zero
/// series only, like a client library creating a series on first use), and
/// the latency histogram.
fn api_families(out: &mut String, label: &str, api: &ApiSnapshot) {
    let name = "wss_api_requests_total";
    family(
        out,
        name,
        "Server API requests by endpoint and status (status timeout: cut before it fully arrived).",
        "counter",
    );
    for (endpoint, status, n) in api.cells() {
        let labels = format!(
            "{label},endpoint=\"{}\",status=\"{}\"",
            endpoint.label(),
            status.label()
        );
        sample(out, name, &labels, n);
    }
    histogram(
        out,
        "wss_api_request_duration_seconds",
        "Server API latency: a request's first byte read to its answer written.",
        label,
        api.latency(),
        1_000_000.0,
    );
}

/// The dashboard's JSON: totals, the gauge, delivery p50/p99 and the average
/// latency report, all since start (`null` where nothing was measured).
pub fn render_stats_json(s: &Snapshot, server_id: &str) -> String {
    let mut counters = Map::new();
    for c in Counter::ALL {
        counters.insert(lower_camel(c.info().name), s.get(c).into());
    }
    let mut gauges = Map::new();
    for g in Gauge::ALL {
        gauges.insert(lower_camel(g.info().name), s.gauge(g).into());
    }
    let doc = json!({
        "serverId": server_id,
        "activeConnections": s.active_connections(),
        "gauges": Value::Object(gauges),
        "counters": Value::Object(counters),
        "deliveryLatencyMs": {
            "count": s.delivery_latency().count(),
            "p50": s.delivery_latency_quantile(0.5),
            "p99": s.delivery_latency_quantile(0.99),
        },
        "latencyReports": {
            "count": s.latency_reports().count(),
            "averageMs": s.latency_report_average_ms(),
        },
        "api": {
            "requests": s.api().total(),
            "errors": s.api().errors(),
            "p99Ms": s.api().latency().quantile_micros(0.99).map(|us| us / 1000.0),
        },
    });
    doc.to_string()
}

/// `# HELP` and `# TYPE` lines of one family.
fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(
        out,
        "# HELP {name} {}",
        help.replace('\\', "\\\\").replace('\n', "\\n")
    );
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line.
fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{{{labels}}} {value}");
}

/// A histogram family; `per_unit` converts microseconds to the family's unit.
fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    labels: &str,
    h: &HistogramSnapshot,
    per_unit: f64,
) {
    family(out, name, help, "histogram");
    for (bound, cumulative) in h.cumulative() {
        let le = bound.map_or_else(
            || "+Inf".to_owned(),
            |us| (us as f64 / per_unit).to_string(),
        );
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    sample(
        out,
        &format!("{name}_sum"),
        labels,
        h.sum_micros as f64 / per_unit,
    );
    sample(out, &format!("{name}_count"), labels, h.count());
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `MessagesTotal` → `messagesTotal`.
fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::metrics::MetricsRegistry;

    /// A parsed exposition: family → (help, type), and series → value.
    struct Parsed {
        families: HashMap<String, (String, String)>,
        samples: BTreeMap<String, f64>,
    }

    /// Parses the text back line by line, checking the format on the way.
    fn parse(text: &str) -> Parsed {
        let valid_name = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        let mut families: HashMap<String, (String, String)> = HashMap::new();
        let mut samples = BTreeMap::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP has a text");
                assert!(valid_name(name), "{line}");
                assert!(
                    families
                        .insert(name.to_owned(), (help.to_owned(), String::new()))
                        .is_none(),
                    "dup {name}"
                );
                current = name.to_owned();
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
                assert_eq!(name, current, "TYPE right after its HELP");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                families.get_mut(name).unwrap().1 = kind.to_owned();
            } else {
                let (series, value) = line.rsplit_once(' ').expect("sample has a value");
                let name = series.split('{').next().unwrap();
                assert!(valid_name(name), "{line}");
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|b| *b == current);
                assert!(
                    name == current || base.is_some(),
                    "{name} outside its family {current}"
                );
                assert!(series.contains("server_id=\"shard-\\\"a\\\"\""), "{line}");
                samples.insert(
                    series.to_owned(),
                    value
                        .parse()
                        .unwrap_or_else(|_| panic!("bad value: {line}")),
                );
            }
        }
        Parsed { families, samples }
    }

    #[test]
    fn prometheus_text_parses_back() {
        let reg = MetricsRegistry::new(2);
        reg.shard(0).add(Counter::MessagesTotal, 7);
        reg.shard(1).add(Counter::MessagesTotal, 3);
        reg.shard(1).connection_opened();
        reg.shard(0).record_delivery_latency(1_000);
        reg.shard(1).record_delivery_latency(3_000_000);
        reg.shard(0).record_latency_report(12.5);
        let p = parse(&render_prometheus(&reg.snapshot(), "shard-\"a\""));
        let get = |series: &str| {
            *p.samples
                .get(&format!("{series}{{server_id=\"shard-\\\"a\\\"\"}}"))
                .unwrap_or_else(|| panic!("{series}"))
        };
        assert_eq!(p.families.len(), Counter::COUNT + Gauge::COUNT + 5);
        for c in Counter::ALL {
            assert_eq!(
                p.families[c.info().prometheus],
                (c.info().help.to_owned(), "counter".to_owned())
            );
        }
        assert_eq!(get("wss_messages_total"), 10.0);
        assert_eq!(get("wss_messages_delivered_total"), 0.0);
        assert_eq!(get("wss_active_connections"), 1.0);
        assert_eq!(p.families["wss_active_connections"].1, "gauge");
        assert_eq!(p.families["wss_delivery_latency_seconds"].1, "histogram");
        assert_eq!(get("wss_delivery_latency_seconds_count"), 2.0);
        assert!((get("wss_delivery_latency_seconds_sum") - 3.001).abs() < 1e-9);
        assert_eq!(get("wss_latency_report_ms_sum"), 12.5);
        let bucket = |name: &str, le: &str| {
            p.samples[&format!("{name}_bucket{{server_id=\"shard-\\\"a\\\"\",le=\"{le}\"}}")]
        };
        assert_eq!(bucket("wss_delivery_latency_seconds", "0.0008"), 0.0);
        assert_eq!(bucket("wss_delivery_latency_seconds", "0.0016"), 1.0);
        assert_eq!(bucket("wss_delivery_latency_seconds", "1.6384"), 1.0);
        assert_eq!(bucket("wss_delivery_latency_seconds", "3.2768"), 2.0);
        assert_eq!(bucket("wss_delivery_latency_seconds", "+Inf"), 2.0);
        assert_eq!(bucket("wss_latency_report_ms", "0.05"), 0.0);
        assert_eq!(bucket("wss_latency_report_ms", "6.4"), 0.0);
        assert_eq!(bucket("wss_latency_report_ms", "12.8"), 1.0);
        assert_eq!(bucket("wss_latency_report_ms", "+Inf"), 1.0);
        // Cumulative buckets, in increasing `le` order, never decrease.
        let text = render_prometheus(&reg.snapshot(), "x");
        let buckets: Vec<(f64, f64)> = text
            .lines()
            .filter_map(|l| {
                l.strip_prefix("wss_delivery_latency_seconds_bucket{server_id=\"x\",le=\"")
            })
            .map(|l| {
                let (le, value) = l.split_once("\"} ").unwrap();
                (
                    if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    },
                    value.parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(buckets.len(), crate::metrics::histogram::BUCKETS);
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{buckets:?}"
        );
    }

    #[test]
    fn api_requests_are_labelled_by_endpoint_and_status() {
        use crate::metrics::{ApiEndpoint, ApiStatus};
        let reg = MetricsRegistry::new(2);
        reg.shard(0)
            .record_api(ApiEndpoint::Publish, ApiStatus::Ok, Some(2_000));
        reg.shard(1)
            .record_api(ApiEndpoint::Publish, ApiStatus::Ok, Some(2_000));
        reg.shard(1)
            .record_api(ApiEndpoint::Other, ApiStatus::Timeout, None);
        let text = render_prometheus(&reg.snapshot(), "shard-\"a\"");
        parse(&text);
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("no {needle} in\n{text}"))
                .to_owned()
        };
        assert!(line("wss_api_requests_total{server_id=\"shard-\\\"a\\\"\",endpoint=\"publish\",status=\"200\"}")
            .ends_with(" 2"));
        assert!(line("wss_api_requests_total{server_id=\"shard-\\\"a\\\"\",endpoint=\"other\",status=\"timeout\"}")
            .ends_with(" 1"));
        assert!(line("wss_api_request_duration_seconds_count").ends_with(" 2"));
        assert!(
            !text.contains("status=\"404\""),
            "only series that happened"
        );
        let v: Value = serde_json::from_str(&render_stats_json(&reg.snapshot(), "s")).unwrap();
        assert_eq!(
            (v["api"]["requests"].as_u64(), v["api"]["errors"].as_u64()),
            (Some(3), Some(1))
        );
    }

    #[test]
    fn stats_json_has_totals_and_quantiles() {
        let reg = MetricsRegistry::new(1);
        let empty: Value = serde_json::from_str(&render_stats_json(&reg.snapshot(), "s1")).unwrap();
        assert_eq!(empty["deliveryLatencyMs"]["p99"], Value::Null);
        assert_eq!(empty["latencyReports"]["averageMs"], Value::Null);
        reg.shard(0).incr(Counter::MessagesDelivered);
        reg.shard(0).record_delivery_latency(1_000);
        reg.shard(0).record_latency_report(20.0);
        reg.shard(0).record_latency_report(30.0);
        reg.shard(0).connection_opened();
        let v: Value = serde_json::from_str(&render_stats_json(&reg.snapshot(), "s1")).unwrap();
        assert_eq!(v["serverId"], "s1");
        assert_eq!(v["activeConnections"], 1);
        assert_eq!(v["counters"]["messagesDelivered"], 1);
        assert_eq!(v["counters"]["unexpectedDisconnects"], 0);
        assert_eq!(v["latencyReports"]["averageMs"], 25.0);
        let p99 = v["deliveryLatencyMs"]["p99"].as_f64().unwrap();
        assert!((0.8..=1.6).contains(&p99), "{p99}");
    }
}
