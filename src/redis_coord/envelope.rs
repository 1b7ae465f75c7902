//! The internal envelope instances exchange over Redis pub/sub.
//!
//! Binary, versioned and small; the WebSocket frame the origin built once is
//! carried as is (Redis values are binary-safe), so a receiving instance
//! hands the very bytes to its shards without re-encoding any JSON.
//!
//! Layout (integers big-endian; `str16` = `u16` length + UTF-8 bytes):
//!
//! ```text
//! u8 version (= 1) | u8 kind | str16 origin server id | body
//! kind 1 direct:    u64 token | u64 sent_at_us | str16 user | frame (rest)
//! kind 2 confirm:   u64 token | u32 connections
//! kind 3 broadcast: u64 sent_at_us | frame (rest)
//! kind 4 user op:   u64 token | str16 user | u8 op | str16 argument
//!                   (op 1 disconnect: reason; 2 subscribe, 3 unsubscribe: channel)
//! ```
//!
//! `token` of a direct is the origin coordinator's key for the request
//! (0: the sender wants no confirmation); a confirm echoes it. Decoding
//! never panics: anything short, unknown or invalid is an
//! [`EnvelopeError`], counted and dropped by the caller. A receiver ignores
//! envelopes of a newer version, so the version is bumped only for changes
//! old instances must not misread.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::coordinator::UserOp;
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

/// The version this build writes and reads.
pub const VERSION: u8 = 1;

/// Kind byte of a direct message.
const KIND_DIRECT: u8 = 1;
/// Kind byte of a delivery confirmation.
const KIND_CONFIRM: u8 = 2;
/// Kind byte of a broadcast.
const KIND_BROADCAST: u8 = 3;
/// Kind byte of an operation on a user's connections (server API).
const KIND_USER_OP: u8 = 4;

/// One decoded message between instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// A direct message for `user`'s connections on the receiving instance.
    Direct {
        /// Server id of the sending instance (where the confirm goes).
        origin: String,
        /// The origin's request key; 0 when no confirmation is wanted.
        token: u64,
        /// When the sender's server received the message (delivery latency).
        sent_at_us: u64,
        /// The receiver.
        user: UserId,
        /// The complete server-to-client WebSocket frame.
        frame: Bytes,
    },
    /// How many connections took a direct message (the answer to a direct).
    Confirm {
        /// Server id of the confirming instance (one confirm per instance counts).
        origin: String,
        /// The origin's request key, echoed.
        token: u64,
        /// Receiver connections on the confirming instance that accepted it.
        connections: u32,
    },
    /// An operation on `user`'s connections on the receiving instance.
    UserOp {
        /// Server id of the sending instance (where the confirm goes).
        origin: String,
        /// The origin's request key; 0 when no confirmation is wanted.
        token: u64,
        /// The user.
        user: UserId,
        /// The operation.
        op: UserOp,
    },
    /// A broadcast for every connection on every other instance.
    Broadcast {
        /// Server id of the sending instance (it skips its own broadcasts).
        origin: String,
        /// When the sender's server received the message.
        sent_at_us: u64,
        /// The complete server-to-client WebSocket frame.
        frame: Bytes,
    },
}

/// Why a payload is not an envelope this build understands.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Shorter than its fields say.
    #[error("envelope truncated")]
    Truncated,
    /// Written by a newer (or unknown) version.
    #[error("unsupported envelope version {0}")]
    Version(u8),
    /// Unknown kind byte.
    #[error("unknown envelope kind {0}")]
    Kind(u8),
    /// A string field is not UTF-8.
    #[error("envelope string is not UTF-8")]
    Utf8,
    /// The receiver is not a valid user id.
    #[error("envelope user id is invalid")]
    UserId,
    /// An unknown operation, or its channel is invalid.
    #[error("envelope operation is invalid")]
    Op,
    /// Bytes left after a fixed-size body.
    #[error("trailing bytes after envelope")]
    Trailing,
}

/// Encodes a direct message.
pub fn encode_direct(origin: &str, token: u64, sent_at_us: u64, user: &str, frame: &[u8]) -> Bytes {
    let mut out = header(KIND_DIRECT, origin, 20 + user.len() + frame.len());
    out.put_u64(token);
    out.put_u64(sent_at_us);
    put_str16(&mut out, user);
    out.put_slice(frame);
    out.freeze()
}

/// Encodes an operation on a user's connections.
pub fn encode_user_op(origin: &str, token: u64, user: &str, op: &UserOp) -> Bytes {
    let (code, arg): (u8, &str) = match op {
        UserOp::Disconnect(reason) => (1, reason),
        UserOp::Subscribe(channel) => (2, channel),
        UserOp::Unsubscribe(channel) => (3, channel),
    };
    let mut out = header(KIND_USER_OP, origin, 13 + user.len() + arg.len());
    out.put_u64(token);
    put_str16(&mut out, user);
    out.put_u8(code);
    put_str16(&mut out, arg);
    out.freeze()
}

/// Encodes a confirmation.
pub fn encode_confirm(origin: &str, token: u64, connections: u32) -> Bytes {
    let mut out = header(KIND_CONFIRM, origin, 12);
    out.put_u64(token);
    out.put_u32(connections);
    out.freeze()
}

/// Encodes a broadcast.
pub fn encode_broadcast(origin: &str, sent_at_us: u64, frame: &[u8]) -> Bytes {
    let mut out = header(KIND_BROADCAST, origin, 8 + frame.len());
    out.put_u64(sent_at_us);
    out.put_slice(frame);
    out.freeze()
}

/// Decodes a payload; `frame` fields share `payload`'s memory.
pub fn decode(payload: Bytes) -> Result<Envelope, EnvelopeError> {
    let mut buf = payload;
    let version = get_u8(&mut buf)?;
    if version != VERSION {
        return Err(EnvelopeError::Version(version));
    }
    let kind = get_u8(&mut buf)?;
    let origin = get_str16(&mut buf)?;
    match kind {
        KIND_DIRECT => {
            let token = get_u64(&mut buf)?;
            let sent_at_us = get_u64(&mut buf)?;
            let user = UserId::parse(&get_str16(&mut buf)?).ok_or(EnvelopeError::UserId)?;
            Ok(Envelope::Direct {
                origin,
                token,
                sent_at_us,
                user,
                frame: buf,
            })
        }
        KIND_CONFIRM => {
            let token = get_u64(&mut buf)?;
            let connections = get_u32(&mut buf)?;
            if buf.has_remaining() {
                return Err(EnvelopeError::Trailing);
            }
            Ok(Envelope::Confirm {
                origin,
                token,
                connections,
            })
        }
        KIND_USER_OP => {
            let token = get_u64(&mut buf)?;
            let user = UserId::parse(&get_str16(&mut buf)?).ok_or(EnvelopeError::UserId)?;
            let code = get_u8(&mut buf)?;
            let arg = get_str16(&mut buf)?;
            if buf.has_remaining() {
                return Err(EnvelopeError::Trailing);
            }
            let channel = || ChannelName::parse(&arg).ok_or(EnvelopeError::Op);
            let op = match code {
                1 => UserOp::Disconnect(arg.as_str().into()),
                2 => UserOp::Subscribe(channel()?),
                3 => UserOp::Unsubscribe(channel()?),
                _ => return Err(EnvelopeError::Op),
            };
            Ok(Envelope::UserOp {
                origin,
                token,
                user,
                op,
            })
        }
        KIND_BROADCAST => {
            let sent_at_us = get_u64(&mut buf)?;
            Ok(Envelope::Broadcast {
                origin,
                sent_at_us,
                frame: buf,
            })
        }
        other => Err(EnvelopeError::Kind(other)),
    }
}

fn header(kind: u8, origin: &str, body: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(4 + origin.len() + body);
    out.put_u8(VERSION);
    out.put_u8(kind);
    put_str16(&mut out, origin);
    out
}

/// Writes a `u16`-length-prefixed string. Server and user ids are short
/// (validated elsewhere); a longer string is cut at 65,535 bytes rather
/// than corrupting the layout (a cut id then fails validation on decode).
fn put_str16(out: &mut BytesMut, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(usize::from(u16::MAX))];
    out.put_u16(bytes.len() as u16);
    out.put_slice(bytes);
}

fn get_u8(buf: &mut Bytes) -> Result<u8, EnvelopeError> {
    buf.try_get_u8().map_err(|_| EnvelopeError::Truncated)
}

fn get_u32(buf: &mut Bytes) -> Result<u32, EnvelopeError> {
    buf.try_get_u32().map_err(|_| EnvelopeError::Truncated)
}

fn get_u64(buf: &mut Bytes) -> Result<u64, EnvelopeError> {
    buf.try_get_u64().map_err(|_| EnvelopeError::Truncated)
}

fn get_str16(buf: &mut Bytes) -> Result<String, EnvelopeError> {
    let len = usize::from(buf.try_get_u16().map_err(|_| EnvelopeError::Truncated)?);
    if buf.remaining() < len {
        return Err(EnvelopeError::Truncated);
    }
    let raw = buf.split_to(len);
    String::from_utf8(raw.to_vec()).map_err(|_| EnvelopeError::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn direct_round_trips_with_binary_frame() {
        let frame = [0x81u8, 3, 0, 0xff, b'\n'];
        let bytes = encode_direct("s-1", 42, 7, "bob", &frame);
        let expected = Envelope::Direct {
            origin: "s-1".into(),
            token: 42,
            sent_at_us: 7,
            user: user("bob"),
            frame: Bytes::copy_from_slice(&frame),
        };
        assert_eq!(decode(bytes).unwrap(), expected);
    }

    #[test]
    fn confirm_and_broadcast_round_trip() {
        let c = decode(encode_confirm("s2", u64::MAX, 3)).unwrap();
        let want = Envelope::Confirm {
            origin: "s2".into(),
            token: u64::MAX,
            connections: 3,
        };
        assert_eq!(c, want);
        let b = decode(encode_broadcast("s3", 9, b"")).unwrap();
        let want = Envelope::Broadcast {
            origin: "s3".into(),
            sent_at_us: 9,
            frame: Bytes::new(),
        };
        assert_eq!(b, want);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = encode_direct("origin", 1, 2, "carol", b"");
        for cut in 0..full.len() {
            assert!(decode(full.slice(..cut)).is_err(), "cut at {cut}");
        }
        let full = encode_confirm("o", 1, 2);
        for cut in 0..full.len() {
            assert_eq!(decode(full.slice(..cut)), Err(EnvelopeError::Truncated));
        }
    }

    #[test]
    fn foreign_payloads_are_refused() {
        assert_eq!(
            decode(Bytes::from_static(b"{\"type\":1}")),
            Err(EnvelopeError::Version(b'{'))
        );
        assert_eq!(
            decode(Bytes::from_static(&[1, 9, 0, 0])),
            Err(EnvelopeError::Kind(9))
        );
        let bad_utf8 = Bytes::from_static(&[1, 2, 0, 1, 0xff]);
        assert_eq!(decode(bad_utf8), Err(EnvelopeError::Utf8));
        let mut trailing = encode_confirm("o", 1, 2).to_vec();
        trailing.push(0);
        assert_eq!(decode(trailing.into()), Err(EnvelopeError::Trailing));
    }

    #[test]
    fn user_ops_round_trip_and_bad_ones_are_refused() {
        let chan = ChannelName::parse("room:1").unwrap();
        for op in [
            UserOp::Disconnect("banned".into()),
            UserOp::Subscribe(chan.clone()),
            UserOp::Unsubscribe(chan),
        ] {
            let got = decode(encode_user_op("s1", 5, "bob", &op)).unwrap();
            let want = Envelope::UserOp {
                origin: "s1".into(),
                token: 5,
                user: user("bob"),
                op,
            };
            assert_eq!(got, want);
        }
        let bad = encode_user_op("s1", 5, "bob", &UserOp::Disconnect("a b".into()));
        let mut bytes = bad.to_vec();
        let code_at = bytes.len() - 2 - 3 - 1;
        bytes[code_at] = 2;
        assert_eq!(
            decode(bytes.into()),
            Err(EnvelopeError::Op),
            "not a channel"
        );
    }

    #[test]
    fn invalid_receiver_is_refused() {
        let bytes = encode_direct("o", 1, 2, "not valid!", b"x");
        assert_eq!(decode(bytes), Err(EnvelopeError::UserId));
    }
}
