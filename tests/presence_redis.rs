//! Presence over a real standalone Redis with two instances, beyond the
//! scenarios shared with the Cluster (`support::channel_scenarios`): what
//! a crash followed by a restart under the same `SERVER_ID` leaves behind.

mod support;

use std::time::Duration;

use support::channels::{config_file, subscribe};
use support::presence::{event, presence, NAMESPACES};
use support::redis::RedisServer;
use support::redis_scenarios::instance_with;

/// No survivor's sweep runs during these tests, so what a test sees is the
/// restarted instance's doing, not a lucky sweep.
const NO_SWEEP: (&str, &str) = ("ROUTE_SWEEP_MS", "600000");

/// KNOWN GAP (docs/REDIS.md, "Presence"): an instance killed and restarted
/// at once under the same `SERVER_ID` claims the id as soon as its old
/// liveness key expires, so no survivor sees it dead, and nothing drops the
/// previous run's part: its members stay listed without a `leave`. The same
/// gap leaves members after a link outage in channels where every local
/// member left meanwhile. Ignored until the instance drops, at link-up and
/// once its shards have re-sent their tables, its part of every channel in
/// `server_presence:<id>` that was not rewritten.
#[test]
#[ignore = "known gap: a restart under the same SERVER_ID keeps the previous run's presence"]
fn a_restart_under_the_same_id_drops_the_previous_runs_members() {
    let redis = RedisServer::start();
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    let env = [("CHANNELS_CONFIG", path.as_str()), NO_SWEEP];
    let mut a = instance_with(&redis, "a", &env);
    let b = instance_with(&redis, "b", &env);
    let mut ben = b.user("ben");
    subscribe(&mut ben, "room:g");
    assert_eq!(event(&mut ben), ("join".into(), "ben".into()));
    let mut ann = a.user("ann");
    subscribe(&mut ann, "room:g");
    assert_eq!(event(&mut ben), ("join".into(), "ann".into()));

    a.signal(9);
    a.wait_exit(Duration::from_secs(5));
    let _again = instance_with(&redis, "a", &env);
    assert_eq!(event(&mut ben), ("leave".into(), "ann".into()));
    assert_eq!(presence(&mut ben, "room:g"), vec![("ben".to_owned(), 1)]);
}
