//! What is counted: [`Counter`], and for each its names, help text and
//! CloudWatch unit ([`CounterInfo`]), the single table every exporter
//! (Prometheus, stats JSON, CloudWatch) reads, so names cannot drift apart.

/// Everything counted. The discriminant indexes the counter arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Client text messages received (every type).
    MessagesTotal,
    /// Messages (chat or broadcast) written to a receiving connection.
    MessagesDelivered,
    /// WebSocket connections accepted (after the upgrade).
    ConnectionsOpened,
    /// WebSocket connections ended, for any reason.
    ConnectionsClosed,
    /// Connections ended other than by a 1000/1001 close or a server shutdown/drain.
    UnexpectedDisconnects,
    /// Upgrades refused for identity reasons (401/400 user id, 403 origin).
    AuthFailures,
    /// Connections closed with 4008 because their send queue was full.
    SlowConsumerCloses,
    /// Messages refused by the sender's rate limit.
    RateLimited,
    /// Connections closed with 4000 (silent longer than the heartbeat timeout).
    HeartbeatTimeouts,
    /// Malformed frames or protocol violations from clients.
    ProtocolErrors,
    /// Bytes read from client sockets.
    BytesIn,
    /// Bytes written to client sockets.
    BytesOut,
    /// Failed Redis commands.
    RedisErrors,
    /// Reconnections to Redis.
    RedisReconnects,
    /// Publishes that reached no subscriber (a stale route).
    PublishNoSubscriber,
    /// Stale route entries removed by the sweep.
    RoutesSwept,
    /// Acks answered `failed` (coordination down or timed out).
    DeliveryFailed,
    /// CloudWatch batches that could not be delivered after all retries.
    CloudWatchFailures,
    /// Publications accepted from clients (and the server API) on this instance.
    PublicationsIn,
    /// Publications queued to a subscribed connection.
    PublicationDeliveries,
    /// Publications numbered and kept in a channel's history.
    PublicationsKept,
    /// Recoveries that returned every missed publication (`recovered: true`).
    RecoveriesSucceeded,
    /// Recoveries that could not (`recovered: false`).
    RecoveriesFailed,
    /// Subscribers whose live buffer overflowed while their position was
    /// read (their position moved past the publications dropped).
    SubscribeBufferOverflows,
    /// Direct messages acked `stored`: kept in an offline receiver's inbox.
    InboxStored,
    /// `join`/`leave` events not sent: the channel's rate was exceeded.
    JoinLeaveDropped,
    /// Server API writes answered from an idempotency key's remembered answer.
    ApiIdempotentReplays,
    /// Server API requests refused for a missing or wrong key.
    ApiAuthFailures,
    /// Messages compressed for permessage-deflate receivers (once per shard,
    /// message and window, however many receivers share the result).
    DeflateCompressions,
    /// Compressed frames queued to receivers (each shares its message's
    /// one compression).
    DeflateFrames,
    /// Bytes not queued thanks to compression: plain minus compressed
    /// size, summed over the receivers of compressed frames.
    DeflateBytesSaved,
}

/// Names and help text of one counter, the single source for every exporter.
#[derive(Clone, Copy, Debug)]
pub struct CounterInfo {
    /// PascalCase name: the CloudWatch metric name, and (lower-camel) the JSON key.
    pub name: &'static str,
    /// Prometheus series name (snake_case, `_total`).
    pub prometheus: &'static str,
    /// Prometheus `# HELP` text.
    pub help: &'static str,
    /// CloudWatch unit when the counter is pushed there (`None`: Prometheus only,
    /// to keep the CloudWatch bill to the metrics people alarm on).
    pub cloudwatch_unit: Option<&'static str>,
}

/// Shorthand for the table below.
const fn info(
    name: &'static str,
    prometheus: &'static str,
    help: &'static str,
    unit: Option<&'static str>,
) -> CounterInfo {
    CounterInfo {
        name,
        prometheus,
        help,
        cloudwatch_unit: unit,
    }
}

/// The CloudWatch unit of counted events.
const COUNT: Option<&str> = Some("Count");

impl Counter {
    /// How many counters there are.
    pub const COUNT: usize = 31;

    /// Every counter, in index order.
    pub const ALL: [Counter; Counter::COUNT] = [
        Counter::MessagesTotal,
        Counter::MessagesDelivered,
        Counter::ConnectionsOpened,
        Counter::ConnectionsClosed,
        Counter::UnexpectedDisconnects,
        Counter::AuthFailures,
        Counter::SlowConsumerCloses,
        Counter::RateLimited,
        Counter::HeartbeatTimeouts,
        Counter::ProtocolErrors,
        Counter::BytesIn,
        Counter::BytesOut,
        Counter::RedisErrors,
        Counter::RedisReconnects,
        Counter::PublishNoSubscriber,
        Counter::RoutesSwept,
        Counter::DeliveryFailed,
        Counter::CloudWatchFailures,
        Counter::PublicationsIn,
        Counter::PublicationDeliveries,
        Counter::PublicationsKept,
        Counter::RecoveriesSucceeded,
        Counter::RecoveriesFailed,
        Counter::SubscribeBufferOverflows,
        Counter::InboxStored,
        Counter::JoinLeaveDropped,
        Counter::ApiIdempotentReplays,
        Counter::ApiAuthFailures,
        Counter::DeflateCompressions,
        Counter::DeflateFrames,
        Counter::DeflateBytesSaved,
    ];

    /// Position in the counter arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Names, help and CloudWatch unit.
    pub const fn info(self) -> CounterInfo {
        use Counter::*;
        match self {
            MessagesTotal => info(
                "MessagesTotal",
                "wss_messages_total",
                "Client messages received (every type).",
                COUNT,
            ),
            MessagesDelivered => info(
                "MessagesDelivered",
                "wss_messages_delivered_total",
                "Messages written to a receiving connection.",
                COUNT,
            ),
            ConnectionsOpened => info(
                "ConnectionsOpened",
                "wss_connections_opened_total",
                "WebSocket connections accepted.",
                COUNT,
            ),
            ConnectionsClosed => info(
                "ConnectionsClosed",
                "wss_connections_closed_total",
                "WebSocket connections ended, for any reason.",
                COUNT,
            ),
            UnexpectedDisconnects => info(
                "UnexpectedDisconnects",
                "wss_unexpected_disconnects_total",
                "Connections ended other than by a normal close, shutdown or drain.",
                COUNT,
            ),
            AuthFailures => info(
                "AuthFailures",
                "wss_auth_failures_total",
                "Upgrades refused for identity or origin reasons.",
                COUNT,
            ),
            SlowConsumerCloses => info(
                "SlowConsumerCloses",
                "wss_slow_consumer_closes_total",
                "Connections closed with 4008 because their send queue was full.",
                COUNT,
            ),
            RateLimited => info(
                "RateLimited",
                "wss_rate_limited_total",
                "Messages refused by the sender's rate limit.",
                COUNT,
            ),
            HeartbeatTimeouts => info(
                "HeartbeatTimeouts",
                "wss_heartbeat_timeouts_total",
                "Connections closed with 4000 after missing heartbeats.",
                COUNT,
            ),
            ProtocolErrors => info(
                "ProtocolErrors",
                "wss_protocol_errors_total",
                "Malformed frames or protocol violations from clients.",
                COUNT,
            ),
            BytesIn => info(
                "BytesIn",
                "wss_received_bytes_total",
                "Bytes read from client sockets.",
                None,
            ),
            BytesOut => info(
                "BytesOut",
                "wss_sent_bytes_total",
                "Bytes written to client sockets.",
                None,
            ),
            RedisErrors => info(
                "RedisErrors",
                "wss_redis_errors_total",
                "Failed Redis commands.",
                COUNT,
            ),
            RedisReconnects => info(
                "RedisReconnects",
                "wss_redis_reconnects_total",
                "Reconnections to Redis.",
                None,
            ),
            PublishNoSubscriber => info(
                "PublishNoSubscriber",
                "wss_publish_no_subscriber_total",
                "Publishes that reached no subscriber (stale route).",
                None,
            ),
            RoutesSwept => info(
                "RoutesSwept",
                "wss_routes_swept_total",
                "Stale route entries removed by the sweep.",
                None,
            ),
            DeliveryFailed => info(
                "DeliveryFailed",
                "wss_delivery_failed_total",
                "Acks answered failed (coordination down or timed out).",
                COUNT,
            ),
            CloudWatchFailures => info(
                "CloudWatchFailures",
                "wss_cloudwatch_failures_total",
                "CloudWatch batches not delivered after all retries.",
                None,
            ),
            PublicationsIn => info(
                "PublicationsIn",
                "wss_publications_in_total",
                "Channel publications accepted on this instance (clients and server API).",
                COUNT,
            ),
            PublicationDeliveries => info(
                "PublicationDeliveries",
                "wss_publication_deliveries_total",
                "Channel publications queued to a subscribed connection.",
                COUNT,
            ),
            PublicationsKept => info(
                "PublicationsKept",
                "wss_publications_kept_total",
                "Publications numbered and kept in a channel's history (published from this instance).",
                COUNT,
            ),
            RecoveriesSucceeded => info(
                "RecoveriesSucceeded",
                "wss_recoveries_succeeded_total",
                "Subscriptions that recovered every missed publication.",
                COUNT,
            ),
            RecoveriesFailed => info(
                "RecoveriesFailed",
                "wss_recoveries_failed_total",
                "Subscriptions whose recovery could not be complete (recovered: false).",
                COUNT,
            ),
            SubscribeBufferOverflows => info(
                "SubscribeBufferOverflows",
                "wss_subscribe_buffer_overflows_total",
                "Subscribers of a channel with history that received more than 1,000 live publications while their position was read: the buffered ones were dropped and their subscribed offset moved past them (with recover: recovered false).",
                None,
            ),
            JoinLeaveDropped => info(
                "JoinLeaveDropped",
                "wss_join_leave_dropped_total",
                "Join/leave events not sent because the channel's rate (join_leave_per_sec) was exceeded (embedded mode; with Redis, counted in the channel's presence meta).",
                None,
            ),
            ApiIdempotentReplays => info(
                "ApiIdempotentReplays",
                "wss_api_idempotent_replays_total",
                "Server API writes answered from their idempotencyKey's remembered answer (not carried out again).",
                COUNT,
            ),
            ApiAuthFailures => info(
                "ApiAuthFailures",
                "wss_api_auth_failures_total",
                "Server API requests refused with 401 (missing or wrong key).",
                COUNT,
            ),
            DeflateCompressions => info(
                "DeflateCompressions",
                "wss_deflate_compressions_total",
                "Messages compressed for permessage-deflate receivers (once per shard, message and window).",
                None,
            ),
            DeflateFrames => info(
                "DeflateFrames",
                "wss_deflate_frames_total",
                "Compressed frames queued to permessage-deflate receivers.",
                None,
            ),
            DeflateBytesSaved => info(
                "DeflateBytesSaved",
                "wss_deflate_saved_bytes_total",
                "Bytes not queued thanks to permessage-deflate (plain minus compressed, per receiver).",
                None,
            ),
            InboxStored => info(
                "InboxStored",
                "wss_inbox_stored_total",
                "Direct messages acked stored: kept in an offline receiver's inbox.",
                COUNT,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_index_order_and_names_are_unique() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
            assert_eq!(format!("{c:?}"), c.info().name);
            let p = c.info().prometheus;
            assert!(p.starts_with("wss_") && p.ends_with("_total"), "{p}");
        }
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.info().prometheus).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Counter::COUNT);
    }
}
