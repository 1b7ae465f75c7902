//! [`Inflater`]: a compressed client message back into bytes, bounded.
//!
//! The output never grows past `max_message_bytes + 1`: reaching that one
//! byte too many proves the message too big, and inflating stops there, so a
//! zip bomb (deflate expands up to ~1000x) costs at most the bound. The
//! output goes into a buffer the caller owns (the shard's pooled one); the
//! decompressor itself is one per shard, reset per message (the client
//! agreed to `client_no_context_takeover`).

use flate2::{Decompress, FlushDecompress, Status};

use super::compress::SYNC_TAIL;
use crate::protocol::frame::{close, ProtocolViolation, WsMessage};

/// First output chunk: enough for typical JSON at once.
const FIRST_CHUNK: usize = 4096;

/// Why a compressed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// It inflates past `max_message_bytes` (close 1009).
    #[error("message too big")]
    TooBig,
    /// Not a valid deflate stream, or one referring to an earlier message
    /// (the client agreed not to), or data after its final block (close 1007).
    #[error("invalid compressed data")]
    Corrupt,
}

impl From<InflateError> for ProtocolViolation {
    fn from(e: InflateError) -> Self {
        let (code, reason) = match e {
            InflateError::TooBig => (close::TOO_BIG, "message too big"),
            InflateError::Corrupt => (close::INVALID_UTF8, "invalid compressed data"),
        };
        ProtocolViolation { code, reason }
    }
}

/// A shard's decompressor: a raw inflater with a 15-bit window, which
/// decodes whatever window (8..=15) a client compresses with.
pub struct Inflater {
    inner: Decompress,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// An inflater (its 32 KiB window is allocated on first use).
    pub fn new() -> Self {
        Self {
            inner: Decompress::new_with_window_bits(false, 15),
        }
    }

    /// Inflates one message's payload (as received, without the tail) into
    /// `out`, which is cleared first; fails once the output would exceed
    /// `max` bytes, without inflating the rest.
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        max: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        out.clear();
        self.inner.reset(false);
        let limit = max.saturating_add(1);
        let mut filled = 0;
        let (mut input, mut tail) = (compressed, &SYNC_TAIL[..]);
        loop {
            if filled == out.len() {
                if filled >= limit {
                    return Err(InflateError::TooBig);
                }
                // Zero-filled rather than written through spare capacity:
                // no unsafe, and the fill costs far less than the inflate.
                let grow = filled
                    .max(FIRST_CHUNK)
                    .max(compressed.len().saturating_mul(4));
                let len = filled.saturating_add(grow).min(limit);
                // Exact: a fresh buffer never holds more than the bound.
                out.reserve_exact(len - filled);
                out.resize(len, 0);
            }
            let ended_input = input.is_empty();
            let (src, flush) = if ended_input {
                (tail, FlushDecompress::Sync)
            } else {
                (input, FlushDecompress::None)
            };
            let (in_before, out_before) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress(src, &mut out[filled..], flush)
                .map_err(|_| InflateError::Corrupt)?;
            let used = (self.inner.total_in() - in_before) as usize;
            let made = (self.inner.total_out() - out_before) as usize;
            filled += made;
            if ended_input {
                tail = &tail[used..];
            } else {
                input = &input[used..];
            }
            let room_left = filled < out.len();
            match status {
                // A final block (BFINAL): the tail is not needed, nothing may follow.
                Status::StreamEnd if !input.is_empty() => return Err(InflateError::Corrupt),
                Status::StreamEnd => break,
                // All input in and room left: nothing is pending.
                _ if input.is_empty() && tail.is_empty() && room_left => break,
                // Room and input, yet no progress: a stream that cannot go on.
                _ if used == 0 && made == 0 && room_left => return Err(InflateError::Corrupt),
                _ => {}
            }
        }
        if filled > max {
            return Err(InflateError::TooBig);
        }
        out.truncate(filled);
        Ok(())
    }

    /// Compressed bytes taken by the last [`Inflater::inflate`].
    #[cfg(test)]
    pub(super) fn total_in_for_tests(&self) -> u64 {
        self.inner.total_in()
    }

    /// Inflates a `WsMessage::Compressed` message into `out` and returns it
    /// as the message it stands for: `Text` (checked as UTF-8 now, close 1007
    /// otherwise) or `Binary`.
    pub fn inflate_message<'o>(
        &mut self,
        text: bool,
        compressed: &[u8],
        max: usize,
        out: &'o mut Vec<u8>,
    ) -> Result<WsMessage<'o>, ProtocolViolation> {
        self.inflate(compressed, max, out)?;
        if !text {
            return Ok(WsMessage::Binary(out));
        }
        std::str::from_utf8(out)
            .map(WsMessage::Text)
            .map_err(|_| ProtocolViolation {
                code: close::INVALID_UTF8,
                reason: "invalid UTF-8",
            })
    }
}
