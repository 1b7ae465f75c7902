//! The per-shard cells counting happens in ([`ShardMetrics`]).
//!
//! Each shard owns one `ShardMetrics` and is its only writer; the metrics
//! thread and the HTTP endpoints only read it (with one exception, the
//! latency-report extremes, see [`ShardMetrics::take_latency_report_extremes`]).
//! Every operation is a `Relaxed` atomic on a cache line that stays in the
//! owning core's cache: no locks, no fences, no line shared between shards
//! (the whole struct is [`CachePadded`]).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

use super::api::{ApiCells, ApiEndpoint, ApiStatus};
use super::counter::Counter;
use super::gauge::Gauge;
use super::histogram::AtomicHistogram;

/// One shard's counters. Written by its owner only; read by anyone.
pub struct ShardMetrics {
    /// The cells, padded so that no other allocation shares their cache lines.
    cells: CachePadded<Cells>,
}

/// The atomics of one [`ShardMetrics`].
struct Cells {
    /// One monotonic total per [`Counter`], indexed by [`Counter::index`].
    counters: [AtomicU64; Counter::COUNT],
    /// Open connections on this shard (signed: a close may be counted on a
    /// different writer than the open for the coordinator's cells).
    active: AtomicI64,
    /// This shard's level of each [`Gauge`].
    gauges: [AtomicI64; Gauge::COUNT],
    /// Clients' `latency_report` values, in microseconds (sum + buckets).
    latency_reports: AtomicHistogram,
    /// Server-measured delivery latency, in microseconds.
    delivery_latency: AtomicHistogram,
    /// Smallest latency report (µs) since the CloudWatch thread last took it;
    /// `u64::MAX` when none. Min/Max cannot be derived from running totals.
    report_min_us: AtomicU64,
    /// Largest latency report (µs) since last taken; 0 with `report_min_us == MAX` means none.
    report_max_us: AtomicU64,
    /// Server API requests by endpoint and status, and their latency.
    api: ApiCells,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardMetrics {
    /// All zero.
    pub fn new() -> Self {
        Self {
            cells: CachePadded::new(Cells {
                counters: std::array::from_fn(|_| AtomicU64::new(0)),
                active: AtomicI64::new(0),
                gauges: std::array::from_fn(|_| AtomicI64::new(0)),
                latency_reports: AtomicHistogram::new(),
                delivery_latency: AtomicHistogram::new(),
                report_min_us: AtomicU64::new(u64::MAX),
                report_max_us: AtomicU64::new(0),
                api: ApiCells::default(),
            }),
        }
    }

    /// Counts one event.
    #[inline]
    pub fn incr(&self, c: Counter) {
        self.add(c, 1);
    }

    /// Counts `n` events (or bytes).
    #[inline]
    pub fn add(&self, c: Counter, n: u64) {
        self.cells.counters[c.index()].fetch_add(n, Relaxed);
    }

    /// A connection opened: the active gauge and `ConnectionsOpened`.
    #[inline]
    pub fn connection_opened(&self) {
        self.cells.active.fetch_add(1, Relaxed);
        self.incr(Counter::ConnectionsOpened);
    }

    /// A connection closed; `unexpected` also counts an `UnexpectedDisconnects`.
    #[inline]
    pub fn connection_closed(&self, unexpected: bool) {
        self.cells.active.fetch_sub(1, Relaxed);
        self.incr(Counter::ConnectionsClosed);
        if unexpected {
            self.incr(Counter::UnexpectedDisconnects);
        }
    }

    /// A client's `latency_report`, in milliseconds (fractions kept to the
    /// microsecond). Negative or non-finite values are ignored.
    #[inline]
    pub fn record_latency_report(&self, millis: f64) {
        if !(millis.is_finite() && millis >= 0.0) {
            return;
        }
        let micros = (millis * 1000.0).round() as u64; // saturating cast
        let cells = &*self.cells;
        cells.report_min_us.fetch_min(micros, Relaxed);
        cells.report_max_us.fetch_max(micros, Relaxed);
        cells.latency_reports.record(micros);
    }

    /// A delivery's latency: receipt at the sender's instance to the write at
    /// the receiver's connection, in microseconds.
    #[inline]
    pub fn record_delivery_latency(&self, micros: u64) {
        self.cells.delivery_latency.record(micros);
    }

    /// A server API request answered with `status` after `micros` (`None`:
    /// cut before it fully arrived, so no latency).
    #[inline]
    pub fn record_api(&self, endpoint: ApiEndpoint, status: ApiStatus, micros: Option<u64>) {
        self.cells.api.record(endpoint, status, micros);
    }

    /// Sets this shard's level of a gauge.
    #[inline]
    pub fn set_gauge(&self, g: Gauge, value: i64) {
        self.cells.gauges[g.index()].store(value, Relaxed);
    }

    /// Current value of one counter.
    pub fn get(&self, c: Counter) -> u64 {
        self.cells.counters[c.index()].load(Relaxed)
    }

    /// Adds this shard's values into `snap` (the registry sums shards).
    pub(crate) fn add_to(&self, snap: &mut super::Snapshot) {
        let cells = &*self.cells;
        for (total, cell) in snap.counters.iter_mut().zip(&cells.counters) {
            *total += cell.load(Relaxed);
        }
        snap.active += cells.active.load(Relaxed);
        for (total, cell) in snap.gauges.iter_mut().zip(&cells.gauges) {
            *total += cell.load(Relaxed);
        }
        cells.latency_reports.add_to(&mut snap.latency_reports);
        cells.delivery_latency.add_to(&mut snap.delivery_latency);
        cells.api.add_to(&mut snap.api);
    }

    /// Takes (and resets) the smallest and largest latency report in µs since
    /// the last call, if any. The one write a non-owner makes: the CloudWatch
    /// thread, once per interval, so the cache line moves once per interval.
    pub(crate) fn take_latency_report_extremes(&self) -> Option<(u64, u64)> {
        let min = self.cells.report_min_us.swap(u64::MAX, Relaxed);
        let max = self.cells.report_max_us.swap(0, Relaxed);
        (min != u64::MAX).then_some((min, max.max(min)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_connections_and_reports() {
        let m = ShardMetrics::new();
        m.incr(Counter::MessagesTotal);
        m.add(Counter::BytesIn, 100);
        m.connection_opened();
        m.connection_opened();
        m.connection_closed(true);
        m.connection_closed(false);
        assert_eq!(m.get(Counter::MessagesTotal), 1);
        assert_eq!(m.get(Counter::BytesIn), 100);
        assert_eq!(m.get(Counter::ConnectionsOpened), 2);
        assert_eq!(m.get(Counter::ConnectionsClosed), 2);
        assert_eq!(m.get(Counter::UnexpectedDisconnects), 1);
        assert_eq!(m.take_latency_report_extremes(), None);
        m.record_latency_report(12.5);
        m.record_latency_report(3.0);
        m.record_latency_report(f64::NAN);
        m.record_latency_report(-1.0);
        assert_eq!(m.take_latency_report_extremes(), Some((3000, 12500)));
        assert_eq!(m.take_latency_report_extremes(), None);
    }

    #[test]
    fn shard_metrics_do_not_share_cache_lines() {
        assert!(std::mem::align_of::<ShardMetrics>() >= 64);
        assert_eq!(
            std::mem::size_of::<ShardMetrics>() % std::mem::align_of::<ShardMetrics>(),
            0
        );
    }
}
