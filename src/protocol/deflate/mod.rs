//! permessage-deflate (RFC 7692) without memory per connection.
//!
//! The server always answers `server_no_context_takeover;
//! client_no_context_takeover`: every message is compressed and inflated on
//! its own, so no LZ77 window survives between messages and a connection
//! keeps no zlib state. A shard holds one [`Deflater`] and one [`Inflater`]
//! and reuses them (reset per message) for all its connections; what a
//! connection remembers is its [`Agreement`], one byte.
//!
//! I/O-free like the rest of `protocol`: header bytes in, an agreement and a
//! header value out; payload in, frame or inflated bytes out.
//!
//! # Layout
//! - `header`: the RFC 6455 §9.1 grammar of `Sec-WebSocket-Extensions`
//!   (offers, parameters, quoted values), borrowed, no allocation.
//! - `negotiate`: which offer to accept ([`negotiate`]) and the answer
//!   ([`Agreement::response_value`]); offers we cannot honour are declined.
//! - `compress`: [`Deflater`], a message into a complete compressed frame.
//! - `inflate`: [`Inflater`], a compressed message into the caller's buffer,
//!   bounded by `max_message_bytes` (zip bombs stop at the bound).
//!
//! # Using it (the shard)
//! 1. Handshake: [`crate::protocol::handshake::Request::deflate`] is the
//!    first acceptable offer; when compression is on, keep it in the
//!    connection and pass it to `upgrade_response`, which writes the
//!    `Sec-WebSocket-Extensions` answer. When off, pass `None`: declined.
//! 2. Reading: `FrameDecoder::feed(.., deflate = agreement.is_some(), ..)`;
//!    a compressed message arrives as `WsMessage::Compressed`, which
//!    [`Inflater::inflate_message`] turns into `Text` (UTF-8 checked) or
//!    `Binary`, or a violation (1009 too big, 1007 corrupt or not UTF-8).
//! 3. Writing: [`Deflater::compress_frame`] (or, from an already built
//!    plain frame, [`Deflater::compress_plain_frame`]) once per message and
//!    window size, shared by every receiver with that agreement; `None`
//!    means send the plain frame (small or incompressible payload).

mod compress;
mod header;
mod inflate;
mod negotiate;

#[cfg(test)]
mod tests_codec;
#[cfg(test)]
mod tests_negotiate;

use std::num::NonZeroU8;

pub use compress::Deflater;
pub use header::{extensions, Extension, Malformed, Param, Value};
pub use inflate::{InflateError, Inflater};
pub use negotiate::{accept, negotiate, Agreement, Decline};

/// The base-2 logarithm of an LZ77 window, 9 to 15: what zlib can produce
/// for a raw deflate stream (it refuses 8 without the zlib wrapper, and a
/// window of 8 cannot be emulated with 9: the client could not decode it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowBits(NonZeroU8);

impl WindowBits {
    /// The smallest window we can compress with.
    pub const MIN: WindowBits = WindowBits(NonZeroU8::new(9).unwrap());
    /// The largest window (32 KiB), the default of RFC 7692.
    pub const MAX: WindowBits = WindowBits(NonZeroU8::new(15).unwrap());

    /// `bits` if it is within 9..=15.
    pub const fn new(bits: u8) -> Option<WindowBits> {
        match NonZeroU8::new(bits) {
            Some(nz) if bits >= Self::MIN.get() && bits <= Self::MAX.get() => Some(WindowBits(nz)),
            _ => None,
        }
    }

    /// The value, 9..=15.
    pub const fn get(self) -> u8 {
        self.0.get()
    }

    /// 0..=6: where a per-window table keeps this size.
    const fn index(self) -> usize {
        (self.get() - Self::MIN.get()) as usize
    }
}

/// Window sizes we compress with: `WindowBits::MIN..=WindowBits::MAX`.
const WINDOW_SIZES: usize = WindowBits::MAX.index() + 1;

/// How the shard compresses (`COMPRESSION_*` settings; present only when
/// `COMPRESSION=on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Payloads shorter than this go out uncompressed (`COMPRESSION_MIN_BYTES`).
    pub min_bytes: usize,
    /// zlib level 1..=9 (`COMPRESSION_LEVEL`).
    pub level: u32,
}

impl DeflateConfig {
    /// `COMPRESSION_MIN_BYTES` default: below ~256 bytes the deflate block
    /// header and Huffman tables eat most of the gain.
    pub const DEFAULT_MIN_BYTES: usize = 256;
    /// `COMPRESSION_LEVEL` default. On ~1 KB dashboard JSON (zlib-rs, see
    /// tuning/BENCHMARKS.md) level 6 sends 39% of the bytes and level 1 53%
    /// (static Huffman codes only) for ~2.5x less CPU. A broadcast is
    /// compressed once per shard and sent many times, so bytes win.
    pub const DEFAULT_LEVEL: u32 = 6;
    /// Accepted levels: 0 (stored) would only add framing.
    pub const LEVELS: std::ops::RangeInclusive<u32> = 1..=9;
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            min_bytes: Self::DEFAULT_MIN_BYTES,
            level: Self::DEFAULT_LEVEL,
        }
    }
}
