//! Fixed log-scale latency histograms: lock-free to record, trivially
//! mergeable across shards, and directly renderable as Prometheus buckets.
//!
//! Bucket `k` (0..[`FINITE_BUCKETS`]) holds values in
//! `(50 µs·2^(k-1), 50 µs·2^k]` (bucket 0 holds `[0, 50 µs]`); the last bucket
//! holds everything above 50 µs·2^20 ≈ 52 s. Quantiles interpolate linearly
//! inside a bucket, like Prometheus' `histogram_quantile`, so they are exact
//! to within a factor of two and usually much better.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bound of bucket 0, in microseconds.
pub const BASE_MICROS: u64 = 50;
/// Buckets with a finite upper bound (50 µs .. 52.4 s).
pub const FINITE_BUCKETS: usize = 21;
/// All buckets, the overflow (`+Inf`) one included.
pub const BUCKETS: usize = FINITE_BUCKETS + 1;

/// Upper bound (inclusive) of finite bucket `k`, in microseconds.
#[inline]
pub const fn upper_bound_micros(k: usize) -> u64 {
    BASE_MICROS << k
}

/// The bucket a value in microseconds falls into.
#[inline]
pub fn bucket_index(micros: u64) -> usize {
    // v <= 50·2^k  <=>  ceil(v/50) <= 2^k, so k = ceil(log2(ceil(v/50))).
    let q = micros.div_ceil(BASE_MICROS);
    if q <= 1 {
        return 0;
    }
    let k = (u64::BITS - (q - 1).leading_zeros()) as usize;
    k.min(FINITE_BUCKETS)
}

/// A histogram one thread writes and others read.
pub struct AtomicHistogram {
    /// Non-cumulative count per bucket; the total count is their sum, so
    /// `_count` always equals the `+Inf` bucket.
    buckets: [AtomicU64; BUCKETS],
    /// Sum of recorded values in microseconds (for averages and `_sum`).
    sum: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl AtomicHistogram {
    /// Empty.
    pub fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one value in microseconds.
    #[inline]
    pub fn record(&self, micros: u64) {
        self.buckets[bucket_index(micros)].fetch_add(1, Relaxed);
        self.sum.fetch_add(micros, Relaxed);
    }

    /// Adds the current values into `into`.
    pub fn add_to(&self, into: &mut HistogramSnapshot) {
        for (total, cell) in into.buckets.iter_mut().zip(&self.buckets) {
            *total += cell.load(Relaxed);
        }
        into.sum_micros += self.sum.load(Relaxed);
    }
}

/// A plain copy of a histogram (one shard's, a sum of shards', or a delta).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Non-cumulative count per bucket.
    pub buckets: [u64; BUCKETS],
    /// Sum of the values in microseconds.
    pub sum_micros: u64,
}

impl HistogramSnapshot {
    /// Number of values.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Mean in milliseconds, `None` when empty.
    pub fn mean_millis(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| self.sum_micros as f64 / n as f64 / 1000.0)
    }

    /// `self - prev`, saturating (totals only grow; a reading taken while a
    /// value is being recorded can be off by that one value).
    pub fn delta_since(&self, prev: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].saturating_sub(prev.buckets[i])),
            sum_micros: self.sum_micros.saturating_sub(prev.sum_micros),
        }
    }

    /// The `q`-quantile (0..=1) in microseconds, interpolated inside its
    /// bucket; the overflow bucket answers its lower bound. `None` when empty.
    pub fn quantile_micros(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 || q.is_nan() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * n as f64;
        let mut seen = 0u64;
        for (k, &c) in self.buckets.iter().enumerate() {
            if c == 0 {
                continue;
            }
            if (seen + c) as f64 >= rank {
                let lower = if k == 0 {
                    0.0
                } else {
                    upper_bound_micros(k - 1) as f64
                };
                if k == FINITE_BUCKETS {
                    return Some(lower);
                }
                let upper = upper_bound_micros(k) as f64;
                let within = ((rank - seen as f64) / c as f64).clamp(0.0, 1.0);
                return Some(lower + (upper - lower) * within);
            }
            seen += c;
        }
        None
    }

    /// Cumulative counts with their upper bound in microseconds (`None` for
    /// `+Inf`), as Prometheus `_bucket` lines want them.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        let mut acc = 0u64;
        self.buckets.iter().enumerate().map(move |(k, &c)| {
            acc += c;
            ((k < FINITE_BUCKETS).then(|| upper_bound_micros(k)), acc)
        })
    }

    /// A representative value per non-empty bucket (milliseconds) with its
    /// count: the CloudWatch `Values`/`Counts` form, from which CloudWatch
    /// computes percentiles that stay correct across servers.
    pub fn values_and_counts_millis(&self) -> (Vec<f64>, Vec<f64>) {
        let mut values = Vec::new();
        let mut counts = Vec::new();
        for (k, &c) in self.buckets.iter().enumerate().filter(|(_, &c)| c > 0) {
            let lower = if k == 0 { 0 } else { upper_bound_micros(k - 1) };
            let mid = if k == FINITE_BUCKETS {
                lower
            } else {
                (lower + upper_bound_micros(k)) / 2
            };
            values.push(mid as f64 / 1000.0);
            counts.push(c as f64);
        }
        (values, counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_edges_are_inclusive_upper_bounds() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(50), 0);
        assert_eq!(bucket_index(51), 1);
        assert_eq!(bucket_index(100), 1);
        assert_eq!(bucket_index(101), 2);
        for k in 1..FINITE_BUCKETS {
            assert_eq!(bucket_index(upper_bound_micros(k)), k, "k={k}");
            assert_eq!(bucket_index(upper_bound_micros(k) + 1), k + 1, "k={k}");
        }
        assert_eq!(upper_bound_micros(FINITE_BUCKETS - 1), 52_428_800);
        assert_eq!(bucket_index(60_000_000), FINITE_BUCKETS);
        assert_eq!(bucket_index(u64::MAX), FINITE_BUCKETS);
    }

    #[test]
    fn quantiles_fall_in_the_right_bucket() {
        let h = AtomicHistogram::new();
        // 90 fast values of 1 ms (bucket (800, 1600]) and 10 slow ones of 100 ms.
        (0..90).for_each(|_| h.record(1_000));
        (0..10).for_each(|_| h.record(100_000));
        let mut s = HistogramSnapshot::default();
        h.add_to(&mut s);
        assert_eq!(s.count(), 100);
        assert_eq!(s.sum_micros, 90_000 + 1_000_000);
        let p50 = s.quantile_micros(0.5).unwrap();
        assert!((800.0..=1600.0).contains(&p50), "p50 {p50}");
        let p99 = s.quantile_micros(0.99).unwrap();
        assert!((51_200.0..=102_400.0).contains(&p99), "p99 {p99}");
        assert!(s.quantile_micros(0.0).unwrap() <= p50);
        assert_eq!(s.quantile_micros(1.0), Some(102_400.0));
        assert!((s.mean_millis().unwrap() - 10.9).abs() < 1e-9);
        assert_eq!(HistogramSnapshot::default().quantile_micros(0.5), None);
    }

    #[test]
    fn overflow_quantile_is_its_lower_bound() {
        let h = AtomicHistogram::new();
        h.record(3_600_000_000);
        let mut s = HistogramSnapshot::default();
        h.add_to(&mut s);
        assert_eq!(s.quantile_micros(0.99), Some(52_428_800.0));
        let cumulative: Vec<_> = s.cumulative().collect();
        assert_eq!(cumulative.len(), BUCKETS);
        assert_eq!(cumulative[FINITE_BUCKETS - 1], (Some(52_428_800), 0));
        assert_eq!(cumulative[FINITE_BUCKETS], (None, 1));
    }

    #[test]
    fn deltas_and_values_for_cloudwatch() {
        let h = AtomicHistogram::new();
        h.record(40);
        let mut before = HistogramSnapshot::default();
        h.add_to(&mut before);
        h.record(40);
        h.record(1_000);
        h.record(1_000);
        let mut after = HistogramSnapshot::default();
        h.add_to(&mut after);
        let d = after.delta_since(&before);
        assert_eq!(d.count(), 3);
        assert_eq!(d.sum_micros, 2_040);
        let (values, counts) = d.values_and_counts_millis();
        assert_eq!(values, vec![0.025, 1.2]);
        assert_eq!(counts, vec![1.0, 2.0]);
    }
}
