//! One connection's state, owned by its shard, and its send queue.
//!
//! Kept compact on purpose (see the size test): an idle connection holds no
//! read or write buffer, no timer and no task: its socket sits in the shard's
//! readiness set, and this struct is all the memory it has of its own.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use bytes::Bytes;

use crate::auth::Grants;
use crate::protocol::deflate::Agreement;
use crate::protocol::frame::FrameDecoder;
use crate::protocol::UserId;
use crate::ratelimit::TokenBucket;

/// One queued outgoing frame.
#[derive(Debug)]
pub struct OutFrame {
    /// The frame bytes, shared with every other receiver of the same message.
    pub frame: Bytes,
    /// Unix micros when the sender's instance received the message; 0 for
    /// frames that are not delivered messages (welcome, acks, errors, control).
    pub sent_at_us: u64,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Upgraded; its route is being registered. Frames queue but are held so
    /// that `welcome` goes first.
    Registering,
    /// Welcomed and routable.
    Open,
    /// A close frame is queued; we wait for the peer's close or the deadline.
    Closing,
}

/// How the connection ended, for the "unexpected disconnect" metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Still open, or closed without a known reason (unexpected).
    Unknown,
    /// The client closed with 1000 or 1001, or the server shut down or drained.
    Expected,
    /// Closed by the server for cause (timeout, slow consumer, protocol error, …).
    Unexpected,
}

/// A connection on this shard.
pub struct Conn {
    /// The authenticated user; shared with the shard's user map.
    pub user: UserId,
    /// Sequence number of this connection on its shard: part of its id, and
    /// (its low 32 bits) the generation that tells it apart from a later
    /// connection reusing its slab slot, so messages holding an old key never
    /// touch the new one.
    pub seq: u64,
    /// What the token allows beyond the identity (`None`: nothing more, or
    /// insecure mode); interned by the shard, so eight bytes per connection.
    pub grants: Option<Arc<Grants>>,
    /// The socket; closed (and so dropped from the readiness set) with the connection.
    pub fd: OwnedFd,
    /// Shard clock (ms): of the last frame from the client while open; after
    /// which the socket is cut while closing.
    pub clock_ms: u32,
    /// Bytes waiting in `queue`, bounded by `SEND_QUEUE_BYTES`.
    pub queued_bytes: u32,
    /// Bytes of the queue's front frame already written (a partial write).
    pub write_offset: u32,
    /// The token's `exp` (Unix seconds, at most `u32::MAX`: early 2106);
    /// 0 when it has none. Kept here, not in the shared grants, because
    /// it differs from token to token.
    pub expires_at: u32,
    /// Lifecycle phase.
    pub phase: Phase,
    /// Why it ended, once known.
    pub ending: Ending,
    /// Yes/no facts about the connection, one bit each.
    pub flags: Flags,
    /// permessage-deflate as negotiated at the upgrade (one byte: the
    /// codec is the shard's); `None`: frames go out plain.
    pub deflate: Option<Agreement>,
    /// The rate limiter.
    pub bucket: TokenBucket,
    /// Frame reassembly; holds heap only mid-frame.
    pub decoder: FrameDecoder,
    /// Frames waiting to be written; one pointer, and no allocation, while empty.
    pub queue: SendQueue,
}

/// A connection's yes/no facts, packed into one byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags(u8);

impl Flags {
    /// An echo connection (conformance tests): frames are echoed, no protocol.
    pub const ECHO: u8 = 1;
    /// In the shard's flush list already (each connection is listed once).
    pub const FLUSH_SCHEDULED: u8 = 1 << 1;
    /// The socket buffer was full: `EPOLLOUT` is armed and flushes wait for it.
    pub const WRITE_BLOCKED: u8 = 1 << 2;
    /// After the queue drains, shut the write side (a close frame was queued).
    pub const CLOSE_AFTER_FLUSH: u8 = 1 << 3;
    /// Identity taken on trust (insecure mode): every channel allowed.
    pub const INSECURE: u8 = 1 << 4;
    /// `token_expiring` was sent for the current token.
    pub const EXPIRY_NOTIFIED: u8 = 1 << 5;

    /// Whether `bit` is set.
    #[inline]
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Sets or clears `bit`.
    #[inline]
    pub fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

/// A send queue that costs one pointer while idle: the deque is boxed and
/// dropped whenever it drains.
// The box is the point: 8 bytes per idle connection instead of 32.
#[allow(clippy::box_collection)]
#[derive(Debug, Default)]
pub struct SendQueue(Option<Box<VecDeque<OutFrame>>>);

impl SendQueue {
    /// Appends a frame.
    pub fn push_back(&mut self, f: OutFrame) {
        self.0.get_or_insert_with(Default::default).push_back(f);
    }

    /// Puts a frame first (the welcome).
    pub fn push_front(&mut self, f: OutFrame) {
        self.0.get_or_insert_with(Default::default).push_front(f);
    }

    /// The next frame.
    pub fn front(&self) -> Option<&OutFrame> {
        self.0.as_ref()?.front()
    }

    /// Takes the next frame.
    pub fn pop_front(&mut self) -> Option<OutFrame> {
        self.0.as_mut()?.pop_front()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|q| q.is_empty())
    }

    /// The queued frames, front first; `None` when nothing waits.
    pub fn frames(&self) -> Option<&VecDeque<OutFrame>> {
        self.0.as_deref().filter(|q| !q.is_empty())
    }

    /// Keeps only the first `n` frames.
    pub fn truncate(&mut self, n: usize) {
        if let Some(q) = self.0.as_mut() {
            q.truncate(n);
        }
    }

    /// Drops every frame and the deque's memory.
    pub fn release(&mut self) {
        self.0 = None;
    }
}

/// The generation of the connection with sequence number `seq`.
#[inline]
pub fn generation_of(seq: u64) -> u32 {
    seq as u32
}

/// What happened to a frame offered to a connection's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued.
    Accepted,
    /// The connection is closing; dropped.
    Closed,
    /// The queue is full: the connection must be closed as a slow consumer.
    Overflow,
}

impl Conn {
    /// A just-upgraded connection: protocol connections start registering
    /// their route, echo connections are open at once.
    pub fn new(user: UserId, fd: OwnedFd, echo: bool, seq: u64, now_ms: u32) -> Self {
        let mut flags = Flags::default();
        flags.set(Flags::ECHO, echo);
        Self {
            user,
            seq,
            grants: None,
            fd,
            clock_ms: now_ms,
            phase: if echo {
                Phase::Open
            } else {
                Phase::Registering
            },
            ending: Ending::Unknown,
            flags,
            deflate: None,
            queued_bytes: 0,
            write_offset: 0,
            expires_at: 0,
            bucket: TokenBucket::default(),
            decoder: FrameDecoder::new(),
            queue: SendQueue::default(),
        }
    }

    /// The same connection with what permessage-deflate agreed.
    pub fn with_deflate(mut self, deflate: Option<Agreement>) -> Self {
        self.deflate = deflate;
        self
    }

    /// The same connection with the token's grants and expiry.
    pub fn with_grants(
        mut self,
        grants: Option<Arc<Grants>>,
        insecure: bool,
        expires_at: Option<u64>,
    ) -> Self {
        self.grants = grants;
        self.flags.set(Flags::INSECURE, insecure);
        self.set_expiry(expires_at);
        self
    }

    /// Keeps a token's `exp` (see `expires_at`): past 2106 it is clamped,
    /// and `exp` 0 (long expired, so never accepted) is kept as 1.
    pub fn set_expiry(&mut self, exp_secs: Option<u64>) {
        self.expires_at = exp_secs.map_or(0, |e| u32::try_from(e).unwrap_or(u32::MAX).max(1));
    }

    /// The token's `exp`, Unix seconds, if it has one.
    pub fn expiry(&self) -> Option<u64> {
        (self.expires_at != 0).then_some(u64::from(self.expires_at))
    }

    /// The generation in this connection's key (see `seq`).
    #[inline]
    pub fn generation(&self) -> u32 {
        generation_of(self.seq)
    }

    /// An echo connection (no protocol).
    #[inline]
    pub fn is_echo(&self) -> bool {
        self.flags.has(Flags::ECHO)
    }

    /// Offers a frame to the send queue, within `limit` bytes.
    pub fn enqueue(&mut self, frame: Bytes, sent_at_us: u64, limit: usize) -> Enqueued {
        if self.phase == Phase::Closing {
            return Enqueued::Closed;
        }
        let len = frame.len();
        if self.queued_bytes as usize + len > limit {
            return Enqueued::Overflow;
        }
        self.queued_bytes += len as u32;
        self.queue.push_back(OutFrame { frame, sent_at_us });
        Enqueued::Accepted
    }

    /// Drops everything queued and releases the queue's memory.
    pub fn clear_queue(&mut self) {
        self.queue.release();
        self.queued_bytes = 0;
        self.write_offset = 0;
    }

    /// Drops `written` bytes from the front of the queue. `delivered` gets
    /// the `sent_at_us` of every message frame that left completely.
    pub fn consume_written(&mut self, written: usize, mut delivered: impl FnMut(u64)) {
        let mut left = written + self.write_offset as usize;
        self.queued_bytes -= written as u32;
        while let Some(f) = self.queue.front() {
            if left < f.frame.len() {
                break;
            }
            left -= f.frame.len();
            if f.sent_at_us > 0 {
                delivered(f.sent_at_us);
            }
            self.queue.pop_front();
        }
        self.write_offset = left as u32;
    }

    /// Drops what was not written yet, keeping the rest of a partly written
    /// frame so that the byte stream stays well-formed.
    pub fn discard_unsent(&mut self) {
        if self.write_offset == 0 {
            return self.clear_queue();
        }
        self.queue.truncate(1);
        let front = self.queue.front().map_or(0, |f| f.frame.len() as u32);
        self.queued_bytes = front - self.write_offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_connection_state_stays_compact() {
        // Regression guard for memory per idle connection (see BENCHMARKS.md).
        let size = std::mem::size_of::<Conn>();
        assert!(size <= 88, "Conn grew to {size} bytes");
    }

    fn conn() -> Conn {
        let fd = std::os::unix::net::UnixStream::pair().unwrap().0;
        let mut c = Conn::new(UserId::parse("u").unwrap(), fd.into(), false, 1, 0);
        c.phase = Phase::Open;
        c
    }

    fn frame(len: usize, sent_at_us: u64) -> (Bytes, u64) {
        (Bytes::from(vec![b'x'; len]), sent_at_us)
    }

    #[test]
    fn partial_writes_keep_an_offset_and_count_whole_messages_only() {
        let mut c = conn();
        for (f, at) in [frame(10, 1), frame(20, 0), frame(30, 3)] {
            assert_eq!(c.enqueue(f, at, 1 << 20), Enqueued::Accepted);
        }
        let mut delivered = Vec::new();
        c.consume_written(15, |at| delivered.push(at));
        assert_eq!(
            (delivered.as_slice(), c.write_offset, c.queued_bytes),
            (&[1][..], 5, 45)
        );
        c.consume_written(15, |at| delivered.push(at));
        assert_eq!(
            (c.write_offset, c.queued_bytes),
            (0, 30),
            "frame 2 left whole"
        );
        assert_eq!(delivered, vec![1], "frame 2 is not a message");
        c.consume_written(30, |at| delivered.push(at));
        assert_eq!(delivered, vec![1, 3]);
        assert!(c.queue.is_empty() && c.queued_bytes == 0);
    }

    #[test]
    fn discarding_keeps_the_rest_of_a_partly_written_frame() {
        let mut c = conn();
        for (f, at) in [frame(10, 1), frame(20, 2)] {
            c.enqueue(f, at, 1 << 20);
        }
        c.consume_written(4, |_| {});
        c.discard_unsent();
        assert_eq!(
            (c.queue.frames().map(|q| q.len()), c.queued_bytes),
            (Some(1), 6)
        );
        c.consume_written(6, |_| {});
        c.discard_unsent();
        assert!(c.queue.is_empty() && c.queued_bytes == 0 && c.write_offset == 0);
    }

    #[test]
    fn a_full_queue_overflows_and_a_closing_one_refuses() {
        let mut c = conn();
        let (f, _) = frame(10, 0);
        assert_eq!(c.enqueue(f.clone(), 0, 15), Enqueued::Accepted);
        assert_eq!(c.enqueue(f.clone(), 0, 15), Enqueued::Overflow);
        c.phase = Phase::Closing;
        assert_eq!(c.enqueue(f, 0, 15), Enqueued::Closed);
    }
}
