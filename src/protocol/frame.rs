//! RFC 6455 framing for the server side, I/O-free: bytes in, messages out.
//!
//! Headers are parsed by `tungstenite`'s public frame-level API
//! (`FrameHeader::parse`, `OpCode`/`Data`/`Control`) over our own buffers:
//! tungstenite's `WebSocket` would hold (and zero-fill) a 128 KiB read buffer
//! per connection, and we hold none while a connection is idle. Everything
//! else (checks, unmasking, reassembly, UTF-8, close payloads) is ours;
//! encoding lives in [`super::frame_encode`] and is re-exported here.
//!
//! [`FrameDecoder`] is one pointer wide. Frames that arrive whole are
//! unmasked in place in the caller's (per-shard) read buffer and handed out
//! as borrowed slices, with no copy and no allocation. Only a frame split
//! across reads, or a fragmented message, is copied into a boxed `Partial`,
//! which is dropped as soon as the message completes. Payload is copied as it
//! arrives (never the whole pending frame again per read), and buffers grow
//! with the bytes received, never past `max_message_bytes`. Text is checked
//! as it arrives, so invalid UTF-8 is refused before the rest of its frame or
//! message (Autobahn's strict behaviour).

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

pub use super::frame_encode::{
    close_frame, encode_frame, pong_frame, text_frame_with, unmask, Opcode,
};

/// Close codes the decoder asks for.
pub mod close {
    /// Protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Invalid UTF-8.
    pub const INVALID_UTF8: u16 = 1007;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
}

/// Longest client frame header (2 + 8 length bytes + 4 mask bytes).
const MAX_HEAD: usize = 14;
/// Largest control frame payload.
const MAX_CONTROL: usize = 125;

/// One complete message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum WsMessage<'a> {
    /// A text message (valid UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping with its payload.
    Ping(&'a [u8]),
    /// A pong with its payload.
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

const fn violation(code: u16, reason: &'static str) -> ProtocolViolation {
    ProtocolViolation { code, reason }
}

const INVALID_UTF8: ProtocolViolation = violation(close::INVALID_UTF8, "invalid UTF-8");

/// What a (checked) frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
    Continue,
    Ping,
    Pong,
    Close,
}

/// A frame header that passed every check.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// Opcode, reserved values excluded.
    kind: Kind,
    /// FIN: the last frame of its message.
    fin: bool,
    /// The client's masking key.
    mask: [u8; 4],
    /// Payload length, already known to fit the limits.
    len: usize,
}

/// A frame whose payload is arriving across reads.
#[derive(Debug)]
struct InFlight {
    /// Its header.
    head: Head,
    /// Payload bytes received so far (also the mask phase).
    received: usize,
}

/// A data message being assembled.
#[derive(Debug)]
struct Message {
    /// Text (validated as it arrives) or binary.
    text: bool,
    /// The unmasked payload so far.
    data: Vec<u8>,
    /// Prefix of `data` known to be valid UTF-8 (only a split code point may follow).
    valid_up_to: usize,
}

/// State that exists only between reads, while something is incomplete.
#[derive(Debug)]
struct Partial {
    /// Bytes of a header split across reads (the first `head_len`).
    head: [u8; MAX_HEAD],
    /// How many bytes of `head` are filled (0: no split header).
    head_len: usize,
    /// The frame whose payload is still arriving.
    frame: Option<InFlight>,
    /// Payload of a control frame split across reads (the first `control_len`).
    control: [u8; MAX_CONTROL],
    /// How many bytes of `control` are filled.
    control_len: usize,
    /// The data message whose last byte has not arrived yet.
    message: Option<Message>,
}

/// Per-connection decoder state: one pointer, no heap while idle.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Present only mid-frame or mid-message; `None` means idle.
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

    /// Feeds bytes just read from the socket, unmasking them in place, and
    /// calls `on_message` for each complete message in order. When
    /// `on_message` returns false, decoding stops (the connection is closing),
    /// the rest is dropped, and the decoder is reset; it is also reset after
    /// an error, after which the connection must be closed.
    pub fn feed(
        &mut self,
        input: &mut [u8],
        max_message_bytes: usize,
        mut on_message: impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<(), ProtocolViolation> {
        let outcome = self.decode(input, max_message_bytes, &mut on_message);
        let keep =
            matches!(outcome, Ok(true)) && self.partial.as_ref().is_some_and(|p| !p.is_empty());
        if !keep {
            self.partial = None;
        }
        outcome.map(drop)
    }

    /// Decodes all of `input`; `Ok(false)` when the callback asked to stop.
    fn decode(
        &mut self,
        input: &mut [u8],
        max: usize,
        on: &mut impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<bool, ProtocolViolation> {
        let mut pos = 0;
        loop {
            if let Some(p) = self.partial.as_deref_mut().filter(|p| p.frame.is_some()) {
                let (n, go) = p.resume_payload(&mut input[pos..], max, on)?;
                pos += n;
                if !go || pos == input.len() {
                    return Ok(go);
                }
            }
            let Some((head, head_len)) = self.next_head(&input[pos..], max)? else {
                return Ok(true);
            };
            pos += head_len;
            let body = &mut input[pos..];
            if body.len() < head.len {
                self.partial_mut().begin(head);
                continue;
            }
            let payload = &mut body[..head.len];
            pos += head.len;
            unmask(payload, head.mask);
            if !self.whole_frame(head, payload, max, on)? {
                return Ok(false);
            }
        }
    }

    /// The next header, completing a split one; `None` (and the bytes kept)
    /// when it is incomplete.
    fn next_head(
        &mut self,
        rest: &[u8],
        max: usize,
    ) -> Result<Option<(Head, usize)>, ProtocolViolation> {
        match self.partial.as_deref_mut() {
            Some(p) if p.head_len > 0 => p.resume_head(rest, max),
            _ if rest.is_empty() => Ok(None),
            _ => {
                let parsed = parse_head(rest, self.message_len(), max)?;
                if parsed.is_none() {
                    self.partial_mut().save_head(rest);
                }
                Ok(parsed)
            }
        }
    }

    /// A frame whose payload is all in the read buffer.
    fn whole_frame(
        &mut self,
        head: Head,
        payload: &[u8],
        max: usize,
        on: &mut impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<bool, ProtocolViolation> {
        if is_control(head.kind) {
            return Ok(on(control_message(head.kind, payload)?));
        }
        if head.fin && head.kind != Kind::Continue {
            return Ok(on(data_message(head.kind == Kind::Text, payload)?));
        }
        let p = self.partial_mut();
        if head.kind != Kind::Continue {
            p.message = Some(Message::new(head.kind == Kind::Text));
        }
        p.append(payload, max, head.fin)?;
        if head.fin {
            p.finish_message(on)
        } else {
            Ok(true)
        }
    }

    /// Length of the message being assembled, if any.
    fn message_len(&self) -> Option<usize> {
        self.partial
            .as_ref()?
            .message
            .as_ref()
            .map(|m| m.data.len())
    }

    /// The partial state, allocated on first need.
    fn partial_mut(&mut self) -> &mut Partial {
        self.partial.get_or_insert_with(|| Box::new(Partial::new()))
    }
}

impl Partial {
    fn new() -> Self {
        Self {
            head: [0; MAX_HEAD],
            head_len: 0,
            frame: None,
            control: [0; MAX_CONTROL],
            control_len: 0,
            message: None,
        }
    }

    /// Nothing pending: the box can go.
    fn is_empty(&self) -> bool {
        self.head_len == 0 && self.frame.is_none() && self.message.is_none()
    }

    /// Keeps the bytes of an incomplete header (fewer than `MAX_HEAD`).
    fn save_head(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(MAX_HEAD - self.head_len);
        self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
        self.head_len += n;
    }

    /// Completes a split header; returns it and the bytes it took from `input`.
    fn resume_head(
        &mut self,
        input: &[u8],
        max: usize,
    ) -> Result<Option<(Head, usize)>, ProtocolViolation> {
        let before = self.head_len;
        self.save_head(input);
        let so_far = self.message.as_ref().map(|m| m.data.len());
        let Some((head, len)) = parse_head(&self.head[..self.head_len], so_far, max)? else {
            return Ok(None);
        };
        self.head_len = 0;
        Ok(Some((head, len - before)))
    }

    /// Starts a frame whose payload has not all arrived.
    fn begin(&mut self, head: Head) {
        if matches!(head.kind, Kind::Text | Kind::Binary) {
            self.message = Some(Message::new(head.kind == Kind::Text));
        }
        self.frame = Some(InFlight { head, received: 0 });
    }

    /// Takes what `input` holds of the in-flight frame's payload; returns the
    /// bytes taken and whether to go on.
    fn resume_payload(
        &mut self,
        input: &mut [u8],
        max: usize,
        on: &mut impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<(usize, bool), ProtocolViolation> {
        let Some(frame) = self.frame.as_mut() else {
            return Ok((0, true));
        };
        let n = (frame.head.len - frame.received).min(input.len());
        let chunk = &mut input[..n];
        let mut mask = frame.head.mask;
        mask.rotate_left(frame.received % 4);
        unmask(chunk, mask);
        frame.received += n;
        let head = frame.head;
        let done = frame.received == head.len;
        if is_control(head.kind) {
            self.control[self.control_len..self.control_len + n].copy_from_slice(chunk);
            self.control_len += n;
        } else {
            self.append(chunk, max, done && head.fin)?;
        }
        if !done {
            return Ok((n, true));
        }
        self.frame = None;
        let go = if is_control(head.kind) {
            let len = std::mem::take(&mut self.control_len);
            on(control_message(head.kind, &self.control[..len])?)
        } else if head.fin {
            self.finish_message(on)?
        } else {
            true
        };
        Ok((n, go))
    }

    /// Appends payload to the message; fails fast on invalid UTF-8 unless
    /// `last` (then [`Partial::finish_message`] checks the whole).
    fn append(&mut self, chunk: &[u8], max: usize, last: bool) -> Result<(), ProtocolViolation> {
        let Some(m) = self.message.as_mut() else {
            return Err(violation(close::PROTOCOL, "continuation without a message"));
        };
        let needed = m.data.len() + chunk.len();
        if needed > m.data.capacity() {
            // Grow geometrically (many small fragments stay linear), never past the limit.
            let target = m
                .data
                .capacity()
                .saturating_mul(2)
                .clamp(needed, max.max(needed));
            m.data.reserve_exact(target - m.data.len());
        }
        m.data.extend_from_slice(chunk);
        if m.text && !last {
            m.validate_prefix()?;
        }
        Ok(())
    }

    /// Delivers the completed message and frees its buffer.
    fn finish_message(
        &mut self,
        on: &mut impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<bool, ProtocolViolation> {
        let Some(m) = self.message.take() else {
            return Err(violation(close::PROTOCOL, "continuation without a message"));
        };
        Ok(on(data_message(m.text, &m.data)?))
    }
}

impl Message {
    fn new(text: bool) -> Self {
        Self {
            text,
            data: Vec::new(),
            valid_up_to: 0,
        }
    }

    /// Fails on invalid UTF-8; only a code point split at the end may stay unchecked.
    fn validate_prefix(&mut self) -> Result<(), ProtocolViolation> {
        match std::str::from_utf8(&self.data[self.valid_up_to..]) {
            Ok(_) => self.valid_up_to = self.data.len(),
            Err(e) if e.error_len().is_some() => return Err(INVALID_UTF8),
            Err(e) => self.valid_up_to += e.valid_up_to(),
        }
        Ok(())
    }
}

/// Parses and checks a header; `so_far` is the length of the message being
/// assembled, if any. `None` when the header is incomplete.
fn parse_head(
    bytes: &[u8],
    so_far: Option<usize>,
    max: usize,
) -> Result<Option<(Head, usize)>, ProtocolViolation> {
    let mut cursor = Cursor::new(bytes);
    let parsed = FrameHeader::parse(&mut cursor)
        .map_err(|_| violation(close::PROTOCOL, "reserved opcode"))?;
    let Some((header, len)) = parsed else {
        return Ok(None);
    };
    let head = check_head(&header, len, so_far, max)?;
    Ok(Some((head, cursor.position() as usize)))
}

/// Enforces what the header alone tells, before any payload is buffered.
fn check_head(
    h: &FrameHeader,
    len: u64,
    so_far: Option<usize>,
    max: usize,
) -> Result<Head, ProtocolViolation> {
    if h.rsv1 || h.rsv2 || h.rsv3 {
        return Err(violation(close::PROTOCOL, "reserved bits set"));
    }
    let Some(mask) = h.mask else {
        return Err(violation(close::PROTOCOL, "client frames must be masked"));
    };
    let kind = kind_of(h.opcode)?;
    if len > i64::MAX as u64 {
        return Err(violation(close::PROTOCOL, "length with its top bit set"));
    }
    if is_control(kind) && (!h.is_final || len > MAX_CONTROL as u64) {
        return Err(violation(close::PROTOCOL, "bad control frame"));
    }
    match (kind, so_far) {
        (Kind::Continue, None) => Err(violation(close::PROTOCOL, "continuation without a message")),
        (Kind::Text | Kind::Binary, Some(_)) => Err(violation(
            close::PROTOCOL,
            "new message inside a fragmented one",
        )),
        _ if !is_control(kind) && (so_far.unwrap_or(0) as u64).saturating_add(len) > max as u64 => {
            Err(violation(close::TOO_BIG, "message too big"))
        }
        // Fits in usize: bounded by 125 or by `max` just above.
        _ => Ok(Head {
            kind,
            fin: h.is_final,
            mask,
            len: len as usize,
        }),
    }
}

fn kind_of(opcode: OpCode) -> Result<Kind, ProtocolViolation> {
    Ok(match opcode {
        OpCode::Data(Data::Continue) => Kind::Continue,
        OpCode::Data(Data::Text) => Kind::Text,
        OpCode::Data(Data::Binary) => Kind::Binary,
        OpCode::Control(Control::Ping) => Kind::Ping,
        OpCode::Control(Control::Pong) => Kind::Pong,
        OpCode::Control(Control::Close) => Kind::Close,
        OpCode::Data(Data::Reserved(_)) | OpCode::Control(Control::Reserved(_)) => {
            return Err(violation(close::PROTOCOL, "reserved opcode"))
        }
    })
}

fn is_control(kind: Kind) -> bool {
    matches!(kind, Kind::Ping | Kind::Pong | Kind::Close)
}

/// A complete data message from its (unmasked) payload.
fn data_message(text: bool, payload: &[u8]) -> Result<WsMessage<'_>, ProtocolViolation> {
    if !text {
        return Ok(WsMessage::Binary(payload));
    }
    std::str::from_utf8(payload)
        .map(WsMessage::Text)
        .map_err(|_| INVALID_UTF8)
}

/// A control message from its (unmasked) payload.
fn control_message(kind: Kind, payload: &[u8]) -> Result<WsMessage<'_>, ProtocolViolation> {
    match kind {
        Kind::Ping => Ok(WsMessage::Ping(payload)),
        Kind::Pong => Ok(WsMessage::Pong(payload)),
        _ => parse_close(payload).map(WsMessage::Close),
    }
}

/// Validates a close payload: empty, or a code allowed on the wire and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Option<CloseFrameRef<'_>>, ProtocolViolation> {
    let [hi, lo, reason @ ..] = payload else {
        return match payload.len() {
            0 => Ok(None),
            _ => Err(violation(close::PROTOCOL, "close payload of one byte")),
        };
    };
    let code = u16::from_be_bytes([*hi, *lo]);
    if !close_code_allowed(code) {
        return Err(violation(close::PROTOCOL, "invalid close code"));
    }
    let reason = std::str::from_utf8(reason)
        .map_err(|_| violation(close::INVALID_UTF8, "invalid UTF-8 in close reason"))?;
    Ok(Some(CloseFrameRef { code, reason }))
}

/// RFC 6455 7.4 and the IANA registry: 1004–1006 and 1015 never go on the
/// wire, below 1000 and 1016–2999 are unassigned, 3000–4999 are for
/// libraries and applications. (Ours, not tungstenite's `CloseCode::is_allowed`,
/// which refuses the registered 1014.)
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame (masked unless `mask` is `None`).
    fn frame_with(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
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

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        frame_with(fin, opcode, payload, Some([0x11, 0x22, 0x33, 0x44]))
    }

    /// An owned copy of a message, to compare.
    #[derive(Debug, Clone, PartialEq)]
    enum Got {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<(u16, String)>),
    }

    fn got(m: WsMessage<'_>) -> Got {
        match m {
            WsMessage::Text(t) => Got::Text(t.into()),
            WsMessage::Binary(b) => Got::Binary(b.into()),
            WsMessage::Ping(p) => Got::Ping(p.into()),
            WsMessage::Pong(p) => Got::Pong(p.into()),
            WsMessage::Close(c) => Got::Close(c.map(|c| (c.code, c.reason.into()))),
        }
    }

    /// Feeds each chunk in turn; stops at the first error.
    fn feed_all(
        d: &mut FrameDecoder,
        chunks: &[&[u8]],
        max: usize,
    ) -> (Vec<Got>, Result<(), ProtocolViolation>) {
        let mut out = Vec::new();
        for chunk in chunks {
            let r = d.feed(&mut chunk.to_vec(), max, |m| {
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
        let r = FrameDecoder::new().feed(&mut s, 100, |_| {
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
}
