//! What one interval becomes in CloudWatch: the `MetricDatum`s built from a
//! [`Delta`], each once with the `ServerID` dimension and once without (the
//! fleet aggregate), cut into `PutMetricData`-sized batches. Pure: no I/O, so
//! the semantics are unit-tested here and the push loop only moves batches.

use std::time::SystemTime;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::builders::MetricDatumBuilder;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};

use super::counter::Counter;
use super::gauge::Gauge;
use super::snapshot::Delta;

/// `PutMetricData` accepts at most this many datums per call.
pub const MAX_DATUMS_PER_CALL: usize = 1000;
/// The per-instance dimension (the original server's name, kept for dashboards).
pub const DIMENSION_NAME: &str = "ServerID";

/// The datums for one interval, timestamped `at`.
///
/// - `ActiveConnections`, `Subscriptions`, `Channels`: gauges (Count).
///   Average per instance, Sum of the aggregate over one interval-long
///   period = the fleet's total (for `Channels`, a channel with subscribers
///   on several instances counts once per instance).
/// - Counters with a CloudWatch unit: the interval's delta, so Sum over any
///   period is the number of events in it.
/// - `AverageLatencyMs`: a StatisticSet of the interval's latency reports
///   (SampleCount, Sum, Minimum, Maximum in ms), absent when there were none.
///   `extremes` are the interval's min/max report in µs.
/// - `DeliveryLatencyMs`: the interval's delivery latencies as Values/Counts
///   (one value per histogram bucket), so CloudWatch percentiles such as p99
///   stay right when aggregated over instances; absent when nothing was delivered.
/// - `ApiRequests`, `ApiErrors` (Count): the interval's server API requests,
///   and those answered with an error or cut; `ApiLatencyMs` like
///   `DeliveryLatencyMs`. Then, fleet-wide only (no `ServerID`), one
///   `ApiRequests` datum per endpoint and status that had requests, with the
///   dimensions `Endpoint` and `Status`.
pub fn interval_datums(
    delta: &Delta,
    extremes: Option<(u64, u64)>,
    server_id: &str,
    at: SystemTime,
) -> Vec<MetricDatum> {
    let ts = DateTime::from(at);
    let base = |name: &str, unit: StandardUnit| {
        MetricDatum::builder()
            .metric_name(name)
            .unit(unit)
            .timestamp(ts)
    };
    let mut templates = vec![
        base("ActiveConnections", StandardUnit::Count).value(delta.active_connections() as f64)
    ];
    for g in Gauge::ALL {
        templates.push(base(g.info().name, StandardUnit::Count).value(delta.gauge(g) as f64));
    }
    for c in Counter::ALL {
        let info = c.info();
        if let Some(unit) = info.cloudwatch_unit {
            templates.push(base(info.name, StandardUnit::from(unit)).value(delta.get(c) as f64));
        }
    }
    if let Some(stats) = latency_statistics(delta, extremes) {
        templates
            .push(base("AverageLatencyMs", StandardUnit::Milliseconds).statistic_values(stats));
    }
    let (values, counts) = delta.delivery_latency().values_and_counts_millis();
    if !values.is_empty() {
        templates.push(
            base("DeliveryLatencyMs", StandardUnit::Milliseconds)
                .set_values(Some(values))
                .set_counts(Some(counts)),
        );
    }
    let api = delta.api();
    templates.push(base("ApiRequests", StandardUnit::Count).value(api.total() as f64));
    templates.push(base("ApiErrors", StandardUnit::Count).value(api.errors() as f64));
    let (values, counts) = api.latency().values_and_counts_millis();
    if !values.is_empty() {
        templates.push(
            base("ApiLatencyMs", StandardUnit::Milliseconds)
                .set_values(Some(values))
                .set_counts(Some(counts)),
        );
    }
    let dimension = Dimension::builder()
        .name(DIMENSION_NAME)
        .value(server_id)
        .build();
    let mut datums: Vec<MetricDatum> = templates
        .into_iter()
        .flat_map(|t| with_and_without(t, &dimension))
        .collect();
    let dim = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    for (endpoint, status, n) in api.cells() {
        datums.push(
            base("ApiRequests", StandardUnit::Count)
                .value(n as f64)
                .dimensions(dim("Endpoint", endpoint.label()))
                .dimensions(dim("Status", status.label()))
                .build(),
        );
    }
    datums
}

/// The per-instance datum and the dimensionless aggregate one.
fn with_and_without(template: MetricDatumBuilder, dimension: &Dimension) -> [MetricDatum; 2] {
    [
        template.clone().dimensions(dimension.clone()).build(),
        template.build(),
    ]
}

/// The interval's latency reports as a StatisticSet in ms, `None` when none
/// were made (never a fake 0). Min/Max come from `extremes`, clamped around
/// the mean: a report racing the interval boundary may land its extremes in
/// one interval and its sum in the next, and CloudWatch wants Min ≤ mean ≤ Max.
pub fn latency_statistics(delta: &Delta, extremes: Option<(u64, u64)>) -> Option<StatisticSet> {
    let reports = delta.latency_reports();
    let count = reports.count();
    if count == 0 {
        return None;
    }
    let sum = reports.sum_micros as f64 / 1000.0;
    let mean = sum / count as f64;
    let (min, max) = extremes.map_or((mean, mean), |(lo, hi)| {
        (lo as f64 / 1000.0, hi as f64 / 1000.0)
    });
    Some(
        StatisticSet::builder()
            .sample_count(count as f64)
            .sum(sum)
            .minimum(min.min(mean))
            .maximum(max.max(mean))
            .build(),
    )
}

/// Cuts datums into batches of at most [`MAX_DATUMS_PER_CALL`].
pub fn batches(mut datums: Vec<MetricDatum>) -> Vec<Vec<MetricDatum>> {
    let mut out = Vec::with_capacity(datums.len().div_ceil(MAX_DATUMS_PER_CALL));
    while datums.len() > MAX_DATUMS_PER_CALL {
        let rest = datums.split_off(MAX_DATUMS_PER_CALL);
        out.push(std::mem::replace(&mut datums, rest));
    }
    if !datums.is_empty() {
        out.push(datums);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsRegistry;

    fn find<'a>(
        datums: &'a [MetricDatum],
        name: &str,
        with_dimension: bool,
    ) -> Option<&'a MetricDatum> {
        datums
            .iter()
            .find(|d| d.metric_name() == Some(name) && d.dimensions().is_empty() != with_dimension)
    }

    #[test]
    fn counters_are_deltas_each_with_and_without_dimension() {
        let reg = MetricsRegistry::new(2);
        reg.shard(0).add(Counter::MessagesTotal, 4);
        reg.shard(1).connection_opened();
        reg.shard(1).connection_opened();
        let first = reg.snapshot();
        reg.shard(1).add(Counter::MessagesTotal, 3);
        reg.shard(0).connection_closed(true);
        let delta = reg.snapshot().delta_since(&first);
        let datums = interval_datums(&delta, None, "srv-1", SystemTime::now());
        assert_eq!(datums.len() % 2, 0);
        for with in [true, false] {
            let m = find(&datums, "MessagesTotal", with).unwrap();
            assert_eq!(
                (m.value(), m.unit()),
                (Some(3.0), Some(&StandardUnit::Count))
            );
            assert_eq!(
                find(&datums, "UnexpectedDisconnects", with)
                    .unwrap()
                    .value(),
                Some(1.0)
            );
            assert_eq!(
                find(&datums, "ActiveConnections", with).unwrap().value(),
                Some(1.0)
            );
            assert_eq!(
                find(&datums, "MessagesDelivered", with).unwrap().value(),
                Some(0.0)
            );
            assert!(
                find(&datums, "AverageLatencyMs", with).is_none(),
                "no reports, no datum"
            );
            assert!(find(&datums, "DeliveryLatencyMs", with).is_none());
            assert!(find(&datums, "BytesIn", with).is_none(), "Prometheus only");
        }
        let d = find(&datums, "MessagesTotal", true).unwrap().dimensions()[0].clone();
        assert_eq!((d.name(), d.value()), (Some("ServerID"), Some("srv-1")));
    }

    #[test]
    fn api_requests_by_endpoint_and_status_are_fleet_wide() {
        use crate::metrics::{ApiEndpoint, ApiStatus};
        let reg = MetricsRegistry::new(1);
        let m = reg.shard(0);
        m.record_api(ApiEndpoint::Send, ApiStatus::Ok, Some(1_000));
        m.record_api(ApiEndpoint::Send, ApiStatus::Ok, Some(1_000));
        m.record_api(ApiEndpoint::Publish, ApiStatus::Unauthorized, Some(10));
        let delta = reg.snapshot().delta_since(&Default::default());
        let datums = interval_datums(&delta, None, "s", SystemTime::now());
        for with in [true, false] {
            let total = datums
                .iter()
                .find(|d| {
                    d.metric_name() == Some("ApiRequests")
                        && d.dimensions().len() == usize::from(with)
                })
                .unwrap();
            assert_eq!(total.value(), Some(3.0));
            assert_eq!(find(&datums, "ApiErrors", with).unwrap().value(), Some(1.0));
            let l = find(&datums, "ApiLatencyMs", with).unwrap();
            assert_eq!(l.counts().iter().sum::<f64>(), 3.0);
        }
        let cell = |endpoint: &str, status: &str| {
            datums.iter().find(|d| {
                let dims: Vec<_> = d
                    .dimensions()
                    .iter()
                    .map(|x| (x.name().unwrap(), x.value().unwrap()))
                    .collect();
                dims == [("Endpoint", endpoint), ("Status", status)]
            })
        };
        assert_eq!(cell("send", "200").unwrap().value(), Some(2.0));
        assert_eq!(cell("publish", "401").unwrap().value(), Some(1.0));
        assert!(cell("publish", "200").is_none(), "only cells with requests");
    }

    #[test]
    fn latency_reports_become_a_statistic_set() {
        let reg = MetricsRegistry::new(1);
        [10.0, 20.0, 30.5]
            .iter()
            .for_each(|&ms| reg.shard(0).record_latency_report(ms));
        reg.shard(0).record_delivery_latency(1_000);
        reg.shard(0).record_delivery_latency(1_200);
        let delta = reg.snapshot().delta_since(&Default::default());
        let datums = interval_datums(
            &delta,
            reg.take_latency_report_extremes(),
            "s",
            SystemTime::now(),
        );
        for with in [true, false] {
            let d = find(&datums, "AverageLatencyMs", with).unwrap();
            assert_eq!(d.unit(), Some(&StandardUnit::Milliseconds));
            assert_eq!(d.value(), None);
            let s = d.statistic_values().unwrap();
            assert_eq!(
                (s.sample_count(), s.sum(), s.minimum(), s.maximum()),
                (Some(3.0), Some(60.5), Some(10.0), Some(30.5))
            );
            let l = find(&datums, "DeliveryLatencyMs", with).unwrap();
            assert_eq!((l.values(), l.counts()), (&[1.2][..], &[2.0][..]));
        }
    }

    #[test]
    fn extremes_are_clamped_around_the_mean() {
        let reg = MetricsRegistry::new(1);
        reg.shard(0).record_latency_report(50.0);
        let delta = reg.snapshot().delta_since(&Default::default());
        let s = latency_statistics(&delta, Some((60_000, 70_000))).unwrap();
        assert_eq!((s.minimum(), s.maximum()), (Some(50.0), Some(70.0)));
        let s = latency_statistics(&delta, None).unwrap();
        assert_eq!((s.minimum(), s.maximum()), (Some(50.0), Some(50.0)));
    }

    #[test]
    fn batches_respect_the_call_limit() {
        let datum = MetricDatum::builder().metric_name("x").value(1.0).build();
        let sizes = |n: usize| {
            batches(vec![datum.clone(); n])
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(40), vec![40]);
        assert_eq!(sizes(1000), vec![1000]);
        assert_eq!(sizes(2500), vec![1000, 1000, 500]);
    }
}
