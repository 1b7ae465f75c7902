//! The I/O-free protocol core: bytes and events in, bytes and actions out.

pub mod envelope;
pub mod envelope_encode;
pub mod frame;
pub mod frame_encode;
pub mod handshake;
