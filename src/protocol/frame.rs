//! RFC 6455 framing for the server side, I/O-free: bytes in, messages out.
//!
//! Header parsing and formatting use `tungstenite`'s frame-level types
//! (`FrameHeader::parse`/`format`, `CloseCode`), driven over our own
//! buffers: tungstenite's `WebSocket` would hold (and zero-fill) a 128 KiB
//! read buffer per connection, and we hold none while a connection is idle.
//!
//! [`FrameDecoder`] is one pointer wide. It owns heap memory only while a
//! frame is split across reads or a fragmented message is being assembled,
//! and frees it as soon as the message completes. Payloads are unmasked in
//! place in the caller's (per-shard) read buffer, and complete unfragmented
//! messages are handed out as borrowed slices of it, with no copy.

use std::io::Cursor;

use bytes::Bytes;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Close codes the decoder asks for.
pub mod close {
    /// Protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Invalid UTF-8.
    pub const INVALID_UTF8: u16 = 1007;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
}

/// One complete message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum WsMessage<'a> {
    /// A text message (valid UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping with its payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame, with its code and reason when it had a payload.
    Close(Option<CloseFrameRef<'a>>),
}

/// The payload of a close frame.
#[derive(Debug, PartialEq, Eq)]
pub struct CloseFrameRef<'a> {
    /// The close code (validated).
    pub code: u16,
    /// The reason (valid UTF-8).
    pub reason: &'a str,
}

/// Why the connection must be closed; `code` is the close code to send.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("{reason} (close {code})")]
pub struct ProtocolViolation {
    /// Close code to send.
    pub code: u16,
    /// Short reason, also sent in the close frame.
    pub reason: &'static str,
}

fn violation(code: u16, reason: &'static str) -> ProtocolViolation {
    ProtocolViolation { code, reason }
}

/// A fragmented message being assembled.
#[derive(Debug)]
struct Fragmented {
    /// True for text (validated as it arrives), false for binary.
    text: bool,
    /// The payload so far.
    data: Vec<u8>,
    /// Prefix of `data` known to be valid UTF-8 (only a split code point may follow).
    valid_up_to: usize,
}

/// State that exists only between reads.
#[derive(Debug, Default)]
struct Partial {
    /// Bytes of a frame whose end has not arrived yet.
    pending: Vec<u8>,
    /// A message whose final fragment has not arrived yet.
    message: Option<Fragmented>,
}

/// Per-connection decoder state: one pointer, no heap while idle.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Present only mid-frame or mid-message.
    partial: Option<Box<Partial>>,
}

impl FrameDecoder {
    /// A decoder with nothing pending.
    pub const fn new() -> Self {
        Self { partial: None }
    }

    /// True when no partial frame or message is held (no heap in use).
    pub fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// Feeds bytes just read from the socket; calls `on_message` for each
    /// complete message in order. When `on_message` returns false, decoding
    /// stops (the connection is closing) and the rest is dropped.
    pub fn feed(
        &mut self,
        input: &mut [u8],
        max_message_bytes: usize,
        mut on_message: impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<(), ProtocolViolation> {
        let mut partial = self.partial.take().unwrap_or_default();
        let result = if partial.pending.is_empty() {
            decode(&mut partial, input, max_message_bytes, &mut on_message)
        } else {
            let mut buf = std::mem::take(&mut partial.pending);
            buf.extend_from_slice(input);
            decode(&mut partial, &mut buf, max_message_bytes, &mut on_message)
        };
        if result.is_ok() && (!partial.pending.is_empty() || partial.message.is_some()) {
            self.partial = Some(partial);
        }
        result
    }
}

/// Decodes every complete frame of `buf`; keeps an incomplete tail in `partial.pending`.
fn decode(
    partial: &mut Partial,
    buf: &mut [u8],
    max: usize,
    on_message: &mut impl FnMut(WsMessage<'_>) -> bool,
) -> Result<(), ProtocolViolation> {
    let mut pos = 0;
    while pos < buf.len() {
        let mut cursor = Cursor::new(&buf[pos..]);
        let parsed = FrameHeader::parse(&mut cursor)
            .map_err(|_| violation(close::PROTOCOL, "bad frame header"))?;
        let Some((header, len)) = parsed else { break };
        check_header(&header, len, partial, max)?;
        let start = pos + cursor.position() as usize;
        let len = len as usize;
        if buf.len() - start < len {
            break;
        }
        let payload = &mut buf[start..start + len];
        unmask(payload, header.mask.unwrap_or_default());
        pos = start + len;
        if !on_frame(partial, &header, payload, max, on_message)? {
            return Ok(());
        }
    }
    partial.pending.clear();
    partial.pending.extend_from_slice(&buf[pos..]);
    if partial.pending.is_empty() {
        partial.pending = Vec::new();
    }
    Ok(())
}

/// Checks what the header alone tells, before any payload is buffered.
fn check_header(
    h: &FrameHeader,
    len: u64,
    partial: &Partial,
    max: usize,
) -> Result<(), ProtocolViolation> {
    if h.rsv1 || h.rsv2 || h.rsv3 {
        return Err(violation(close::PROTOCOL, "reserved bits set"));
    }
    if h.mask.is_none() {
        return Err(violation(close::PROTOCOL, "client frames must be masked"));
    }
    match h.opcode {
        OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
            Err(violation(close::PROTOCOL, "reserved opcode"))
        }
        OpCode::Control(_) if !h.is_final || len > 125 => {
            Err(violation(close::PROTOCOL, "bad control frame"))
        }
        OpCode::Control(_) => Ok(()),
        OpCode::Data(_) => {
            let so_far = partial.message.as_ref().map_or(0, |m| m.data.len()) as u64;
            if so_far + len > max as u64 {
                Err(violation(close::TOO_BIG, "message too big"))
            } else {
                Ok(())
            }
        }
    }
}

/// Handles one complete, unmasked frame. Returns false to stop.
fn on_frame(
    partial: &mut Partial,
    h: &FrameHeader,
    payload: &[u8],
    max: usize,
    on_message: &mut impl FnMut(WsMessage<'_>) -> bool,
) -> Result<bool, ProtocolViolation> {
    match h.opcode {
        OpCode::Control(Control::Ping) => Ok(on_message(WsMessage::Ping(payload))),
        OpCode::Control(Control::Pong) => Ok(on_message(WsMessage::Pong(payload))),
        OpCode::Control(_) => Ok(on_message(WsMessage::Close(parse_close(payload)?))),
        OpCode::Data(Data::Continue) => {
            on_continuation(partial, h.is_final, payload, max, on_message)
        }
        OpCode::Data(data) => {
            if partial.message.is_some() {
                return Err(violation(
                    close::PROTOCOL,
                    "new message inside a fragmented one",
                ));
            }
            let text = matches!(data, Data::Text);
            if h.is_final {
                return Ok(on_message(complete(text, payload)?));
            }
            let mut m = Fragmented {
                text,
                data: payload.to_vec(),
                valid_up_to: 0,
            };
            validate_prefix(&mut m)?;
            partial.message = Some(m);
            Ok(true)
        }
    }
}

fn on_continuation(
    partial: &mut Partial,
    fin: bool,
    payload: &[u8],
    max: usize,
    on_message: &mut impl FnMut(WsMessage<'_>) -> bool,
) -> Result<bool, ProtocolViolation> {
    let Some(m) = partial.message.as_mut() else {
        return Err(violation(close::PROTOCOL, "continuation without a message"));
    };
    if m.data.len() + payload.len() > max {
        return Err(violation(close::TOO_BIG, "message too big"));
    }
    m.data.extend_from_slice(payload);
    validate_prefix(m)?;
    if !fin {
        return Ok(true);
    }
    let m = partial.message.take().expect("checked above");
    Ok(on_message(complete(m.text, &m.data)?))
}

/// A complete message from its payload.
fn complete(text: bool, payload: &[u8]) -> Result<WsMessage<'_>, ProtocolViolation> {
    if !text {
        return Ok(WsMessage::Binary(payload));
    }
    std::str::from_utf8(payload)
        .map(WsMessage::Text)
        .map_err(|_| violation(close::INVALID_UTF8, "invalid UTF-8"))
}

/// Fails fast on invalid UTF-8 in a partial text message; only a code point
/// split at the end may stay unchecked.
fn validate_prefix(m: &mut Fragmented) -> Result<(), ProtocolViolation> {
    if !m.text {
        return Ok(());
    }
    match std::str::from_utf8(&m.data[m.valid_up_to..]) {
        Ok(_) => m.valid_up_to = m.data.len(),
        Err(e) if e.error_len().is_some() => {
            return Err(violation(close::INVALID_UTF8, "invalid UTF-8"))
        }
        Err(e) => m.valid_up_to += e.valid_up_to(),
    }
    Ok(())
}

fn parse_close(payload: &[u8]) -> Result<Option<CloseFrameRef<'_>>, ProtocolViolation> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(violation(close::PROTOCOL, "close payload of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !CloseCode::from(code).is_allowed() || code < 1000 {
                return Err(violation(close::PROTOCOL, "invalid close code"));
            }
            let reason = std::str::from_utf8(&payload[2..])
                .map_err(|_| violation(close::INVALID_UTF8, "invalid UTF-8 in close reason"))?;
            Ok(Some(CloseFrameRef { code, reason }))
        }
    }
}

/// XORs `buf` with the 4-byte mask, eight bytes at a time.
pub fn unmask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

/// Server frame opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Text message.
    Text,
    /// Binary message.
    Binary,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
    /// Close.
    Close,
}

impl From<Opcode> for OpCode {
    fn from(op: Opcode) -> Self {
        match op {
            Opcode::Text => OpCode::Data(Data::Text),
            Opcode::Binary => OpCode::Data(Data::Binary),
            Opcode::Ping => OpCode::Control(Control::Ping),
            Opcode::Pong => OpCode::Control(Control::Pong),
            Opcode::Close => OpCode::Control(Control::Close),
        }
    }
}

/// Longest unmasked server header.
const MAX_HEADER: usize = 10;

/// Builds a text frame whose payload `write_payload` appends, without
/// copying the payload: room for the longest header is reserved first, the
/// real header written just before the payload, and the frame sliced out.
pub fn text_frame_with(write_payload: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.resize(MAX_HEADER, 0);
    write_payload(&mut buf);
    let len = buf.len() - MAX_HEADER;
    let header = FrameHeader {
        opcode: Opcode::Text.into(),
        ..FrameHeader::default()
    };
    let start = MAX_HEADER - header.len(len as u64);
    let mut slot = &mut buf[start..MAX_HEADER];
    header
        .format(len as u64, &mut slot)
        .expect("header fits its slot");
    Bytes::from(buf).slice(start..)
}

/// Builds a complete server frame.
pub fn encode_frame(opcode: Opcode, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        opcode: opcode.into(),
        ..FrameHeader::default()
    };
    let mut buf = Vec::with_capacity(header.len(payload.len() as u64) + payload.len());
    header
        .format(payload.len() as u64, &mut buf)
        .expect("writing to a Vec");
    buf.extend_from_slice(payload);
    Bytes::from(buf)
}

/// A close frame; the reason is cut to fit 123 bytes on a char boundary.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = Vec::with_capacity(2 + cut);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..cut]);
    encode_frame(Opcode::Close, &payload)
}

/// A pong answering a ping's payload.
pub fn pong_frame(payload: &[u8]) -> Bytes {
    encode_frame(Opcode::Pong, payload)
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
