//! Compressing frames and inflating messages: round trips through an
//! independent decoder, window sizes, thresholds, bounds and bad input.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::compress::SYNC_TAIL;
use super::*;
use crate::protocol::frame::{unmask, FrameDecoder, Opcode, WsMessage};

/// Dashboard-like JSON of about `n` bytes.
fn json(n: usize) -> Vec<u8> {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < n {
        s.push_str(&format!(
            r#"{{"id":{i},"name":"sensor-{i}","value":{}.{},"status":"ok"}},"#,
            i * 37 % 1000,
            i % 10
        ));
        i += 1;
    }
    s.pop();
    s.push(']');
    s.into_bytes()
}

/// Text with repeats more than 512 bytes apart (needs a big window).
fn far_repeats() -> Vec<u8> {
    let block: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
    [block.clone(), block].concat()
}

fn agreement(bits: u8) -> Agreement {
    let offer = format!("permessage-deflate; server_max_window_bits={bits}");
    negotiate(offer.as_bytes()).expect("acceptable")
}

/// Splits a server frame into (first byte, payload).
fn split_frame(frame: &[u8]) -> (u8, &[u8]) {
    let (len, at) = match frame[1] {
        126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
        127 => (
            u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    assert_eq!(frame.len(), at + len, "one whole frame");
    (frame[0], &frame[at..])
}

/// Inflates like a client with a `bits` window: a fresh raw inflater fed
/// small output buffers, so that a distance past its window is an error
/// (with one big buffer zlib would quietly reach back into the output).
fn client_inflate(payload: &[u8], bits: u8) -> Result<Vec<u8>, flate2::DecompressError> {
    let mut d = Decompress::new_with_window_bits(false, bits);
    let input = [payload, &SYNC_TAIL].concat();
    let mut out = Vec::new();
    let mut chunk = [0u8; 64];
    loop {
        let (before_in, before_out) = (d.total_in(), d.total_out());
        d.decompress(
            &input[before_in as usize..],
            &mut chunk,
            FlushDecompress::Sync,
        )?;
        let made = (d.total_out() - before_out) as usize;
        out.extend_from_slice(&chunk[..made]);
        let all_in = d.total_in() as usize == input.len();
        if (all_in && made < chunk.len()) || (made == 0 && d.total_in() == before_in) {
            break;
        }
    }
    Ok(out)
}

/// Bytes that do not compress (xorshift).
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// What a client with context takeover would send: `n` messages from one stream.
fn stream_messages(messages: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut c = Compress::new(Compression::new(6), false);
    messages
        .iter()
        .map(|m| {
            let mut out = Vec::with_capacity(m.len() + 64);
            c.compress_vec(m, &mut out, FlushCompress::Sync).unwrap();
            assert!(out.ends_with(&SYNC_TAIL));
            out.truncate(out.len() - 4);
            out
        })
        .collect()
}

fn deflater(min_bytes: usize) -> Deflater {
    Deflater::new(DeflateConfig {
        min_bytes,
        level: DeflateConfig::DEFAULT_LEVEL,
    })
}

#[test]
fn frames_round_trip_through_an_independent_client_at_every_window() {
    let mut d = deflater(0);
    for data in [json(1000), json(70_000), far_repeats()] {
        for bits in 9..=15 {
            let frame = d
                .compress_frame(Opcode::Text, &data, agreement(bits))
                .expect("compressible");
            let (first, payload) = split_frame(&frame);
            assert_eq!(first, 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
            assert!(payload.len() < data.len());
            assert!(!payload.ends_with(&SYNC_TAIL), "tail removed");
            let inflated = client_inflate(payload, bits).expect("decodable with the agreed window");
            assert_eq!(inflated, data, "{bits} bits");
        }
    }
}

#[test]
fn a_smaller_window_is_really_used() {
    let data = far_repeats();
    let mut d = deflater(0);
    let wide = d
        .compress_frame(Opcode::Binary, &data, agreement(15))
        .unwrap();
    let narrow = d
        .compress_frame(Opcode::Binary, &data, agreement(9))
        .unwrap();
    assert_eq!(split_frame(&wide).0, 0xc2, "FIN, RSV1, binary");
    assert!(narrow.len() > wide.len(), "9 bits cannot reach the repeat");
    // What the client would decode with: its own window. (zlib-rs's inflater
    // is lenient about distances past a small window, so it cannot show
    // the failure a browser's zlib would report; the size difference above
    // shows the 9-bit stream never reaches 2000 bytes back.)
    assert_eq!(client_inflate(split_frame(&narrow).1, 9).unwrap(), data);
}

#[test]
fn each_message_stands_alone() {
    let (a, b) = (json(2000), json(2100));
    let mut d = deflater(0);
    let fa = d.compress_frame(Opcode::Text, &a, agreement(15)).unwrap();
    let fb = d.compress_frame(Opcode::Text, &b, agreement(15)).unwrap();
    // A fresh decoder per message: nothing refers to the previous one.
    assert_eq!(client_inflate(split_frame(&fb).1, 15).unwrap(), b);
    assert_eq!(client_inflate(split_frame(&fa).1, 15).unwrap(), a);
    let again = d.compress_frame(Opcode::Text, &a, agreement(15)).unwrap();
    assert_eq!(again, fa, "same input, same frame: reset leaves no trace");
}

#[test]
fn small_incompressible_and_control_payloads_stay_plain() {
    let mut d = deflater(256);
    assert_eq!(
        d.compress_frame(Opcode::Text, &json(255)[..255], agreement(15)),
        None
    );
    assert!(d
        .compress_frame(Opcode::Text, &json(256)[..256], agreement(15))
        .is_some());
    assert_eq!(
        d.compress_frame(Opcode::Binary, &noise(4096), agreement(15)),
        None
    );
    for op in [Opcode::Ping, Opcode::Pong, Opcode::Close] {
        assert_eq!(d.compress_frame(op, &json(300), agreement(15)), None);
    }
    let mut zero = deflater(0);
    assert_eq!(
        zero.compress_frame(Opcode::Text, b"", agreement(15)),
        None,
        "not smaller"
    );
}

#[test]
fn inflate_round_trips_and_reuses_the_callers_buffer() {
    let mut d = deflater(0);
    let mut inflater = Inflater::new();
    let mut out = vec![b'x'; 100_000];
    for data in [json(300), json(100_000), far_repeats(), json(5000)] {
        let frame = d
            .compress_frame(Opcode::Text, &data, agreement(15))
            .unwrap();
        inflater
            .inflate(split_frame(&frame).1, data.len(), &mut out)
            .expect("fits exactly");
        assert_eq!(out, data);
    }
    // RFC 7692 §7.2.3.6: an empty message may be sent as one 0x00 byte.
    inflater.inflate(&[0x00], 10, &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn past_the_bound_is_too_big_without_inflating_the_rest() {
    let mut inflater = Inflater::new();
    let data = json(10_000);
    let payload = &stream_messages(&[&data])[0];
    let mut out = Vec::new();
    assert_eq!(
        inflater.inflate(payload, 9_999, &mut out),
        Err(InflateError::TooBig)
    );
    // A zip bomb: 64 MiB of zeros in ~64 KiB, refused at a 64 KiB bound.
    let zeros = vec![0u8; 64 << 20];
    let bomb = &stream_messages(&[&zeros])[0];
    assert!(bomb.len() < 128 << 10);
    let mut out = Vec::new();
    assert_eq!(
        inflater.inflate(bomb, 65_536, &mut out),
        Err(InflateError::TooBig)
    );
    assert!(out.capacity() <= 65_537, "grew to {}", out.capacity());
    assert!(
        inflater.total_in_for_tests() < bomb.len() as u64 / 100,
        "stopped early"
    );
    // The inflater is usable again.
    inflater.inflate(payload, data.len(), &mut out).unwrap();
    assert_eq!(out, data);
}

#[test]
fn corrupt_streams_and_context_takeover_are_refused() {
    let mut inflater = Inflater::new();
    let mut out = Vec::new();
    assert_eq!(
        inflater.inflate(&[0xff; 16], 1000, &mut out),
        Err(InflateError::Corrupt)
    );
    // The second message of a stream that kept its window refers to the first.
    let m = json(3000);
    let msgs = stream_messages(&[&m, &m]);
    assert!(msgs[1].len() < msgs[0].len() / 4, "it does refer back");
    inflater.inflate(&msgs[0], 10_000, &mut out).unwrap();
    assert_eq!(
        inflater.inflate(&msgs[1], 10_000, &mut out),
        Err(InflateError::Corrupt)
    );
}

#[test]
fn a_final_block_ends_the_message() {
    let data = json(2000);
    let mut c = Compress::new(Compression::new(6), false);
    let mut finished = Vec::with_capacity(4096);
    c.compress_vec(&data, &mut finished, FlushCompress::Finish)
        .unwrap();
    let mut inflater = Inflater::new();
    let mut out = Vec::new();
    inflater.inflate(&finished, data.len(), &mut out).unwrap();
    assert_eq!(out, data);
    finished.extend_from_slice(b"junk");
    let r = inflater.inflate(&finished, data.len(), &mut out);
    assert_eq!(r, Err(InflateError::Corrupt));
}

#[test]
fn inflate_message_checks_utf8_after_inflating() {
    let mut d = deflater(0);
    let mut inflater = Inflater::new();
    let mut out = Vec::new();
    let text = "héllo wörld ".repeat(100);
    let frame = d
        .compress_frame(Opcode::Text, text.as_bytes(), agreement(15))
        .unwrap();
    let payload = split_frame(&frame).1;
    let got = inflater.inflate_message(true, payload, 5000, &mut out);
    assert_eq!(got, Ok(WsMessage::Text(&text)));
    let bad = [b"ok ".repeat(200), vec![0xff]].concat();
    let frame = d
        .compress_frame(Opcode::Binary, &bad, agreement(15))
        .unwrap();
    let payload = split_frame(&frame).1.to_vec();
    let code = |r: Result<WsMessage<'_>, _>| {
        r.map(drop)
            .map_err(|v: crate::protocol::frame::ProtocolViolation| v.code)
    };
    assert_eq!(
        code(inflater.inflate_message(true, &payload, 5000, &mut out)),
        Err(1007)
    );
    assert_eq!(
        code(inflater.inflate_message(false, &payload, 5000, &mut out)),
        Ok(())
    );
    assert_eq!(
        code(inflater.inflate_message(false, &payload, 100, &mut out)),
        Err(1009)
    );
    assert_eq!(
        code(inflater.inflate_message(false, &[0xff; 8], 100, &mut out)),
        Err(1007)
    );
}

#[test]
fn a_server_frame_sent_back_by_a_client_decodes_and_inflates() {
    let data = json(20_000);
    let frame = deflater(0)
        .compress_frame(Opcode::Text, &data, agreement(15))
        .unwrap();
    // What a client echoing it sends: the same frame, masked, split in two.
    let (first, payload) = split_frame(&frame);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut wire = vec![first, 0x80 | 126];
    wire.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    wire.extend_from_slice(&mask);
    let start = wire.len();
    wire.extend_from_slice(payload);
    unmask(&mut wire[start..], mask);
    let (a, b) = wire.split_at_mut(start + 100);
    let mut decoder = FrameDecoder::new();
    let mut inflater = Inflater::new();
    let mut out = Vec::new();
    let mut got = None;
    for chunk in [a, b] {
        decoder
            .feed(chunk, 65_536, true, |m| {
                let WsMessage::Compressed { text, data } = m else {
                    panic!("expected a compressed message, got {m:?}");
                };
                got = inflater
                    .inflate_message(text, data, 65_536, &mut out)
                    .map(|m| matches!(m, WsMessage::Text(_)))
                    .ok();
                true
            })
            .unwrap();
    }
    assert_eq!(got, Some(true));
    assert_eq!(out, data);
}

#[test]
fn a_queued_plain_frame_gets_its_compressed_twin() {
    use crate::protocol::frame::{close_frame, encode_frame, text_frame_with};
    let mut d = deflater(0);
    let a = agreement(15);
    for n in [300, 70_000] {
        let data = json(n);
        let plain = text_frame_with(|out| out.extend_from_slice(&data));
        let twin = d.compress_plain_frame(&plain, a).expect("a text frame");
        assert_eq!(twin, d.compress_frame(Opcode::Text, &data, a).unwrap());
        let binary = encode_frame(Opcode::Binary, &data);
        let twin = d.compress_plain_frame(&binary, a).expect("a binary frame");
        assert_eq!(split_frame(&twin).0, 0xc2);
        // Cut short, or not a frame we make: refused, never a panic.
        assert_eq!(d.compress_plain_frame(&plain[..plain.len() - 1], a), None);
        assert_eq!(d.compress_plain_frame(&plain[..3], a), None);
    }
    assert_eq!(
        d.compress_plain_frame(&close_frame(1000, &"x".repeat(100)), a),
        None
    );
    assert_eq!(d.compress_plain_frame(&[0x81], a), None);
    assert_eq!(d.compress_plain_frame(&[], a), None);
    let mut masked = encode_frame(Opcode::Text, &json(300)).to_vec();
    masked[1] |= 0x80;
    assert_eq!(d.compress_plain_frame(&masked, a), None);
}

#[test]
fn the_echo_path_compresses_every_data_message() {
    let mut d = deflater(256);
    for payload in [Vec::new(), b"tiny".to_vec(), noise(70_000), json(2000)] {
        let frame = d
            .compress_frame_always(Opcode::Binary, &payload, agreement(9))
            .expect("always compressed");
        let (first, body) = split_frame(&frame);
        assert_eq!(first, 0xC2, "FIN, RSV1, binary");
        assert!(body.len() <= payload.len() + payload.len() / 128 + 64);
        assert_eq!(client_inflate(body, 9).unwrap(), payload);
    }
    assert!(d
        .compress_frame_always(Opcode::Ping, b"x", agreement(15))
        .is_none());
}
