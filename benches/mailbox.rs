//! Cross-shard mailbox: push from one thread, drain on another (the path
//! every cross-shard delivery takes), and the uncontended push/drain cost.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use websocket_app::coordinator::Delivery;
use websocket_app::protocol::UserId;
use websocket_app::shard::{Mailbox, ShardMsg};

fn deliver_msg(frame: &Bytes, user: &UserId) -> ShardMsg {
    ShardMsg::Deliver {
        user: user.clone(),
        what: Delivery::Frame(frame.clone()),
        reply: None,
        parts: 1,
        sent_at_us: 0,
    }
}

fn same_thread(c: &mut Criterion) {
    let mailbox = Mailbox::new();
    let frame = Bytes::from(vec![0u8; 200]);
    let user = UserId::parse("bob").unwrap();
    let mut out = Vec::with_capacity(256);
    let mut g = c.benchmark_group("mailbox");
    g.throughput(Throughput::Elements(256));
    g.bench_function("push_drain_256_same_thread", |b| {
        b.iter(|| {
            for _ in 0..256 {
                mailbox.push(deliver_msg(&frame, &user));
            }
            mailbox.drain(&mut out, 256);
            out.clear();
        })
    });
    g.finish();
}

fn cross_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("mailbox");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("cross_thread_10k", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                let mailbox = Arc::new(Mailbox::new());
                let frame = Bytes::from(vec![0u8; 200]);
                let user = UserId::parse("bob").unwrap();
                let start = Instant::now();
                let producer = {
                    let mb = mailbox.clone();
                    std::thread::spawn(move || {
                        for _ in 0..10_000 {
                            mb.push(deliver_msg(&frame, &user));
                        }
                    })
                };
                let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let mut out = Vec::with_capacity(256);
                    let mut got = 0;
                    while got < 10_000 {
                        mailbox.recv_batch(&mut out, 256).await;
                        got += out.len();
                        out.clear();
                    }
                });
                producer.join().unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, same_thread, cross_thread);
criterion_main!(benches);
