//! A blocking HTTP/1.1 client for the server API (keep-alive, bounded
//! reads), raw request helpers, and the namespaces the API tests use.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};

use super::channels::config_file;
use super::{ServerProcess, WAIT};

/// The key every API test server accepts.
pub const KEY: &str = "test-key-0123456789abcdef";
/// A second accepted key (rotation).
pub const KEY2: &str = "second-key-0123456789abcdef";

/// `chat`: no features; `hist`: history of 10; `room`: presence.
pub const NAMESPACES: &str = "\
[namespaces.chat]
public = true

[namespaces.hist]
public = true
history_size = 10
history_ttl_secs = 60

[namespaces.room]
public = true
presence = true
";

/// Starts instances with the API on (both keys), the namespaces above and
/// `extra`; keep the file alive while they run.
pub fn start(
    setup: super::history::Setup<'_>,
    extra: &[(&str, &str)],
) -> (Vec<ServerProcess>, tempfile::NamedTempFile) {
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    let keys = format!("{KEY},{KEY2}");
    let mut env = vec![
        ("CHANNELS_CONFIG", path.as_str()),
        ("API_KEYS", keys.as_str()),
    ];
    env.extend_from_slice(extra);
    (setup(&env), file)
}

/// One keep-alive connection to the API.
pub struct Api {
    stream: TcpStream,
    /// Where it is connected.
    pub addr: SocketAddr,
    /// Bytes read past the last answer.
    pending: Vec<u8>,
}

/// An answer: status, headers (lower-cased names), JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Header lines as `name: value`, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (JSON; `Value::Null` when empty).
    pub body: Value,
}

impl Answer {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Asserts an error answer with `status` and `code`; returns its message.
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["error"], code, "{self:?}");
        self.body["message"].as_str().expect("message").to_owned()
    }
}

impl Api {
    /// Connects to `server`.
    pub fn connect(server: &ServerProcess) -> Self {
        Self::connect_to(server.addr)
    }

    /// Connects to `addr`.
    pub fn connect_to(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to the API");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Api {
            stream,
            addr,
            pending: Vec::new(),
        }
    }

    /// `POST path` with `body` and the test key; expects 200; the answer's body.
    pub fn post(&mut self, path: &str, body: &Value) -> Value {
        let a = self.post_answer(path, body);
        assert_eq!(a.status, 200, "POST {path} {body}: {a:?}");
        a.body
    }

    /// `POST path` with `body` and the test key.
    pub fn post_answer(&mut self, path: &str, body: &Value) -> Answer {
        let auth = format!("Authorization: apikey {KEY}\r\n");
        self.request("POST", path, &auth, body.to_string().as_bytes())
    }

    /// `GET path` with the test key; expects 200; the answer's body.
    pub fn get(&mut self, path: &str) -> Value {
        let a = self.get_answer(path);
        assert_eq!(a.status, 200, "GET {path}: {a:?}");
        a.body
    }

    /// `GET path` with the test key.
    pub fn get_answer(&mut self, path: &str) -> Answer {
        self.request("GET", path, &format!("X-API-Key: {KEY}\r\n"), b"")
    }

    /// A request with the given extra header lines (each ending in CRLF).
    pub fn request(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> Answer {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        );
        self.send_raw(head.as_bytes());
        self.send_raw(body);
        self.read_answer()
    }

    /// Writes raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the API");
    }

    /// Reads one answer (head, then `Content-Length` bytes).
    pub fn read_answer(&mut self) -> Answer {
        let head_end = loop {
            if let Some(i) = find(&self.pending, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill();
        };
        let head = String::from_utf8(self.pending[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        while self.pending.len() < head_end + length {
            self.fill();
        }
        let rest = self.pending.split_off(head_end + length);
        let body = &self.pending[head_end..];
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body).expect("JSON body")
        };
        self.pending = rest;
        Answer {
            status,
            headers,
            body,
        }
    }

    /// True when the server closes the connection (EOF) within the wait.
    pub fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0))
    }

    /// Sets how long a read waits.
    pub fn read_timeout(&mut self, limit: Duration) {
        self.stream.set_read_timeout(Some(limit)).unwrap();
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).expect("read from the API");
        assert!(n > 0, "the API closed the connection mid-answer");
        self.pending.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `{"channel", "payload": {"n": n}}` with an optional idempotency key.
pub fn publication(channel: &str, n: u64, key: Option<&str>) -> Value {
    let mut body = json!({"channel": channel, "payload": {"n": n}});
    if let Some(k) = key {
        body["idempotencyKey"] = json!(k);
    }
    body
}

/// The sum of the Prometheus series `name{...}` on `server` whose labels
/// contain `labels` (0 when there is none).
pub fn metric(server: &ServerProcess, name: &str, labels: &str) -> f64 {
    let (_, text) = super::http_get(server.addr, "/metrics");
    let prefix = format!("{name}{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
