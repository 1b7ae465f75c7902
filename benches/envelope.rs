//! The envelope's hot paths: parsing client messages and writing server ones.
//!
//! Every client frame is parsed once and every routed message written once
//! (the frame is then shared by all receivers), so these costs are paid per
//! message on a shard's thread.

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::value::RawValue;
use websocket_app::protocol::envelope::{
    parse_client_message, timestamp, write_ack, write_chat, AckStatus,
};

/// A ~200-byte payload of the shape a chat client sends.
const PAYLOAD: &str = r#"{"text":"hello there, are we still on for the review at three? I moved it to room 4","attachments":[],"replyTo":"m-1764000000-41","mentions":["bob","carol"],"v":2}"#;

fn chat_text() -> String {
    format!(
        r#"{{"type":"chat_message","receiverID":"bob@example","id":"m-1764000000-42","payload":{PAYLOAD}}}"#
    )
}

fn parse(c: &mut Criterion) {
    let chat = chat_text();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(chat.len() as u64));
    group.bench_function("chat_message", |b| {
        b.iter(|| parse_client_message(black_box(&chat)).is_ok())
    });
    let latency = r#"{"type":"latency_report","payload":12.375}"#;
    group.throughput(Throughput::Bytes(latency.len() as u64));
    group.bench_function("latency_report", |b| {
        b.iter(|| parse_client_message(black_box(latency)).is_ok())
    });
    group.finish();
}

fn write(c: &mut Criterion) {
    let payload = RawValue::from_string(PAYLOAD.to_owned()).expect("valid JSON");
    let ts = timestamp(UNIX_EPOCH + Duration::from_micros(1_795_882_117_123_456));
    let mut out = Vec::with_capacity(1024);
    let mut group = c.benchmark_group("write");
    group.bench_function("chat_message", |b| {
        b.iter(|| {
            out.clear();
            let id = black_box("m-1764000000-42");
            write_chat(&mut out, id, "alice", "bob@example", &payload, ts.as_str());
            out.len()
        })
    });
    group.bench_function("ack", |b| {
        b.iter(|| {
            out.clear();
            let status = AckStatus::Delivered {
                connections: black_box(2),
            };
            write_ack(&mut out, black_box("m-1764000000-42"), status, None);
            out.len()
        })
    });
    group.bench_function("timestamp", |b| {
        b.iter(|| {
            timestamp(black_box(
                UNIX_EPOCH + Duration::from_micros(1_795_882_117_123_456),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, parse, write);
criterion_main!(benches);
