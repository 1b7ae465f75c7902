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

/// A client frame with a zero mask (the payload goes as it is): `opcode` 1
/// text, 0 continuation, 9 ping.
pub fn raw_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = raw_header(fin, opcode, payload.len());
    out.extend_from_slice(payload);
    out
}

/// The header of such a frame, announcing `len` payload bytes.
pub fn raw_header(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    match len {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
    out
}

/// Writes raw bytes on a client's socket, beside tungstenite.
pub fn write_raw(c: &mut Client, bytes: &[u8]) {
    use std::io::Write;
    let s = c.ws.get_mut();
    s.write_all(bytes).expect("raw write");
    s.flush().expect("flush");
}

/// A heartbeat padded with spaces to exactly `len` bytes of JSON text.
pub fn padded_heartbeat(len: usize) -> Vec<u8> {
    let mut text = br#"{"type":"heartbeat"}"#.to_vec();
    assert!(len >= text.len());
    text.resize(len, b' ');
    text
}

/// `wss_active_connections` from `/metrics`.
pub fn active_connections(s: &ServerProcess) -> f64 {
    let (_, body) = super::http_get(s.addr, "/metrics");
    body.lines()
        .find(|l| l.split(['{', ' ']).next() == Some("wss_active_connections"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no wss_active_connections in /metrics:\n{body}"))
}

/// Lowers the soft open file limit of process `pid` so that exactly `free`
/// more descriptors can be opened (descriptors are numbered lowest first,
/// and each must be below the limit).
pub fn limit_open_files(pid: u32, free: usize) {
    let open: Vec<usize> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list the server's descriptors")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let limit = (0..)
        .find(|&l| l - open.iter().filter(|&&fd| fd < l).count() == free)
        .expect("a limit");
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit(2) on our own child, reading into and from rlimit
    // structs that live on this stack for the whole call.
    let got = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut old,
        )
    };
    assert_eq!(
        got,
        0,
        "read the limit: {}",
        std::io::Error::last_os_error()
    );
    let new = libc::rlimit {
        rlim_cur: limit as libc::rlim_t,
        rlim_max: old.rlim_max,
    };
    // SAFETY: as above; `new` outlives the call.
    let set = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &new,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(
        set,
        0,
        "lower the limit: {}",
        std::io::Error::last_os_error()
    );
}
