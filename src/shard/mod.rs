//! A shard: one pinned thread, one monoio runtime, and every piece of state
//! for the connections it accepted. Nothing here is shared with other
//! threads: shards talk only through [`ShardMsg`]s, and state lives in
//! `RefCell`s that are never borrowed across an `.await`.
//!
//! # Layout: the data flow
//!
//! - accept → [`runner`]: the runtime, the accept loop, the mailbox loop and
//!   the sweep timer; [`accept`]: back-off and readiness at the descriptor
//!   limit; [`handshake`]: one short-lived task per accepted socket
//!   reads the HTTP request, answers plain HTTP ([`http`]) or upgrades.
//! - read → [`read`]: the one task that waits on the shard's readiness set
//!   ([`poller`], epoll) and drains ready sockets into pooled buffers.
//! - decode → [`decode`]: frames to messages, control frames, the session's
//!   verdict on each client message.
//! - route → [`core`]: the I/O-free routing core (local users, owner
//!   directory, pending acks): events in, [`core::Action`]s out.
//! - deliver → [`deliver`]: carries out the core's actions: queues frames on
//!   connections ([`conn`]), welcomes, closes, mailboxes, coordinator calls.
//! - write → [`write`]: corked non-blocking `sendmsg` per turn.
//!
//! Server API requests come in through [`handshake`] too and reach the core
//! through [`api_call`].
//!
//! permessage-deflate: [`compression`] holds the shard's one compressor and
//! one decompressor; [`decode`] inflates through it, [`deliver`] compresses
//! each shared frame once for every receiver that negotiated it.
//!
//! Around them: [`lifecycle`] (a connection's insert and removal, shutdown
//! and drain), [`sweep`] (one timer per shard: heartbeats, close deadlines,
//! ack deadlines, token expiry, drain pace, unfinished-message deadlines),
//! [`token`] (`refresh`, `token_expiring`, 4001), [`unfinished`] (the side
//! table of connections mid-message, its deadline and budget), [`reclaim`]
//! (memory back to the OS after a burst), [`mailbox`] and [`messages`]
//! (cross-shard messages).

mod accept;
mod api_call;
mod compression;
mod conn;
pub mod core;
mod decode;
mod deliver;
mod handshake;
mod http;
mod lifecycle;
mod mailbox;
mod messages;
mod poller;
mod read;
mod reclaim;
mod runner;
mod sweep;
mod token;
mod unfinished;
mod write;

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Instant;

use slab::Slab;

use crate::auth::GrantsCache;
use crate::instance::Instance;
use crate::metrics::ShardMetrics;

pub use self::core::{owner_of, ShardCore};
pub use conn::{Conn, Ending, Enqueued, Flags, OutFrame, Phase, SendQueue};
pub use mailbox::Mailbox;
pub use messages::{CloseAll, ShardMsg};
pub use runner::run_shard;

use self::core::CoreConfig;
use accept::AcceptGate;
use poller::Poller;
use reclaim::Reclaim;
use unfinished::{Unfinished, UnfinishedLimits};
use write::FlushList;

/// A connection's address on its shard: slab key plus generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// Slab index.
    pub index: u32,
    /// Generation of the connection that held the slot when the key was made.
    pub generation: u32,
}

/// A connection id, `<server>-<boot id hex>-<shard>-<seq>`, as a `Display`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionId<'a> {
    /// The instance's server id.
    server_id: &'a str,
    /// The process's boot id.
    boot_id: u64,
    /// The shard.
    shard: u16,
    /// The connection's sequence number on the shard.
    seq: u64,
}

impl std::fmt::Display for ConnectionId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{:x}-{}-{}",
            self.server_id, self.boot_id, self.shard, self.seq
        )
    }
}

/// One shard's state.
pub struct Shard {
    /// This shard's number.
    pub index: u16,
    /// The instance.
    pub instance: Arc<Instance>,
    /// This shard's counters (written only here).
    pub metrics: Arc<ShardMetrics>,
    /// Connections.
    pub conns: RefCell<Slab<Conn>>,
    /// The routing core: local users, owned directory, pending acks.
    pub core: RefCell<ShardCore>,
    /// Server API calls waiting for the core's answer.
    pub api_calls: api_call::ApiCalls,
    /// Reusable read buffers: a connection borrows one only while reading.
    pub read_pool: RefCell<Vec<Vec<u8>>>,
    /// Every upgraded socket of the shard, watched for readability (and for
    /// room to write while its buffer is full).
    pub poller: Poller,
    /// Connections with frames to write at the end of this turn.
    pub flush_list: FlushList,
    /// When to give memory freed by a burst back to the OS.
    pub reclaim: Reclaim,
    /// Origin of the shard clock.
    pub started: Instant,
    /// Next connection sequence number.
    next_seq: Cell<u64>,
    /// Last server-made message id number (`<connectionId>.<n>`), shared by
    /// the shard's connections.
    pub next_message: Cell<u64>,
    /// The tokens' grants, interned: connections with equal claims share one.
    pub grants_cache: RefCell<GrantsCache>,
    /// Set when every connection is being closed (shutdown or drain).
    pub closing_all: Cell<Option<CloseAll>>,
    /// Connections mid-message: when each began, what it holds, and the
    /// shard's deadline and budget for them.
    pub unfinished: RefCell<Unfinished>,
    /// The accept loop's reserve descriptor, back-off and stall state.
    pub accept_gate: RefCell<AcceptGate>,
    /// permessage-deflate's one compressor and one decompressor for every
    /// connection, and the compress-once cache; `None` with `COMPRESSION=off`.
    pub codec: Option<compression::ShardCodec>,
}

/// Size of a pooled read buffer.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;
/// Pooled read buffers kept per shard; more are freed after use.
const READ_POOL_MAX: usize = 64;

impl Shard {
    /// A new shard with no connections.
    pub fn new(index: u16, instance: Arc<Instance>) -> std::io::Result<Self> {
        let metrics = instance.metrics.shard(usize::from(index));
        let settings = &instance.settings;
        let cfg = CoreConfig {
            index,
            shards: instance.shard_count() as u16,
            remote: instance.coordinator.is_remote(),
            delivery_timeout_ms: settings.delivery_timeout.as_millis() as u32,
            max_channels: settings.max_channels_per_connection,
            inbox: settings.inbox,
            max_recovery_bytes: settings.send_queue_bytes / 2,
        };
        let namespaces = settings.namespaces.clone();
        let seed = instance.boot_id ^ (u64::from(index) << 48);
        let server_id = settings.server_id.as_str().into();
        let core = ShardCore::new(cfg, metrics.clone(), namespaces, server_id, seed);
        let unfinished = Unfinished::new(UnfinishedLimits {
            timeout_ms: settings.message_complete_timeout.as_millis() as u32,
            budget_bytes: settings.partial_message_budget,
        });
        let codec = settings.compression.map(compression::ShardCodec::new);
        let poller = Poller::new()?;
        // The accept loop's reserve: see `accept`.
        let accept_gate = AcceptGate::new(Some(poller.dup_fd()?));
        Ok(Self {
            index,
            instance,
            metrics,
            conns: RefCell::new(Slab::new()),
            core: RefCell::new(core),
            api_calls: api_call::ApiCalls::default(),
            read_pool: RefCell::new(Vec::new()),
            poller,
            flush_list: FlushList::default(),
            reclaim: Reclaim::default(),
            started: Instant::now(),
            next_seq: Cell::new(1),
            next_message: Cell::new(0),
            grants_cache: RefCell::new(GrantsCache::default()),
            closing_all: Cell::new(None),
            unfinished: RefCell::new(unfinished),
            accept_gate: RefCell::new(accept_gate),
            codec,
        })
    }

    /// Shard clock in milliseconds (wraps after 49 days; comparisons use wrapping arithmetic).
    pub fn now_ms(&self) -> u32 {
        (self.started.elapsed().as_millis() as u64).max(1) as u32
    }

    fn next_seq(&self) -> u64 {
        let s = self.next_seq.get();
        self.next_seq.set(s + 1);
        s
    }

    /// The connection id of `conn` as clients see it: unique across servers
    /// (server id), restarts (boot id) and shards. Formatted only where it is
    /// written (welcome, server-made message ids), never allocated per message.
    pub fn connection_id(&self, seq: u64) -> ConnectionId<'_> {
        ConnectionId {
            server_id: &self.instance.settings.server_id,
            boot_id: self.instance.boot_id,
            shard: self.index,
            seq,
        }
    }

    /// Runs `f` on the connection `key` if it still exists.
    pub fn with_conn<R>(&self, key: ConnKey, f: impl FnOnce(&mut Conn) -> R) -> Option<R> {
        let mut conns = self.conns.borrow_mut();
        match conns.get_mut(key.index as usize) {
            Some(c) if c.generation() == key.generation => Some(f(c)),
            _ => None,
        }
    }

    /// Borrows a read buffer from the pool.
    pub fn take_read_buffer(&self) -> Vec<u8> {
        self.read_pool
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(READ_BUFFER_BYTES))
    }

    /// Returns a read buffer to the pool.
    pub fn give_read_buffer(&self, mut buf: Vec<u8>) {
        let mut pool = self.read_pool.borrow_mut();
        if pool.len() < READ_POOL_MAX && buf.capacity() == READ_BUFFER_BYTES {
            buf.clear();
            pool.push(buf);
        }
    }
}
