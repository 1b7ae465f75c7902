//! The connection to Redis: one standalone server or a Cluster, behind one
//! small interface (connect and subscribe, run a round, list nodes).
//!
//! - Standalone: one multiplexed RESP3 connection carries the commands and
//!   the subscriptions (pushes go to our channel); a round is one pipeline.
//! - Cluster: the `redis` crate's cluster client, RESP3 with a push sender
//!   (its pub/sub needs both). The per-server channel is subscribed with
//!   `SSUBSCRIBE` (the client routes it to the slot's owner, following
//!   `MOVED`); the broadcast channel with plain `SUBSCRIBE`. A round is one
//!   pipeline per slot, the slots' pipelines running concurrently: Cluster
//!   pipelines cannot span slots, and commands of one key or channel stay in
//!   order because they share a slot and so a pipeline.
//!
//! A link is never repaired in place: on any connection-level failure, or
//! when Redis drops one of our subscriptions on its own (a Cluster node
//! that lost a slot), the worker drops it and connects a new one
//! (re-subscribing, rewriting the liveness key and re-registering routes),
//! which is simple and covers a Redis that restarted empty or a slot that
//! moved.
//!
//! # Layout
//!
//! - this file: [`Link`] and what it does once connected (subscribe, apply
//!   channel changes, run a round);
//! - `connect.rs`: [`connect`], Cluster detection and the masters' list;
//! - `rounds.rs`: a round as one pipeline (standalone) or one pipeline per
//!   slot (Cluster), and [`is_link_error`].

mod connect;
mod rounds;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, PushInfo};
use tokio::sync::mpsc::UnboundedReceiver;

use super::channels::Changes;
use super::keys;
use super::publication::redis_channel;
use super::round::{Reply, Target};
use super::sweep::Node;

pub use connect::{connect, parse_slot_masters};
pub use rounds::is_link_error;
pub(super) use rounds::to_reply;
use rounds::{run_cluster, run_pipeline};

/// Connecting (TCP + handshake) to one node may take this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A reply may take this long before the link counts as broken.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Channels per standalone `SUBSCRIBE`/`UNSUBSCRIBE` command.
const CHANNELS_PER_COMMAND: usize = 512;

/// Pushes (pub/sub messages, disconnection notices) of one link.
pub type Pushes = UnboundedReceiver<PushInfo>;

/// A connected, subscribed link.
pub enum Link {
    /// One standalone server.
    Single(MultiplexedConnection),
    /// A Cluster, with its masters (for the sweep's per-node `SCAN`).
    Cluster(ClusterConnection, Vec<(String, u16)>),
}

impl Link {
    /// Subscribes `server_id`'s channel (sharded on a Cluster) and the
    /// broadcast channel. Done once our liveness key is claimed, so that a
    /// process refused for a duplicate id never receives that id's messages.
    pub async fn subscribe(&mut self, server_id: &str) -> redis::RedisResult<()> {
        let channel = keys::server_channel(server_id);
        match self {
            Link::Single(conn) => {
                conn.subscribe(&[channel.as_str(), keys::BROADCAST_CHANNEL])
                    .await
            }
            Link::Cluster(conn, _) => {
                conn.ssubscribe(&channel).await?;
                conn.subscribe(keys::BROADCAST_CHANNEL).await
            }
        }
    }

    /// The nodes the sweep scans.
    pub fn nodes(&self) -> Vec<Node> {
        match self {
            Link::Single(_) => vec![None],
            Link::Cluster(_, masters) => masters.iter().cloned().map(Some).collect(),
        }
    }

    /// True on a Cluster (sharded pub/sub for per-server channels).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Link::Cluster(..))
    }

    /// Subscribes and unsubscribes the instance's channels: on a standalone
    /// server in a few multi-channel `SUBSCRIBE`/`UNSUBSCRIBE` commands, on a
    /// Cluster one `SSUBSCRIBE`/`SUNSUBSCRIBE` per channel (each routed to
    /// its slot's node), all concurrently. `Err` means the link is broken.
    pub async fn apply_channels(&mut self, changes: &Changes) -> redis::RedisResult<()> {
        let sub: Vec<String> = changes.subscribe.iter().map(|c| redis_channel(c)).collect();
        let unsub: Vec<String> = changes
            .unsubscribe
            .iter()
            .map(|c| redis_channel(c))
            .collect();
        match self {
            Link::Single(conn) => {
                for chunk in sub.chunks(CHANNELS_PER_COMMAND) {
                    conn.subscribe(chunk).await?;
                }
                for chunk in unsub.chunks(CHANNELS_PER_COMMAND) {
                    conn.unsubscribe(chunk).await?;
                }
                Ok(())
            }
            Link::Cluster(conn, _) => {
                let subs = sub.iter().map(|name| {
                    let mut conn = conn.clone();
                    async move { conn.ssubscribe(name).await }
                });
                let unsubs = unsub.iter().map(|name| {
                    let mut conn = conn.clone();
                    async move { conn.sunsubscribe(name).await }
                });
                let (a, b) = futures_util::future::join(
                    futures_util::future::join_all(subs),
                    futures_util::future::join_all(unsubs),
                )
                .await;
                a.into_iter()
                    .chain(b)
                    .collect::<redis::RedisResult<Vec<()>>>()?;
                Ok(())
            }
        }
    }

    /// Runs one round: one reply per command, in order. `Err` means the
    /// link is broken and the round's outcome unknown.
    pub async fn run(
        &mut self,
        cmds: Vec<Cmd>,
        targets: &[Target],
    ) -> redis::RedisResult<Vec<Reply>> {
        match self {
            Link::Single(conn) => run_pipeline(conn, cmds).await,
            Link::Cluster(conn, _) => run_cluster(conn, cmds, targets).await,
        }
    }
}
