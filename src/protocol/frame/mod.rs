//! RFC 6455 framing for the server side, I/O-free: bytes in, messages out.
//!
//! Headers are parsed by `tungstenite`'s public frame-level API
//! (`FrameHeader::parse`, `OpCode`/`Data`/`Control`) over our own buffers:
//! tungstenite's `WebSocket` would hold (and zero-fill) a 128 KiB read buffer
//! per connection, and we hold none while a connection is idle. Everything
//! else (checks, unmasking, reassembly, UTF-8, close payloads) is ours;
//! encoding lives in [`encode`] and is re-exported here.
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
//!
//! permessage-deflate (RFC 7692): whether the connection negotiated it is an
//! argument of [`FrameDecoder::feed`], not state (the decoder stays one
//! pointer). When it did, RSV1 on the first frame of a data message marks it
//! compressed: such a message is delivered as [`WsMessage::Compressed`], its
//! bytes as received, and is not UTF-8-checked here (the check belongs to the
//! inflated text, see `protocol::deflate::Inflater::inflate_message`). RSV1
//! anywhere else, or without the extension, is a protocol error (1002).

pub mod encode;

pub use encode::{
    close_frame, encode_frame, frame_from_reserved, pong_frame, text_frame_with, unmask, Opcode,
    HEADER_ROOM,
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
    /// A data message compressed with permessage-deflate (only when `feed`
    /// was told the connection negotiated it): the payload as received,
    /// without the RFC 7692 tail, not yet inflated nor UTF-8-checked.
    Compressed {
        /// A text message (to be UTF-8-checked once inflated), else binary.
        text: bool,
        /// The compressed payload (all its frames, unmasked, joined).
        data: &'a [u8],
    },
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
    /// RSV1 on the first frame of a data message: permessage-deflate.
    compressed: bool,
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
    /// Text (validated as it arrives unless compressed) or binary.
    text: bool,
    /// Compressed (permessage-deflate): delivered as is, never validated here.
    compressed: bool,
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

/// What every check needs to know about the connection, passed down by
/// value rather than stored (it would cost every idle connection).
#[derive(Debug, Clone, Copy)]
struct Rules {
    /// Largest message (compressed size for compressed messages).
    max: usize,
    /// permessage-deflate was negotiated: RSV1 allowed on a message's first frame.
    deflate: bool,
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

    /// Heap bytes held for an unfinished frame or message (0 while idle):
    /// the partial state and the message buffer's capacity. The shard
    /// bounds the sum over its connections.
    pub fn held_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| {
            std::mem::size_of::<Partial>() + p.message.as_ref().map_or(0, |m| m.data.capacity())
        })
    }

    /// Feeds bytes just read from the socket, unmasking them in place, and
    /// calls `on_message` for each complete message in order. When
    /// `on_message` returns false, decoding stops (the connection is closing),
    /// the rest is dropped, and the decoder is reset; it is also reset after
    /// an error, after which the connection must be closed.
    ///
    /// `deflate`: the connection negotiated permessage-deflate (the same value
    /// on every call of a connection); compressed messages then arrive as
    /// [`WsMessage::Compressed`], bounded by `max_message_bytes` compressed.
    pub fn feed(
        &mut self,
        input: &mut [u8],
        max_message_bytes: usize,
        deflate: bool,
        mut on_message: impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<(), ProtocolViolation> {
        let rules = Rules {
            max: max_message_bytes,
            deflate,
        };
        let outcome = self.decode(input, rules, &mut on_message);
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
        rules: Rules,
        on: &mut impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<bool, ProtocolViolation> {
        let mut pos = 0;
        loop {
            if let Some(p) = self.partial.as_deref_mut().filter(|p| p.frame.is_some()) {
                let (n, go) = p.resume_payload(&mut input[pos..], rules, on)?;
                pos += n;
                if !go || pos == input.len() {
                    return Ok(go);
                }
            }
            let Some((head, head_len)) = self.next_head(&input[pos..], rules)? else {
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
            if !self.whole_frame(head, payload, rules, on)? {
                return Ok(false);
            }
        }
    }

    /// The next header, completing a split one; `None` (and the bytes kept)
    /// when it is incomplete.
    fn next_head(
        &mut self,
        rest: &[u8],
        rules: Rules,
    ) -> Result<Option<(Head, usize)>, ProtocolViolation> {
        match self.partial.as_deref_mut() {
            Some(p) if p.head_len > 0 => p.resume_head(rest, rules),
            _ if rest.is_empty() => Ok(None),
            _ => {
                let parsed = parse_head(rest, self.message_len(), rules)?;
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
        rules: Rules,
        on: &mut impl FnMut(WsMessage<'_>) -> bool,
    ) -> Result<bool, ProtocolViolation> {
        if is_control(head.kind) {
            return Ok(on(control_message(head.kind, payload)?));
        }
        let text = head.kind == Kind::Text;
        if head.fin && head.kind != Kind::Continue {
            return Ok(on(data_message(text, head.compressed, payload)?));
        }
        let p = self.partial_mut();
        if head.kind != Kind::Continue {
            p.message = Some(Message::new(text, head.compressed));
        }
        p.append(payload, rules.max, head.fin)?;
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

mod partial;
mod rules;
use rules::{control_message, data_message, is_control, parse_head};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_deflate;
