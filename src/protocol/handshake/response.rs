//! Every answer the handshake gives, as bytes to write: the 101 accepting
//! an upgrade, and the plain HTTP responses (endpoints, refusals, JSON
//! errors), each with `Content-Length` and `Connection: close`.

use crate::protocol::deflate::Agreement;

/// A refused request: sent as plain HTTP with a JSON body, then closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status code.
    pub status: u16,
    /// The machine-readable `error` code of the body (`unauthorized`, ...).
    pub code: &'static str,
    /// The human-readable `message` of the body; never echoes secrets.
    pub message: String,
}

impl Refusal {
    /// A refusal with the given status, code and message.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The full HTTP response; a 426 also names the version we speak.
    pub fn to_response(&self) -> Vec<u8> {
        let extra: &[(&str, &str)] = if self.status == 426 {
            &[("Sec-WebSocket-Version", "13")]
        } else {
            &[]
        };
        http_response_with(
            self.status,
            extra,
            "application/json",
            error_body(self.code, &self.message).as_bytes(),
        )
    }
}

/// The 101 answer accepting an upgrade, with no subprotocol. `deflate`:
/// the agreement to confirm (`Sec-WebSocket-Extensions`), or `None` to
/// decline every extension offered (the connection goes on uncompressed).
pub fn upgrade_response(ws_key: &str, deflate: Option<Agreement>) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(ws_key.as_bytes());
    let extensions = deflate.map_or_else(String::new, |a| {
        format!("Sec-WebSocket-Extensions: {}\r\n", a.response_value())
    });
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{extensions}\r\n"
    )
    .into_bytes()
}

/// A complete HTTP response with `Content-Length` and `Connection: close`.
pub fn http_response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    http_response_with(status, &[], content_type, body)
}

/// Like [`http_response`], with extra headers (names and values must be
/// trusted constants: they are written as given).
pub fn http_response_with(
    status: u16,
    extra: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\n",
        reason_phrase(status),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A JSON error answer: `{"error":code,"message":message}`.
pub fn json_error_response(status: u16, code: &str, message: &str) -> Vec<u8> {
    http_response(
        status,
        "application/json",
        error_body(code, message).as_bytes(),
    )
}

/// The JSON error body, escaped by serde_json.
fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({ "error": code, "message": message }).to_string()
}

/// The reason phrase of the status codes we send.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
