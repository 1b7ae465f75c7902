//! The read side: the summed [`Snapshot`] that exporters render, and the
//! [`Delta`] between two snapshots that CloudWatch receives.

use super::api::ApiSnapshot;
use super::counter::Counter;
use super::gauge::Gauge;
use super::histogram::HistogramSnapshot;

/// Totals since start, summed over every writer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// One monotonic total per [`Counter`].
    pub(crate) counters: [u64; Counter::COUNT],
    /// Open connections (signed while summing; never negative in practice).
    pub(crate) active: i64,
    /// Every [`Gauge`], summed over the shards.
    pub(crate) gauges: [i64; Gauge::COUNT],
    /// Clients' latency reports, in microseconds.
    pub(crate) latency_reports: HistogramSnapshot,
    /// Server-measured delivery latency, in microseconds.
    pub(crate) delivery_latency: HistogramSnapshot,
    /// Server API requests and their latency.
    pub(crate) api: ApiSnapshot,
}

impl Snapshot {
    /// Server API requests by endpoint and status, and their latency.
    pub fn api(&self) -> &ApiSnapshot {
        &self.api
    }

    /// Total of one counter.
    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c.index()]
    }

    /// Open connections now.
    pub fn active_connections(&self) -> u64 {
        self.active.max(0) as u64
    }

    /// The level of a gauge now.
    pub fn gauge(&self, g: Gauge) -> u64 {
        self.gauges[g.index()].max(0) as u64
    }

    /// Every latency report so far (µs; count, sum, buckets).
    pub fn latency_reports(&self) -> &HistogramSnapshot {
        &self.latency_reports
    }

    /// Every delivery latency so far (µs).
    pub fn delivery_latency(&self) -> &HistogramSnapshot {
        &self.delivery_latency
    }

    /// Mean of every latency report so far, in ms; `None` when none.
    pub fn latency_report_average_ms(&self) -> Option<f64> {
        self.latency_reports.mean_millis()
    }

    /// The `q`-quantile of delivery latency in milliseconds; `None` when
    /// nothing was delivered.
    pub fn delivery_latency_quantile(&self, q: f64) -> Option<f64> {
        self.delivery_latency
            .quantile_micros(q)
            .map(|us| us / 1000.0)
    }

    /// What happened between `prev` and `self`: counter and histogram
    /// differences, and the gauge as it is now.
    pub fn delta_since(&self, prev: &Snapshot) -> Delta {
        Delta {
            counters: std::array::from_fn(|i| self.counters[i].saturating_sub(prev.counters[i])),
            active_connections: self.active_connections(),
            gauges: std::array::from_fn(|i| self.gauges[i].max(0) as u64),
            latency_reports: self.latency_reports.delta_since(&prev.latency_reports),
            delivery_latency: self.delivery_latency.delta_since(&prev.delivery_latency),
            api: self.api.delta_since(&prev.api),
        }
    }
}

/// The change over one interval (what CloudWatch receives).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delta {
    /// Events per counter during the interval.
    counters: [u64; Counter::COUNT],
    /// The gauge at the end of the interval (a gauge has no delta).
    active_connections: u64,
    /// Every [`Gauge`] at the end of the interval.
    gauges: [u64; Gauge::COUNT],
    /// Latency reports made during the interval (µs).
    latency_reports: HistogramSnapshot,
    /// Deliveries made during the interval (µs).
    delivery_latency: HistogramSnapshot,
    /// Server API requests of the interval.
    api: ApiSnapshot,
}

impl Delta {
    /// Server API requests of the interval.
    pub fn api(&self) -> &ApiSnapshot {
        &self.api
    }

    /// Events of one counter during the interval.
    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c.index()]
    }

    /// Open connections at the end of the interval.
    pub fn active_connections(&self) -> u64 {
        self.active_connections
    }

    /// A gauge at the end of the interval.
    pub fn gauge(&self, g: Gauge) -> u64 {
        self.gauges[g.index()]
    }

    /// Latency reports of the interval (µs).
    pub fn latency_reports(&self) -> &HistogramSnapshot {
        &self.latency_reports
    }

    /// Delivery latencies of the interval (µs).
    pub fn delivery_latency(&self) -> &HistogramSnapshot {
        &self.delivery_latency
    }

    /// Mean latency report of the interval in ms; `None` when none was made.
    pub fn latency_report_average_ms(&self) -> Option<f64> {
        self.latency_reports.mean_millis()
    }

    /// The `q`-quantile of the interval's delivery latency in ms.
    pub fn delivery_latency_quantile(&self, q: f64) -> Option<f64> {
        self.delivery_latency
            .quantile_micros(q)
            .map(|us| us / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsRegistry;

    #[test]
    fn deltas_cover_only_the_interval() {
        let reg = MetricsRegistry::new(2);
        reg.shard(0).add(Counter::MessagesTotal, 5);
        reg.shard(0).connection_opened();
        reg.shard(1).record_latency_report(10.0);
        let first = reg.snapshot();
        reg.shard(1).add(Counter::MessagesTotal, 2);
        reg.shard(1).connection_opened();
        reg.shard(0).record_delivery_latency(2_000);
        let second = reg.snapshot();
        let d = second.delta_since(&first);
        assert_eq!(d.get(Counter::MessagesTotal), 2);
        assert_eq!(d.get(Counter::ConnectionsOpened), 1);
        assert_eq!(d.active_connections(), 2, "a gauge is its current value");
        assert_eq!(
            d.latency_report_average_ms(),
            None,
            "no report in this interval"
        );
        assert_eq!(d.delivery_latency().count(), 1);
        let p = d.delivery_latency_quantile(0.5).unwrap();
        assert!((1.6..=3.2).contains(&p), "{p}");
        assert_eq!(
            second.delta_since(&second),
            Delta {
                active_connections: 2,
                ..Delta::default()
            }
        );
        // From zero: the whole history.
        assert_eq!(
            first
                .delta_since(&Snapshot::default())
                .latency_report_average_ms(),
            Some(10.0)
        );
    }
}
