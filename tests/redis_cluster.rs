//! Multi-instance coordination over a real 3-master Redis Cluster (sharded
//! pub/sub for per-server channels): the same scenarios as
//! `redis_standalone.rs`, plus Cluster-specific checks.

mod support;

use support::channel_scenarios;
use support::redis_scenarios as scenarios;

use support::redis::RedisCluster;
use websocket_app::config::ClusterMode;

fn cluster() -> RedisCluster {
    RedisCluster::start(3)
}

#[test]
fn coordinator_routes_confirms_broadcasts_and_cleans_up() {
    scenarios::coordinator_round_trip(&cluster(), ClusterMode::On);
}

#[test]
fn coordinator_detects_a_cluster_and_uses_sharded_channels() {
    let c = cluster();
    let (coord, _rec) = scenarios::coordinator(&c.uri(), ClusterMode::Auto, "shardy");
    let subscribers: u64 = c
        .nodes
        .iter()
        .map(|n| n.cli(&["PUBSUB", "SHARDNUMSUB", "server:shardy"]))
        .filter_map(|out| out.lines().nth(1).and_then(|n| n.parse::<u64>().ok()))
        .sum();
    assert_eq!(subscribers, 1, "exactly one SSUBSCRIBE on the slot's owner");
    coord.shutdown();
}

#[test]
fn coordinator_sweeps_stale_and_dead_routes() {
    scenarios::coordinator_sweeps_stale_routes(&cluster(), ClusterMode::On);
}

#[test]
fn coordinator_survives_a_redis_outage() {
    scenarios::coordinator_outage_and_recovery(&mut cluster(), ClusterMode::On);
}

#[test]
fn direct_messages_cross_instances_both_ways() {
    scenarios::direct_both_ways(&cluster());
}

#[test]
fn a_user_on_two_instances_gets_every_message_on_both() {
    scenarios::user_on_two_instances(&cluster());
}

#[test]
fn broadcast_reaches_every_connection_once() {
    scenarios::broadcast_once(&cluster());
}

#[test]
fn killed_instance_is_offline_and_its_routes_are_swept() {
    scenarios::killed_instance_routes_are_swept(&cluster());
}

#[test]
fn redis_outage_degrades_then_recovers() {
    scenarios::redis_outage_and_recovery(&mut cluster());
}

#[test]
fn direct_message_is_published_only_to_the_receivers_instance() {
    scenarios::publish_only_to_receiver_instances(&cluster());
}

#[test]
fn channel_publications_span_instances_in_one_order() {
    channel_scenarios::channel_spans_instances(&cluster());
}

#[test]
fn channels_survive_a_redis_restart() {
    channel_scenarios::channels_survive_a_redis_restart(&mut cluster());
}

#[test]
fn a_killed_instance_leaves_channels_working() {
    channel_scenarios::killed_instance_leaves_channels_working(&cluster());
}

#[test]
fn history_recovery_and_inbox_span_instances() {
    channel_scenarios::history_across_instances(&cluster());
}

#[test]
fn a_redis_restart_starts_a_new_history_epoch() {
    channel_scenarios::a_redis_restart_starts_a_new_epoch(&mut cluster());
}

#[test]
fn presence_spans_instances_with_join_and_leave_once() {
    channel_scenarios::presence_across_instances(&cluster());
}

#[test]
fn a_killed_instances_members_leave_presence() {
    channel_scenarios::a_killed_instances_members_leave(&cluster());
}

#[test]
fn presence_is_rebuilt_after_a_redis_restart() {
    channel_scenarios::presence_is_rebuilt_after_a_redis_restart(&mut cluster());
}

#[test]
fn a_duplicate_server_id_is_refused_at_start() {
    scenarios::duplicate_server_id_is_refused(&cluster());
}

#[test]
fn a_crashed_instance_restarts_under_its_id() {
    scenarios::crashed_instance_restarts_under_its_id(&cluster());
}

#[test]
fn coordinator_never_refreshes_or_deletes_another_holders_key() {
    scenarios::coordinator_never_touches_another_holders_key(&cluster(), ClusterMode::On);
}

#[test]
fn redis_restarting_empty_never_acks_a_connected_user_offline() {
    scenarios::redis_restart_empty_never_acks_a_connected_user_offline(&mut cluster());
}
