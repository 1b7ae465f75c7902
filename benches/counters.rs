//! Cost of counting on the hot path: `incr` alone, `incr` while another
//! thread sums snapshots as fast as it can (the metrics thread's worst case),
//! a latency record, and one snapshot of an 8-shard registry.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use websocket_app::metrics::{Counter, MetricsRegistry};

fn counters(c: &mut Criterion) {
    let reg = MetricsRegistry::new(8);
    let shard = reg.shard(0);
    c.bench_function("incr", |b| {
        b.iter(|| shard.incr(black_box(Counter::MessagesTotal)))
    });
    c.bench_function("record_delivery_latency", |b| {
        b.iter(|| shard.record_delivery_latency(black_box(1_234)))
    });
    c.bench_function("snapshot_8_shards", |b| {
        b.iter(|| black_box(reg.snapshot()))
    });

    // A reader thread hammering snapshots: the shard's cache line is pulled
    // away on every read, so this bounds the cost from above.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (reg, stop) = (reg.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                black_box(reg.snapshot());
                reads += 1;
            }
            reads
        })
    };
    c.bench_function("incr_with_concurrent_snapshots", |b| {
        b.iter(|| shard.incr(black_box(Counter::MessagesTotal)))
    });
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    black_box(reads);
}

criterion_group!(benches, counters);
criterion_main!(benches);
