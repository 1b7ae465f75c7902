//! HTTP/1.1 for the server API, I/O-free: a request head from the bytes
//! read so far (`httparse`), and the bytes of an answer.
//!
//! Bodies are delimited by `Content-Length` only. A request with
//! `Transfer-Encoding` (chunked) is refused with 400 and the connection
//! closed, since its end cannot be found without decoding it; backends send
//! small JSON bodies whose length they know.

use crate::protocol::handshake::MAX_REQUEST_HEAD_BYTES;

/// Most header lines accepted (like the WebSocket handshake).
const MAX_HEADERS: usize = 64;

/// A request's method, as far as the API cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: the reads.
    Get,
    /// `POST`: the writes.
    Post,
    /// Anything else: 405 on a known path.
    Other,
}

/// What the API needs of a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method.
    pub method: Method,
    /// The path of the target, not decoded, without the query.
    pub path: String,
    /// The raw query after `?`.
    pub query: Option<String>,
    /// Bytes of the head, `\r\n\r\n` included: the body follows.
    pub head_len: usize,
    /// `Content-Length` (0 without one).
    pub content_length: u64,
    /// A `Transfer-Encoding` header is present (refused).
    pub transfer_encoding: bool,
    /// The connection stays open after the answer.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits before sending its body.
    pub expect_continue: bool,
    /// The key of `Authorization: apikey <key>`, else of `X-API-Key`.
    pub api_key: Option<Vec<u8>>,
}

/// Why a head is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Longer than [`MAX_REQUEST_HEAD_BYTES`], or too many headers: 431.
    #[error("request head too large")]
    TooLarge,
    /// Not HTTP/1.x, or a header we rely on is malformed: 400.
    #[error("malformed HTTP request: {0}")]
    Malformed(&'static str),
}

/// Parses a head from the bytes received so far; `Ok(None)`: read more.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let window = &buf[..buf.len().min(MAX_REQUEST_HEAD_BYTES)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_HEAD_BYTES => {
            return Err(HeadError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed("not an HTTP/1.x request")),
    };
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        _ => Method::Other,
    };
    let target = req.path.unwrap_or_default();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let mut head = Head {
        method,
        path: path.to_owned(),
        query,
        head_len,
        content_length: 0,
        transfer_encoding: false,
        keep_alive: req.version == Some(1),
        expect_continue: false,
        api_key: None,
    };
    let mut length: Option<u64> = None;
    let (mut authorization, mut x_api_key) = (None, None);
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(HeadError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Malformed("conflicting Content-Length headers"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("connection") {
            if has_token(h.value, b"close") {
                head.keep_alive = false;
            } else if has_token(h.value, b"keep-alive") {
                head.keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("authorization") {
            once(&mut authorization, h.value)?;
        } else if name.eq_ignore_ascii_case("x-api-key") {
            once(&mut x_api_key, h.value)?;
        }
    }
    head.content_length = length.unwrap_or(0);
    head.api_key = authorization
        .and_then(apikey_credentials)
        .or(x_api_key)
        .map(|k| k.trim_ascii().to_vec())
        .filter(|k| !k.is_empty());
    Ok(Some(head))
}

/// Stores a header that may appear once.
fn once<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) -> Result<(), HeadError> {
    if slot.replace(value).is_some() {
        return Err(HeadError::Malformed("duplicate authentication header"));
    }
    Ok(())
}

/// The credentials of an `apikey <key>` authorization value (scheme case-insensitive).
fn apikey_credentials(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, key) = value.split_at(space);
    scheme.eq_ignore_ascii_case(b"apikey").then_some(key)
}

/// Whether a comma-separated header value lists `token`.
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Appends a complete JSON answer. `extra` headers must be trusted constants.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    extra: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) {
    use std::io::Write;
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: {connection}\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// The reason phrase of the statuses the API sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        parse_head(raw.as_bytes()).unwrap().expect("complete")
    }

    #[test]
    fn reads_what_the_api_needs() {
        let h = head(
            "POST /api/v1/publish?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\
             Authorization: ApiKey  secret-1 \r\nExpect: 100-continue\r\n\r\n{\"a\":1}",
        );
        assert_eq!(h.method, Method::Post);
        assert_eq!(
            (h.path.as_str(), h.query.as_deref()),
            ("/api/v1/publish", Some("x=1"))
        );
        assert_eq!(h.content_length, 12);
        assert!(h.keep_alive && h.expect_continue && !h.transfer_encoding);
        assert_eq!(h.api_key.as_deref(), Some(&b"secret-1"[..]));
        assert_eq!(h.head_len, h.head_len.min(200));
        let h = head("GET /api/v1/users/a HTTP/1.1\r\nX-API-Key: k2\r\nConnection: close\r\n\r\n");
        assert_eq!((h.method, h.content_length), (Method::Get, 0));
        assert!(!h.keep_alive);
        assert_eq!(h.api_key.as_deref(), Some(&b"k2"[..]));
        let h = head("GET / HTTP/1.0\r\nAuthorization: Bearer x\r\n\r\n");
        assert!(!h.keep_alive, "HTTP/1.0 closes by default");
        assert_eq!(h.api_key, None, "only the apikey scheme");
        let h = head(
            "DELETE / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert!(h.keep_alive && h.transfer_encoding);
        assert_eq!(h.method, Method::Other);
    }

    #[test]
    fn refuses_what_it_cannot_delimit_or_trust() {
        assert_eq!(parse_head(b"POST / HTTP/1.1\r\nHost"), Ok(None));
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nX-API-Key: a\r\nX-API-Key: b\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(bad.as_bytes()), Err(HeadError::Malformed(_))),
                "{bad:?}"
            );
        }
        let same = head("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(same.content_length, 3);
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_HEAD_BYTES));
        assert_eq!(parse_head(long.as_bytes()), Err(HeadError::TooLarge));
        let many: String = (0..70).map(|i| format!("H{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(parse_head(many.as_bytes()), Err(HeadError::TooLarge));
    }

    #[test]
    fn answers_carry_length_and_connection() {
        let mut out = Vec::new();
        write_response(&mut out, 405, &[("Allow", "POST")], b"{}", true);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Content-Length: 2\r\n") && text.contains("Connection: keep-alive\r\n")
        );
        assert!(text.ends_with("Allow: POST\r\n\r\n{}"), "{text}");
    }
}
