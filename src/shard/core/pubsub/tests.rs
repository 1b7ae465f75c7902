//! The answers of a `subscribe` that is still in progress when its
//! subscription ends.

use std::sync::Arc;

use crate::namespaces::{NamespaceOptions, Namespaces};
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::server_v2::UnsubscribeReason;
use crate::protocol::UserId;
use crate::session::Outcome;
use crate::shard::core::{Action, CoreConfig, ShardCore};
use crate::shard::ConnKey;

/// A one-shard core over Redis: a first subscribe waits for the
/// coordinator, so it stays in progress until the test answers it.
fn core() -> ShardCore {
    let ns = Namespaces {
        default: NamespaceOptions {
            public: true,
            ..NamespaceOptions::default()
        },
        named: Default::default(),
    };
    let cfg = CoreConfig::single(true);
    let metrics = crate::metrics::MetricsRegistry::new(1).shard(0);
    ShardCore::new(cfg, metrics, Arc::new(ns), "s".into(), 1)
}

/// The text frames the core queued, in order.
fn frames(core: &mut ShardCore) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(action) = core.poll_action() {
        if let Action::Deliver { frame, .. } = action {
            let json = crate::shard::core::sim::json_of(&frame).expect("a text frame");
            out.push(json.to_string());
        }
    }
    out
}

/// Opens alice and sends a subscribe (id `s1`) that stays in progress.
fn subscribing(core: &mut ShardCore) -> (ConnKey, ChannelName) {
    let key = ConnKey {
        index: 0,
        generation: 1,
    };
    let alice = UserId::parse("alice").unwrap();
    core.conn_opened(key, &alice, &[]);
    let channel = ChannelName::parse("room:1").unwrap();
    let subscribe = Outcome::Subscribe {
        user: alice,
        channel: channel.clone(),
        recover: None,
        id: Some("s1".into()),
    };
    core.client_outcome(key, subscribe, 0, 1_000);
    assert_eq!(frames(core), Vec::<String>::new(), "still in progress");
    (key, channel)
}

#[test]
fn a_subscribe_overtaken_by_its_unsubscribe_is_answered_first() {
    let mut core = core();
    let (key, channel) = subscribing(&mut core);
    let unsubscribe = Outcome::Unsubscribe {
        channel,
        id: Some("u1".into()),
    };
    core.client_outcome(key, unsubscribe, 0, 1_001);
    let got = frames(&mut core);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].contains(r#""type":"unsubscribed""#) && got[0].contains(r#""id":"s1""#));
    assert!(got[1].contains(r#""type":"unsubscribed""#) && got[1].contains(r#""id":"u1""#));
}

#[test]
fn a_subscribe_ended_by_the_server_is_answered_with_the_reason() {
    let mut core = core();
    let (key, channel) = subscribing(&mut core);
    assert!(core.end_subscription(key, &channel, UnsubscribeReason::Server));
    let got = frames(&mut core);
    assert_eq!(got.len(), 1, "one answer: {got:?}");
    assert!(got[0].contains(r#""id":"s1""#) && got[0].contains(r#""reason":"server""#));
    assert!(!core.end_subscription(key, &channel, UnsubscribeReason::Server));
}
