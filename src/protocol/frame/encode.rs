//! Server frames, built once as [`Bytes`] (a broadcast's frame is shared by
//! every receiver), and the XOR masking both directions use.
//!
//! Server frames are never masked (RFC 6455 5.1), so the header is only the
//! two first bytes and an extended length; it is written here directly rather
//! than through tungstenite's `FrameHeader::format`, whose `io::Write`-based
//! signature would leave an unreachable error path. [`Opcode`] is our own
//! small enum: the server only ever sends these five kinds of frame.

use bytes::Bytes;

/// Longest unmasked header: 2 bytes and a 64-bit length.
const MAX_HEADER: usize = 10;
/// Longest close reason: a control payload is at most 125 bytes, 2 are the code.
const MAX_CLOSE_REASON: usize = 123;
/// FIN bit: every server frame is a whole message.
const FIN: u8 = 0x80;

/// The frames the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Text message (opcode 0x1).
    Text,
    /// Binary message (opcode 0x2).
    Binary,
    /// Ping (opcode 0x9).
    Ping,
    /// Pong (opcode 0xA).
    Pong,
    /// Close (opcode 0x8).
    Close,
}

impl Opcode {
    /// The opcode's wire value.
    pub const fn bits(self) -> u8 {
        match self {
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }
}

/// RSV1: the message is compressed (permessage-deflate, RFC 7692 §6).
const RSV1: u8 = 0x40;
/// Room [`frame_from_reserved`] needs before the payload: the longest header.
pub const HEADER_ROOM: usize = MAX_HEADER;

/// Writes the unmasked header of a final frame at the end of `slot`, so it
/// sits just before a payload that follows `slot`; returns where it starts.
fn write_header(slot: &mut [u8; MAX_HEADER], opcode: Opcode, len: usize) -> usize {
    let start = match len {
        0..=125 => {
            slot[9] = len as u8;
            8
        }
        126..=0xFFFF => {
            slot[8..].copy_from_slice(&(len as u16).to_be_bytes());
            slot[7] = 126;
            6
        }
        _ => {
            slot[2..].copy_from_slice(&(len as u64).to_be_bytes());
            slot[1] = 127;
            0
        }
    };
    slot[start] = FIN | opcode.bits();
    start
}

/// Builds a text frame whose payload `write_payload` appends, without
/// copying the payload: room for the longest header is reserved first, the
/// real header written just before the payload, and the frame sliced out.
pub fn text_frame_with(write_payload: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.resize(MAX_HEADER, 0);
    write_payload(&mut buf);
    frame_from_reserved(buf, Opcode::Text, false)
}

/// Turns `buf`, whose first [`HEADER_ROOM`] bytes are reserved and whose
/// rest is the payload, into a final frame without copying the payload;
/// `compressed` sets RSV1 (the payload is a permessage-deflate message).
pub fn frame_from_reserved(mut buf: Vec<u8>, opcode: Opcode, compressed: bool) -> Bytes {
    let len = buf.len().saturating_sub(MAX_HEADER);
    if buf.len() < MAX_HEADER {
        buf.resize(MAX_HEADER, 0);
    }
    let mut slot = [0; MAX_HEADER];
    let start = write_header(&mut slot, opcode, len);
    if compressed {
        slot[start] |= RSV1;
    }
    buf[..MAX_HEADER].copy_from_slice(&slot);
    Bytes::from(buf).slice(start..)
}

/// Builds a complete server frame.
pub fn encode_frame(opcode: Opcode, payload: &[u8]) -> Bytes {
    let mut slot = [0; MAX_HEADER];
    let start = write_header(&mut slot, opcode, payload.len());
    let mut buf = Vec::with_capacity(MAX_HEADER - start + payload.len());
    buf.extend_from_slice(&slot[start..]);
    buf.extend_from_slice(payload);
    Bytes::from(buf)
}

/// A close frame; the reason is cut to fit 123 bytes on a char boundary.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut cut = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = [0; 2 + MAX_CLOSE_REASON];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
    encode_frame(Opcode::Close, &payload[..2 + cut])
}

/// A pong echoing a ping's payload (at most 125 bytes, as the decoder ensures).
pub fn pong_frame(payload: &[u8]) -> Bytes {
    encode_frame(Opcode::Pong, payload)
}

/// XORs `buf` with the 4-byte mask (its first byte applies to `buf[0]`),
/// eight bytes at a time, then the tail bytewise.
pub fn unmask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let (chunks, tail) = buf.as_chunks_mut::<8>();
    for chunk in chunks {
        *chunk = (u64::from_ne_bytes(*chunk) ^ wide).to_ne_bytes();
    }
    // The chunks cover a multiple of 8 (so of 4) bytes: the tail starts at mask[0].
    for (b, m) in tail.iter_mut().zip(mask.iter().cycle()) {
        *b ^= m;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FrameDecoder, WsMessage};
    use super::*;

    /// What a client would send for a server frame: the same frame, masked.
    fn masked(frame: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let (head, payload) = frame.split_at(match frame[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        });
        let mut out = head.to_vec();
        out[1] |= 0x80;
        out.extend_from_slice(&mask);
        let start = out.len();
        out.extend_from_slice(payload);
        unmask(&mut out[start..], mask);
        out
    }

    /// Decodes one masked frame into (kind, payload).
    fn decode_one(frame: &mut [u8]) -> (&'static str, Vec<u8>) {
        let mut got = None;
        let r = FrameDecoder::new().feed(frame, 1 << 20, false, |m| {
            got = Some(match m {
                WsMessage::Text(t) => ("text", t.as_bytes().to_vec()),
                WsMessage::Binary(b) => ("binary", b.to_vec()),
                WsMessage::Ping(p) => ("ping", p.to_vec()),
                WsMessage::Pong(p) => ("pong", p.to_vec()),
                WsMessage::Close(c) => ("close", c.map_or(vec![], |c| c.reason.into())),
                WsMessage::Compressed { data, .. } => ("compressed", data.to_vec()),
            });
            true
        });
        assert_eq!(r, Ok(()));
        got.expect("one message")
    }

    #[test]
    fn text_frames_round_trip_through_the_decoder_at_every_length_class() {
        for n in [0usize, 5, 125, 126, 300, 65_535, 65_536, 70_000] {
            let payload = "z".repeat(n);
            let frame = text_frame_with(|out| out.extend_from_slice(payload.as_bytes()));
            assert_eq!(frame[0], 0x81);
            assert_eq!(frame, encode_frame(Opcode::Text, payload.as_bytes()), "{n}");
            let mut wire = masked(&frame, [0x0f, 0xf0, 0x55, 0xaa]);
            assert_eq!(decode_one(&mut wire), ("text", payload.into_bytes()), "{n}");
        }
    }

    #[test]
    fn every_opcode_round_trips() {
        for (op, kind) in [
            (Opcode::Binary, "binary"),
            (Opcode::Ping, "ping"),
            (Opcode::Pong, "pong"),
        ] {
            let mut wire = masked(&encode_frame(op, b"\x00\xffab"), [1, 2, 3, 4]);
            assert_eq!(decode_one(&mut wire), (kind, b"\x00\xffab".to_vec()));
        }
        let mut pong = masked(&pong_frame(b"hi"), [9, 9, 9, 9]);
        assert_eq!(decode_one(&mut pong), ("pong", b"hi".to_vec()));
        let mut close = masked(&close_frame(1000, "bye"), [7, 0, 7, 0]);
        assert_eq!(decode_one(&mut close), ("close", b"bye".to_vec()));
    }

    #[test]
    fn close_reason_is_truncated_on_a_char_boundary() {
        let f = close_frame(4008, &"é".repeat(100));
        assert_eq!(f[1] as usize, f.len() - 2);
        assert!(f.len() - 2 <= 125);
        assert_eq!(f.len() - 4, 122, "61 two-byte chars fit in 123 bytes");
        assert_eq!(&f[2..4], &4008u16.to_be_bytes());
        assert!(std::str::from_utf8(&f[4..]).is_ok());
        assert_eq!(close_frame(1000, &"a".repeat(500)).len(), 2 + 125);
        assert_eq!(&close_frame(1001, "")[..], &[0x88, 2, 0x03, 0xe9]);
    }

    #[test]
    fn fast_unmask_matches_the_naive_one() {
        let mask = [0xa1, 0xb2, 0xc3, 0xd4];
        for n in 0..70 {
            let data: Vec<u8> = (0..n as u8).map(|b| b.wrapping_mul(37)).collect();
            let mut fast = data.clone();
            unmask(&mut fast, mask);
            let naive: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, naive, "{n}");
            unmask(&mut fast, mask);
            assert_eq!(fast, data, "unmasking twice restores {n}");
        }
    }
}
