use super::*;

/// A client frame (masked unless `mask` is `None`).
pub(super) fn frame_with(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n <= 0xffff => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let mask = mask.unwrap_or_default();
    if mask != [0; 4] {
        out.extend_from_slice(&mask);
    }
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

pub(super) fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(fin, opcode, payload, Some([0x11, 0x22, 0x33, 0x44]))
}

/// An owned copy of a message, to compare.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
    /// (text, compressed bytes)
    Compressed(bool, Vec<u8>),
}

pub(super) fn got(m: WsMessage<'_>) -> Got {
    match m {
        WsMessage::Text(t) => Got::Text(t.into()),
        WsMessage::Binary(b) => Got::Binary(b.into()),
        WsMessage::Ping(p) => Got::Ping(p.into()),
        WsMessage::Pong(p) => Got::Pong(p.into()),
        WsMessage::Close(c) => Got::Close(c.map(|c| (c.code, c.reason.into()))),
        WsMessage::Compressed { text, data } => Got::Compressed(text, data.into()),
    }
}

/// Feeds each chunk in turn; stops at the first error.
fn feed_all(
    d: &mut FrameDecoder,
    chunks: &[&[u8]],
    max: usize,
) -> (Vec<Got>, Result<(), ProtocolViolation>) {
    feed_all_with(d, chunks, max, false)
}

/// [`feed_all`] with permessage-deflate negotiated or not.
pub(super) fn feed_all_with(
    d: &mut FrameDecoder,
    chunks: &[&[u8]],
    max: usize,
    deflate: bool,
) -> (Vec<Got>, Result<(), ProtocolViolation>) {
    let mut out = Vec::new();
    for chunk in chunks {
        let r = d.feed(&mut chunk.to_vec(), max, deflate, |m| {
            out.push(got(m));
            true
        });
        if r.is_err() {
            return (out, r);
        }
    }
    (out, Ok(()))
}

fn code_of(bytes: &[u8], max: usize) -> u16 {
    let (_, r) = feed_all(&mut FrameDecoder::new(), &[bytes], max);
    r.expect_err("should be refused").code
}

#[test]
fn decoder_is_small_and_starts_idle() {
    assert!(std::mem::size_of::<FrameDecoder>() <= 16);
    assert!(FrameDecoder::new().is_idle());
}

#[test]
fn single_text_frame_with_any_mask() {
    for mask in [[0x11, 0x22, 0x33, 0x44], [0xff; 4], [0, 0, 0, 1]] {
        let f = frame_with(true, 1, "héllo, wörld!".as_bytes(), Some(mask));
        let (out, r) = feed_all(&mut FrameDecoder::new(), &[&f], 1024);
        assert_eq!(r, Ok(()));
        assert_eq!(out, vec![Got::Text("héllo, wörld!".into())]);
    }
    let unmasked = frame_with(true, 1, b"hello", None);
    assert_eq!(code_of(&unmasked, 1024), 1002);
}

#[test]
fn lengths_of_7_16_and_64_bits() {
    for n in [0usize, 125, 126, 65_535, 65_536, 70_000] {
        let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
        let mut d = FrameDecoder::new();
        let (out, r) = feed_all(&mut d, &[&frame(true, 2, &payload)], 1 << 20);
        assert_eq!(r, Ok(()), "{n}");
        assert_eq!(out, vec![Got::Binary(payload)], "{n}");
        assert!(d.is_idle());
    }
}

/// A fragmented text message with pings between its fragments, then more.
fn busy_stream() -> (Vec<u8>, Vec<Got>) {
    let mut s = frame(false, 1, "héllo ".as_bytes());
    s.extend(frame(true, 9, b"p1"));
    s.extend(frame(false, 0, &"€".as_bytes()[..2]));
    s.extend(frame(true, 10, b""));
    s.extend(frame(true, 0, &"€ wörld".as_bytes()[2..]));
    s.extend(frame(true, 2, &[1, 2, 3]));
    s.extend(frame(true, 1, b""));
    s.extend(frame(true, 8, b"\x03\xe8bye"));
    let expected = vec![
        Got::Ping(b"p1".to_vec()),
        Got::Pong(vec![]),
        Got::Text("héllo € wörld".into()),
        Got::Binary(vec![1, 2, 3]),
        Got::Text(String::new()),
        Got::Close(Some((1000, "bye".into()))),
    ];
    (s, expected)
}

#[test]
fn every_pair_of_split_points_gives_the_same_messages() {
    let (s, expected) = busy_stream();
    for i in 0..=s.len() {
        for j in i..=s.len() {
            let mut d = FrameDecoder::new();
            let (out, r) = feed_all(&mut d, &[&s[..i], &s[i..j], &s[j..]], 1024);
            assert_eq!(r, Ok(()), "split {i}/{j}");
            assert_eq!(out, expected, "split {i}/{j}");
            assert!(d.is_idle() && d.partial.is_none(), "split {i}/{j}");
        }
    }
}

#[test]
fn every_chunk_size_gives_the_same_messages() {
    let (s, expected) = busy_stream();
    for size in 1..=s.len() {
        let chunks: Vec<&[u8]> = s.chunks(size).collect();
        let mut d = FrameDecoder::new();
        assert_eq!(feed_all(&mut d, &chunks, 1024), (expected.clone(), Ok(())));
        assert!(d.is_idle(), "chunks of {size}");
    }
}

#[test]
fn interleaved_ping_is_delivered_before_the_message() {
    let mut s = frame(false, 1, b"ab");
    s.extend(frame(true, 9, b"ping!"));
    s.extend(frame(true, 0, b"cd"));
    let (out, r) = feed_all(&mut FrameDecoder::new(), &[&s], 1024);
    assert_eq!(r, Ok(()));
    assert_eq!(
        out,
        vec![Got::Ping(b"ping!".to_vec()), Got::Text("abcd".into())]
    );
}

#[test]
fn violations_and_their_codes() {
    let mut rsv = frame(true, 1, b"x");
    rsv[0] |= 0x40;
    let mut two_starts = frame(false, 1, b"a");
    two_starts.extend(frame(true, 2, b"b"));
    let cases: [(&str, Vec<u8>, u16); 13] = [
        ("reserved bit", rsv, 1002),
        ("reserved data opcode", frame(true, 3, b"x"), 1002),
        ("reserved control opcode", frame(true, 11, b"x"), 1002),
        ("fragmented ping", frame(false, 9, b"x"), 1002),
        ("ping too long", frame(true, 9, &[0; 126]), 1002),
        ("continuation without start", frame(true, 0, b"x"), 1002),
        ("new message inside one", two_starts, 1002),
        ("one-byte close", frame(true, 8, &[3]), 1002),
        ("close 1005", frame(true, 8, &1005u16.to_be_bytes()), 1002),
        ("close 999", frame(true, 8, &999u16.to_be_bytes()), 1002),
        ("close 2999", frame(true, 8, &2999u16.to_be_bytes()), 1002),
        ("close reason", frame(true, 8, b"\x03\xe8\xff"), 1007),
        ("text", frame(true, 1, b"a\xffb"), 1007),
    ];
    for (what, bytes, code) in cases {
        assert_eq!(code_of(&bytes, 1024), code, "{what}");
    }
    for code in [0u16, 1004, 1006, 1015, 1016, 2000, 5000, u16::MAX] {
        assert_eq!(
            code_of(&frame(true, 8, &code.to_be_bytes()), 9),
            1002,
            "{code}"
        );
    }
}

#[test]
fn valid_close_codes_pass() {
    for code in [1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(b"bye");
        let (out, r) = feed_all(&mut FrameDecoder::new(), &[&frame(true, 8, &p)], 1);
        assert_eq!(r, Ok(()), "{code}");
        assert_eq!(out, vec![Got::Close(Some((code, "bye".into())))]);
    }
    let (out, _) = feed_all(&mut FrameDecoder::new(), &[&frame(true, 8, b"")], 1);
    assert_eq!(out, vec![Got::Close(None)]);
}

#[test]
fn invalid_utf8_fails_fast() {
    // Across fragments: refused on the second fragment, before the last.
    let mut s = frame(false, 1, "ok €".as_bytes());
    s.extend(frame(false, 0, b"\xc0\xaf"));
    let last = frame(true, 0, b"end");
    let mut d = FrameDecoder::new();
    let (_, r) = feed_all(&mut d, &[&s], 1024);
    assert_eq!(r.map_err(|v| v.code), Err(1007));
    // Inside one frame still arriving: refused before its end.
    let f = frame(true, 1, b"abc\xed\xa0\x80 and more to come");
    let (_, r) = feed_all(&mut FrameDecoder::new(), &[&f[..12]], 1024);
    assert_eq!(r.map_err(|v| v.code), Err(1007));
    // A code point split between fragments is fine, a truncated one is not.
    let euro = "€".as_bytes();
    let mut s = frame(false, 1, &euro[..1]);
    s.extend(frame(true, 0, &euro[1..]));
    let (out, r) = feed_all(&mut FrameDecoder::new(), &[&s], 1024);
    assert_eq!((out, r), (vec![Got::Text("€".into())], Ok(())));
    let mut s = frame(false, 1, &euro[..2]);
    s.extend(last);
    assert_eq!(code_of(&s, 1024), 1007);
}

#[test]
fn oversize_is_refused_from_the_header_before_buffering() {
    let f = frame(true, 1, &[b'a'; 2000]);
    let mut d = FrameDecoder::new();
    let (_, r) = feed_all(&mut d, &[&f[..8]], 1000);
    assert_eq!(r.map_err(|v| v.code), Err(1009));
    assert!(d.is_idle(), "reset after an error");
    let mut huge = frame(true, 2, b"");
    huge[1] = 0x80 | 127;
    huge.splice(2..2, u64::MAX.to_be_bytes());
    assert_eq!(code_of(&huge, usize::MAX), 1002, "top bit set");
    huge[2] = 0x7f;
    assert_eq!(code_of(&huge, 1 << 40), 1009);
    // Fragments: refused at the header that would cross the limit.
    let mut s = frame(false, 1, &[b'a'; 600]);
    s.extend(&frame(true, 0, &[b'a'; 600])[..8]);
    assert_eq!(code_of(&s, 1000), 1009);
    // Exactly the limit is fine, and the buffer never grew past it.
    let mut d = FrameDecoder::new();
    let s = [frame(false, 1, &[b'a'; 600]), frame(false, 0, &[b'b'; 400])].concat();
    assert_eq!(feed_all(&mut d, &[&s], 1000), (vec![], Ok(())));
    let p = d
        .partial
        .as_ref()
        .and_then(|p| p.message.as_ref())
        .expect("held");
    assert!(p.data.capacity() <= 1000);
    assert_eq!(code_of(&[s, frame(true, 0, b"!")].concat(), 1000), 1009);
}

#[test]
fn many_small_fragments_of_a_big_message() {
    let mut s = frame(false, 1, b"");
    for _ in 0..20_000 {
        s.extend(frame(false, 0, &[b'x'; 64]));
    }
    s.extend(frame(true, 0, b""));
    let (out, r) = feed_all(&mut FrameDecoder::new(), &[&s], 20_000 * 64);
    assert_eq!(r, Ok(()));
    assert_eq!(out, vec![Got::Text("x".repeat(20_000 * 64))]);
}

#[test]
fn stop_requested_by_the_callback() {
    let mut s = [frame(true, 1, b"a"), frame(false, 1, b"b")].concat();
    let mut seen = 0;
    let r = FrameDecoder::new().feed(&mut s, 100, false, |_| {
        seen += 1;
        false
    });
    assert_eq!((r, seen), (Ok(()), 1));
}

#[test]
fn idle_after_completion_and_boxed_only_in_between() {
    let mut d = FrameDecoder::new();
    let f = frame(true, 1, b"abc");
    assert_eq!(feed_all(&mut d, &[&f[..3]], 100).1, Ok(()));
    assert!(!d.is_idle(), "holds the split header");
    assert_eq!(feed_all(&mut d, &[&f[3..8]], 100).1, Ok(()));
    assert!(!d.is_idle(), "holds the frame in flight");
    assert_eq!(
        feed_all(&mut d, &[&f[8..]], 100).0,
        vec![Got::Text("abc".into())]
    );
    assert!(d.is_idle() && d.partial.is_none());
    let whole = [frame(true, 1, b"x"), frame(true, 9, b"")].concat();
    assert_eq!(feed_all(&mut d, &[&whole], 100).1, Ok(()));
    assert!(d.partial.is_none(), "whole frames never allocate");
}

#[test]
fn held_bytes_counts_the_partial_state_and_the_message_buffer() {
    let mut d = FrameDecoder::new();
    assert_eq!(d.held_bytes(), 0);
    let f = frame(true, 1, &[b'x'; 1000]);
    assert_eq!(feed_all(&mut d, &[&f[..3]], 4096).1, Ok(()));
    let state = d.held_bytes();
    assert!(
        state >= std::mem::size_of::<Partial>(),
        "split header: {state}"
    );
    assert_eq!(feed_all(&mut d, &[&f[3..600]], 4096).1, Ok(()));
    assert!(d.held_bytes() >= state + 592, "payload so far");
    assert!(d.held_bytes() <= state + 4096, "never past the limit");
    assert_eq!(feed_all(&mut d, &[&f[600..]], 4096).0.len(), 1);
    assert_eq!(d.held_bytes(), 0, "freed once the message completes");
}
