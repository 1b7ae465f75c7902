//! Unit tests of the sweep's paging, schedule and decisions.

use super::*;

fn node(port: u16) -> Node {
    Some(("127.0.0.1".to_owned(), port))
}

#[test]
fn a_pass_walks_every_node_page_by_page_then_waits_for_the_interval() {
    let t0 = Instant::now();
    let mut s = Sweep::new(Duration::from_secs(30), t0);
    assert_eq!(s.next_scan(t0), None, "nothing before the first connection");
    s.restart(vec![node(1), node(2)], t0);
    assert_eq!(s.next_scan(t0), Some((node(1), 0)));
    assert_eq!(s.next_scan(t0), None, "one page at a time");
    s.on_scan(Some((9, vec!["user_servers:a".into(), "junk".into()])));
    assert_eq!(s.take_reads(), vec!["a".to_owned()]);
    assert_eq!(s.next_scan(t0), None, "page still being read");
    s.on_members("a".into(), Some(vec![]));
    assert!(s
        .resolve("me", &mut Liveness::new(Duration::from_secs(1)), t0)
        .is_empty());
    assert_eq!(s.next_scan(t0), Some((node(1), 9)));
    s.on_scan(Some((0, vec![])));
    assert_eq!(s.next_scan(t0), Some((node(2), 0)));
    s.on_scan(Some((0, vec![])));
    assert_eq!(s.next_scan(t0), None);
    assert!(!s.is_active(), "pass complete");
    assert_eq!(s.next_scan(t0 + Duration::from_secs(29)), None);
    assert_eq!(
        s.next_scan(t0 + Duration::from_secs(30)),
        Some((node(1), 0))
    );
}

#[test]
fn dead_members_and_our_own_entries_are_reported() {
    let t0 = Instant::now();
    let mut l = Liveness::new(Duration::from_secs(10));
    let mut s = Sweep::new(Duration::from_secs(30), t0);
    s.restart(vec![None], t0);
    s.next_scan(t0);
    s.on_scan(Some((0, vec!["user_servers:a".into()])));
    s.take_reads();
    s.on_members(
        "a".into(),
        Some(vec!["me".into(), "dead".into(), "live".into()]),
    );
    assert!(s.resolve("me", &mut l, t0).is_empty(), "liveness unknown");
    let mut wanted = l.take_wanted();
    wanted.sort();
    assert_eq!(wanted, vec!["dead".to_owned(), "live".to_owned()]);
    l.on_exists("dead".into(), false, t0);
    l.on_exists("live".into(), true, t0);
    let removals = s.resolve("me", &mut l, t0);
    assert_eq!(
        removals,
        vec![
            Removal::Own("a".into()),
            Removal::Dead("a".into(), "dead".into())
        ]
    );
}

#[test]
fn a_failed_scan_ends_the_pass_until_the_next_interval() {
    let t0 = Instant::now();
    let mut s = Sweep::new(Duration::from_secs(5), t0);
    s.restart(vec![None], t0);
    s.next_scan(t0);
    s.on_scan(None);
    assert!(!s.is_active());
    assert_eq!(s.next_scan(t0 + Duration::from_secs(1)), None);
    assert_eq!(s.next_scan(t0 + Duration::from_secs(5)), Some((None, 0)));
    s.abort();
    assert!(!s.is_active());
}
