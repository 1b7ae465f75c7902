//! The shard's one reading task: waits until its readiness set has events,
//! then reads every ready connection into a pooled buffer and writes every
//! connection whose socket has room again.
//!
//! No connection owns a buffer, a task or a pending I/O operation while it
//! is idle; a read buffer is borrowed from the shard's pool only for the
//! `recv` calls of one readiness event and given back before the next.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::rc::Rc;
use std::time::Duration;

use monoio::net::UnixStream;

use crate::metrics::Counter;

use super::poller::{Ready, EVENTS_PER_TURN};
use super::{ConnKey, Shard};

/// Most buffers one connection reads before letting the others run.
const READS_PER_TURN: u32 = 4;

/// Serves the readiness set until the runtime stops; `waiter` is the set's
/// fd as the runtime sees it ([`readiness_waiter`]).
pub async fn readiness_loop(shard: Rc<Shard>, waiter: UnixStream) {
    let mut raw = Vec::with_capacity(EVENTS_PER_TURN);
    let mut ready = Vec::with_capacity(EVENTS_PER_TURN);
    let mut failures = 0u64;
    loop {
        if let Err(e) = waiter.readable(false).await {
            // Not expected from an epoll fd; retry, logging the first and
            // then every 1,000th failure rather than flooding the log.
            if failures.is_multiple_of(1000) {
                tracing::warn!(shard = shard.index, error = %e, failures, "readiness wait failed");
            }
            failures += 1;
            monoio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        shard.poller.take_ready(&mut raw, &mut ready);
        for r in ready.iter() {
            on_ready(&shard, *r);
        }
    }
}

/// The epoll fd as something the runtime can wait on. monoio has no public
/// readiness wait for an arbitrary fd; its `UnixStream` is a bare shared fd
/// whose `readable()` is exactly that (a `PollAdd` on io_uring, a registration
/// on the legacy driver), and it never issues socket calls on its own.
pub fn readiness_waiter(shard: &Shard) -> io::Result<UnixStream> {
    let fd = shard.poller.dup_fd()?;
    UnixStream::from_std(StdUnixStream::from(fd))
}

fn on_ready(shard: &Rc<Shard>, r: Ready) {
    if r.write {
        shard.flush(r.key);
    }
    if r.read {
        let Some(fd) = shard.with_conn(r.key, |c| c.fd.as_raw_fd()) else {
            return;
        };
        if !drain_socket(shard, r.key, fd) {
            shard.remove_conn(r.key);
        }
    }
}

/// Reads what the socket holds now (at most `READS_PER_TURN` buffers, so one
/// busy client cannot hold the shard), without waiting, into a shard buffer
/// that is given back before returning. False when the connection ended.
fn drain_socket(shard: &Rc<Shard>, key: ConnKey, fd: RawFd) -> bool {
    let mut buf = shard.take_read_buffer();
    let mut turns = 0;
    let alive = loop {
        // Each read refills the whole buffer: the previous bytes were decoded.
        buf.clear();
        let cap = buf.capacity();
        let spare = buf.spare_capacity_mut();
        // SAFETY: `fd` is this connection's socket and stays open for the
        // whole loop (a connection is removed only by the read path, after
        // it); recv writes at most `spare.len()` bytes into memory we own.
        let n = unsafe {
            libc::recv(
                fd,
                spare.as_mut_ptr().cast(),
                spare.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            let n = n as usize;
            // SAFETY: the kernel initialised the first `n` bytes of the spare capacity.
            unsafe { buf.set_len(n) };
            shard.metrics.add(Counter::BytesIn, n as u64);
            if !shard.on_bytes(key, &mut buf[..n]) {
                break false;
            }
            turns += 1;
            if n < cap || turns == READS_PER_TURN {
                // Level-triggered: anything left is reported again.
                break true;
            }
            continue;
        }
        if n == 0 {
            break false;
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::WouldBlock => break true,
            io::ErrorKind::Interrupted => continue,
            _ => break false,
        }
    };
    shard.give_read_buffer(buf);
    alive
}
