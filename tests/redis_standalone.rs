//! Multi-instance coordination over a real standalone Redis: the
//! coordinator API with a recording router, then real server processes
//! with real clients (scenarios in `support/redis_scenarios/`).

mod support;

use support::channel_scenarios;
use support::redis_scenarios as scenarios;

use support::redis::RedisServer;
use websocket_app::config::ClusterMode;

#[test]
fn coordinator_routes_confirms_broadcasts_and_cleans_up() {
    let redis = RedisServer::start();
    scenarios::coordinator_round_trip(&redis, ClusterMode::Off);
}

#[test]
fn coordinator_detects_a_standalone_server() {
    let redis = RedisServer::start();
    scenarios::coordinator_round_trip(&redis, ClusterMode::Auto);
}

#[test]
fn coordinator_sweeps_stale_and_dead_routes() {
    scenarios::coordinator_sweeps_stale_routes(&RedisServer::start(), ClusterMode::Off);
}

#[test]
fn coordinator_survives_a_redis_outage() {
    scenarios::coordinator_outage_and_recovery(&mut RedisServer::start(), ClusterMode::Off);
}

#[test]
fn direct_messages_cross_instances_both_ways() {
    scenarios::direct_both_ways(&RedisServer::start());
}

#[test]
fn a_user_on_two_instances_gets_every_message_on_both() {
    scenarios::user_on_two_instances(&RedisServer::start());
}

#[test]
fn broadcast_reaches_every_connection_once() {
    scenarios::broadcast_once(&RedisServer::start());
}

#[test]
fn killed_instance_is_offline_and_its_routes_are_swept() {
    scenarios::killed_instance_routes_are_swept(&RedisServer::start());
}

#[test]
fn redis_outage_degrades_then_recovers() {
    scenarios::redis_outage_and_recovery(&mut RedisServer::start());
}

#[test]
fn direct_message_is_published_only_to_the_receivers_instance() {
    scenarios::publish_only_to_receiver_instances(&RedisServer::start());
}

#[test]
fn channel_publications_span_instances_in_one_order() {
    channel_scenarios::channel_spans_instances(&RedisServer::start());
}

#[test]
fn channels_survive_a_redis_restart() {
    channel_scenarios::channels_survive_a_redis_restart(&mut RedisServer::start());
}

#[test]
fn a_killed_instance_leaves_channels_working() {
    channel_scenarios::killed_instance_leaves_channels_working(&RedisServer::start());
}

#[test]
fn history_recovery_and_inbox_span_instances() {
    channel_scenarios::history_across_instances(&RedisServer::start());
}

#[test]
fn a_redis_restart_starts_a_new_history_epoch() {
    channel_scenarios::a_redis_restart_starts_a_new_epoch(&mut RedisServer::start());
}

/// A channel's history keys carry the namespace's TTL, and once they are
/// gone (expired or evicted: Redis deletes them either way) the next
/// publication starts a new epoch at offset 1, and an old position
/// recovers nothing.
#[test]
fn an_expired_or_evicted_history_starts_a_new_epoch() {
    use support::channel_scenarios::two;
    use support::history::{publish_at, start, subscribe_from};
    let redis = RedisServer::start();
    let (servers, _f) = {
        let setup = two(&redis);
        start(&setup)
    };
    let mut sub = servers[0].user("s");
    let first = subscribe_from(&mut sub, "hist:gone", None);
    let epoch = first["epoch"].as_str().unwrap().to_owned();
    let mut c = servers[0].user("p");
    assert_eq!(publish_at(&mut c, "hist:gone", 1), 1);
    assert_eq!(publish_at(&mut c, "hist:gone", 2), 2);
    for key in ["ch_meta:{hist:gone}", "ch_hist:{hist:gone}"] {
        let ttl: i64 = redis.cli(&["PTTL", key]).trim().parse().unwrap();
        assert!(
            ttl > 0 && ttl <= 60_000,
            "{key} expires with history_ttl_secs = 60, PTTL {ttl}"
        );
    }
    redis.cli(&["DEL", "ch_meta:{hist:gone}", "ch_hist:{hist:gone}"]);
    let mut other = servers[1].user("q");
    assert_eq!(publish_at(&mut other, "hist:gone", 3), 1, "a new run");
    let mut back = servers[1].user("back");
    let answer = subscribe_from(&mut back, "hist:gone", Some((1, &epoch)));
    assert_eq!(answer["recovered"], false, "{answer}");
    assert_ne!(answer["epoch"], epoch.as_str(), "{answer}");
    assert_eq!(answer["offset"], 1, "{answer}");
}

#[test]
fn presence_spans_instances_with_join_and_leave_once() {
    channel_scenarios::presence_across_instances(&RedisServer::start());
}

#[test]
fn a_killed_instances_members_leave_presence() {
    channel_scenarios::a_killed_instances_members_leave(&RedisServer::start());
}

#[test]
fn presence_is_rebuilt_after_a_redis_restart() {
    channel_scenarios::presence_is_rebuilt_after_a_redis_restart(&mut RedisServer::start());
}

#[test]
fn a_link_outage_announces_the_leaves_it_hid() {
    scenarios::a_link_outage_announces_the_leaves_it_hid(&mut RedisServer::start());
}

#[test]
fn a_duplicate_server_id_is_refused_at_start() {
    scenarios::duplicate_server_id_is_refused(&RedisServer::start());
}

#[test]
fn a_crashed_instance_restarts_under_its_id() {
    scenarios::crashed_instance_restarts_under_its_id(&RedisServer::start());
}

#[test]
fn coordinator_never_refreshes_or_deletes_another_holders_key() {
    scenarios::coordinator_never_touches_another_holders_key(
        &RedisServer::start(),
        ClusterMode::Off,
    );
}

#[test]
fn redis_restarting_empty_never_acks_a_connected_user_offline() {
    scenarios::redis_restart_empty_never_acks_a_connected_user_offline(&mut RedisServer::start());
}
