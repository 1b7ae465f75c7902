//! websocket-app: a thread-per-core WebSocket messaging server.
//!
//! # Layout
//! (filled in as modules land)

pub mod auth;
pub mod config;
pub mod protocol;
