//! Merging the reports of processes that ran side by side: counts add up,
//! raw histograms merge, so percentiles stay exact up to the histogram's
//! precision.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use super::{new_hist, rfc3339, ChannelsReport, Report};

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// Adds one process's channel figures: counts add up; the per-channel and
/// per-connection shape is the largest seen.
fn add_channels(into: &mut ChannelsReport, from: &ChannelsReport) {
    into.channels += from.channels;
    into.subscribers_per_channel = into
        .subscribers_per_channel
        .max(from.subscribers_per_channel);
    into.subscriptions_per_connection = into
        .subscriptions_per_connection
        .max(from.subscriptions_per_connection);
    into.subscriber_connections += from.subscriber_connections;
    into.publishers += from.publishers;
    let (s, f) = (&mut into.subscriptions, &from.subscriptions);
    s.wanted += f.wanted;
    s.subscribed += f.subscribed;
    s.refused += f.refused;
    s.unanswered += f.unanswered;
    into.subscribe_s = into.subscribe_s.max(from.subscribe_s);
    into.out_of_order += from.out_of_order;
    into.unexpected += from.unexpected;
    let (o, f) = (&mut into.order, &from.order);
    o.compared += f.compared;
    o.violations += f.violations;
    o.channels_violated += f.channels_violated;
    o.incomplete += f.incomplete;
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
        a.published += r.acks.published;
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
        if let Some(ch) = &r.channels {
            add_channels(out.channels.get_or_insert_with(Default::default), ch);
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
        a.channels = Some(ChannelsReport {
            channels: 10,
            out_of_order: 1,
            ..Default::default()
        });
        b.channels = a.channels.clone();
        let m = merge(vec![a, b]);
        let ch = m.channels.as_ref().unwrap();
        assert_eq!((ch.channels, ch.out_of_order), (20, 2));
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
