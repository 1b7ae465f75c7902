//! Choosing a permessage-deflate offer (RFC 7692 §5, §7.1) and answering it.
//!
//! The client may offer several configurations in preference order; we take
//! the first we can honour. Our answer always carries
//! `server_no_context_takeover` (§7.1.1.1: allowed even when not asked for)
//! and `client_no_context_takeover` (§7.1.1.2: the server may require it):
//! that is what lets one compressor and one decompressor per shard serve
//! every connection.
//!
//! Window sizes: `client_max_window_bits` (with or without a value) only
//! tells what the client can do; our decompressor has a 15-bit window, which
//! decodes any client window, so we never answer with it (§7.1.2.2 allows
//! leaving it out). `server_max_window_bits=N` limits the window *we*
//! compress with: we compress with exactly N and say so, except N = 8, which
//! zlib cannot produce for a raw stream (and 9 would be undecodable for
//! that client): such an offer is declined.

use super::header::{extensions, Extension, Value};
use super::WindowBits;

/// The extension name.
const PERMESSAGE_DEFLATE: &[u8] = b"permessage-deflate";

/// What was agreed with one client: one byte, kept in the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Agreement {
    /// Largest window our compressor may use for this client.
    server_window: WindowBits,
}

impl Agreement {
    /// Largest LZ77 window the server may use when compressing for this
    /// client: pass it to [`super::Deflater::compress_frame`].
    pub const fn server_window(self) -> WindowBits {
        self.server_window
    }

    /// The `Sec-WebSocket-Extensions` value of our 101 answer.
    pub fn response_value(self) -> String {
        let mut value = String::from(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        );
        // 15 is the default: saying it adds nothing.
        if self.server_window != WindowBits::MAX {
            value.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_window.get()
            ));
        }
        value
    }
}

/// Why an offer is declined (RFC 7692 §5: the server must decline, not fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Decline {
    /// The element does not follow the header grammar.
    #[error("malformed offer")]
    Malformed,
    /// Another extension (x-webkit-deflate-frame, ...).
    #[error("not permessage-deflate")]
    OtherExtension,
    /// A parameter RFC 7692 does not define for offers.
    #[error("unknown parameter")]
    UnknownParameter,
    /// A parameter given twice.
    #[error("duplicate parameter")]
    DuplicateParameter,
    /// A value where none is allowed, none where one is required, or not an
    /// integer 8..=15 without leading zeros.
    #[error("invalid parameter value")]
    InvalidValue,
    /// `server_max_window_bits=8`: zlib cannot compress a raw stream that small.
    #[error("server window of 8 bits unsupported")]
    UnsupportedWindow,
}

/// The first offer in one `Sec-WebSocket-Extensions` value that we can
/// honour. Several header lines: call it on each in order and keep the
/// first `Some`.
pub fn negotiate(header_value: &[u8]) -> Option<Agreement> {
    extensions(header_value).find_map(|e| e.ok().and_then(|e| accept(&e).ok()))
}

/// Whether one offer can be accepted, and with what.
pub fn accept(offer: &Extension<'_>) -> Result<Agreement, Decline> {
    if !offer.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
        return Err(Decline::OtherExtension);
    }
    // Bit i: the i-th known parameter was seen (duplicates are declined).
    let mut seen = 0u8;
    let mut server_window = WindowBits::MAX;
    for param in offer.params() {
        let param = param.map_err(|_| Decline::Malformed)?;
        let (bit, value) = match known(param.name).ok_or(Decline::UnknownParameter)? {
            Known::ServerNoContextTakeover | Known::ClientNoContextTakeover
                if param.value.is_some() =>
            {
                return Err(Decline::InvalidValue)
            }
            Known::ServerNoContextTakeover => (0, None),
            Known::ClientNoContextTakeover => (1, None),
            Known::ServerMaxWindowBits => {
                let bits = param
                    .value
                    .and_then(window_bits)
                    .ok_or(Decline::InvalidValue)?;
                (2, Some(bits))
            }
            Known::ClientMaxWindowBits => {
                // Optional value, checked but not needed (see the module doc).
                if param.value.is_some_and(|v| window_bits(v).is_none()) {
                    return Err(Decline::InvalidValue);
                }
                (3, None)
            }
        };
        if seen & (1 << bit) != 0 {
            return Err(Decline::DuplicateParameter);
        }
        seen |= 1 << bit;
        if let Some(bits) = value {
            server_window = WindowBits::new(bits).ok_or(Decline::UnsupportedWindow)?;
        }
    }
    Ok(Agreement { server_window })
}

/// The parameters RFC 7692 defines for an offer.
enum Known {
    ServerNoContextTakeover,
    ClientNoContextTakeover,
    ServerMaxWindowBits,
    ClientMaxWindowBits,
}

fn known(name: &[u8]) -> Option<Known> {
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    Some(if is("server_no_context_takeover") {
        Known::ServerNoContextTakeover
    } else if is("client_no_context_takeover") {
        Known::ClientNoContextTakeover
    } else if is("server_max_window_bits") {
        Known::ServerMaxWindowBits
    } else if is("client_max_window_bits") {
        Known::ClientMaxWindowBits
    } else {
        return None;
    })
}

/// A window-bits value: `1*DIGIT` without leading zeros, 8..=15 (§7.1.2).
fn window_bits(value: Value<'_>) -> Option<u8> {
    let mut n: u8 = 0;
    let mut len = 0;
    for b in value.bytes() {
        len += 1;
        // "8".."15" are at most two digits; longer is out of range anyway.
        if !b.is_ascii_digit() || len > 2 || (len == 2 && n == 0) {
            return None;
        }
        n = n * 10 + (b - b'0');
    }
    (8..=15).contains(&n).then_some(n)
}
