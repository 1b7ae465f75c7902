//! The run report: the JSON file (docs/LOADGEN.md lists every key), the
//! figures derived from the histograms.
//!
//! # Layout
//! - `human`: the summary printed on stdout.
//! - `merge`: several processes' reports into one.

mod human;
mod merge;

pub use merge::merge_files;

use std::collections::BTreeMap;
use std::path::Path;
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
    /// Channels: the publication was handed to the channel.
    #[serde(default)]
    pub published: u64,
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

/// Subscribe requests and their answers (channels scenario).
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Subscriptions {
    /// Requested by connections that got their welcome.
    pub wanted: u64,
    /// Answered `subscribed`.
    pub subscribed: u64,
    /// Answered with an `error` (by code under `errors`).
    pub refused: u64,
    /// Never answered (timeout, or the connection ended first).
    pub unanswered: u64,
}

/// The one-order check (see `channels::order`).
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct Order {
    /// Subscriptions compared: those that received as many publications as
    /// the best-served subscription of their channel.
    pub compared: u64,
    /// Compared subscriptions that saw another order than their channel's.
    pub violations: u64,
    /// Channels with at least one violation.
    pub channels_violated: u64,
    /// Subscriptions not compared because they missed publications.
    pub incomplete: u64,
}

/// What only the channels scenario reports.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct ChannelsReport {
    /// Channels used.
    pub channels: u64,
    /// Subscribers per channel.
    pub subscribers_per_channel: u64,
    /// Subscriptions per subscriber connection.
    pub subscriptions_per_connection: u64,
    /// Subscriber connections.
    pub subscriber_connections: u64,
    /// Publisher connections.
    pub publishers: u64,
    pub subscriptions: Subscriptions,
    /// Seconds from the start of the run until every subscribe was answered
    /// (or the wait gave up): connect and subscribe together.
    pub subscribe_s: f64,
    /// Counted publications that arrived after a later one of the same
    /// publisher on the same subscription.
    pub out_of_order: u64,
    /// Counted publications of a channel the connection had no active
    /// subscription to.
    pub unexpected: u64,
    pub order: Order,
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
    /// The channels scenario's own figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<ChannelsReport>,
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
}
