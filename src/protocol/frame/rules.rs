//! The rules of RFC 6455 that a single header or control payload decides:
//! header checks (masking, reserved bits and opcodes, control frame limits,
//! message size) and close-frame validation. Split from `frame` to keep the
//! decoder's state machine on its own.

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::{
    close, violation, CloseFrameRef, Head, Kind, ProtocolViolation, Rules, WsMessage, INVALID_UTF8,
    MAX_CONTROL,
};

/// Parses and checks a header; `so_far` is the length of the message being
/// assembled, if any. `None` when the header is incomplete.
pub(super) fn parse_head(
    bytes: &[u8],
    so_far: Option<usize>,
    rules: Rules,
) -> Result<Option<(Head, usize)>, ProtocolViolation> {
    let mut cursor = Cursor::new(bytes);
    let parsed = FrameHeader::parse(&mut cursor)
        .map_err(|_| violation(close::PROTOCOL, "reserved opcode"))?;
    let Some((header, len)) = parsed else {
        return Ok(None);
    };
    let head = check_head(&header, len, so_far, rules)?;
    Ok(Some((head, cursor.position() as usize)))
}

/// Enforces what the header alone tells, before any payload is buffered.
pub(super) fn check_head(
    h: &FrameHeader,
    len: u64,
    so_far: Option<usize>,
    rules: Rules,
) -> Result<Head, ProtocolViolation> {
    let max = rules.max;
    if h.rsv2 || h.rsv3 || (h.rsv1 && !rules.deflate) {
        return Err(violation(close::PROTOCOL, "reserved bits set"));
    }
    let Some(mask) = h.mask else {
        return Err(violation(close::PROTOCOL, "client frames must be masked"));
    };
    let kind = kind_of(h.opcode)?;
    // RFC 7692 §6.1: RSV1 marks a compressed message on its first frame only.
    if h.rsv1 && !matches!(kind, Kind::Text | Kind::Binary) {
        return Err(violation(
            close::PROTOCOL,
            "RSV1 on a control or continuation frame",
        ));
    }
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
            compressed: h.rsv1,
            mask,
            len: len as usize,
        }),
    }
}

pub(super) fn kind_of(opcode: OpCode) -> Result<Kind, ProtocolViolation> {
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

pub(super) fn is_control(kind: Kind) -> bool {
    matches!(kind, Kind::Ping | Kind::Pong | Kind::Close)
}

/// A complete data message from its (unmasked) payload; a compressed one is
/// handed out as is (UTF-8 is checked after inflating).
pub(super) fn data_message(
    text: bool,
    compressed: bool,
    payload: &[u8],
) -> Result<WsMessage<'_>, ProtocolViolation> {
    if compressed {
        return Ok(WsMessage::Compressed {
            text,
            data: payload,
        });
    }
    if !text {
        return Ok(WsMessage::Binary(payload));
    }
    std::str::from_utf8(payload)
        .map(WsMessage::Text)
        .map_err(|_| INVALID_UTF8)
}

/// A control message from its (unmasked) payload.
pub(super) fn control_message(
    kind: Kind,
    payload: &[u8],
) -> Result<WsMessage<'_>, ProtocolViolation> {
    match kind {
        Kind::Ping => Ok(WsMessage::Ping(payload)),
        Kind::Pong => Ok(WsMessage::Pong(payload)),
        _ => parse_close(payload).map(WsMessage::Close),
    }
}

/// Validates a close payload: empty, or a code allowed on the wire and a UTF-8 reason.
pub(super) fn parse_close(payload: &[u8]) -> Result<Option<CloseFrameRef<'_>>, ProtocolViolation> {
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
pub(super) fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
