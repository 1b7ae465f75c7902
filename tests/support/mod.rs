//! Test harness: real server processes on free ports, real WebSocket
//! clients over loopback, bounded waits with clear failure messages.
#![allow(dead_code)]

pub mod api;
pub mod api_scenarios;
pub mod channel_scenarios;
pub mod channels;
pub mod client;
pub mod deflate;
pub mod history;
pub mod limits;
pub mod moto;
pub mod openapi;
pub mod presence;
pub mod redis;
pub mod redis_replicas;
pub mod redis_scenarios;
pub mod tokens;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use client::Client;

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running `websocket-app` process, killed on drop.
pub struct ServerProcess {
    /// The child process.
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Everything it logged so far (for failure messages and log assertions).
    pub log: Arc<(Mutex<String>, Condvar)>,
}

impl ServerProcess {
    /// Starts the server with `args` (plus `--host 127.0.0.1 --port 0`) and
    /// the given environment, and waits for its "listening" line.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_websocket-app"));
        cmd.args(["--host", "127.0.0.1", "--port", "0"]).args(args);
        cmd.env_remove("JWT_SECRET")
            .env_remove("REDIS_URI")
            .env_remove("AUTH_MODE");
        cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn websocket-app");
        let log = Arc::new((Mutex::new(String::new()), Condvar::new()));
        pump(child.stdout.take().unwrap(), log.clone());
        pump(child.stderr.take().unwrap(), log.clone());
        let line = wait_for_log(&log, "listening", WAIT).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("server did not start; log:\n{}", log.0.lock().unwrap())
        });
        let addr = parse_addr(&line).unwrap_or_else(|| panic!("no addr in {line:?}"));
        Self { child, addr, log }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        self.log.0.lock().unwrap().clone()
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        wait_for_log(&self.log, needle, WAIT)
            .unwrap_or_else(|| panic!("no log line with {needle:?}; log:\n{}", self.log_text()))
    }

    /// `ws://` URL for `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.addr, path_and_query)
    }

    /// Connects as `user` in insecure mode and reads the welcome.
    pub fn user(&self, user: &str) -> Client {
        let mut c = Client::connect(self.addr, &format!("/ws?userId={user}")).expect("upgrade");
        let w = c.recv_type("welcome");
        assert_eq!(w["userId"], user);
        c
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with our own child's pid; no memory is involved.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the process to exit (bounded) and returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pump(stream: impl Read + Send + 'static, log: Arc<(Mutex<String>, Condvar)>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let (lock, cv) = &*log;
            let mut text = lock.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
            cv.notify_all();
        }
    });
}

fn wait_for_log(
    log: &Arc<(Mutex<String>, Condvar)>,
    needle: &str,
    limit: Duration,
) -> Option<String> {
    let (lock, cv) = &**log;
    let deadline = Instant::now() + limit;
    let mut text = lock.lock().unwrap();
    loop {
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return Some(line.to_string());
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        text = cv.wait_timeout(text, left).unwrap().0;
    }
}

fn parse_addr(line: &str) -> Option<SocketAddr> {
    let start = line.find("addr=")? + 5;
    line[start..].split_whitespace().next()?.parse().ok()
}

/// A plain HTTP/1.1 GET; returns (status, headers+body text).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// Sends a raw request and reads the whole response.
pub fn http_request(addr: SocketAddr, raw: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// Polls `f` until it returns `Some`, or fails with `what` after [`WAIT`].
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
