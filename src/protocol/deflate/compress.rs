//! [`Deflater`]: one message in, one complete compressed frame out.
//!
//! No context takeover means every message starts from an empty window, so a
//! single compressor per window size, reset before each message, serves all
//! of a shard's connections. RFC 7692 §7.2.1: the message is compressed with
//! a sync flush and the 4-byte empty stored block it ends with
//! (`00 00 ff ff`) is cut; the receiver appends it back before inflating.

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

use super::{Agreement, DeflateConfig, WINDOW_SIZES};
use crate::protocol::frame::{frame_from_reserved, Opcode, HEADER_ROOM};

/// What a sync flush ends with, cut from every compressed message.
pub(super) const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A shard's compressors: at most one per window size in use, each made on
/// first need (about 300 KiB each for zlib-rs at 15 bits); browsers never
/// ask for a smaller window, so in practice there is one.
pub struct Deflater {
    config: DeflateConfig,
    by_window: [Option<Compress>; WINDOW_SIZES],
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let made: Vec<usize> = (0..WINDOW_SIZES)
            .filter(|&i| self.by_window[i].is_some())
            .map(|i| i + 9)
            .collect();
        f.debug_struct("Deflater")
            .field("config", &self.config)
            .field("windows", &made)
            .finish()
    }
}

impl Deflater {
    /// A deflater that allocates nothing until its first message.
    pub fn new(config: DeflateConfig) -> Self {
        Self {
            config,
            by_window: Default::default(),
        }
    }

    /// The settings it compresses with.
    pub fn config(&self) -> DeflateConfig {
        self.config
    }

    /// A complete server frame (FIN, RSV1, `opcode`) carrying `payload`
    /// compressed for a client with `agreement`. `None` means send the plain
    /// frame instead (permessage-deflate allows both): the payload is under
    /// `min_bytes`, compressing does not make it smaller, or `opcode` is a
    /// control frame (never compressed, RFC 7692 §6.1).
    ///
    /// The frame depends only on the payload and the agreement's window: one
    /// frame serves every receiver with the same window.
    pub fn compress_frame(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        agreement: Agreement,
    ) -> Option<Bytes> {
        if payload.len() < self.config.min_bytes {
            return None;
        }
        // Worth sending only if smaller than the plain payload, so the output
        // gets exactly that much room (plus the tail to cut): running out of
        // it ends the attempt early on incompressible data.
        self.compress_within(opcode, payload, agreement, payload.len())
    }

    /// [`Deflater::compress_frame`] whatever the size and the gain: every
    /// text or binary payload is compressed, even when that makes it larger
    /// (by at most a few bytes per 16 KiB). For the echo path, which exists
    /// for conformance suites: they then exercise the codec on every
    /// message. `None` only for control frames.
    pub fn compress_frame_always(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        agreement: Agreement,
    ) -> Option<Bytes> {
        // zlib falls back to stored blocks (5 bytes of header per block of at
        // least a few KiB) and the sync flush adds 5: this bound always
        // leaves room, so the attempt always completes.
        let room = payload.len() + payload.len() / 128 + 64;
        self.compress_within(opcode, payload, agreement, room)
    }

    /// Compresses into at most `room` bytes of deflate output (the tail
    /// excluded); `None` if it does not fit or `opcode` is a control frame.
    fn compress_within(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        agreement: Agreement,
        room: usize,
    ) -> Option<Bytes> {
        if !matches!(opcode, Opcode::Text | Opcode::Binary) {
            return None;
        }
        let window = agreement.server_window();
        let level = Compression::new(self.config.level);
        let z = self.by_window[window.index()]
            .get_or_insert_with(|| Compress::new_with_window_bits(level, false, window.get()));
        // Also forgets a message abandoned half-way below.
        z.reset();
        let room = room + SYNC_TAIL.len();
        let mut buf = Vec::with_capacity(HEADER_ROOM + room);
        buf.resize(HEADER_ROOM, 0);
        let status = z.compress_vec(payload, &mut buf, FlushCompress::Sync);
        // Done only when all input went in and room is left: with room left a
        // sync flush has written everything (zlib's contract).
        let complete =
            status.is_ok() && z.total_in() == payload.len() as u64 && buf.len() < buf.capacity();
        if !complete || !buf.ends_with(&SYNC_TAIL) {
            return None;
        }
        buf.truncate(buf.len() - SYNC_TAIL.len());
        Some(frame_from_reserved(buf, opcode, true))
    }

    /// [`Deflater::compress_frame`] for a plain frame the server already
    /// built (FIN, unmasked, as `encode_frame` and `text_frame_with` make
    /// them): the compressed twin of a queued frame. `None` also for
    /// anything that is not such a text or binary frame.
    pub fn compress_plain_frame(&mut self, frame: &[u8], agreement: Agreement) -> Option<Bytes> {
        let (&first, rest) = frame.split_first()?;
        let opcode = match first {
            0x81 => Opcode::Text,
            0x82 => Opcode::Binary,
            _ => return None,
        };
        let (&len7, rest) = rest.split_first()?;
        let header = match len7 {
            0..=125 => 0,
            126 => 2,
            127 => 8,
            _ => return None, // masked: not a server frame
        };
        let payload = rest.get(header..)?;
        let len = match header {
            0 => usize::from(len7),
            _ => rest[..header]
                .iter()
                .fold(0usize, |n, &b| n.wrapping_shl(8) | usize::from(b)),
        };
        if len != payload.len() {
            return None;
        }
        self.compress_frame(opcode, payload, agreement)
    }
}
