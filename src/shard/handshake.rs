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
    let Some((req, leftover)) = read_request(&mut stream).await else {
        return;
    };
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
/// and any bytes the client sent after it.
async fn read_request(stream: &mut TcpStream) -> Option<(Request, Vec<u8>)> {
    let read = async {
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        loop {
            if buf.len() == buf.capacity() {
                if buf.len() >= MAX_REQUEST_HEAD_BYTES {
                    return Err(431);
                }
                buf.reserve(buf.capacity());
            }
            let len = buf.len();
            let (res, slice) = stream.read(buf.slice_mut(len..)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) | Err(_) => return Err(0),
                Ok(_) => {}
            }
            match parse_request(&buf) {
                Ok(Some(req)) => {
                    let leftover = buf.split_off(req.head_len.min(buf.len()));
                    return Ok((req, leftover));
                }
                Ok(None) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "bad HTTP request");
                    return Err(400);
                }
            }
        }
    };
    match monoio::time::timeout(REQUEST_TIMEOUT, read).await {
        Ok(Ok(done)) => Some(done),
        Ok(Err(0)) | Err(_) => None,
        Ok(Err(status)) => {
            let msg = if status == 431 {
                "request head too large"
            } else {
                "malformed HTTP request"
            };
            let _ = stream
                .write_all(json_error_response(status, "bad_request", msg))
                .await;
            None
        }
    }
}

async fn upgrade(
    shard: Rc<Shard>,
    mut stream: TcpStream,
    req: Request,
    leftover: Vec<u8>,
    echo: bool,
) {
    let user = match admit(&shard, &req, echo) {
        Ok(user) => user,
        Err(response) => {
            let _ = stream.write_all(response).await;
            let _ = stream.shutdown().await;
            return;
        }
    };
    let key = req.ws_key.as_deref().unwrap_or_default();
    let (res, _) = stream.write_all(upgrade_response(key, None)).await;
    if res.is_err() {
        shard.instance.release_connection();
        return;
    }
    drop(req);
    // The socket leaves monoio (no operation of it is in flight now).
    // SAFETY: into_raw_fd hands over the only owner of the descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(stream.into_raw_fd()) };
    let raw = fd.as_raw_fd();
    let key = shard.insert_conn(user, fd, echo);
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
fn admit(shard: &Shard, req: &Request, echo: bool) -> Result<UserId, Vec<u8>> {
    check_upgrade(req).map_err(|r| r.to_response())?;
    if !shard.instance.is_accepting() {
        return Err(json_error_response(
            503,
            "unavailable",
            "server is shutting down or draining",
        ));
    }
    let user = if echo {
        UserId::parse("echo").expect("valid literal")
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        shard
            .instance
            .auth
            .authenticate(req, now)
            .map_err(|refusal| {
                shard.count_auth_failure();
                refusal.to_response()
            })?
    };
    if !shard.instance.try_reserve_connection() {
        return Err(json_error_response(
            503,
            "unavailable",
            "connection limit reached",
        ));
    }
    Ok(user)
}
