//! Unit tests of the outbound request stages and their outcomes.

use super::*;

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn setup(ids: &[(u64, &str)]) -> (Outbound, Liveness, Instant) {
    let now = Instant::now();
    let mut o = Outbound::new(Duration::from_secs(5));
    for (id, u) in ids {
        o.begin(*id, 3, id * 10, user(u), Bytes::from_static(b"env"), now);
    }
    (o, Liveness::new(Duration::from_secs(10)), now)
}

fn alive(l: &mut Liveness, servers: &[&str], now: Instant) {
    for s in servers {
        l.status(s, now);
    }
    l.take_wanted();
    for s in servers {
        l.on_exists((*s).into(), true, now);
    }
}

#[test]
fn only_self_in_the_set_is_offline_at_once() {
    let (mut o, _, _) = setup(&[(1, "bob")]);
    assert_eq!(o.take_lookups(), vec![(1, user("bob"))]);
    assert!(o.take_lookups().is_empty(), "a lookup is sent once");
    let f = o.on_members(1, Some(vec!["me".into()]), "me");
    assert_eq!(f, Some((3, 10, RemoteOutcome::Offline)));
    assert!(o.is_empty());
}

#[test]
fn failed_lookup_is_failed() {
    let (mut o, _, _) = setup(&[(1, "bob")]);
    o.take_lookups();
    assert_eq!(
        o.on_members(1, None, "me"),
        Some((3, 10, RemoteOutcome::Failed))
    );
}

#[test]
fn confirmations_from_two_servers_are_summed() {
    let (mut o, mut l, now) = setup(&[(1, "bob")]);
    o.take_lookups();
    o.on_members(1, Some(vec!["s2".into(), "me".into(), "s3".into()]), "me");
    let r = o.resolve(&mut l, now);
    assert!(r.publishes.is_empty(), "liveness unknown yet");
    let mut wanted = l.take_wanted();
    wanted.sort();
    assert_eq!(wanted, vec!["s2".to_owned(), "s3".to_owned()]);
    l.on_exists("s2".into(), true, now);
    l.on_exists("s3".into(), true, now);
    let r = o.resolve(&mut l, now);
    let targets: Vec<&str> = r.publishes.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(targets, vec!["s2", "s3"]);
    assert!(o.on_published(1, "s2".into(), Some(1)).is_none());
    assert!(o.on_published(1, "s3".into(), Some(1)).is_none());
    assert!(o.on_confirm(1, "s2".into(), 2).is_none());
    assert!(
        o.on_confirm(1, "s2".into(), 2).is_none(),
        "duplicate ignored"
    );
    let f = o.on_confirm(1, "s3".into(), 1);
    assert_eq!(
        f,
        Some((3, 10, RemoteOutcome::Delivered { connections: 3 }))
    );
}

#[test]
fn dead_servers_are_skipped_and_reported_stale() {
    let (mut o, mut l, now) = setup(&[(1, "bob")]);
    o.take_lookups();
    o.on_members(1, Some(vec!["dead".into()]), "me");
    o.resolve(&mut l, now);
    l.take_wanted();
    l.on_exists("dead".into(), false, now);
    let r = o.resolve(&mut l, now);
    assert_eq!(r.stale, vec![(user("bob"), "dead".to_owned())]);
    assert_eq!(r.finished, vec![(3, 10, RemoteOutcome::Offline)]);
}

#[test]
fn publish_without_subscriber_counts_as_offline_not_delivered() {
    let (mut o, mut l, now) = setup(&[(1, "bob")]);
    alive(&mut l, &["s2"], now);
    o.take_lookups();
    o.on_members(1, Some(vec!["s2".into()]), "me");
    assert_eq!(o.resolve(&mut l, now).publishes.len(), 1);
    let f = o.on_published(1, "s2".into(), Some(0));
    assert_eq!(f, Some((3, 10, RemoteOutcome::Offline)));
}

#[test]
fn publish_error_without_confirmed_connections_is_failed() {
    let (mut o, mut l, now) = setup(&[(1, "bob")]);
    alive(&mut l, &["s2"], now);
    o.take_lookups();
    o.on_members(1, Some(vec!["s2".into()]), "me");
    o.resolve(&mut l, now);
    assert_eq!(
        o.on_published(1, "s2".into(), None),
        Some((3, 10, RemoteOutcome::Failed))
    );
}

#[test]
fn deadline_keeps_partial_counts_and_fails_the_rest() {
    let (mut o, mut l, now) = setup(&[(1, "bob"), (2, "carol")]);
    alive(&mut l, &["s2", "s3"], now);
    o.take_lookups();
    o.on_members(1, Some(vec!["s2".into(), "s3".into()]), "me");
    o.on_members(2, Some(vec!["s2".into()]), "me");
    o.resolve(&mut l, now);
    o.on_published(1, "s2".into(), Some(1));
    o.on_published(1, "s3".into(), Some(1));
    o.on_published(2, "s2".into(), Some(1));
    o.on_confirm(1, "s2".into(), 4);
    assert!(o.expire(now + Duration::from_secs(4)).is_empty());
    let mut late = o.expire(now + Duration::from_secs(5));
    late.sort_by_key(|f| f.1);
    assert_eq!(
        late,
        vec![
            (3, 10, RemoteOutcome::Delivered { connections: 4 }),
            (3, 20, RemoteOutcome::Failed)
        ]
    );
}

#[test]
fn a_younger_message_to_the_same_user_waits_for_the_older() {
    let (mut o, mut l, now) = setup(&[(1, "bob"), (2, "bob")]);
    o.take_lookups();
    o.on_members(1, Some(vec!["s2".into()]), "me");
    // Message 2's set no longer holds s2 (changed meanwhile) but holds s4, cached alive.
    alive(&mut l, &["s4"], now);
    o.on_members(2, Some(vec!["s4".into()]), "me");
    let r = o.resolve(&mut l, now);
    assert!(r.publishes.is_empty(), "2 must not overtake 1: {r:?}");
    l.take_wanted();
    l.on_exists("s2".into(), true, now);
    let r = o.resolve(&mut l, now);
    let ids: Vec<u64> = r.publishes.iter().map(|p| p.0).collect();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn link_down_fails_everything() {
    let (mut o, _, _) = setup(&[(1, "bob"), (2, "eve")]);
    let mut all = o.fail_all();
    all.sort_by_key(|f| f.1);
    assert_eq!(
        all,
        vec![
            (3, 10, RemoteOutcome::Failed),
            (3, 20, RemoteOutcome::Failed)
        ]
    );
    assert!(
        o.on_confirm(1, "s2".into(), 1).is_none(),
        "late answers are ignored"
    );
}

#[test]
fn a_no_ack_message_ends_when_published() {
    let now = Instant::now();
    let mut o = Outbound::new(Duration::from_secs(5));
    let mut l = Liveness::new(Duration::from_secs(10));
    o.begin(1, 3, 0, user("bob"), Bytes::from_static(b"env"), now);
    alive(&mut l, &["s2"], now);
    o.take_lookups();
    o.on_members(1, Some(vec!["s2".into()]), "me");
    o.resolve(&mut l, now);
    assert!(o.on_published(1, "s2".into(), Some(1)).is_some());
    assert!(o.is_empty());
}

#[test]
fn no_route_while_the_table_is_uncertain_is_failed_not_offline() {
    let (mut o, mut l, now) = setup(&[(1, "bob"), (2, "carol"), (3, "dave")]);
    o.uncertain_until(now + Duration::from_secs(2));
    o.uncertain_until(now + Duration::from_secs(1));
    o.take_lookups();
    // Nobody in the set: the route may just not be registered again yet.
    assert_eq!(
        o.on_members(1, Some(vec![]), "me"),
        Some((3, 10, RemoteOutcome::Failed))
    );
    // A dead server only: the same.
    o.on_members(2, Some(vec!["gone".into()]), "me");
    l.status("gone", now);
    l.take_wanted();
    l.on_exists("gone".into(), false, now);
    let r = o.resolve(&mut l, now);
    assert_eq!(r.finished, vec![(3, 20, RemoteOutcome::Failed)]);
    // A live server that confirms 0 connections: the same.
    alive(&mut l, &["s2"], now);
    o.on_members(3, Some(vec!["s2".into()]), "me");
    o.resolve(&mut l, now);
    o.on_published(3, "s2".into(), Some(1));
    assert_eq!(
        o.on_confirm(3, "s2".into(), 0),
        Some((3, 30, RemoteOutcome::Failed))
    );
    // Requests begun after the grace (the shorter call did not shorten it)
    // are certain again.
    let later = now + Duration::from_secs(2);
    o.begin(4, 3, 40, user("erin"), Bytes::from_static(b"env"), later);
    o.take_lookups();
    assert_eq!(
        o.on_members(4, Some(vec![]), "me"),
        Some((3, 40, RemoteOutcome::Offline))
    );
}
