//! Connecting: to one standalone server (a multiplexed RESP3 connection)
//! or to a Cluster (the cluster client, then its masters' list for the
//! sweep), after asking the seeds which one it is when the mode is `auto`.

use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, ConnectionInfo, ErrorKind, ProtocolVersion, ServerErrorKind, Value,
};
use tokio::sync::mpsc::unbounded_channel;

use super::{Link, Pushes, CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use crate::config::ClusterMode;

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
