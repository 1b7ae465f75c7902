//! The socket side of a connection: the HTTP request, the upgrade, the
//! reader task and the on-demand writer task.
//!
//! An idle connection has exactly one task, its reader, parked on a
//! readiness wait (`readable()`: an io_uring `PollAdd`, or epoll readiness
//! on the legacy driver) that holds no buffer. Only when bytes are there
//! does it borrow a read buffer from the shard's pool, and it gives it back
//! before waiting again. The writer task exists only while the send queue
//! has frames; when the queue drains it parks the write half back in the
//! connection and ends.

use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use monoio::buf::IoBufMut;
use monoio::io::{
    AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, OwnedReadHalf, OwnedWriteHalf, Splitable,
};
use monoio::net::TcpStream;

use crate::auth::UserId;
use crate::metrics::Counter;
use crate::protocol::handshake::{
    check_upgrade, json_error_response, parse_request, upgrade_response, Request, Route,
    MAX_REQUEST_HEAD_BYTES,
};

use super::{ConnKey, OutFrame, Shard};

/// How long a client may take to send its HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most buffers one connection reads before letting the others run.
const READS_PER_TURN: u32 = 4;
/// Most bytes one writer turn coalesces into a single write.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// Serves one accepted TCP connection from its first byte to its close.
pub async fn serve(shard: Rc<Shard>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Some((req, leftover)) = read_request(&mut stream).await else {
        return;
    };
    let echo_path = shard.shared.settings.echo_path.as_deref();
    match req.route(echo_path) {
        Route::WebSocket => upgrade(shard, stream, req, leftover, false).await,
        Route::Echo => upgrade(shard, stream, req, leftover, true).await,
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
    let (res, _) = stream.write_all(upgrade_response(key)).await;
    if res.is_err() {
        shard.shared.release_connection();
        return;
    }
    drop(req);
    let (reader, writer) = stream.into_split();
    let key = shard.insert_conn(user, writer, echo);
    let mut leftover = leftover;
    if !leftover.is_empty() && !shard.on_bytes(key, &mut leftover) {
        shard.remove_conn(key);
        return;
    }
    // The connection lives on in a small task of its own: this handshake
    // future (request, buffers, upgrade state) ends here and frees its memory.
    monoio::spawn(read_loop(shard, key, reader));
}

/// Decides whether the upgrade goes ahead; on success a connection slot is reserved.
fn admit(shard: &Shard, req: &Request, echo: bool) -> Result<UserId, Vec<u8>> {
    check_upgrade(req).map_err(|r| r.to_response())?;
    if !shard.shared.is_accepting() {
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
            .shared
            .auth
            .authenticate(req, now)
            .map_err(|refusal| {
                shard.count_auth_failure();
                refusal.to_response()
            })?
    };
    if !shard.shared.try_reserve_connection() {
        return Err(json_error_response(
            503,
            "unavailable",
            "connection limit reached",
        ));
    }
    Ok(user)
}

async fn read_loop(shard: Rc<Shard>, key: ConnKey, reader: OwnedReadHalf<TcpStream>) {
    // SAFETY: the read half is the only user of the stream's read side;
    // `readable` takes `&self` and only submits a readiness wait.
    let stream = unsafe { &*reader.0.get() };
    let fd = stream.as_raw_fd();
    while stream.readable(false).await.is_ok() && drain_socket(&shard, key, fd) {}
    shard.remove_conn(key);
}

/// Reads what the socket holds now (at most `READS_PER_TURN` buffers, so one
/// busy client cannot hold the shard), without waiting, into a shard buffer
/// that is given back before returning: no buffer is ever held across an
/// await. False when the connection ended.
fn drain_socket(shard: &Rc<Shard>, key: ConnKey, fd: RawFd) -> bool {
    let mut buf = shard.take_read_buffer();
    let mut turns = 0;
    let alive = loop {
        let cap = buf.capacity();
        // SAFETY: recv writes at most `cap` bytes into the buffer's spare capacity.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), cap, libc::MSG_DONTWAIT) };
        if n > 0 {
            let n = n as usize;
            // SAFETY: the kernel initialised the first `n` bytes.
            unsafe { buf.set_len(n) };
            shard.metrics.add(Counter::BytesIn, n as u64);
            if !shard.on_bytes(key, &mut buf[..n]) {
                break false;
            }
            turns += 1;
            if n < cap || turns == READS_PER_TURN {
                // Readiness is level-triggered: anything left wakes us again.
                break true;
            }
            continue;
        }
        if n == 0 {
            break false;
        }
        match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::WouldBlock => break true,
            std::io::ErrorKind::Interrupted => continue,
            _ => break false,
        }
    };
    shard.give_read_buffer(buf);
    alive
}

/// Starts the writer task of a connection if it is not running.
pub fn start_writer(shard: &Rc<Shard>, key: ConnKey) {
    let writer = shard
        .with_conn(key, |c| {
            if c.writing {
                return None;
            }
            let w = c.writer.take()?;
            c.writing = true;
            Some(w)
        })
        .flatten();
    if let Some(w) = writer {
        monoio::spawn(write_loop(shard.clone(), key, w));
    }
}

/// What one writer turn found in the queue.
enum Turn {
    /// Frames to write now.
    Write(Vec<OutFrame>),
    /// Queue drained, nothing else to do: the half was parked back.
    Parked,
    /// Queue drained after a close frame: shut the write side.
    Shutdown,
    /// The connection is gone.
    Gone,
}

async fn write_loop(shard: Rc<Shard>, key: ConnKey, w: OwnedWriteHalf<TcpStream>) {
    let mut slot = Some(w);
    loop {
        match next_turn(&shard, key, &mut slot) {
            Turn::Parked | Turn::Gone => return,
            Turn::Shutdown => {
                if let Some(mut w) = slot {
                    let _ = w.shutdown().await;
                }
                return;
            }
            Turn::Write(frames) => {
                let Some(w) = slot.as_mut() else { return };
                if write_frames(&shard, w, frames).await.is_err() {
                    // The peer is gone: make the reader see it now.
                    shard.with_conn(key, |c| unsafe { libc::shutdown(c.fd, libc::SHUT_RDWR) });
                    return;
                }
            }
        }
    }
}

fn next_turn(shard: &Shard, key: ConnKey, parked: &mut Option<OwnedWriteHalf<TcpStream>>) -> Turn {
    shard
        .with_conn(key, |c| {
            if c.queue.is_empty() {
                c.queue.release();
                if c.close_after_flush {
                    return Turn::Shutdown;
                }
                c.writing = false;
                c.writer = parked.take();
                return Turn::Parked;
            }
            let mut frames = Vec::new();
            let mut bytes = 0;
            while let Some(f) = c.queue.front() {
                if !frames.is_empty() && bytes + f.frame.len() > WRITE_BATCH_BYTES {
                    break;
                }
                bytes += f.frame.len();
                frames.push(c.queue.pop_front().expect("front exists"));
            }
            c.queued_bytes -= bytes as u32;
            Turn::Write(frames)
        })
        .unwrap_or(Turn::Gone)
}

async fn write_frames(
    shard: &Shard,
    w: &mut OwnedWriteHalf<TcpStream>,
    frames: Vec<OutFrame>,
) -> std::io::Result<()> {
    let total: usize = frames.iter().map(|f| f.frame.len()).sum();
    let data: Bytes = if frames.len() == 1 {
        frames[0].frame.clone()
    } else {
        let mut buf = Vec::with_capacity(total);
        frames.iter().for_each(|f| buf.extend_from_slice(&f.frame));
        buf.into()
    };
    let (res, _) = w.write_all(data).await;
    res?;
    shard.metrics.add(Counter::BytesOut, total as u64);
    let now_us = super::dispatch::unix_micros(SystemTime::now());
    for f in frames.iter().filter(|f| f.sent_at_us > 0) {
        shard.metrics.incr(Counter::MessagesDelivered);
        shard
            .metrics
            .record_delivery_latency(now_us.saturating_sub(f.sent_at_us));
    }
    Ok(())
}
