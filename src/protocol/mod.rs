//! The I/O-free protocol core: bytes and events in, bytes and actions out.
//! Depends on nothing of the server.

pub mod channel;
pub mod close;
pub mod deflate;
pub mod envelope;
pub mod frame;
pub mod handshake;
pub mod user_id;

pub use user_id::{is_valid_user_id, UserId, MAX_USER_ID_BYTES};
