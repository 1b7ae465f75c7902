//! permessage-deflate: what one message costs a shard to compress (once per
//! broadcast) and to inflate (per compressed client message), zlib-rs (the
//! backend flate2 uses here) against miniz_oxide (flate2's default), at the
//! levels worth choosing between. Sizes are printed once: speed without the
//! ratio says nothing. Figures: tuning/BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::{Compress, Compression, FlushCompress};
use miniz_oxide::deflate::core::CompressorOxide;
use miniz_oxide::inflate::stream::{InflateState, MinReset};
use miniz_oxide::{DataFormat, MZFlush};
use websocket_app::protocol::deflate::{negotiate, DeflateConfig, Deflater, Inflater};
use websocket_app::protocol::frame::Opcode;

/// A ~1 KB dashboard update: a server's counters and a few series, the kind
/// of JSON a live dashboard receives every second.
fn dashboard_json() -> Vec<u8> {
    let shards: Vec<String> = (0..8)
        .map(|i| {
            format!(
                r#"{{"id":{i},"connections":{},"messagesIn":{},"messagesOut":{},"p50Ms":{}.{},"p99Ms":{}.{}}}"#,
                12_000 + i * 317,
                480 + i * 13,
                9_100 + i * 211,
                i % 3,
                i * 7 % 10,
                4 + i % 5,
                i * 3 % 10
            )
        })
        .collect();
    let json = format!(
        r#"{{"type":"stats","serverId":"ws-eu-west-1a-07","timestamp":"2026-11-28T17:00:00.123Z","uptimeSecs":864213,"shards":[{}],"totals":{{"connections":75951,"messagesIn":2988,"messagesOut":56046,"errors":0,"slowConsumers":2}},"redis":{{"connected":true,"roundTripMs":0.41,"pending":0}}}}"#,
        shards.join(",")
    );
    assert!((900..1300).contains(&json.len()), "{} bytes", json.len());
    json.into_bytes()
}

/// flate2 (zlib-rs): reset, compress with a sync flush.
fn zlib_rs(z: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> usize {
    z.reset();
    out.clear();
    z.compress_vec(input, out, FlushCompress::Sync).unwrap();
    out.len()
}

/// miniz_oxide directly (what flate2's default backend calls): the same.
fn miniz(z: &mut CompressorOxide, input: &[u8], out: &mut [u8]) -> usize {
    z.reset();
    let r = miniz_oxide::deflate::stream::deflate(z, input, out, MZFlush::Sync);
    assert_eq!(r.bytes_consumed, input.len());
    r.bytes_written
}

fn miniz_compressor(level: u8) -> CompressorOxide {
    let mut z = CompressorOxide::default();
    z.set_format_and_level(DataFormat::Raw, level);
    z
}

fn compress(c: &mut Criterion) {
    let json = dashboard_json();
    let mut group = c.benchmark_group("deflate_1k_json");
    group.throughput(Throughput::Bytes(json.len() as u64));
    let mut out = Vec::with_capacity(4096);
    let mut buf = vec![0u8; 4096];
    // The floor: no context takeover means a reset per message, which
    // clears the match-finder's hash table (128 KiB in zlib-rs).
    let mut z = Compress::new(Compression::new(6), false);
    group.bench_function("zlib-rs_reset_only", |b| b.iter(|| z.reset()));
    let mut m = miniz_compressor(6);
    group.bench_function("miniz_oxide_reset_only", |b| b.iter(|| m.reset()));
    for level in [1u8, 2, 6, 9] {
        let mut z = Compress::new(Compression::new(u32::from(level)), false);
        let mut m = miniz_compressor(level);
        eprintln!(
            "deflate_1k_json level {level}: {} bytes -> zlib-rs {} / miniz_oxide {} (with the 4-byte tail)",
            json.len(),
            zlib_rs(&mut z, &json, &mut out),
            miniz(&mut m, &json, &mut buf)
        );
        group.bench_function(format!("zlib-rs_level_{level}"), |b| {
            b.iter(|| zlib_rs(&mut z, black_box(&json), &mut out))
        });
        group.bench_function(format!("miniz_oxide_level_{level}"), |b| {
            b.iter(|| miniz(&mut m, black_box(&json), &mut buf))
        });
    }
    // What the shard calls: compressed frame, header and all.
    let agreement = negotiate(b"permessage-deflate").unwrap();
    for level in [1, 6] {
        let mut d = Deflater::new(DeflateConfig {
            min_bytes: 0,
            level,
        });
        group.bench_function(format!("compress_frame_level_{level}"), |b| {
            b.iter(|| d.compress_frame(Opcode::Text, black_box(&json), agreement))
        });
    }
    group.finish();
}

fn inflate(c: &mut Criterion) {
    let json = dashboard_json();
    let mut z = Compress::new(Compression::new(6), false);
    let mut compressed = Vec::with_capacity(4096);
    zlib_rs(&mut z, &json, &mut compressed);
    let mut group = c.benchmark_group("inflate_1k_json");
    group.throughput(Throughput::Bytes(json.len() as u64));
    let mut inflater = Inflater::new();
    let mut out = Vec::new();
    // Our Inflater takes the message without its tail (as a client sends it).
    let message = &compressed[..compressed.len() - 4];
    group.bench_function("zlib-rs_inflater", |b| {
        b.iter(|| {
            inflater
                .inflate(black_box(message), 65_536, &mut out)
                .unwrap()
        })
    });
    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let mut buf = vec![0u8; 4096];
    group.bench_function("miniz_oxide", |b| {
        b.iter(|| {
            state.reset_as(MinReset);
            let r = miniz_oxide::inflate::stream::inflate(
                &mut state,
                black_box(&compressed),
                &mut buf,
                MZFlush::Sync,
            );
            assert_eq!(r.bytes_written, json.len());
        })
    });
    group.finish();
}

criterion_group!(benches, compress, inflate);
criterion_main!(benches);
