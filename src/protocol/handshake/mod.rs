//! The HTTP/1.1 side of the one listening port: parsing a request head,
//! classifying its route, validating a WebSocket upgrade (RFC 6455 §4.2.1)
//! and building the bytes of every answer we give before or instead of an
//! upgrade.
//!
//! I/O-free: [`parse_request`] takes the bytes read so far and says "need
//! more", "here is the request" or "refuse"; the response builders return
//! bytes to write. Nothing here panics, whatever the input.
//!
//! # Layout
//!
//! - `mod.rs`: the request head ([`Request`], [`parse_request`]), its route
//!   and query, and the upgrade checks ([`check_upgrade`]);
//! - `response.rs`: every answer as bytes ([`Refusal`], [`upgrade_response`],
//!   [`http_response`] and friends).

mod response;

use percent_encoding::percent_decode_str;

use super::deflate::{self, Agreement};

pub use response::{
    http_response, http_response_with, json_error_response, upgrade_response, Refusal,
};

/// Largest request head we accept; a client sending more gets 431.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8192;

/// Most header lines we accept; browsers send about 20. More is 431.
const MAX_HEADERS: usize = 64;

/// What a request asks for, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/ws`: the WebSocket endpoint.
    WebSocket,
    /// The configured echo path (load testing), when one is configured.
    Echo,
    /// `/health`: liveness.
    Health,
    /// `/ready`: readiness.
    Ready,
    /// `/metrics`: Prometheus text.
    Metrics,
    /// `/stats`: the demo page's JSON.
    Stats,
    /// `/`: the demo page.
    Index,
    /// `/client.js` and `/client.d.ts`: the client library and its types.
    ClientLibrary,
    /// Anything else: 404.
    NotFound,
}

/// An owned, compact view of a parsed request head: only what routing,
/// the upgrade and authentication need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method is `GET`: required for an upgrade and for the endpoints.
    pub method_is_get: bool,
    /// The path of the request target, without the query, not decoded.
    pub path: String,
    /// The raw query string after `?`, if any: holds `token` or `userId`.
    pub query: Option<String>,
    /// `Upgrade: websocket` and `Connection` lists the `upgrade` token.
    pub upgrade_websocket: bool,
    /// `Sec-WebSocket-Key`, trimmed: needed to derive the accept key.
    pub ws_key: Option<String>,
    /// `Sec-WebSocket-Version` is 13, the only version we speak.
    pub ws_version_ok: bool,
    /// `Origin`, for the allowed-origins check.
    pub origin: Option<String>,
    /// The token of `Authorization: Bearer <token>`, one way to send a JWT.
    pub bearer: Option<String>,
    /// The first permessage-deflate offer of `Sec-WebSocket-Extensions` (all
    /// its lines, in order) that the server can honour, whether or not
    /// compression is on: the caller decides to use it or decline it.
    pub deflate: Option<Agreement>,
    /// Length of the head in bytes: what follows is already frame data.
    pub head_len: usize,
}

/// Why a request head cannot be accepted.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The head exceeds [`MAX_REQUEST_HEAD_BYTES`] or has too many headers.
    #[error("request head too large")]
    TooLarge,
    /// Not valid HTTP/1.x, or a single-valued header appears twice.
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
}

impl HandshakeError {
    /// The HTTP answer this error deserves (431 or 400).
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::TooLarge => Refusal::new(431, "too_large", "request head too large"),
            Self::Malformed(_) => Refusal::new(400, "bad_request", "malformed HTTP request"),
        }
    }
}
/// Parses a request head from the bytes received so far.
///
/// `Ok(None)` means the head is incomplete: read more and call again with
/// all bytes. Bytes after the head (see [`Request::head_len`]) are ignored.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, HandshakeError> {
    let window = &buf[..buf.len().min(MAX_REQUEST_HEAD_BYTES)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(window) {
        Ok(httparse::Status::Complete(head_len)) => {
            Request::from_parsed(&parsed, head_len).map(Some)
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_HEAD_BYTES => {
            Err(HandshakeError::TooLarge)
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HandshakeError::TooLarge),
        Err(e) => Err(HandshakeError::Malformed(e.to_string())),
    }
}

impl Request {
    /// Builds the owned view from a complete httparse result.
    fn from_parsed(
        parsed: &httparse::Request<'_, '_>,
        head_len: usize,
    ) -> Result<Self, HandshakeError> {
        let target = parsed.path.unwrap_or_default();
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (target, None),
        };
        let mut req = Request {
            method_is_get: parsed.method == Some("GET"),
            path: path.to_owned(),
            query,
            upgrade_websocket: false,
            ws_key: None,
            ws_version_ok: false,
            origin: None,
            bearer: None,
            deflate: None,
            head_len,
        };
        req.read_headers(parsed.headers)?;
        Ok(req)
    }

    /// Picks the headers we care about; duplicates of single-valued ones
    /// are refused, so that no proxy and this server disagree about them.
    fn read_headers(&mut self, headers: &[httparse::Header<'_>]) -> Result<(), HandshakeError> {
        let (mut upgrade, mut connection) = (false, false);
        let (mut version, mut authorization) = (None, None);
        for h in headers {
            let name = h.name;
            if name.eq_ignore_ascii_case("upgrade") {
                upgrade |= has_token(h.value, b"websocket");
            } else if name.eq_ignore_ascii_case("connection") {
                connection |= has_token(h.value, b"upgrade");
            } else if name.eq_ignore_ascii_case("sec-websocket-key") {
                set_once(&mut self.ws_key, h)?;
            } else if name.eq_ignore_ascii_case("sec-websocket-version") {
                set_once(&mut version, h)?;
            } else if name.eq_ignore_ascii_case("origin") {
                set_once(&mut self.origin, h)?;
            } else if name.eq_ignore_ascii_case("authorization") {
                set_once(&mut authorization, h)?;
            } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
                // A list header: several lines are one list, read in order.
                self.deflate = self.deflate.or_else(|| deflate::negotiate(h.value));
            }
        }
        self.upgrade_websocket = upgrade && connection;
        self.ws_version_ok = version.as_deref() == Some("13");
        self.bearer = authorization.as_deref().and_then(bearer_token);
        Ok(())
    }

    /// Which endpoint this request is for; `echo_path` is the configured
    /// echo endpoint, if any (`/ws` wins over it).
    pub fn route(&self, echo_path: Option<&str>) -> Route {
        match self.path.as_str() {
            "/ws" => Route::WebSocket,
            p if Some(p) == echo_path => Route::Echo,
            "/health" => Route::Health,
            "/ready" => Route::Ready,
            "/metrics" => Route::Metrics,
            "/stats" => Route::Stats,
            "/" => Route::Index,
            "/client.js" | "/client.d.ts" => Route::ClientLibrary,
            _ => Route::NotFound,
        }
    }

    /// The first value of query parameter `name`, percent-decoded (`+` is a
    /// space, as in forms and Go's `url.Query`). Invalid UTF-8 is replaced.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_values(name).next()
    }

    /// The value of query parameter `name` when it is given at most once;
    /// `Err(RepeatedParam)` when it appears twice or more (whatever the
    /// values), so that no two readers of the URL can pick different ones.
    pub fn unique_query_param(&self, name: &str) -> Result<Option<String>, RepeatedParam> {
        let mut values = self.query_values(name);
        let first = values.next();
        match values.next() {
            Some(_) => Err(RepeatedParam),
            None => Ok(first),
        }
    }

    /// Every value of query parameter `name`, in order, percent-decoded.
    fn query_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> + 'a {
        self.query
            .as_deref()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .filter(move |(key, _)| decode_component(key) == name)
            .map(|(_, value)| decode_component(value))
    }
}

/// A query parameter that must appear at most once appeared again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatedParam;

/// Percent-decodes one query component, `+` meaning space.
fn decode_component(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Stores a single-valued header, trimmed; a second occurrence or a
/// non-UTF-8 value is malformed.
fn set_once(
    slot: &mut Option<String>,
    header: &httparse::Header<'_>,
) -> Result<(), HandshakeError> {
    if slot.is_some() {
        return Err(HandshakeError::Malformed(format!(
            "duplicate {} header",
            header.name
        )));
    }
    let value = std::str::from_utf8(header.value)
        .map_err(|_| HandshakeError::Malformed(format!("non-UTF-8 {} header", header.name)))?;
    *slot = Some(value.trim().to_owned());
    Ok(())
}

/// The token of a `Bearer` authorization value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<String> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// Validates the upgrade headers of a request routed to a WebSocket path.
pub fn check_upgrade(req: &Request) -> Result<(), Refusal> {
    if !req.method_is_get {
        return Err(Refusal::new(
            400,
            "bad_request",
            "a WebSocket upgrade must use GET",
        ));
    }
    if !req.upgrade_websocket {
        return Err(Refusal::new(
            400,
            "bad_request",
            "expected a WebSocket upgrade request",
        ));
    }
    if !req.ws_key.as_deref().is_some_and(is_valid_ws_key) {
        return Err(Refusal::new(
            400,
            "bad_request",
            "missing or invalid Sec-WebSocket-Key",
        ));
    }
    if !req.ws_version_ok {
        return Err(Refusal::new(
            426,
            "bad_request",
            "unsupported Sec-WebSocket-Version (expected 13)",
        ));
    }
    Ok(())
}

/// A key is the base64 of 16 bytes: 22 base64 characters then `==`.
fn is_valid_ws_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    bytes.len() == 24
        && bytes.ends_with(b"==")
        && bytes[..22]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests;
