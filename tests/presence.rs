//! Presence on one instance in embedded mode (the same scenarios run over
//! Redis in `redis_standalone.rs` and `redis_cluster.rs`).

mod support;

use support::{presence, ServerProcess};

fn setup(env: &[(&str, &str)]) -> Vec<ServerProcess> {
    vec![ServerProcess::start(&["--shards", "2"], env)]
}

#[test]
fn members_and_join_leave() {
    let (servers, _f) = presence::start(&setup);
    presence::members_and_join_leave(&servers);
}

#[test]
fn no_presence_without_the_option() {
    let (servers, _f) = presence::start(&setup);
    presence::no_presence_without_the_option(&servers);
}
