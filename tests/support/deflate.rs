//! A raw WebSocket client that speaks permessage-deflate (RFC 7692), for the
//! compression tests: tungstenite 0.28 has no permessage-deflate and refuses
//! RSV1. It offers any `Sec-WebSocket-Extensions` value, shows the answer,
//! sends masked frames compressed (RSV1) or plain, and reads frames as they
//! are, RSV1 included, inflating with flate2's raw deflate (no context
//! takeover: a fresh inflater per message).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use serde_json::Value;

use super::WAIT;

/// What a sync flush ends with; cut by the sender, put back by the receiver.
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// One frame as received.
#[derive(Debug)]
pub struct Frame {
    /// RSV1: the message is compressed.
    pub rsv1: bool,
    /// Opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// The payload as sent (compressed when `rsv1`).
    pub payload: Vec<u8>,
}

/// A connected raw client.
pub struct DeflateClient {
    stream: TcpStream,
    /// The server's 101 head (status line and headers).
    pub head: String,
    /// Bytes read past the last frame.
    buffered: Vec<u8>,
}

impl DeflateClient {
    /// Upgrades on `path`, offering `extensions` (`None`: no offer). Panics
    /// unless the answer is 101.
    pub fn connect(addr: SocketAddr, path: &str, extensions: Option<&str>) -> Self {
        let mut stream = TcpStream::connect(addr).expect("tcp connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let offer = extensions
            .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{offer}\r\n"
        );
        stream.write_all(req.as_bytes()).expect("send upgrade");
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).expect("read 101 within the wait");
            assert!(n > 0, "closed during the upgrade: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
        Self {
            stream,
            head,
            buffered: buf[head_end..].to_vec(),
        }
    }

    /// The `Sec-WebSocket-Extensions` answer, if any.
    pub fn extensions(&self) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim())
        })
    }

    /// Sends a text message, compressed (RSV1) when `compress`.
    pub fn send_text(&mut self, text: &str, compress: bool) {
        if compress {
            self.send_frame(0x1, true, &deflate(text.as_bytes()));
        } else {
            self.send_frame(0x1, false, text.as_bytes());
        }
    }

    /// Sends one masked FIN frame with `payload` as is.
    pub fn send_frame(&mut self, opcode: u8, rsv1: bool, payload: &[u8]) {
        let mut f = vec![0x80 | if rsv1 { 0x40 } else { 0 } | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&f).expect("send frame");
    }

    /// The next frame (pings and pongs included), within the wait.
    pub fn frame(&mut self) -> Frame {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some((frame, used)) = parse(&self.buffered) {
                self.buffered.drain(..used);
                return frame;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no complete frame within {WAIT:?}");
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16384];
            let n = self.stream.read(&mut chunk).expect("read a frame");
            assert!(n > 0, "connection closed without a close frame");
            self.buffered.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next text message as JSON and whether it came compressed
    /// (skipping pings and pongs).
    pub fn recv(&mut self) -> (Value, bool) {
        loop {
            let f = self.frame();
            match f.opcode {
                0x9 | 0xA => continue,
                0x1 => {
                    let bytes = if f.rsv1 {
                        inflate(&f.payload)
                    } else {
                        f.payload
                    };
                    let v = serde_json::from_slice(&bytes).expect("server sent JSON");
                    return (v, f.rsv1);
                }
                op => panic!("expected a text frame, got opcode {op}: {f:?}"),
            }
        }
    }

    /// The next message, which must have `type == ty`.
    pub fn recv_type(&mut self, ty: &str) -> (Value, bool) {
        let (v, compressed) = self.recv();
        assert_eq!(v["type"], ty, "expected {ty}, got {v}");
        (v, compressed)
    }

    /// Reads until the server's close frame; returns its code.
    pub fn expect_close(&mut self) -> u16 {
        loop {
            let f = self.frame();
            if f.opcode == 0x8 {
                assert!(!f.rsv1, "a control frame is never compressed");
                return match f.payload.get(..2) {
                    Some(c) => u16::from_be_bytes([c[0], c[1]]),
                    None => 1005,
                };
            }
        }
    }
}

/// One server frame from the front of `buf` (unmasked, FIN) and its size.
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    assert!(b0 & 0x80 != 0, "the server sends only FIN frames");
    assert!(b1 & 0x80 == 0, "the server never masks");
    let (len, at) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    let frame = Frame {
        rsv1: b0 & 0x40 != 0,
        opcode: b0 & 0x0f,
        payload,
    };
    Some((frame, at + len))
}

/// Raw deflate of one message with a sync flush, the tail cut (RFC 7692 §7.2.1).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        out.reserve(out.len().max(1024));
        let before = z.total_in() as usize;
        z.compress_vec(&data[before..], &mut out, FlushCompress::Sync)
            .expect("deflate");
        if z.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(
        out.ends_with(&SYNC_TAIL),
        "a sync flush ends with 00 00 ff ff"
    );
    out.truncate(out.len() - SYNC_TAIL.len());
    out
}

/// Inflates one compressed message (fresh window: no context takeover).
pub fn inflate(data: &[u8]) -> Vec<u8> {
    let mut z = Decompress::new(false);
    let mut input = data.to_vec();
    input.extend_from_slice(&SYNC_TAIL);
    let mut out = Vec::with_capacity(data.len() * 4 + 64);
    loop {
        let before = z.total_in() as usize;
        z.decompress_vec(&input[before..], &mut out, FlushDecompress::Sync)
            .expect("server sent valid deflate data");
        if z.total_in() as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity().max(1024));
    }
}
