//! The shard's readiness set: one epoll instance holding every upgraded
//! connection of the shard, waited on by one task.
//!
//! Why not a task per connection: a parked monoio task with its readiness op
//! and its `TcpStream` costs about 750 bytes per idle connection; an entry in
//! this set costs nothing in user space (the kernel keeps an `epitem`). The
//! epoll fd itself is pollable, so the shard's runtime waits on it like on
//! any socket: an io_uring `PollAdd` on the io_uring driver, a nested epoll
//! registration on the legacy driver.
//!
//! Interest is level-triggered: a connection that still has bytes after its
//! read budget is reported again on the next wait, and `EPOLLOUT` is armed
//! only while a connection's socket buffer is full.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::ConnKey;

/// Events taken from the kernel per wait.
pub const EVENTS_PER_TURN: usize = 256;

/// Readable, or the peer hung up / errored (a read then sees it).
pub const READ_EVENTS: u32 =
    (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Writable again after a full socket buffer.
pub const WRITE_EVENTS: u32 = libc::EPOLLOUT as u32;

/// One epoll instance.
#[derive(Debug)]
pub struct Poller {
    /// The epoll fd; closing it drops every registration.
    epfd: OwnedFd,
}

/// One readiness report: which connection, and what it is ready for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// The connection, as registered.
    pub key: ConnKey,
    /// Bytes (or EOF/error) to read.
    pub read: bool,
    /// Room to write.
    pub write: bool,
}

impl Poller {
    /// A new, empty set.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { epfd })
    }

    /// Starts watching `fd` for reads on behalf of `key`.
    pub fn add(&self, fd: RawFd, key: ConnKey) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, key, READ_EVENTS)
    }

    /// Watches `fd` for reads, and for writes too when `write` is set.
    pub fn set_write_interest(&self, fd: RawFd, key: ConnKey, write: bool) -> io::Result<()> {
        let events = if write {
            READ_EVENTS | WRITE_EVENTS
        } else {
            READ_EVENTS
        };
        self.ctl(libc::EPOLL_CTL_MOD, fd, key, events)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, key: ConnKey, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: encode_key(key),
        };
        // SAFETY: valid epoll fd and event pointer for the call's duration.
        let r = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Takes what is ready now, without waiting, into `out` (cleared first;
    /// at most [`EVENTS_PER_TURN`]).
    pub fn take_ready(&self, raw: &mut Vec<libc::epoll_event>, out: &mut Vec<Ready>) {
        out.clear();
        raw.clear();
        raw.reserve(EVENTS_PER_TURN);
        // SAFETY: the kernel writes at most EVENTS_PER_TURN events into the spare capacity.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                raw.as_mut_ptr(),
                EVENTS_PER_TURN as libc::c_int,
                0,
            )
        };
        if n <= 0 {
            return;
        }
        // SAFETY: the kernel initialised the first n events.
        unsafe { raw.set_len(n as usize) };
        out.extend(raw.iter().map(|ev| {
            let events = ev.events;
            Ready {
                key: decode_key(ev.u64),
                read: events & READ_EVENTS != 0,
                write: events & WRITE_EVENTS != 0,
            }
        }));
    }

    /// A second descriptor for the same set, for the runtime to wait on.
    pub fn dup_fd(&self) -> io::Result<OwnedFd> {
        self.epfd.try_clone()
    }
}

fn encode_key(key: ConnKey) -> u64 {
    (u64::from(key.index) << 32) | u64::from(key.generation)
}

fn decode_key(data: u64) -> ConnKey {
    ConnKey {
        index: (data >> 32) as u32,
        generation: data as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn keys_round_trip() {
        let key = ConnKey {
            index: 7,
            generation: u32::MAX,
        };
        assert_eq!(decode_key(encode_key(key)), key);
    }

    #[test]
    fn reports_readable_and_writable_sockets_by_key() {
        let poller = Poller::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let key = ConnKey {
            index: 3,
            generation: 9,
        };
        poller.add(a.as_raw_fd(), key).unwrap();
        let (mut raw, mut ready) = (Vec::new(), Vec::new());
        poller.take_ready(&mut raw, &mut ready);
        assert!(ready.is_empty(), "nothing to read yet: {ready:?}");
        b.write_all(b"x").unwrap();
        poller.take_ready(&mut raw, &mut ready);
        assert_eq!(
            ready,
            vec![Ready {
                key,
                read: true,
                write: false
            }]
        );
        poller.set_write_interest(a.as_raw_fd(), key, true).unwrap();
        poller.take_ready(&mut raw, &mut ready);
        assert!(ready[0].read && ready[0].write, "{ready:?}");
    }
}
