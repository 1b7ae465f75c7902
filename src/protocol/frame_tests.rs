use super::*;

/// A masked client frame.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[derive(Debug, PartialEq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<(u16, String)>),
}

fn feed_all(
    d: &mut FrameDecoder,
    chunks: &[&[u8]],
    max: usize,
) -> (Vec<Got>, Result<(), ProtocolViolation>) {
    let mut got = Vec::new();
    for chunk in chunks {
        let mut buf = chunk.to_vec();
        let r = d.feed(&mut buf, max, |m| {
            got.push(match m {
                WsMessage::Text(t) => Got::Text(t.into()),
                WsMessage::Binary(b) => Got::Binary(b.into()),
                WsMessage::Ping(p) => Got::Ping(p.into()),
                WsMessage::Pong(_) => Got::Pong,
                WsMessage::Close(c) => Got::Close(c.map(|c| (c.code, c.reason.into()))),
            });
            true
        });
        if r.is_err() {
            return (got, r);
        }
    }
    (got, Ok(()))
}

fn code_of(bytes: &[u8], max: usize) -> u16 {
    let (_, r) = feed_all(&mut FrameDecoder::new(), &[bytes], max);
    r.expect_err("should be refused").code
}

#[test]
fn single_text_frame() {
    let f = client_frame(true, 1, b"hello");
    let (got, r) = feed_all(&mut FrameDecoder::new(), &[&f], 1024);
    assert!(r.is_ok());
    assert_eq!(got, vec![Got::Text("hello".into())]);
}

#[test]
fn lengths_of_16_and_64_bits() {
    for n in [125usize, 126, 65_535, 65_536, 70_000] {
        let payload = vec![b'a'; n];
        let f = client_frame(true, 1, &payload);
        let mut d = FrameDecoder::new();
        let (got, r) = feed_all(&mut d, &[&f], 1 << 20);
        assert!(r.is_ok(), "{n}");
        assert_eq!(got, vec![Got::Text("a".repeat(n))]);
        assert!(d.is_idle());
    }
}

#[test]
fn every_split_point_gives_the_same_messages() {
    let mut stream = client_frame(false, 1, "héllo ".as_bytes());
    stream.extend(client_frame(true, 9, b"p"));
    stream.extend(client_frame(true, 0, "wörld".as_bytes()));
    stream.extend(client_frame(true, 2, &[1, 2, 3]));
    let expected = vec![
        Got::Ping(b"p".to_vec()),
        Got::Text("héllo wörld".into()),
        Got::Binary(vec![1, 2, 3]),
    ];
    for split in 0..=stream.len() {
        let mut d = FrameDecoder::new();
        let (got, r) = feed_all(&mut d, &[&stream[..split], &stream[split..]], 1024);
        assert!(r.is_ok(), "split {split}");
        assert_eq!(got, expected, "split {split}");
        assert!(d.is_idle(), "split {split}");
    }
    // And byte by byte.
    let chunks: Vec<&[u8]> = stream.chunks(1).collect();
    let (got, r) = feed_all(&mut FrameDecoder::new(), &chunks, 1024);
    assert!(r.is_ok());
    assert_eq!(got, expected);
}

#[test]
fn violations_and_their_codes() {
    let mut unmasked = client_frame(true, 1, b"x");
    unmasked[1] &= 0x7f;
    unmasked.drain(2..6);
    assert_eq!(code_of(&unmasked, 1024), 1002);
    let mut rsv = client_frame(true, 1, b"x");
    rsv[0] |= 0x40;
    assert_eq!(code_of(&rsv, 1024), 1002);
    assert_eq!(
        code_of(&client_frame(true, 3, b"x"), 1024),
        1002,
        "reserved data opcode"
    );
    assert_eq!(
        code_of(&client_frame(true, 11, b"x"), 1024),
        1002,
        "reserved control opcode"
    );
    assert_eq!(
        code_of(&client_frame(false, 9, b"x"), 1024),
        1002,
        "fragmented ping"
    );
    assert_eq!(
        code_of(&client_frame(true, 9, &[0; 126]), 1024),
        1002,
        "ping too long"
    );
    assert_eq!(
        code_of(&client_frame(true, 0, b"x"), 1024),
        1002,
        "continuation without start"
    );
    let mut two_starts = client_frame(false, 1, b"a");
    two_starts.extend(client_frame(true, 1, b"b"));
    assert_eq!(code_of(&two_starts, 1024), 1002);
    assert_eq!(
        code_of(&client_frame(true, 8, &[3]), 1024),
        1002,
        "one-byte close"
    );
    assert_eq!(
        code_of(&client_frame(true, 8, &1005u16.to_be_bytes()), 1024),
        1002,
        "1005 on the wire"
    );
    assert_eq!(
        code_of(&client_frame(true, 8, &999u16.to_be_bytes()), 1024),
        1002
    );
    assert_eq!(
        code_of(&client_frame(true, 8, &2000u16.to_be_bytes()), 1024),
        1002
    );
    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.push(0xff);
    assert_eq!(code_of(&client_frame(true, 8, &bad_reason), 1024), 1007);
    assert_eq!(code_of(&client_frame(true, 1, &[0xff]), 1024), 1007);
}

#[test]
fn valid_close_codes_pass() {
    for code in [1000u16, 1001, 1003, 1011, 3000, 4999] {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(b"bye");
        let (got, r) = feed_all(&mut FrameDecoder::new(), &[&client_frame(true, 8, &p)], 10);
        assert!(r.is_ok(), "{code}");
        assert_eq!(got, vec![Got::Close(Some((code, "bye".into())))]);
    }
}

#[test]
fn invalid_utf8_fails_fast_across_fragments() {
    // The first fragment is already invalid: refused before the message ends.
    let f = client_frame(false, 1, &[b'a', 0xc0, b'b']);
    assert_eq!(code_of(&f, 1024), 1007);
    // A code point split between fragments is fine.
    let euro = "€".as_bytes();
    let mut s = client_frame(false, 1, &euro[..1]);
    s.extend(client_frame(true, 0, &euro[1..]));
    let (got, r) = feed_all(&mut FrameDecoder::new(), &[&s], 1024);
    assert!(r.is_ok());
    assert_eq!(got, vec![Got::Text("€".into())]);
}

#[test]
fn oversize_is_refused_from_the_header_before_buffering() {
    let f = client_frame(true, 1, &[b'a'; 2000]);
    let mut d = FrameDecoder::new();
    // Only the header arrives: the refusal needs no payload.
    let (_, r) = feed_all(&mut d, &[&f[..8]], 1000);
    assert_eq!(r.unwrap_err().code, 1009);
    let mut frag = client_frame(false, 1, &[b'a'; 600]);
    frag.extend(client_frame(true, 0, &[b'a'; 600]));
    assert_eq!(code_of(&frag, 1000), 1009);
}

#[test]
fn stop_requested_by_the_callback() {
    let mut s = client_frame(true, 1, b"a");
    s.extend(client_frame(true, 1, b"b"));
    let mut seen = 0;
    let r = FrameDecoder::new().feed(&mut s, 100, |_| {
        seen += 1;
        false
    });
    assert!(r.is_ok());
    assert_eq!(seen, 1);
}

#[test]
fn decoder_is_one_pointer_and_idle_after_messages() {
    assert!(std::mem::size_of::<FrameDecoder>() <= 16);
    let mut d = FrameDecoder::new();
    let f = client_frame(true, 1, b"abc");
    let (_, r) = feed_all(&mut d, &[&f[..3]], 100);
    assert!(r.is_ok());
    assert!(!d.is_idle(), "holds the partial frame");
    let (_, r) = feed_all(&mut d, &[&f[3..]], 100);
    assert!(r.is_ok());
    assert!(d.is_idle());
}

#[test]
fn encoder_output_round_trips_through_the_decoder() {
    for n in [0usize, 5, 125, 126, 300, 70_000] {
        let payload = "z".repeat(n);
        let frame = text_frame_with(|out| out.extend_from_slice(payload.as_bytes()));
        // Mask it like a client would.
        let mut masked = client_frame(true, 1, payload.as_bytes());
        assert_eq!(frame[0], 0x81);
        assert_eq!(frame.len() + 4, masked.len(), "{n}");
        let (got, r) = feed_all(&mut FrameDecoder::new(), &[&mut masked[..]], 1 << 20);
        assert!(r.is_ok());
        assert_eq!(got, vec![Got::Text(payload)]);
    }
}

#[test]
fn close_reason_is_truncated_on_a_char_boundary() {
    let f = close_frame(4008, &"é".repeat(100));
    let len = (f[1] & 0x7f) as usize;
    assert!(len <= 125);
    assert_eq!(&f[2..4], &4008u16.to_be_bytes());
    assert!(std::str::from_utf8(&f[4..]).is_ok());
}

#[test]
fn fast_unmask_matches_the_naive_one() {
    let mask = [0xa1, 0xb2, 0xc3, 0xd4];
    for n in 0..40 {
        let data: Vec<u8> = (0..n as u8).collect();
        let mut fast = data.clone();
        unmask(&mut fast, mask);
        let naive: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(fast, naive, "{n}");
    }
}
