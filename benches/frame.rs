//! Framing hot paths: every broadcast is framed once, every client read is
//! decoded (and unmasked) in place on a shard's thread.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use websocket_app::protocol::frame::{text_frame_with, unmask, FrameDecoder, WsMessage};

/// A ~200-byte JSON message, the size of a typical chat broadcast.
const BROADCAST: &[u8] = br#"{"type":"chat_message","senderID":"alice@example","id":"m-1764000000-42","timestamp":"2026-11-28T17:00:00.123456Z","payload":{"text":"hello there, are we still on for three?","v":2}}"#;

/// A masked client text frame, as a browser would send it.
fn client_text_frame(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    assert!(payload.len() < 126, "short frames only");
    let mut out = vec![0x81, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Bytes(BROADCAST.len() as u64));
    group.bench_function("text_frame_with_200B", |b| {
        b.iter(|| text_frame_with(|out| out.extend_from_slice(black_box(BROADCAST))))
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let frames: Vec<u8> = (0..100u8)
        .flat_map(|i| {
            let text = format!(r#"{{"type":"heartbeat","seq":{i},"pad":"................"}}"#);
            client_text_frame(text.as_bytes(), [i, 0x5a, 0xa5, 0x3c])
        })
        .collect();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(100));
    group.bench_function("100_small_masked_text_frames", |b| {
        let mut decoder = FrameDecoder::new();
        b.iter_batched_ref(
            || frames.clone(),
            |buf| {
                let mut bytes = 0;
                let r = decoder.feed(buf, 1 << 20, false, |m| {
                    if let WsMessage::Text(t) = m {
                        bytes += t.len();
                    }
                    true
                });
                black_box((r, bytes))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn unmask_64k(c: &mut Criterion) {
    let mut buf = vec![0x42u8; 64 * 1024];
    let mut group = c.benchmark_group("unmask");
    group.throughput(Throughput::Bytes(buf.len() as u64));
    group.bench_function("64KiB", |b| {
        b.iter(|| unmask(black_box(&mut buf), black_box([1, 2, 3, 4])))
    });
    group.finish();
}

criterion_group!(benches, encode, decode, unmask_64k);
criterion_main!(benches);
