//! A request from its head to typed work, I/O-free: the checks on a head
//! once its key is known good, the refusal of a head the parser refused,
//! and what an admitted request's body (or path and query) asks. The
//! session ([`super::session`]) calls these between its reads and writes;
//! on their own they are unit-tested and fuzzed without sockets.

use super::answer::ApiError;
use super::batch::{self, Batch};
use super::http::{Head, HeadError};
use super::request::{self, Command, Write};
use super::route::{RouteError, Routed};
use crate::metrics::ApiEndpoint;

/// A request refused on its head: its endpoint (for the metrics), the
/// error, extra answer headers.
pub type Refusal = (
    ApiEndpoint,
    ApiError,
    &'static [(&'static str, &'static str)],
);

/// What an admitted request asks.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// A GET endpoint's command (from the path and query).
    Read(Command<'static>),
    /// A POST endpoint's write.
    Write(Write<'a>),
    /// `POST /api/v1/batch`: its commands, each parsed when its turn comes.
    Batch(Batch<'a>),
}

/// The answer to a head the parser refused: 431 or 400.
pub fn head_error(e: HeadError) -> ApiError {
    match e {
        HeadError::TooLarge => ApiError::new(431, "too_large", "request head too large"),
        HeadError::Malformed(why) => ApiError::bad_request(why),
    }
}

/// The checks on a head whose key is good, in order: no
/// `Transfer-Encoding` (400), a known path (404) with its method (405,
/// with `Allow`), a body within `max_body_bytes` (413). `routed` is
/// [`super::route::route`] of the head.
pub fn screen(
    head: &Head,
    routed: Result<Routed, RouteError>,
    max_body_bytes: usize,
) -> Result<Routed, Refusal> {
    let endpoint = routed.as_ref().map_or(ApiEndpoint::Other, |r| r.endpoint);
    if head.transfer_encoding {
        let e = ApiError::bad_request(
            "Transfer-Encoding (chunked bodies) is not supported: send the body with Content-Length",
        );
        return Err((endpoint, e, &[]));
    }
    let routed = match routed {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return Err((endpoint, ApiError::not_found("no such endpoint"), &[]));
        }
        Err(RouteError::MethodNotAllowed { allow }) => {
            let e = ApiError::new(405, "method_not_allowed", format!("use {allow}"));
            let extra: &'static [(&str, &str)] = if allow == "GET" {
                &[("Allow", "GET")]
            } else {
                &[("Allow", "POST")]
            };
            return Err((endpoint, e, extra));
        }
    };
    if head.content_length > max_body_bytes as u64 {
        let e = ApiError::too_large(format!(
            "the body is larger than API_MAX_BODY_BYTES ({max_body_bytes} bytes)"
        ));
        return Err((endpoint, e, &[]));
    }
    Ok(routed)
}

/// What an admitted request asks: a GET's command from its path and
/// query, else its body (JSON) as a write or a batch. Every refusal is a
/// 400 that names what is wrong.
pub fn body<'a>(routed: &Routed, head: &Head, body: &'a [u8]) -> Result<Parsed<'a>, ApiError> {
    if let Some(target) = &routed.target {
        return request::parse_read(routed.endpoint, target, head.query.as_deref())
            .map(Parsed::Read);
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(ApiError::bad_request("body is not valid JSON (not UTF-8)"));
    };
    if routed.endpoint == ApiEndpoint::Batch {
        return batch::parse(text).map(Parsed::Batch);
    }
    request::parse_write(routed.endpoint, text, "body").map(Parsed::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::http::parse_head;
    use crate::api::route::route;

    fn parsed(raw: &[u8]) -> Result<Result<Parsed<'_>, ApiError>, Refusal> {
        let head = parse_head(raw).unwrap().expect("complete head");
        let routed = screen(&head, route(head.method, &head.path), 64)?;
        let end = head.head_len + head.content_length as usize;
        Ok(body(&routed, &head, &raw[head.head_len..end]))
    }

    fn status(raw: &[u8]) -> u16 {
        match parsed(raw) {
            Err((_, e, _)) | Ok(Err(e)) => e.status,
            Ok(Ok(_)) => 200,
        }
    }

    #[test]
    fn heads_are_screened_in_order() {
        let te = b"POST /nowhere HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(status(te), 400, "Transfer-Encoding before the route");
        assert_eq!(status(b"GET /api/v1/nowhere HTTP/1.1\r\n\r\n"), 404);
        let Err((endpoint, e, extra)) = parsed(b"GET /api/v1/publish HTTP/1.1\r\n\r\n") else {
            panic!("a GET of a write is refused");
        };
        assert_eq!((endpoint, e.status), (ApiEndpoint::Other, 405));
        assert_eq!(extra, &[("Allow", "POST")]);
        let big = b"POST /api/v1/publish HTTP/1.1\r\nContent-Length: 65\r\n\r\n";
        assert_eq!(status(big), 413);
        assert_eq!(head_error(HeadError::TooLarge).status, 431);
        assert_eq!(head_error(HeadError::Malformed("x")).status, 400);
    }

    #[test]
    fn nasty_bodies_are_400s() {
        for body in [
            &b"\xff\xfe"[..],
            b"",
            b"[]",
            b"{\"channel\":\"a b\",\"payload\":1}",
            b"{\"payload\":1}{}",
            b"{\"channel\":\"c\",\"payload\":1,\"payload\":2}",
        ] {
            let raw = [
                format!(
                    "POST /api/v1/publish HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
                body,
            ]
            .concat();
            assert_eq!(status(&raw), 400, "{:?}", String::from_utf8_lossy(body));
        }
        let ok = b"POST /api/v1/batch HTTP/1.1\r\nContent-Length: 15\r\n\r\n{\"commands\":[]}";
        assert!(matches!(parsed(ok), Ok(Ok(Parsed::Batch(b))) if b.commands.is_empty()));
        let read = b"GET /api/v1/channels/c/history?limit=9999 HTTP/1.1\r\n\r\n";
        assert!(matches!(
            parsed(read),
            Ok(Ok(Parsed::Read(Command::History { limit: 100, .. })))
        ));
    }
}
