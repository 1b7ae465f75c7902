//! The human summary of a report, printed on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{ChannelsReport, Report};

impl Report {
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
            "acks         delivered {}  offline {}  published {}  failed {}  rate_limited {}",
            a.delivered, a.offline, a.published, a.failed, a.rate_limited
        );
        if let Some(ch) = &self.channels {
            channels(&mut s, ch);
        }
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

/// The channels scenario's lines.
fn channels(s: &mut String, ch: &ChannelsReport) {
    let sub = &ch.subscriptions;
    let o = &ch.order;
    let _ = writeln!(
        s,
        "channels     {} channels x {} subscribers ({} per connection, {} connections), {} publishers",
        ch.channels,
        ch.subscribers_per_channel,
        ch.subscriptions_per_connection,
        ch.subscriber_connections,
        ch.publishers
    );
    let _ = writeln!(
        s,
        "subscribe    wanted {}  subscribed {}  refused {}  unanswered {}  (all answered {:.2} s after start)",
        sub.wanted, sub.subscribed, sub.refused, sub.unanswered, ch.subscribe_s
    );
    let _ = writeln!(
        s,
        "order        out_of_order {}  unexpected {}  one-order violations {} of {} compared ({} channels)  incomplete {}",
        ch.out_of_order, ch.unexpected, o.violations, o.compared, o.channels_violated, o.incomplete
    );
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
