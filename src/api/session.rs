//! One keep-alive connection of the server API, served by the task that
//! accepted it: read a request (head, then a `Content-Length` body), decide
//! on its head (key, path, size, rate), carry it out, answer, repeat.
//!
//! Bounds: the head is at most 8 KiB (431), the body at most
//! `API_MAX_BODY_BYTES` (413, answered on the head, without reading the
//! body). Each request must arrive within `API_REQUEST_TIMEOUT_MS` of the
//! moment the server started waiting for it: a slow or incomplete one is cut
//! (closed, counted with status `timeout`), and an idle keep-alive connection
//! is closed after the same time. A request refused on its head (404, 405,
//! 401, 429, ...) has its body read, within the same bounds, and keeps the
//! connection; a body too large (413), chunked, or held back for
//! `100-continue`, and a malformed head, end the connection with the answer.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::answer::{Answer, ApiError};
use super::http::{parse_head, write_response, Head, HeadError, CONTINUE};
use super::keys::{FailureLog, KeyId};
use super::parse::{self, Parsed, Refusal};
use super::route::{route, Routed};
use super::{batch, execute, ApiSettings};
use crate::metrics::{ApiEndpoint, ApiStatus, Counter};
use crate::shard::Shard;

/// Read buffer kept between requests; a larger one (a big body) is shrunk.
const KEEP_BUFFER_BYTES: usize = 16 * 1024;
/// After an answer that ends the connection, unread request bytes are
/// drained for at most this long (so the answer is not lost to a reset).
const LINGER: Duration = Duration::from_secs(1);
/// ... and at most this many bytes.
const LINGER_BYTES: usize = 256 * 1024;

thread_local! {
    /// This shard's log of refused keys.
    static FAILURES: RefCell<FailureLog> = const { RefCell::new(FailureLog::new()) };
}

/// How waiting for a request ended without one.
enum NoRequest {
    /// The client closed, or the connection failed.
    Closed,
    /// Nothing arrived in time on an idle keep-alive connection.
    Idle,
    /// A request was arriving and did not complete in time.
    Cut,
    /// The head is malformed or too large.
    Refused(HeadError),
}

/// Serves API requests on `stream` until it closes; `buf` holds the bytes
/// read so far (the first request's head at least).
pub async fn serve(shard: Rc<Shard>, mut stream: TcpStream, buf: Vec<u8>) {
    let Some(api) = shard.instance.settings.api.clone() else {
        return;
    };
    let mut buf = buf;
    loop {
        let deadline = Instant::now() + api.request_timeout;
        let head = match read_head(&mut stream, buf, deadline).await {
            Ok((head, b)) => {
                buf = b;
                head
            }
            Err(NoRequest::Closed | NoRequest::Idle) => return,
            Err(NoRequest::Cut) => {
                return shard
                    .metrics
                    .record_api(ApiEndpoint::Other, ApiStatus::Timeout, None)
            }
            Err(NoRequest::Refused(e)) => {
                let error = parse::head_error(e);
                let started = Instant::now();
                finish(
                    &shard,
                    &mut stream,
                    ApiEndpoint::Other,
                    error.into(),
                    &[],
                    false,
                    started,
                )
                .await;
                return;
            }
        };
        let started = Instant::now();
        let total = head.head_len as u64 + head.content_length;
        let arrived = buf.len() as u64 >= total;
        let (routed, key) = match admit(&shard, &api, &head, &stream) {
            Ok(admitted) => admitted,
            Err((endpoint, error, extra)) => {
                // A refused request's body is read (it is within the limit)
                // so the connection can go on: a 404 costs no keep-alive,
                // whether or not the body came with the head. Too large, a
                // chunked body, or one the client holds back for
                // `100-continue`: answer and close.
                let skippable = head.keep_alive
                    && !head.transfer_encoding
                    && error.status != 413
                    && head.content_length <= api.max_body_bytes as u64
                    && (arrived || !head.expect_continue);
                if skippable && !arrived {
                    buf = match read_body(&mut stream, buf, total as usize, deadline).await {
                        Ok(b) => b,
                        Err(_) => return,
                    };
                }
                let keep = skippable;
                finish(
                    &shard,
                    &mut stream,
                    endpoint,
                    error.into(),
                    extra,
                    keep,
                    started,
                )
                .await;
                if !keep {
                    return;
                }
                buf.drain(..total as usize);
                continue;
            }
        };
        if !arrived && head.expect_continue {
            let (res, _) = stream.write_all(CONTINUE).await;
            if res.is_err() {
                return;
            }
        }
        buf = match read_body(&mut stream, buf, total as usize, deadline).await {
            Ok(b) => b,
            Err(NoRequest::Cut | NoRequest::Idle) => {
                return shard
                    .metrics
                    .record_api(routed.endpoint, ApiStatus::Timeout, None)
            }
            Err(_) => return,
        };
        let answer = {
            let body = &buf[head.head_len..total as usize];
            handle(&shard, &api, (&routed, key), &head, body).await
        };
        let keep = head.keep_alive && shard.closing_all.get().is_none();
        if !finish(
            &shard,
            &mut stream,
            routed.endpoint,
            answer,
            &[],
            keep,
            started,
        )
        .await
            || !keep
        {
            return;
        }
        buf.drain(..total as usize);
        if buf.capacity() > KEEP_BUFFER_BYTES && buf.len() <= KEEP_BUFFER_BYTES {
            buf.shrink_to(KEEP_BUFFER_BYTES);
        }
    }
}

/// Decides on a head: the key, the route, the size, the rate.
fn admit(
    shard: &Shard,
    api: &ApiSettings,
    head: &Head,
    stream: &TcpStream,
) -> Result<(Routed, KeyId), Refusal> {
    let routed = route(head.method, &head.path);
    let endpoint = routed.as_ref().map_or(ApiEndpoint::Other, |r| r.endpoint);
    let Some(key) = head.api_key.as_deref().and_then(|k| api.keys.find(k)) else {
        auth_failed(shard, stream, head.api_key.is_some());
        let e = ApiError::new(
            401,
            "unauthorized",
            "missing or wrong API key (Authorization: apikey <key>, or X-API-Key)",
        );
        return Err((endpoint, e, &[("WWW-Authenticate", "apikey")]));
    };
    let routed = parse::screen(head, routed, api.max_body_bytes)?;
    if !api.keys.admit(key, 1, Instant::now()) {
        let e = ApiError::new(
            429,
            "rate_limited",
            "this key is over API_RATE_LIMIT requests per second",
        );
        return Err((endpoint, e, &[("Retry-After", "1")]));
    }
    Ok((routed, key))
}

/// Counts a refused key and logs it at a bounded rate (never the key).
fn auth_failed(shard: &Shard, stream: &TcpStream, presented: bool) {
    shard.metrics.incr(Counter::ApiAuthFailures);
    if let Some(n) = FAILURES.with(|f| f.borrow_mut().note(Instant::now())) {
        let peer = stream.peer_addr().ok();
        tracing::warn!(
            peer = ?peer,
            key_presented = presented,
            refused_since_last_line = n,
            "server API request refused: missing or wrong API key"
        );
    }
}

/// Carries out an admitted request whose body is `body`.
async fn handle(
    shard: &Rc<Shard>,
    api: &ApiSettings,
    (routed, key): (&Routed, KeyId),
    head: &Head,
    body: &[u8],
) -> Answer {
    match parse::body(routed, head, body) {
        Ok(Parsed::Read(command)) => execute::carry_out(shard, command).await,
        Ok(Parsed::Batch(b)) => {
            // Admitted as one request; its other commands are charged now.
            let extra = b.commands.len().saturating_sub(1) as u32;
            api.keys.charge(key, extra, Instant::now());
            batch::run(shard, &b).await
        }
        Ok(Parsed::Write(write)) => execute::write(shard, write).await,
        Err(e) => e.into(),
    }
}

/// Writes an answer and counts it; false when the connection failed. When
/// it does not stay open, the connection is shut down (after draining what
/// the client may still be sending, bounded).
async fn finish(
    shard: &Shard,
    stream: &mut TcpStream,
    endpoint: ApiEndpoint,
    answer: Answer,
    extra: &[(&str, &str)],
    keep_alive: bool,
    started: Instant,
) -> bool {
    let mut out = Vec::with_capacity(answer.body.len() + 192);
    write_response(&mut out, answer.status, extra, &answer.body, keep_alive);
    let limit = shard
        .instance
        .settings
        .api
        .as_ref()
        .map_or(Duration::from_secs(10), |a| a.request_timeout);
    let written = matches!(
        monoio::time::timeout(limit, stream.write_all(out)).await,
        Ok((Ok(_), _))
    );
    let micros = started.elapsed().as_micros() as u64;
    shard
        .metrics
        .record_api(endpoint, ApiStatus::of(answer.status), Some(micros));
    if written && !keep_alive {
        let _ = stream.shutdown().await;
        linger(stream).await;
    }
    written
}

/// Reads (and drops) what the client still sends, until it closes, for at
/// most [`LINGER`] and [`LINGER_BYTES`].
async fn linger(stream: &mut TcpStream) {
    let drain = async {
        let mut seen = 0;
        let mut buf = vec![0u8; 16 * 1024];
        while seen < LINGER_BYTES {
            let (res, b) = stream.read(buf).await;
            buf = b;
            match res {
                Ok(n) if n > 0 => seen += n,
                _ => return,
            }
        }
    };
    let _ = monoio::time::timeout(LINGER, drain).await;
}

/// Reads until `buf` holds a complete head (it may hold one already).
async fn read_head(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    deadline: Instant,
) -> Result<(Head, Vec<u8>), NoRequest> {
    loop {
        match parse_head(&buf) {
            Ok(Some(head)) => return Ok((head, buf)),
            Ok(None) => {}
            Err(e) => return Err(NoRequest::Refused(e)),
        }
        let waiting = if buf.is_empty() {
            NoRequest::Idle
        } else {
            NoRequest::Cut
        };
        buf = match read_more(stream, buf, 1024, deadline).await {
            Some(b) => b,
            None if matches!(waiting, NoRequest::Idle) => return Err(NoRequest::Idle),
            None => return Err(NoRequest::Cut),
        }
        .map_err(|()| NoRequest::Closed)?;
    }
}

/// Reads until `buf` holds `total` bytes.
async fn read_body(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    total: usize,
    deadline: Instant,
) -> Result<Vec<u8>, NoRequest> {
    while buf.len() < total {
        let want = total - buf.len();
        buf = read_more(stream, buf, want, deadline)
            .await
            .ok_or(NoRequest::Cut)?
            .map_err(|()| NoRequest::Closed)?;
    }
    Ok(buf)
}

/// One read of at least one byte into `buf` (grown by `want` when full):
/// `None` when the deadline passed, `Some(Err)` when the connection ended.
async fn read_more(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    want: usize,
    deadline: Instant,
) -> Option<Result<Vec<u8>, ()>> {
    if buf.capacity() - buf.len() < want.min(KEEP_BUFFER_BYTES) {
        buf.reserve(want.max(1024));
    }
    let left = deadline.checked_duration_since(Instant::now())?;
    let len = buf.len();
    match monoio::time::timeout(left, stream.read(buf.slice_mut(len..))).await {
        Err(_) => None,
        Ok((Ok(n), slice)) if n > 0 => Some(Ok(slice.into_inner())),
        Ok(_) => Some(Err(())),
    }
}
