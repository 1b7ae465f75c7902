//! History, recovery and the inbox on one instance in embedded mode (the
//! same scenarios run over Redis in `redis_standalone.rs` and
//! `redis_cluster.rs`).

mod support;

use support::history;
use support::ServerProcess;

fn setup(env: &[(&str, &str)]) -> Vec<ServerProcess> {
    vec![ServerProcess::start(&["--shards", "2"], env)]
}

#[test]
fn recovery_is_exact_or_refused() {
    let (servers, _f) = history::start(&setup);
    history::recovery_is_exact_or_refused(&servers);
}

#[test]
fn history_pages() {
    let (servers, _f) = history::start(&setup);
    history::history_pages(&servers);
}

#[test]
fn inbox_keeps_what_an_offline_user_missed() {
    let (servers, _f) = history::start(&setup);
    history::inbox_keeps_what_an_offline_user_missed(&servers);
}

#[test]
fn inbox_pages() {
    let (servers, _f) = history::start(&setup);
    history::inbox_pages(&servers);
}

#[test]
fn recovery_storm_has_no_gap_or_duplicate() {
    let (servers, _f) = history::start(&setup);
    for seed in 0..3 {
        history::recovery_storm_has_no_gap_or_duplicate(&servers, seed);
    }
}
