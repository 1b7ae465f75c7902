//! [`RedisCoordinator`]: the shards' side of the Redis coordination layer.
//!
//! Every method only pushes a [`Command`] into the I/O thread's unbounded
//! queue (a lock-free send) and returns; nothing here blocks a shard except
//! `shutdown`, which waits a bounded time for the thread's clean-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

use crate::coordinator::Coordinator;
use crate::coordinator::{History, Retention, StreamKey, StreamQuery, UserOp};
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

use super::engine::Command;
use super::worker::SHUTDOWN_TIMEOUT;

/// The Redis coordinator as the shards see it.
pub struct RedisCoordinator {
    /// The I/O thread's queue.
    tx: UnboundedSender<Command>,
    /// True while the link is up (set by the I/O thread).
    ready: Arc<AtomicBool>,
    /// The I/O thread, joined at shutdown.
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Signalled when the I/O thread ends (lets shutdown wait with a bound).
    done: Mutex<Option<mpsc::Receiver<()>>>,
}

impl RedisCoordinator {
    /// Wraps a started I/O thread.
    pub fn new(
        tx: UnboundedSender<Command>,
        ready: Arc<AtomicBool>,
        thread: JoinHandle<()>,
        done: mpsc::Receiver<()>,
    ) -> Self {
        Self {
            tx,
            ready,
            thread: Mutex::new(Some(thread)),
            done: Mutex::new(Some(done)),
        }
    }

    /// Queues a command; false when the I/O thread is gone.
    fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).is_ok()
    }
}

impl Coordinator for RedisCoordinator {
    fn add_route(&self, user: &UserId, shard: u16, token: u64) -> bool {
        let user = user.clone();
        self.send(Command::AddRoute { user, shard, token })
    }

    fn remove_route(&self, user: &UserId) {
        self.send(Command::RemoveRoute { user: user.clone() });
    }

    fn send_direct(
        &self,
        user: &UserId,
        frame: Bytes,
        shard: u16,
        token: u64,
        sent_at_us: u64,
    ) -> bool {
        let user = user.clone();
        let cmd = Command::Direct {
            user,
            frame,
            shard,
            token,
            sent_at_us,
        };
        // Token 0: deliver, but no outcome will be sent.
        self.send(cmd) && token != 0
    }

    fn send_broadcast(&self, frame: Bytes, sent_at_us: u64) {
        self.send(Command::Broadcast { frame, sent_at_us });
    }

    fn subscribe_channel(&self, channel: &ChannelName, shard: u16, token: u64) {
        self.send(Command::SubscribeChannel {
            channel: channel.clone(),
            shard,
            token,
        });
    }

    fn unsubscribe_channel(&self, channel: &ChannelName) {
        self.send(Command::UnsubscribeChannel {
            channel: channel.clone(),
        });
    }

    fn publish(
        &self,
        channel: &ChannelName,
        json: Bytes,
        history: Option<History>,
        shard: u16,
        token: u64,
        sent_at_us: u64,
    ) {
        self.send(Command::Publish {
            channel: channel.clone(),
            json,
            history,
            shard,
            token,
            sent_at_us,
        });
    }

    fn read_stream(&self, key: &StreamKey, query: StreamQuery, shard: u16, token: u64) {
        self.send(Command::ReadStream {
            key: key.clone(),
            query,
            shard,
            token,
        });
    }

    fn append_inbox(
        &self,
        user: &UserId,
        json: Bytes,
        retention: Retention,
        shard: u16,
        token: u64,
    ) {
        self.send(Command::AppendInbox {
            user: user.clone(),
            json,
            retention,
            shard,
            token,
        });
    }

    fn presence_changes(&self, channel: &ChannelName, changes: Vec<(UserId, i32)>) {
        self.send(Command::PresenceChanges {
            channel: channel.clone(),
            changes,
        });
    }

    fn presence_reset(&self, channel: &ChannelName, users: Vec<(UserId, u32)>) {
        self.send(Command::PresenceReset {
            channel: channel.clone(),
            users,
        });
    }

    fn read_presence(&self, channel: &ChannelName, cap: u32, shard: u16, token: u64) {
        self.send(Command::ReadPresence {
            channel: channel.clone(),
            cap,
            shard,
            token,
        });
    }

    fn send_user_op(&self, user: &UserId, op: UserOp, shard: u16, token: u64) {
        self.send(Command::UserOp {
            user: user.clone(),
            op,
            shard,
            token,
        });
    }

    fn user_servers(&self, user: &UserId, shard: u16, token: u64) {
        self.send(Command::UserServers {
            user: user.clone(),
            shard,
            token,
        });
    }

    fn idempotency(&self, key: &str, answer: Option<Bytes>, shard: u16, token: u64) {
        self.send(Command::Idempotency {
            key: key.to_owned(),
            answer,
            shard,
            token,
        });
    }

    fn delivery_report(&self, token: u64, connections: u32, parts: u32) {
        self.send(Command::Report {
            key: token,
            connections,
            parts,
        });
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn shutdown(&self) {
        self.send(Command::Shutdown);
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        let bound = SHUTDOWN_TIMEOUT + Duration::from_secs(1);
        let finished = done.is_some_and(|d| {
            !matches!(d.recv_timeout(bound), Err(mpsc::RecvTimeoutError::Timeout))
        });
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        match thread {
            Some(t) if finished => {
                let _ = t.join();
            }
            Some(_) => tracing::warn!("redis thread did not stop in time; leaving it"),
            None => {}
        }
    }
}
