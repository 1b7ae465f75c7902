//! Metrics: counted per shard on the hot path, summed off it, exported as
//! Prometheus text (`GET /metrics`), dashboard JSON (`GET /stats`) and
//! CloudWatch datums (pushed by a dedicated thread).
//!
//! The Seastar way: each shard owns one [`ShardMetrics`] (cache-padded
//! `Relaxed` atomics that only that shard writes), so counting costs one
//! uncontended atomic add and no cache line ever moves between shards on the
//! hot path. Readers ([`MetricsRegistry::snapshot`]) sum every writer's cells
//! into a [`Snapshot`]; CloudWatch receives the [`Delta`] between two.
//!
//! - [`counter`]: [`Counter`] and its names (one table for every exporter).
//! - [`gauge`]: [`Gauge`], levels each shard sets (subscriptions, channels).
//! - [`shard_metrics`]: [`ShardMetrics`], the per-shard cells.
//! - [`histogram`]: fixed log-scale latency buckets (50 µs·2^k).
//! - [`api`]: server API requests by endpoint and status, and their latency.
//! - [`snapshot`]: [`Snapshot`], [`Delta`].
//! - here: [`MetricsRegistry`], every writer's cells.
//! - [`prometheus`]: [`render_prometheus`], [`render_stats_json`].
//! - [`cloudwatch_data`]: what an interval becomes in CloudWatch.
//! - [`cloudwatch`]: the push thread ([`spawn_cloudwatch`]).
//! - `docs_table` (tests): `docs/METRICS.md` checked against the code.
//!
//! Every metric, its names, unit and semantics: `docs/METRICS.md`.

pub mod api;
pub mod cloudwatch;
pub mod cloudwatch_data;
pub mod counter;
pub mod gauge;
pub mod histogram;
pub mod prometheus;
pub mod shard_metrics;
pub mod snapshot;

#[cfg(test)]
mod docs_table;

pub use api::{ApiEndpoint, ApiSnapshot, ApiStatus};
pub use cloudwatch::{spawn_cloudwatch, CloudWatchError, CloudWatchHandle};
pub use counter::{Counter, CounterInfo};
pub use gauge::{Gauge, GaugeInfo};
pub use histogram::HistogramSnapshot;
pub use prometheus::{render_prometheus, render_stats_json};
pub use shard_metrics::ShardMetrics;
pub use snapshot::{Delta, Snapshot};

use std::sync::Arc;

/// Every writer's metrics, summed on demand.
pub struct MetricsRegistry {
    /// One per shard, indexed by shard number.
    shards: Vec<Arc<ShardMetrics>>,
    /// The coordination layer's thread (Redis errors, reconnects, sweeps).
    coordinator: Arc<ShardMetrics>,
    /// The metrics thread's own (CloudWatch failures): counted by the thread
    /// that pushes, so no shard is ever touched by it.
    exporter: Arc<ShardMetrics>,
}

impl MetricsRegistry {
    /// Zeroed metrics for `shards` shards plus the coordinator and exporter.
    pub fn new(shards: usize) -> Arc<Self> {
        Arc::new(Self {
            shards: (0..shards).map(|_| Arc::new(ShardMetrics::new())).collect(),
            coordinator: Arc::new(ShardMetrics::new()),
            exporter: Arc::new(ShardMetrics::new()),
        })
    }

    /// Shard `i`'s metrics. Panics if `i` is not a shard index.
    pub fn shard(&self, i: usize) -> Arc<ShardMetrics> {
        self.shards[i].clone()
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The coordination thread's metrics.
    pub fn coordinator(&self) -> Arc<ShardMetrics> {
        self.coordinator.clone()
    }

    /// The metrics (CloudWatch) thread's metrics.
    pub fn exporter(&self) -> Arc<ShardMetrics> {
        self.exporter.clone()
    }

    /// Every writer's values, summed. Each value is read atomically but the
    /// set is not one instant: a reading may be one event behind here and
    /// there, which the next reading makes up for.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        for m in self.writers() {
            m.add_to(&mut snap);
        }
        snap
    }

    /// Smallest and largest latency report (µs) since the last call, over
    /// every writer; `None` when there was none. For the CloudWatch thread
    /// only (it resets the extremes).
    pub(crate) fn take_latency_report_extremes(&self) -> Option<(u64, u64)> {
        self.writers()
            .filter_map(|m| m.take_latency_report_extremes())
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Shards, coordinator, exporter.
    fn writers(&self) -> impl Iterator<Item = &Arc<ShardMetrics>> {
        self.shards
            .iter()
            .chain([&self.coordinator, &self.exporter])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sums_every_writer() {
        let reg = MetricsRegistry::new(3);
        for i in 0..3 {
            let m = reg.shard(i);
            (0..=i).for_each(|_| m.incr(Counter::MessagesTotal));
            m.connection_opened();
        }
        reg.coordinator().incr(Counter::RedisErrors);
        reg.exporter().incr(Counter::CloudWatchFailures);
        reg.shard(1).connection_closed(true);
        let s = reg.snapshot();
        assert_eq!(s.get(Counter::MessagesTotal), 6);
        assert_eq!(s.get(Counter::ConnectionsOpened), 3);
        assert_eq!(s.get(Counter::UnexpectedDisconnects), 1);
        assert_eq!(s.get(Counter::RedisErrors), 1);
        assert_eq!(s.get(Counter::CloudWatchFailures), 1);
        assert_eq!(s.active_connections(), 2);
        assert_eq!(s.latency_report_average_ms(), None);
        assert_eq!(s.delivery_latency_quantile(0.5), None);
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let reg = MetricsRegistry::new(2);
        std::thread::scope(|scope| {
            for i in 0..2 {
                let m = reg.shard(i);
                scope.spawn(move || (0..100_000).for_each(|_| m.incr(Counter::MessagesDelivered)));
            }
            scope.spawn(|| {
                (0..1_000).for_each(|_| {
                    assert!(reg.snapshot().get(Counter::MessagesDelivered) <= 200_000)
                })
            });
        });
        assert_eq!(reg.snapshot().get(Counter::MessagesDelivered), 200_000);
    }

    #[test]
    fn extremes_merge_over_shards_and_reset() {
        let reg = MetricsRegistry::new(2);
        reg.shard(0).record_latency_report(5.0);
        reg.shard(1).record_latency_report(0.25);
        reg.shard(1).record_latency_report(70.0);
        assert_eq!(reg.take_latency_report_extremes(), Some((250, 70_000)));
        assert_eq!(reg.take_latency_report_extremes(), None);
    }
}
