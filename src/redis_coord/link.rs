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
//! A link is never repaired in place: on any connection-level failure the
//! worker drops it and connects a new one (re-subscribing, rewriting the
//! liveness key and re-registering routes), which is simple and covers a
//! Redis that restarted empty.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo, Slot,
};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionInfo, ErrorKind, ProtocolVersion, PushInfo,
    ServerErrorKind, Value,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::channels::Changes;
use crate::config::ClusterMode;

use super::keys;
use super::publication::redis_channel;
use super::round::{Reply, Target};
use super::sweep::Node;

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

/// Connects to Redis as `mode` says and returns the link with its pushes
/// (nothing subscribed yet: see [`Link::subscribe`]).
pub async fn connect(
    seeds: &[ConnectionInfo],
    mode: ClusterMode,
) -> redis::RedisResult<(Link, Pushes)> {
    let cluster = match mode {
        ClusterMode::On => true,
        ClusterMode::Off => false,
        ClusterMode::Auto => detect_cluster(seeds).await?,
    };
    let (tx, rx) = unbounded_channel();
    let link = if cluster {
        let client = ClusterClientBuilder::new(seeds.to_vec())
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(tx)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .build()?;
        let mut conn = client.get_async_connection().await?;
        let masters = masters(&mut conn).await?;
        Link::Cluster(conn, masters)
    } else {
        let info = resp3(&seeds[0]);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_push_sender(tx);
        let client = redis::Client::open(info)?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Link::Single(conn)
    };
    Ok((link, rx))
}

/// `INFO cluster` on the first seed that answers: is it a Cluster node?
async fn detect_cluster(seeds: &[ConnectionInfo]) -> redis::RedisResult<bool> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut last = None;
    for seed in seeds {
        let attempt = async {
            let client = redis::Client::open(seed.clone())?;
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let info: String = redis::cmd("INFO")
                .arg("cluster")
                .query_async(&mut conn)
                .await?;
            Ok::<bool, redis::RedisError>(info.contains("cluster_enabled:1"))
        };
        match attempt.await {
            Ok(cluster) => return Ok(cluster),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| (ErrorKind::InvalidClientConfig, "no Redis seed").into()))
}

fn resp3(info: &ConnectionInfo) -> ConnectionInfo {
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    info.clone().set_redis_settings(settings)
}

/// The masters' addresses, from `CLUSTER SLOTS`.
async fn masters(conn: &mut ClusterConnection) -> redis::RedisResult<Vec<(String, u16)>> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    let reply = conn
        .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
        .await?;
    let mut out = parse_slot_masters(reply);
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err((
            ErrorKind::Server(ServerErrorKind::ClusterDown),
            "CLUSTER SLOTS lists no master",
        )
            .into());
    }
    Ok(out)
}

/// Masters of a `CLUSTER SLOTS` reply: entry = `[start, end, [host, port, ..], replicas..]`.
pub fn parse_slot_masters(reply: Value) -> Vec<(String, u16)> {
    let Value::Array(ranges) = reply else {
        return Vec::new();
    };
    let master = |range: Value| -> Option<(String, u16)> {
        let Value::Array(parts) = range else {
            return None;
        };
        let Value::Array(node) = parts.into_iter().nth(2)? else {
            return None;
        };
        let mut node = node.into_iter();
        let host = match node.next()? {
            Value::BulkString(b) => String::from_utf8(b).ok()?,
            Value::SimpleString(s) => s,
            _ => return None,
        };
        let Value::Int(port) = node.next()? else {
            return None;
        };
        Some((host, u16::try_from(port).ok()?))
    };
    ranges.into_iter().filter_map(master).collect()
}

/// True for errors that mean the link itself is broken (reconnect), as
/// opposed to one command's error.
pub fn is_link_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound | ErrorKind::Server(ServerErrorKind::ClusterDown)
        )
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

async fn run_pipeline<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    cmds: Vec<Cmd>,
) -> redis::RedisResult<Vec<Reply>> {
    let count = cmds.len();
    let mut pipe = redis::pipe();
    cmds.into_iter().for_each(|c| {
        pipe.add_command(c);
    });
    let values: Vec<Value> = pipe.ignore_errors().query_async(conn).await?;
    if values.len() != count {
        return Err((ErrorKind::Parse, "pipeline reply count mismatch").into());
    }
    Ok(values.into_iter().map(to_reply).collect())
}

fn to_reply(value: Value) -> Reply {
    match value {
        Value::ServerError(e) => Err(e.to_string()),
        v => Ok(v),
    }
}

/// One pipeline per slot (concurrently), node-addressed commands one by one.
async fn run_cluster(
    conn: &ClusterConnection,
    cmds: Vec<Cmd>,
    targets: &[Target],
) -> redis::RedisResult<Vec<Reply>> {
    let mut groups: HashMap<Slot, (Vec<usize>, Vec<Cmd>)> = HashMap::new();
    let mut by_node = Vec::new();
    for (i, (cmd, target)) in cmds.into_iter().zip(targets).enumerate() {
        match target {
            Target::Key(key) => {
                let group = groups.entry(Slot::for_key(key.as_bytes())).or_default();
                group.0.push(i);
                group.1.push(cmd);
            }
            Target::Node(node) => by_node.push((i, cmd, Some(node.clone()))),
            Target::AllMasters => by_node.push((i, cmd, None)),
        }
    }
    let count = groups.values().map(|g| g.0.len()).sum::<usize>() + by_node.len();
    let pipelines = groups.into_values().map(|(idx, cmds)| {
        let mut conn = conn.clone();
        async move { (idx, run_pipeline(&mut conn, cmds).await) }
    });
    let singles = by_node.into_iter().map(|(i, cmd, node)| {
        let mut conn = conn.clone();
        let routing = match node {
            Some(Some((host, port))) => {
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port })
            }
            Some(None) => RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            None => RoutingInfo::MultiNode((
                MultipleNodeRoutingInfo::AllMasters,
                Some(ResponsePolicy::AllSucceeded),
            )),
        };
        async move { (i, conn.route_command(cmd, routing).await) }
    });
    let (pipelines, singles) = futures_util::future::join(
        futures_util::future::join_all(pipelines),
        futures_util::future::join_all(singles),
    )
    .await;
    let mut replies: Vec<Reply> = (0..count).map(|_| Err("no reply".to_owned())).collect();
    for (idx, result) in pipelines {
        match result {
            Ok(values) => idx
                .into_iter()
                .zip(values)
                .for_each(|(i, r)| replies[i] = r),
            Err(e) if is_link_error(&e) => return Err(e),
            Err(e) => idx
                .into_iter()
                .for_each(|i| replies[i] = Err(e.to_string())),
        }
    }
    for (i, result) in singles {
        replies[i] = match result {
            Err(e) if is_link_error(&e) => return Err(e),
            other => other.map_err(|e| e.to_string()).and_then(to_reply),
        };
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_masters_are_parsed_and_garbage_skipped() {
        let node = |host: &str, port: i64| {
            Value::Array(vec![
                Value::BulkString(host.into()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000),
                node("127.0.0.1", 7003),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("127.0.0.1", 7001),
            ]),
            Value::Array(vec![Value::Int(1)]),
            Value::Int(3),
            Value::Array(vec![Value::Int(0), Value::Int(1), node("h", 70000)]),
        ]);
        let masters = parse_slot_masters(reply);
        assert_eq!(
            masters,
            vec![
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001)
            ]
        );
        assert!(parse_slot_masters(Value::Nil).is_empty());
    }
}
