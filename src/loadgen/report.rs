//! The run report: human summary, JSON file, merging of several reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest value the histograms track (microseconds): one hour.
pub const HIST_HIGH: u64 = 3_600_000_000;
/// Significant figures of the histograms.
pub const HIST_SIGFIG: u8 = 3;

/// A new microsecond histogram.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_HIGH, HIST_SIGFIG).expect("histogram bounds")
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Connections {
    pub attempted: u64,
    pub established: u64,
    pub failed: u64,
    /// Failure reasons (`http_503`, `timeout`, `io`, …).
    #[serde(default)]
    pub failures: BTreeMap<String, u64>,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct ConnectMs {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Messages {
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    pub duplicates: u64,
    /// Messages not sent because the sender's queue was full or it was closed.
    #[serde(default)]
    pub send_dropped: u64,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Acks {
    pub delivered: u64,
    pub offline: u64,
    pub failed: u64,
    pub rate_limited: u64,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub count: u64,
}

/// Raw histogram counts: `[value_us, count]` pairs, mergeable by summing.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RawHist {
    pub unit: String,
    pub sigfig: u8,
    pub high: u64,
    pub counts: Vec<[u64; 2]>,
}

impl Default for RawHist {
    fn default() -> Self {
        Self::from_hist(&new_hist())
    }
}

impl RawHist {
    pub fn from_hist(h: &Histogram<u64>) -> Self {
        Self {
            unit: "us".into(),
            sigfig: HIST_SIGFIG,
            high: HIST_HIGH,
            counts: h
                .iter_recorded()
                .map(|v| [v.value_iterated_to(), v.count_at_value()])
                .collect(),
        }
    }

    pub fn add_to(&self, h: &mut Histogram<u64>) {
        for [v, n] in &self.counts {
            let _ = h.record_n(*v, *n);
        }
    }
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Rates {
    pub sent_per_s: f64,
    pub delivered_per_s: f64,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub connections: Connections,
    pub connect_ms: ConnectMs,
    pub messages: Messages,
    pub acks: Acks,
    pub errors: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    pub latency_ms: LatencyMs,
    /// End-to-end latency, raw counts (microseconds).
    pub histogram: RawHist,
    /// Connect time (TCP + upgrade + welcome), raw counts (microseconds).
    #[serde(default)]
    pub connect_histogram: RawHist,
    /// Heartbeat round trips seen.
    #[serde(default)]
    pub heartbeats: u64,
    pub config: serde_json::Value,
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    pub rates: Rates,
    /// True when the run was cut short (signal).
    #[serde(default)]
    pub interrupted: bool,
    /// Number of processes' reports merged into this one.
    #[serde(default = "one")]
    pub processes: u64,
}

fn one() -> u64 {
    1
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

impl Report {
    /// Fills the derived figures (percentiles, missing) from the histograms and counts.
    pub fn finish(&mut self, lat: &Histogram<u64>, conn: &Histogram<u64>) {
        self.histogram = RawHist::from_hist(lat);
        self.connect_histogram = RawHist::from_hist(conn);
        self.latency_ms = LatencyMs {
            p50: ms(lat.value_at_quantile(0.5)),
            p90: ms(lat.value_at_quantile(0.9)),
            p99: ms(lat.value_at_quantile(0.99)),
            p999: ms(lat.value_at_quantile(0.999)),
            max: ms(lat.max()),
            count: lat.len(),
        };
        self.connect_ms = ConnectMs {
            p50: ms(conn.value_at_quantile(0.5)),
            p99: ms(conn.value_at_quantile(0.99)),
            max: ms(conn.max()),
        };
        self.messages.missing = self
            .messages
            .expected
            .saturating_sub(self.messages.delivered);
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// The human summary.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let c = &self.connections;
        let m = &self.messages;
        let a = &self.acks;
        let l = &self.latency_ms;
        let _ = writeln!(
            s,
            "scenario {}{}  {} -> {}  measured {:.2} s{}",
            self.scenario,
            if self.processes > 1 {
                format!(" ({} processes merged)", self.processes)
            } else {
                String::new()
            },
            self.started_at,
            self.ended_at,
            self.duration_s,
            if self.interrupted {
                "  (INTERRUPTED: partial)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "connections  attempted {}  established {}  failed {}{}",
            c.attempted,
            c.established,
            c.failed,
            fmt_map(&c.failures)
        );
        let _ = writeln!(
            s,
            "connect      p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            self.connect_ms.p50, self.connect_ms.p99, self.connect_ms.max
        );
        let _ = writeln!(
            s,
            "messages     sent {}  expected {}  delivered {}  missing {}  duplicates {}  dropped {}",
            m.sent, m.expected, m.delivered, m.missing, m.duplicates, m.send_dropped
        );
        let _ = writeln!(
            s,
            "rates        sent {:.1}/s  delivered {:.1}/s",
            self.rates.sent_per_s, self.rates.delivered_per_s
        );
        let _ = writeln!(
            s,
            "acks         delivered {}  offline {}  failed {}  rate_limited {}",
            a.delivered, a.offline, a.failed, a.rate_limited
        );
        let _ = writeln!(
            s,
            "latency      p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  (n={})",
            l.p50, l.p90, l.p99, l.p999, l.max, l.count
        );
        let _ = writeln!(s, "errors      {}", or_none(&self.errors));
        let _ = writeln!(s, "closes      {}", or_none(&self.closes));
        s
    }
}

fn fmt_map(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("  ({})", parts.join(" "))
}

fn or_none(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        " none".into()
    } else {
        fmt_map(m).replace("  (", " ").replace(')', "")
    }
}

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// Merges reports of processes that ran side by side.
pub fn merge(reports: Vec<Report>) -> Report {
    let mut out = Report {
        processes: 0,
        ..Default::default()
    };
    let mut lat = new_hist();
    let mut conn = new_hist();
    let mut configs = Vec::new();
    let mut started: Option<SystemTime> = None;
    let mut ended: Option<SystemTime> = None;
    let mut scenarios: Vec<String> = Vec::new();
    for r in reports {
        if !scenarios.contains(&r.scenario) {
            scenarios.push(r.scenario.clone());
        }
        out.processes += r.processes.max(1);
        out.interrupted |= r.interrupted;
        let c = &mut out.connections;
        c.attempted += r.connections.attempted;
        c.established += r.connections.established;
        c.failed += r.connections.failed;
        add_map(&mut c.failures, &r.connections.failures);
        let m = &mut out.messages;
        m.sent += r.messages.sent;
        m.expected += r.messages.expected;
        m.delivered += r.messages.delivered;
        m.duplicates += r.messages.duplicates;
        m.send_dropped += r.messages.send_dropped;
        let a = &mut out.acks;
        a.delivered += r.acks.delivered;
        a.offline += r.acks.offline;
        a.failed += r.acks.failed;
        a.rate_limited += r.acks.rate_limited;
        add_map(&mut out.errors, &r.errors);
        add_map(&mut out.closes, &r.closes);
        out.heartbeats += r.heartbeats;
        r.histogram.add_to(&mut lat);
        r.connect_histogram.add_to(&mut conn);
        out.duration_s = out.duration_s.max(r.duration_s);
        out.rates.sent_per_s += r.rates.sent_per_s;
        out.rates.delivered_per_s += r.rates.delivered_per_s;
        if let Ok(t) = humantime::parse_rfc3339(&r.started_at) {
            started = Some(started.map_or(t, |s| s.min(t)));
        }
        if let Ok(t) = humantime::parse_rfc3339(&r.ended_at) {
            ended = Some(ended.map_or(t, |s| s.max(t)));
        }
        match r.config {
            serde_json::Value::Array(v) => configs.extend(v),
            v => configs.push(v),
        }
    }
    out.scenario = scenarios.join("+");
    out.config = serde_json::Value::Array(configs);
    out.started_at = started.map(rfc3339).unwrap_or_default();
    out.ended_at = ended.map(rfc3339).unwrap_or_default();
    out.finish(&lat, &conn);
    out
}

pub fn merge_files(files: &[PathBuf]) -> Result<Report, String> {
    let mut reports = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        let r: Report = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        reports.push(r);
    }
    Ok(merge(reports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_and_recomputes() {
        let mut h1 = new_hist();
        let mut h2 = new_hist();
        for v in 1..=1000u64 {
            h1.record(v * 10).unwrap();
            h2.record(v * 1000).unwrap();
        }
        let mut a = Report {
            scenario: "direct".into(),
            ..Default::default()
        };
        a.messages.expected = 10;
        a.messages.delivered = 9;
        a.finish(&h1, &new_hist());
        let mut b = Report {
            scenario: "direct".into(),
            ..Default::default()
        };
        b.messages.expected = 5;
        b.messages.delivered = 5;
        b.finish(&h2, &new_hist());
        let m = merge(vec![a, b]);
        assert_eq!(m.latency_ms.count, 2000);
        assert_eq!(m.messages.missing, 1);
        assert_eq!(m.processes, 2);
        assert!(
            (m.latency_ms.max - 1000.0).abs() < 1.0,
            "{}",
            m.latency_ms.max
        );
        // Round trip through JSON.
        let text = serde_json::to_string(&m).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back.histogram.counts.len(), m.histogram.counts.len());
    }
}
