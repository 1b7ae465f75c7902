//! From the run's counters to the report, in two steps: `take` freezes the
//! counting and copies the figures before the connections close (so our own
//! closing never shows in them), `complete` adds what is only known after
//! they closed (unexpected closes seen before ours, the subscriptions'
//! order digests) and the derived figures.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use crate::channels::order;
use crate::report::{self, ChannelsReport, Order, Report, Subscriptions};
use crate::run::driver::Sent;
use crate::shared::Shared;

/// Freezes counting and copies the counters.
pub fn take(sh: &Shared, spawned: usize, sent: &Sent, interrupted: bool) -> Report {
    // From here on nothing received counts: the figures below and the order
    // digests handed in at shutdown describe the same deliveries.
    sh.frozen.store(true, Relaxed);
    let mut rep = Report {
        scenario: sh.args.scenario.name().into(),
        interrupted,
        processes: 1,
        ..Default::default()
    };
    let c = &mut rep.connections;
    c.attempted = sh.attempted.load(Relaxed).max(spawned as u64);
    c.established = sh.established.load(Relaxed);
    c.failed = sh.failed.load(Relaxed);
    c.failures = sh.failures.lock().unwrap().clone();
    let m = &mut rep.messages;
    m.sent = sent.sent;
    m.expected = sent.expected;
    m.delivered = sh.delivered.load(Relaxed);
    m.duplicates = sh.duplicates.load(Relaxed);
    m.send_dropped = sent.dropped;
    let a = &mut rep.acks;
    a.delivered = sh.ack_delivered.load(Relaxed);
    a.offline = sh.ack_offline.load(Relaxed);
    a.published = sh.ack_published.load(Relaxed);
    a.failed = sh.ack_failed.load(Relaxed);
    a.rate_limited = sh.ack_rate_limited.load(Relaxed);
    rep.errors = sh.errors.lock().unwrap().clone();
    rep.heartbeats = sh.heartbeats.load(Relaxed);
    if let Some(plan) = &sh.plan {
        let wanted = sh.sub_wanted.load(Relaxed);
        let subscribed = sh.subscribed.load(Relaxed);
        let refused = sh.sub_refused.load(Relaxed);
        rep.channels = Some(ChannelsReport {
            channels: plan.channels as u64,
            subscribers_per_channel: plan.per_channel as u64,
            subscriptions_per_connection: plan.per_conn as u64,
            subscriber_connections: plan.sub_conns as u64,
            publishers: plan.publishers as u64,
            subscriptions: Subscriptions {
                wanted,
                subscribed,
                refused,
                unanswered: wanted.saturating_sub(subscribed + refused),
            },
            out_of_order: sh.out_of_order.load(Relaxed),
            unexpected: sh.unexpected.load(Relaxed),
            ..Default::default()
        });
    }
    rep
}

/// When the phases happened.
pub struct Times {
    pub started_at: SystemTime,
    /// Length of the measured phase (zero when it never ran).
    pub measured: Duration,
    /// From the start until every subscribe was answered (channels).
    pub subscribed_after: Duration,
}

/// Adds what is known once the connections closed, and the derived figures.
pub fn complete(rep: &mut Report, sh: &Shared, times: &Times) {
    // Closes seen before our own close count (ours are never counted).
    rep.closes = sh.closes.lock().unwrap().clone();
    rep.started_at = report::rfc3339(times.started_at);
    rep.ended_at = report::rfc3339(SystemTime::now());
    rep.duration_s = (times.measured.as_secs_f64() * 1000.0).round() / 1000.0;
    if times.measured > Duration::ZERO {
        let s = times.measured.as_secs_f64();
        rep.rates.sent_per_s = (rep.messages.sent as f64 / s * 10.0).round() / 10.0;
        rep.rates.delivered_per_s = (rep.messages.delivered as f64 / s * 10.0).round() / 10.0;
    }
    if let Some(ch) = &mut rep.channels {
        ch.subscribe_s = (times.subscribed_after.as_secs_f64() * 1000.0).round() / 1000.0;
        let results = std::mem::take(&mut *sh.sub_results.lock().unwrap());
        let o = order::check(results);
        ch.order = Order {
            compared: o.compared,
            violations: o.violations,
            channels_violated: o.channels_violated,
            incomplete: o.incomplete,
        };
    }
    let args = &sh.args;
    let mut config = serde_json::to_value(args).unwrap_or_default();
    if let Some(obj) = config.as_object_mut() {
        obj.insert("users".into(), sh.users.into());
        let auth = if sh.tokens.is_empty() {
            "insecure"
        } else {
            "jwt"
        };
        obj.insert("auth".into(), auth.into());
        obj.insert("run_id".into(), sh.run_id.into());
        // The derived publisher count, where the command line may have left it out.
        if let (Some(plan), Some(ch)) = (&sh.plan, obj.get_mut("channels")) {
            ch["publishers"] = plan.publishers.into();
        }
    }
    rep.config = config;
    let lat = sh.lat_hist.lock().unwrap();
    let con = sh.connect_hist.lock().unwrap();
    rep.finish(&lat, &con);
}
