//! Arbitrary client bytes through the frame decoder, whole and in chunks.
//!
//! The decoder must never panic, never yield a message over the limit, and
//! see the same thing however the bytes are split across reads: the same
//! messages in the same order, and the same verdict (except that a text
//! frame still arriving may be refused early, with 1007, for its UTF-8).
//!
//! With permessage-deflate negotiated, RSV1 messages come out as
//! `Compressed` (never checked as UTF-8), and only then.
//!
//! Layout: byte 0 picks the size limit (bits 0-1) and whether deflate was
//! negotiated (bit 2), bytes 1..4 the chunk sizes (cycled), the rest is the
//! stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use websocket_app::protocol::frame::{FrameDecoder, ProtocolViolation, WsMessage};

/// An owned copy of a message, to compare runs.
#[derive(Debug, PartialEq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
    Compressed(bool, Vec<u8>),
}

/// Feeds `stream` in chunks of the given sizes (cycled); stops at the first error.
fn run(
    stream: &[u8],
    sizes: &[usize],
    max: usize,
    deflate: bool,
) -> (Vec<Got>, Result<(), ProtocolViolation>) {
    let mut decoder = FrameDecoder::new();
    let mut out = Vec::new();
    let mut rest = stream;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        let mut buf = chunk.to_vec();
        let r = decoder.feed(&mut buf, max, deflate, |m| {
            out.push(check(m, max, deflate));
            true
        });
        if r.is_err() {
            assert!(decoder.is_idle(), "reset after an error");
            return (out, r);
        }
    }
    (out, Ok(()))
}

/// Checks a message's invariants and copies it.
fn check(m: WsMessage<'_>, max: usize, deflate: bool) -> Got {
    match m {
        WsMessage::Text(t) => {
            assert!(t.len() <= max);
            Got::Text(t.into())
        }
        WsMessage::Binary(b) => {
            assert!(b.len() <= max);
            Got::Binary(b.into())
        }
        WsMessage::Ping(p) => {
            assert!(p.len() <= 125);
            Got::Ping(p.into())
        }
        WsMessage::Pong(p) => {
            assert!(p.len() <= 125);
            Got::Pong(p.into())
        }
        WsMessage::Close(c) => Got::Close(c.map(|c| {
            assert!((1000..5000).contains(&c.code));
            (c.code, c.reason.into())
        })),
        WsMessage::Compressed { text, data } => {
            assert!(deflate, "compressed only when negotiated");
            assert!(data.len() <= max);
            Got::Compressed(text, data.into())
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[limit, a, b, c], stream)) = data.split_first_chunk::<4>() else {
        return;
    };
    let max = [0, 1, 125, 4096][usize::from(limit & 3)];
    let deflate = limit & 4 != 0;
    let sizes = [a, b, c].map(|s| usize::from(s % 32) + 1);
    let (whole, whole_result) = run(stream, &[usize::MAX], max, deflate);
    let (chunked, chunked_result) = run(stream, &sizes, max, deflate);
    if let Err(v) = whole_result {
        assert!(matches!(v.code, 1002 | 1007 | 1009), "{v}");
    }
    assert_eq!(whole, chunked, "same messages whatever the split");
    match (whole_result, chunked_result) {
        (Ok(()), Err(v)) => assert_eq!(v.code, 1007, "only UTF-8 fails early"),
        (w, c) => assert_eq!(w, c, "same verdict whatever the split"),
    }
});
