//! The Redis coordination settings (`REDIS_URI`, `REDIS_CLUSTER`, the
//! liveness TTL and the sweep): validated here, once, into the
//! [`RedisSettings`] that `redis_coord::start` takes as they are; and the
//! redaction that keeps passwords out of logs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use redis::{ConnectionInfo, IntoConnectionInfo};

use super::cli::RedisArgs;
use super::error::{invalid, ConfigError};
use super::validate::millis;
use crate::namespaces::Namespaces;

/// `REDIS_CLUSTER`: whether the Redis deployment is a Cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterMode {
    /// Detect it at each connection (INFO cluster on the first seed that answers)
    Auto,
    /// A Redis Cluster: sharded pub/sub for the per-server channels
    On,
    /// A standalone server: the single seed
    Off,
}

/// Everything the Redis coordination layer needs, validated; present when
/// `REDIS_URI` is set (otherwise the embedded single-instance broker runs).
#[derive(Clone)]
pub struct RedisSettings {
    /// The seed nodes as given, trimmed, in order (they may carry a
    /// password: logs use [`Self::redacted`]; `Debug` does).
    pub nodes: Vec<String>,
    /// The same seeds, parsed: one for a standalone server, any number for a
    /// Cluster (the client discovers the rest). Never empty; one scheme.
    pub seeds: Vec<ConnectionInfo>,
    /// Cluster mode: detected at connect time (`Auto`) or forced; `Off`
    /// comes with exactly one seed.
    pub cluster: ClusterMode,
    /// This instance's id (`SERVER_ID`): its route entries and its channel.
    pub server_id: String,
    /// TTL of this instance's liveness key (refreshed every third of it);
    /// routes to an instance whose key expired are ignored and swept.
    pub liveness_ttl: Duration,
    /// Time between passes of the stale-route sweep.
    pub sweep_interval: Duration,
    /// How long a remote delivery may take before its outcome is `Failed`
    /// (`DELIVERY_TIMEOUT_MS`).
    pub delivery_timeout: Duration,
    /// Channel namespaces (their presence and join/leave options shape the
    /// presence writes, also those the sweep makes for dead instances).
    pub namespaces: Arc<Namespaces>,
}

impl RedisSettings {
    /// The seed nodes without credentials, for logs: `redis://host:6379,...`.
    pub fn redacted(&self) -> String {
        self.nodes
            .iter()
            .map(|n| redact_uri(n))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("nodes", &self.redacted())
            .field("cluster", &self.cluster)
            .field("server_id", &self.server_id)
            .field("liveness_ttl", &self.liveness_ttl)
            .field("sweep_interval", &self.sweep_interval)
            .field("delivery_timeout", &self.delivery_timeout)
            .finish()
    }
}

/// Validates the Redis settings of `a`; `None` when `REDIS_URI` is unset.
/// `server_id` and `delivery_timeout` are the instance's, validated already.
pub(super) fn settings(
    a: &RedisArgs,
    server_id: &str,
    delivery_timeout: Duration,
    namespaces: &Arc<Namespaces>,
) -> Result<Option<RedisSettings>, ConfigError> {
    let liveness_ttl = millis("LIVENESS_TTL_MS", a.liveness_ttl_ms, 1_000, 600_000)?;
    let sweep_interval = millis("ROUTE_SWEEP_MS", a.route_sweep_ms, 100, 86_400_000)?;
    let Some(uri) = a
        .redis_uri
        .as_ref()
        .map(|u| u.0.as_str())
        .filter(|u| !u.trim().is_empty())
    else {
        if a.redis_cluster == ClusterMode::On {
            return Err(invalid(
                "REDIS_CLUSTER",
                "is on but REDIS_URI is unset (the embedded broker has no cluster)",
            ));
        }
        return Ok(None);
    };
    let nodes: Vec<String> = uri.split(',').map(|n| n.trim().to_owned()).collect();
    let seeds = nodes
        .iter()
        .map(|node| {
            parse_node(node)
                .map_err(|why| invalid("REDIS_URI", format!("{}: {why}", redact_uri(node))))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls = nodes[0].starts_with("rediss://");
    if nodes.iter().any(|n| n.starts_with("rediss://") != tls) {
        return Err(invalid(
            "REDIS_URI",
            "mixes redis:// and rediss:// seeds; use one scheme",
        ));
    }
    if nodes.len() > 1 && a.redis_cluster == ClusterMode::Off {
        return Err(invalid(
            "REDIS_CLUSTER",
            format!(
                "is off but REDIS_URI lists {} seed nodes (several are only for Cluster)",
                nodes.len()
            ),
        ));
    }
    Ok(Some(RedisSettings {
        nodes,
        seeds,
        cluster: a.redis_cluster,
        server_id: server_id.to_owned(),
        liveness_ttl,
        sweep_interval,
        delivery_timeout,
        namespaces: namespaces.clone(),
    }))
}

/// One seed, checked (for messages that say what is wrong) and parsed by
/// the client library (which also refuses what it could not connect to,
/// e.g. a wildcard address). Neither message quotes the password.
fn parse_node(node: &str) -> Result<ConnectionInfo, String> {
    check_node(node).map_err(str::to_owned)?;
    node.into_connection_info().map_err(|e| e.to_string())
}

/// Checks one seed: `redis[s]://[user[:password]@]host[:port][/db]`.
fn check_node(node: &str) -> Result<(), &'static str> {
    if node.is_empty() {
        return Err("empty seed (stray comma?)");
    }
    let rest = node
        .strip_prefix("redis://")
        .or_else(|| node.strip_prefix("rediss://"))
        .ok_or("must start with redis:// or rediss://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or("unclosed '[' in the host")?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or("junk after ']'")?)),
            }
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Err("has no host");
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p != 0 => {}
            _ => return Err("port must be 1..=65535"),
        }
    }
    Ok(())
}

/// `uri` with any user and password replaced by `***`, for logs and errors.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return "<not a URI>".to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => uri.to_owned(),
    }
}
