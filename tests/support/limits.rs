//! Helpers for the abuse-limit tests (issue 17): receivers that read at a
//! pace the test sets, raw frames a well-behaved client would never send.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;
use tungstenite::Message;

use super::{Client, ServerProcess};

/// A receiver's end: what it read, or the close code that ended it.
pub type ReaderResult = Result<usize, u16>;

/// Connects `user` with a small socket receive buffer and reads, in its own
/// thread, at about `bytes_per_sec` until a text message containing
/// `until` arrives; then checks the connection still answers a heartbeat.
/// Returns the bytes read, or the close code if the server closed it.
pub fn paced_reader(
    s: &ServerProcess,
    user: &str,
    bytes_per_sec: u64,
    until: &'static str,
) -> JoinHandle<ReaderResult> {
    let mut c = Client::connect_small_buffer(s.addr, &format!("/ws?userId={user}"), 32 * 1024);
    assert_eq!(c.recv_type("welcome")["userId"], user);
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut read = 0u64;
        loop {
            match c.next(super::WAIT) {
                Some(Message::Text(t)) if t.contains(until) => break,
                Some(Message::Text(t)) => read += t.len() as u64,
                Some(Message::Close(f)) => return Err(f.map_or(1005, |f| u16::from(f.code))),
                Some(_) => {}
                None => panic!("no message within {:?} after {read} bytes", super::WAIT),
            }
            // Client pacing (a modest reader), not synchronisation.
            let due = Duration::from_micros(read * 1_000_000 / bytes_per_sec);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        // Still open: a heartbeat is answered (skipping any late deliveries).
        c.send(&json!({"type": "heartbeat"}));
        loop {
            match c.next(super::WAIT) {
                Some(Message::Text(t)) if t.contains("heartbeat_ack") => return Ok(read as usize),
                Some(Message::Close(f)) => return Err(f.map_or(1005, |f| u16::from(f.code))),
                Some(_) => {}
                None => panic!("no heartbeat_ack within {:?}", super::WAIT),
            }
        }
    })
}
