//! A subscriber of a channel with history that gets more live publications
//! while its position is read than it may buffer: whatever `subscribed`
//! says, the publications it receives after it continue right after the
//! offset it was told (or, recovered, after its own), with no gap.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::coordinator::StreamPage;
use crate::metrics::{Counter, MetricsRegistry};
use crate::namespaces::{NamespaceOptions, Namespaces};
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::Position;
use crate::protocol::frame::text_frame_with;
use crate::protocol::UserId;
use crate::session::Outcome;
use crate::shard::core::channels::MAX_BUFFERED;
use crate::shard::core::sim::json_of;
use crate::shard::core::{Action, CoordinatorCall, CoreConfig, ShardCore, ShardMsg};
use crate::shard::ConnKey;

/// Offset of the channel's newest publication when the read runs.
const TOP: u64 = 10;

/// A one-shard core over Redis (the test answers for the coordinator) whose
/// channels keep history.
fn core(registry: &MetricsRegistry) -> ShardCore {
    let ns = Namespaces {
        default: NamespaceOptions {
            public: true,
            history_size: 100,
            history_ttl: std::time::Duration::from_secs(60),
            ..NamespaceOptions::default()
        },
        named: Default::default(),
    };
    let cfg = CoreConfig::single(true);
    ShardCore::new(cfg, registry.shard(0), Arc::new(ns), "s".into(), 1)
}

/// What the core asked of the coordinator and what it sent to the client.
#[derive(Default)]
struct Seen {
    /// Tokens of `SubscribeChannel` and `ReadStream` calls, in order.
    tokens: Vec<u64>,
    /// Frames delivered (there is one connection), as JSON.
    frames: Vec<Value>,
}

fn drain(core: &mut ShardCore, seen: &mut Seen) {
    while let Some(action) = core.poll_action() {
        match action {
            Action::Coordinator(CoordinatorCall::SubscribeChannel { token, .. })
            | Action::Coordinator(CoordinatorCall::ReadStream { token, .. }) => {
                seen.tokens.push(token);
            }
            Action::Deliver { frame, .. } => seen.frames.push(json_of(&frame).expect("text")),
            _ => {}
        }
    }
}

fn publication(offset: u64) -> Bytes {
    let json =
        json!({"type": "publication", "channel": "h:1", "payload": offset, "offset": offset});
    text_frame_with(|out| out.extend_from_slice(json.to_string().as_bytes()))
}

/// Publications `offsets` reach the instance from Redis.
fn publish(core: &mut ShardCore, seen: &mut Seen, offsets: std::ops::RangeInclusive<u64>) {
    for offset in offsets {
        let msg = ShardMsg::PublicationIn {
            channel: ChannelName::parse("h:1").unwrap(),
            frame: publication(offset),
            offset: Some(offset),
            sent_at_us: 0,
        };
        core.on_message(msg);
        drain(core, seen);
    }
}

/// Subscribes (recovering from `recover`), lets `live` publications after
/// the read's newest arrive while it is read, answers it, then publishes 20
/// more. Returns the frames and the buffer overflows counted.
fn subscribe_during(recover: Option<u64>, live: u64) -> (Vec<Value>, u64) {
    let registry = MetricsRegistry::new(1);
    let mut core = core(&registry);
    let mut seen = Seen::default();
    let key = ConnKey {
        index: 0,
        generation: 1,
    };
    let alice = UserId::parse("alice").unwrap();
    core.conn_opened(key, &alice, &[]);
    let subscribe = Outcome::Subscribe {
        user: alice,
        channel: ChannelName::parse("h:1").unwrap(),
        recover: recover.map(|offset| Position {
            offset,
            epoch: "e".into(),
        }),
        id: Some("s".into()),
    };
    core.client_outcome(key, subscribe, 0, 1_000);
    drain(&mut core, &mut seen);
    let subscribed = *seen.tokens.last().expect("the instance subscribes");
    core.on_message(ShardMsg::ChannelSubscribed { token: subscribed });
    drain(&mut core, &mut seen);
    let read = *seen.tokens.last().expect("the position is read");
    assert_ne!(read, subscribed);
    // Copies of publications the read includes, then newer ones.
    publish(&mut core, &mut seen, TOP - 2..=TOP + live);
    let since = recover.unwrap_or(TOP);
    let entries = (since + 1..=TOP)
        .map(|o| Bytes::from(json!({"payload": o, "offset": o}).to_string()))
        .collect();
    let page = StreamPage {
        top: TOP,
        epoch: "e".into(),
        complete: true,
        entries,
    };
    core.on_message(ShardMsg::StreamRead {
        token: read,
        page: Some(page),
    });
    drain(&mut core, &mut seen);
    publish(&mut core, &mut seen, TOP + live + 1..=TOP + live + 20);
    let overflows = registry.snapshot().get(Counter::SubscribeBufferOverflows);
    (seen.frames, overflows)
}

/// The `subscribed` answer, and the offsets received after it (recovered,
/// then live), checked to run on from `from` without a gap or duplicate.
fn check(frames: &[Value], from: impl Fn(&Value) -> u64, last: u64) -> Value {
    let (answer, rest) = frames.split_first().expect("an answer");
    assert_eq!(answer["type"], "subscribed", "{answer}");
    let recovered = answer["publications"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let got: Vec<u64> = recovered
        .iter()
        .chain(rest)
        .map(|p| p["offset"].as_u64().expect("offset"))
        .collect();
    let expected: Vec<u64> = (from(answer) + 1..=last).collect();
    assert_eq!(got, expected, "contiguous after {answer}");
    answer.clone()
}

const FLOOD: u64 = MAX_BUFFERED as u64 + 500;

#[test]
fn a_plain_subscriber_flooded_during_the_read_is_told_the_newest_dropped_offset() {
    let (frames, overflows) = subscribe_during(None, FLOOD);
    let offset = |a: &Value| a["offset"].as_u64().expect("offset");
    let answer = check(&frames, offset, TOP + FLOOD + 20);
    assert_eq!(
        answer["offset"],
        TOP + FLOOD,
        "past every dropped publication"
    );
    assert_eq!(overflows, 1);
}

#[test]
fn a_recovering_subscriber_flooded_during_the_read_is_not_recovered_and_continues_after_its_offset()
{
    let (frames, overflows) = subscribe_during(Some(5), FLOOD);
    let offset = |a: &Value| a["offset"].as_u64().expect("offset");
    let answer = check(&frames, offset, TOP + FLOOD + 20);
    assert_eq!(answer["recovered"], false, "{answer}");
    assert_eq!(answer["publications"], json!([]));
    assert_eq!(answer["offset"], TOP + FLOOD);
    assert_eq!(overflows, 1);
}

#[test]
fn without_a_flood_the_buffer_follows_the_read_exactly() {
    let live = MAX_BUFFERED as u64 - 3; // the buffer also holds 3 copies
    let (frames, overflows) = subscribe_during(None, live);
    let offset = |a: &Value| a["offset"].as_u64().expect("offset");
    assert_eq!(check(&frames, offset, TOP + live + 20)["offset"], TOP);
    assert_eq!(overflows, 0);
    let (frames, overflows) = subscribe_during(Some(5), live);
    let answer = check(&frames, |_| 5, TOP + live + 20);
    assert_eq!(
        (&answer["recovered"], &answer["offset"]),
        (&json!(true), &json!(TOP))
    );
    assert_eq!(overflows, 0);
}
