//! RSV1 and permessage-deflate in the decoder: where RSV1 is allowed, how a
//! compressed message is delivered, and that its bytes are not taken for text.

use super::tests::{feed_all_with, frame, Got};
use super::*;

/// `frame` with RSV1 set.
fn rsv1(mut f: Vec<u8>) -> Vec<u8> {
    f[0] |= 0x40;
    f
}

/// Invalid UTF-8 on purpose: compressed bytes are not text.
const NOT_UTF8: &[u8] = b"\xf2\x48\xcd\xc9\xc9\x07\x00\xff";

fn code_with(bytes: &[u8], max: usize, deflate: bool) -> u16 {
    let (_, r) = feed_all_with(&mut FrameDecoder::new(), &[bytes], max, deflate);
    r.expect_err("should be refused").code
}

#[test]
fn decoder_stays_one_pointer() {
    assert_eq!(
        std::mem::size_of::<FrameDecoder>(),
        std::mem::size_of::<usize>()
    );
}

#[test]
fn rsv1_marks_a_compressed_message_when_negotiated() {
    for (opcode, text) in [(1, true), (2, false)] {
        let f = rsv1(frame(true, opcode, NOT_UTF8));
        let (out, r) = feed_all_with(&mut FrameDecoder::new(), &[&f], 1024, true);
        assert_eq!(r, Ok(()));
        assert_eq!(out, vec![Got::Compressed(text, NOT_UTF8.to_vec())]);
        assert_eq!(code_with(&f, 1024, false), 1002, "not negotiated");
    }
}

#[test]
fn rsv1_anywhere_else_is_a_protocol_error() {
    let continuation = [rsv1(frame(false, 1, b"ab")), rsv1(frame(true, 0, b"cd"))].concat();
    let on_second_only = [frame(false, 1, b"ab"), rsv1(frame(true, 0, b"cd"))].concat();
    let mut rsv2 = frame(true, 1, b"x");
    rsv2[0] |= 0x20;
    let mut rsv3 = rsv1(frame(true, 2, b"x"));
    rsv3[0] |= 0x10;
    let cases = [
        ("RSV1 on a continuation", continuation),
        ("RSV1 on a later fragment", on_second_only),
        ("RSV1 on a ping", rsv1(frame(true, 9, b"p"))),
        ("RSV1 on a pong", rsv1(frame(true, 10, b""))),
        ("RSV1 on a close", rsv1(frame(true, 8, b"\x03\xe8"))),
        ("RSV2", rsv2),
        ("RSV3 with RSV1", rsv3),
    ];
    for (what, bytes) in cases {
        assert_eq!(code_with(&bytes, 1024, true), 1002, "{what}");
    }
}

/// A fragmented compressed text message (bytes that are not UTF-8, split
/// inside a would-be code point) with a ping between fragments, then an
/// uncompressed text and a compressed binary message.
fn compressed_stream() -> (Vec<u8>, Vec<Got>) {
    let mut s = rsv1(frame(false, 1, &NOT_UTF8[..3]));
    s.extend(frame(true, 9, b"p"));
    s.extend(frame(false, 0, &NOT_UTF8[3..5]));
    s.extend(frame(true, 0, &NOT_UTF8[5..]));
    s.extend(frame(true, 1, "plain €".as_bytes()));
    s.extend(rsv1(frame(true, 2, b"\x00")));
    let expected = vec![
        Got::Ping(b"p".to_vec()),
        Got::Compressed(true, NOT_UTF8.to_vec()),
        Got::Text("plain €".into()),
        Got::Compressed(false, vec![0]),
    ];
    (s, expected)
}

#[test]
fn fragmented_compressed_message_at_every_split() {
    let (s, expected) = compressed_stream();
    for i in 0..=s.len() {
        for j in i..=s.len() {
            let mut d = FrameDecoder::new();
            let r = feed_all_with(&mut d, &[&s[..i], &s[i..j], &s[j..]], 1024, true);
            assert_eq!(r, (expected.clone(), Ok(())), "split {i}/{j}");
            assert!(d.is_idle(), "split {i}/{j}");
        }
    }
}

#[test]
fn uncompressed_text_is_still_checked_early_when_negotiated() {
    // Refused on the first fragment, before the message ends.
    let f = frame(false, 1, b"ok\xc0\xaf");
    let (_, r) = feed_all_with(&mut FrameDecoder::new(), &[&f], 1024, true);
    assert_eq!(r.map_err(|v| v.code), Err(1007));
    assert_eq!(code_with(&frame(true, 1, NOT_UTF8), 1024, true), 1007);
}

#[test]
fn the_limit_applies_to_compressed_bytes_from_the_header() {
    let f = rsv1(frame(true, 1, &[0; 200]));
    assert_eq!(code_with(&f[..8], 100, true), 1009);
    let mut s = rsv1(frame(false, 2, &[0; 60]));
    s.extend(&frame(true, 0, &[0; 60])[..6]);
    assert_eq!(code_with(&s, 100, true), 1009);
    let (out, r) = feed_all_with(&mut FrameDecoder::new(), &[&f], 200, true);
    assert_eq!(
        (out, r),
        (vec![Got::Compressed(true, vec![0; 200])], Ok(()))
    );
}

#[test]
fn deflate_off_keeps_todays_behaviour() {
    let (s, _) = compressed_stream();
    assert_eq!(code_with(&s, 1024, false), 1002);
}
