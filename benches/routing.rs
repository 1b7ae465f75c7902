//! The cost of a direct message's hops through the shard cores.
//!
//! Three cores on real mailboxes (same thread, so no wake-ups): a sender on
//! shard 0 sends with an ack id to a user owned by shard 1 and held on
//! shard 2. `via_owner` is the path the server takes (sender → owner →
//! holder → sender); `straight_to_holder` skips the owner, as a replicated
//! directory would let the sender do (sender → holder → sender). The
//! difference is what the owner hop costs in CPU; the cross-thread wake-up a
//! hop may add is measured by the mailbox bench. See docs/DESIGN.md.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use websocket_app::coordinator::ReplyTo;
use websocket_app::metrics::MetricsRegistry;
use websocket_app::protocol::UserId;
use websocket_app::session::Outcome;
use websocket_app::shard::core::{owner_of, Action, CoreConfig, ShardCore};
use websocket_app::shard::{ConnKey, Mailbox, ShardMsg};

const SHARDS: u16 = 3;

struct Bus {
    cores: Vec<ShardCore>,
    mailboxes: Vec<Mailbox>,
    batch: Vec<ShardMsg>,
}

impl Bus {
    fn new() -> Self {
        let registry = MetricsRegistry::new(usize::from(SHARDS));
        let cores = (0..SHARDS)
            .map(|index| {
                let cfg = CoreConfig {
                    index,
                    shards: SHARDS,
                    remote: false,
                    delivery_timeout_ms: 5_000,
                    max_channels: 128,
                    inbox: None,
                    max_recovery_bytes: 1 << 20,
                };
                ShardCore::new(
                    cfg,
                    registry.shard(usize::from(index)),
                    Default::default(),
                    "bench".into(),
                    1,
                )
            })
            .collect();
        let mailboxes = (0..SHARDS).map(|_| Mailbox::new()).collect();
        let mut bus = Self {
            cores,
            mailboxes,
            batch: Vec::with_capacity(64),
        };
        bus.cores[2].conn_opened(key(0), &receiver(), &[]);
        bus.cores[0].conn_opened(key(0), &UserId::parse("sender").unwrap(), &[]);
        bus.settle();
        bus
    }

    /// Carries out `shard`'s actions; `divert` may rewrite a message to send.
    fn run(&mut self, shard: u16, divert: &dyn Fn(u16, ShardMsg) -> (u16, ShardMsg)) {
        while let Some(action) = self.cores[usize::from(shard)].poll_action() {
            match action {
                Action::Send { shard: to, msg } => {
                    let (to, msg) = divert(to, msg);
                    self.mailboxes[usize::from(to)].push(msg);
                }
                Action::Deliver {
                    report: Some(report),
                    ..
                } => self.cores[usize::from(shard)].delivered(report, 1),
                _ => {}
            }
        }
    }

    fn settle_with(&mut self, divert: &dyn Fn(u16, ShardMsg) -> (u16, ShardMsg)) {
        loop {
            let mut any = false;
            for shard in 0..SHARDS {
                self.run(shard, divert);
                if self.mailboxes[usize::from(shard)].drain(&mut self.batch, 64) {
                    any = true;
                    for msg in std::mem::take(&mut self.batch) {
                        self.cores[usize::from(shard)].on_message(msg);
                    }
                    self.run(shard, divert);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn settle(&mut self) {
        self.settle_with(&|to, msg| (to, msg));
    }

    fn send(&mut self, divert: &dyn Fn(u16, ShardMsg) -> (u16, ShardMsg)) {
        let outcome = Outcome::Direct {
            receiver: receiver(),
            frame: Bytes::from_static(b"frame"),
            ack: Some("m1".to_owned()),
        };
        self.cores[0].client_outcome(key(0), outcome, 1, 0);
        self.settle_with(divert);
    }
}

fn key(index: u32) -> ConnKey {
    ConnKey {
        index,
        generation: 1,
    }
}

/// A user owned by shard 1 (held on shard 2 by the bus).
fn receiver() -> UserId {
    let name = (0..)
        .map(|i| format!("r{i}"))
        .find(|u| owner_of(u, SHARDS) == 1)
        .unwrap();
    UserId::parse(&name).unwrap()
}

/// What a replicated directory would let the sender do: send `Deliver`
/// to the holder instead of `Route` to the owner.
fn straight(to: u16, msg: ShardMsg) -> (u16, ShardMsg) {
    match msg {
        ShardMsg::Route {
            user,
            what,
            reply: reply @ Some(ReplyTo::Shard { .. }),
            sent_at_us,
        } => (
            2,
            ShardMsg::Deliver {
                user,
                what,
                reply,
                parts: 1,
                sent_at_us,
            },
        ),
        other => (to, other),
    }
}

fn hops(c: &mut Criterion) {
    let mut g = c.benchmark_group("direct_message_hops");
    g.throughput(Throughput::Elements(1));
    let mut bus = Bus::new();
    g.bench_function("via_owner", |b| b.iter(|| bus.send(&|to, msg| (to, msg))));
    let mut bus = Bus::new();
    g.bench_function("straight_to_holder", |b| b.iter(|| bus.send(&straight)));
    g.finish();
}

criterion_group!(benches, hops);
criterion_main!(benches);
