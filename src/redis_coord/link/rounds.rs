//! Running a round: one reply per command, in order. On a standalone
//! server the round is one pipeline; on a Cluster, one pipeline per slot
//! (run concurrently), plus the commands addressed to one node or to every
//! master, one by one.

use std::collections::HashMap;

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo, Slot,
};
use redis::{Cmd, ErrorKind, ServerErrorKind, Value};

use crate::redis_coord::round::{Reply, Target};

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

pub(super) async fn run_pipeline<C: redis::aio::ConnectionLike>(
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

/// One command's reply: its server error, or its value.
pub(in crate::redis_coord) fn to_reply(value: Value) -> Reply {
    match value {
        Value::ServerError(e) => Err(e.to_string()),
        v => Ok(v),
    }
}

/// One pipeline per slot (concurrently), node-addressed commands one by one.
pub(super) async fn run_cluster(
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
