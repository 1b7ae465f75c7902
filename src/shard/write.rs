//! Writing send queues to sockets, corked per scheduler turn.
//!
//! Enqueuing a frame only marks its connection dirty. The shard's flusher
//! task runs once the current turn (a batch of reads, of mailbox messages, a
//! sweep) has yielded, and writes each dirty connection's queue with one
//! non-blocking `sendmsg` of up to [`IOVECS_PER_WRITE`] frames: the frames
//! of a turn leave in one syscall, and a broadcast's bytes are written from
//! the one shared buffer to every receiver without copying. A full socket
//! buffer arms `EPOLLOUT` and the rest waits in the queue (bounded by
//! `send_queue_bytes`; beyond it the receiver is a slow consumer).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::IoSlice;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::SystemTime;

use socket2::SockRef;

use crate::metrics::Counter;

use super::{Conn, ConnKey, Flags, Phase, Shard};

/// Most frames one `sendmsg` carries.
pub const IOVECS_PER_WRITE: usize = 64;

/// Connections with frames to write, and the flusher task's wake-up.
#[derive(Default)]
pub struct FlushList {
    /// Dirty connections, each at most once (`Conn::flush_scheduled`).
    keys: RefCell<Vec<ConnKey>>,
    /// The flusher task, parked while the list is empty.
    waker: Cell<Option<Waker>>,
}

impl FlushList {
    /// Adds `key` and wakes the flusher.
    pub fn push(&self, key: ConnKey) {
        self.keys.borrow_mut().push(key);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Waits until the list is not empty, then takes it (swapping in `spare`).
    async fn take(&self, spare: &mut Vec<ConnKey>) {
        poll_fn(|cx| {
            let mut keys = self.keys.borrow_mut();
            if keys.is_empty() {
                self.waker.set(Some(cx.waker().clone()));
                return Poll::Pending;
            }
            std::mem::swap(&mut *keys, spare);
            Poll::Ready(())
        })
        .await
    }
}

/// The shard's flusher: writes every dirty connection, turn after turn.
pub async fn flush_loop(shard: Rc<Shard>) {
    let mut batch = Vec::new();
    loop {
        shard.flush_list.take(&mut batch).await;
        for key in batch.drain(..) {
            shard.flush(key);
        }
    }
}

/// What one flush attempt left behind.
enum Flushed {
    /// Nothing queued any more.
    Drained,
    /// The socket buffer is full; wait for `EPOLLOUT`.
    Blocked,
    /// The peer is gone (the read side will see it and remove the connection).
    Failed,
}

impl Shard {
    /// Marks a connection as having frames to write.
    pub fn schedule_flush(&self, key: ConnKey, c: &mut Conn) {
        if c.flags.has(Flags::FLUSH_SCHEDULED)
            || c.flags.has(Flags::WRITE_BLOCKED)
            || c.phase == Phase::Registering
        {
            return;
        }
        c.flags.set(Flags::FLUSH_SCHEDULED, true);
        self.flush_list.push(key);
    }

    /// Writes as much of the connection's queue as the socket takes now.
    pub fn flush(&self, key: ConnKey) {
        let now_us = super::core::unix_micros(SystemTime::now());
        self.with_conn(key, |c| {
            c.flags.set(Flags::FLUSH_SCHEDULED, false);
            if c.phase == Phase::Registering {
                return;
            }
            let was_blocked = c.flags.has(Flags::WRITE_BLOCKED);
            match self.write_queue(c, now_us) {
                Flushed::Drained => {
                    c.flags.set(Flags::WRITE_BLOCKED, false);
                    c.clear_queue();
                    if c.flags.has(Flags::CLOSE_AFTER_FLUSH) {
                        c.flags.set(Flags::CLOSE_AFTER_FLUSH, false);
                        let _ = SockRef::from(&c.fd).shutdown(Shutdown::Write);
                    }
                }
                Flushed::Blocked => c.flags.set(Flags::WRITE_BLOCKED, true),
                Flushed::Failed => {
                    c.flags.set(Flags::WRITE_BLOCKED, false);
                    c.clear_queue();
                    // The peer is gone: make the read side see it now.
                    let _ = SockRef::from(&c.fd).shutdown(Shutdown::Both);
                }
            }
            let blocked = c.flags.has(Flags::WRITE_BLOCKED);
            if was_blocked != blocked {
                let fd = c.fd.as_raw_fd();
                if let Err(e) = self.poller.set_write_interest(fd, key, blocked) {
                    tracing::warn!(error = %e, "epoll_ctl failed; cutting the connection");
                    let _ = SockRef::from(&c.fd).shutdown(Shutdown::Both);
                }
            }
        });
    }

    fn write_queue(&self, c: &mut Conn, now_us: u64) -> Flushed {
        loop {
            let Some(queue) = c.queue.frames() else {
                return Flushed::Drained;
            };
            let mut iov = [IoSlice::new(&[]); IOVECS_PER_WRITE];
            let mut count = 0;
            let mut offered = 0;
            let mut skip = c.write_offset as usize;
            for f in queue.iter().take(IOVECS_PER_WRITE) {
                let bytes = &f.frame[skip..];
                skip = 0;
                iov[count] = IoSlice::new(bytes);
                count += 1;
                offered += bytes.len();
            }
            if count == 0 {
                return Flushed::Drained;
            }
            let flags = libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT;
            let n = SockRef::from(&c.fd).send_vectored_with_flags(&iov[..count], flags);
            match n {
                Ok(written) => {
                    self.metrics.add(Counter::BytesOut, written as u64);
                    self.consume(c, written, now_us);
                    if written < offered {
                        return Flushed::Blocked;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Flushed::Blocked,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Flushed::Failed,
            }
        }
    }

    /// Drops `written` bytes from the queue, counting every delivered
    /// message that left completely.
    fn consume(&self, c: &mut Conn, written: usize, now_us: u64) {
        c.consume_written(written, |sent_at_us| {
            self.metrics.incr(Counter::MessagesDelivered);
            self.metrics
                .record_delivery_latency(now_us.saturating_sub(sent_at_us));
        });
    }
}
