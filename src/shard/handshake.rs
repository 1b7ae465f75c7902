//! A connection's first bytes: the HTTP request and the upgrade.
//!
//! Each accepted socket gets a short-lived task that reads the request head
//! (bounded in size and time), answers plain HTTP, or upgrades. After the
//! upgrade the task ends: the socket leaves monoio, joins the shard's
//! readiness set and is served by the shard's reading and flushing tasks.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use crate::auth::{Identity, Refusal};
use crate::protocol::handshake::{
    check_upgrade, json_error_response, parse_request, upgrade_response, Request, Route,
    MAX_REQUEST_HEAD_BYTES,
};
use crate::protocol::UserId;

use super::Shard;

/// How long a client may take to send its HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one accepted TCP connection from its first byte to its close.
pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    handle(&shard, stream).await;
    // The handshake's task, buffers and request are freed now.
    shard.reclaim.note();
}

async fn handle(shard: &Rc<Shard>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Some((req, mut buf)) = read_request(&mut stream).await else {
        return;
    };
    // The server API serves keep-alive requests on this connection itself
    // (it parses the head again, with what it needs of it); without keys it
    // does not exist: 404 whatever the method.
    if crate::api::is_api_path(&req.path) {
        if shard.instance.settings.api.is_some() {
            return crate::api::serve(shard.clone(), stream, buf).await;
        }
        let _ = stream
            .write_all(json_error_response(404, "not_found", "no such endpoint"))
            .await;
        let _ = stream.shutdown().await;
        return;
    }
    let leftover = buf.split_off(req.head_len.min(buf.len()));
    let echo_path = shard.instance.settings.echo_path.as_deref();
    match req.route(echo_path) {
        Route::WebSocket => upgrade(shard.clone(), stream, req, leftover, false).await,
        Route::Echo => upgrade(shard.clone(), stream, req, leftover, true).await,
        route => {
            let response = shard.http_response(&req, route);
            let _ = stream.write_all(response).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// Reads the request head (bounded in size and time). Returns the request
/// and every byte read: the head, then any bytes the client sent after it.
/// A head over [`MAX_REQUEST_HEAD_BYTES`] or with too many header lines is
/// answered 431, one that is not HTTP/1.x 400 (the parser's refusal), a
/// silent or vanished client nothing.
async fn read_request(stream: &mut TcpStream) -> Option<(Request, Vec<u8>)> {
    let read = async {
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        loop {
            if buf.len() == buf.capacity() {
                // parse_request refuses a head that reached the limit, so a
                // full buffer this large is never read into again.
                buf.reserve(buf.capacity().min(MAX_REQUEST_HEAD_BYTES));
            }
            let len = buf.len();
            let (res, slice) = stream.read(buf.slice_mut(len..)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) | Err(_) => return Err(None),
                Ok(_) => {}
            }
            match parse_request(&buf) {
                Ok(Some(req)) => return Ok((req, buf)),
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "refused HTTP request head");
                    return Err(Some(e.refusal()));
                }
            }
        }
    };
    match monoio::time::timeout(REQUEST_TIMEOUT, read).await {
        Ok(Ok(done)) => Some(done),
        Ok(Err(None)) | Err(_) => None,
        Ok(Err(Some(refusal))) => {
            let _ = stream.write_all(refusal.to_response()).await;
            linger_close(stream).await;
            None
        }
    }
}

/// Ends a connection whose client may still be sending (the rest of a head
/// we refused): closing with unread bytes would send a reset, which can
/// destroy our answer before the client reads it. So: end our side, then
/// read and discard for a short, bounded while until the client closes.
async fn linger_close(stream: &mut TcpStream) {
    const LINGER: Duration = Duration::from_secs(2);
    const LINGER_BYTES: usize = 64 * 1024;
    let _ = stream.shutdown().await;
    let discard = async {
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            let (res, b) = stream.read(buf).await;
            buf = b;
            match res {
                Ok(n) if n > 0 => total += n,
                _ => return,
            }
        }
    };
    let _ = monoio::time::timeout(LINGER, discard).await;
}

async fn upgrade(
    shard: Rc<Shard>,
    mut stream: TcpStream,
    req: Request,
    leftover: Vec<u8>,
    echo: bool,
) {
    let identity = match admit(&shard, &req, echo) {
        Ok(identity) => identity,
        Err(response) => {
            let _ = stream.write_all(response).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    // An offer is taken only with COMPRESSION=on; otherwise it is declined
    // by not answering it (the client then sends uncompressed frames).
    let deflate = shard.instance.settings.compression.and(req.deflate);
    let key = req.ws_key.as_deref().unwrap_or_default();
    let (res, _) = stream.write_all(upgrade_response(key, deflate)).await;
    if res.is_err() {
        shard.instance.release_connection();
        return;
    }
    drop(req);
    // The socket leaves monoio (no operation of it is in flight now).
    // SAFETY: into_raw_fd hands over the only owner of the descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(stream.into_raw_fd()) };
    let raw = fd.as_raw_fd();
    let key = shard.insert_conn(identity, fd, echo, deflate);
    let mut leftover = leftover;
    if !leftover.is_empty() && !shard.on_bytes(key, &mut leftover) {
        shard.remove_conn(key);
        return;
    }
    // From here the shard's readiness set serves it: this handshake future
    // (request, buffers, upgrade state) ends and frees its memory.
    if let Err(e) = shard.poller.add(raw, key) {
        tracing::warn!(error = %e, "cannot watch an upgraded socket");
        shard.remove_conn(key);
    }
}

/// Decides whether the upgrade goes ahead; on success a connection slot is reserved.
fn admit(shard: &Shard, req: &Request, echo: bool) -> Result<Identity, Vec<u8>> {
    check_upgrade(req).map_err(|r| r.to_response())?;
    if !shard.instance.is_accepting() {
        return Err(json_error_response(
            503,
            "unavailable",
            "server is shutting down or draining",
        ));
    }
    if !shard.instance.admission.can_accept() {
        // The descriptor this client holds is the reserve: answer, don't keep it.
        return Err(json_error_response(
            503,
            "unavailable",
            "server is out of file descriptors",
        ));
    }
    let identity = if echo {
        Identity::insecure(UserId::parse("echo").expect("valid literal"))
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        shard.instance.auth.identify(req, now).map_err(|refusal| {
            shard.count_auth_failure();
            refusal.to_response()
        })?
    };
    let subs = identity.grants.as_ref().map_or(0, |g| g.subs.len());
    if subs > shard.instance.settings.max_channels_per_connection {
        shard.count_auth_failure();
        let refusal = Refusal::new(
            401,
            "unauthorized",
            "token subs claim exceeds MAX_CHANNELS_PER_CONNECTION",
        );
        return Err(refusal.to_response());
    }
    if !shard.instance.try_reserve_connection() {
        return Err(json_error_response(
            503,
            "unavailable",
            "connection limit reached",
        ));
    }
    Ok(identity)
}
