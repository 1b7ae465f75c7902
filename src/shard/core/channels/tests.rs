//! Unit tests of the per-shard subscription table.

use bytes::Bytes;

use super::*;

fn joining(index: u32) -> Joining {
    Joining {
        conn: ConnKey {
            index,
            generation: 1,
        },
        id: None,
        recover: None,
        at_connect: false,
        user: UserId::parse(&format!("u{index}")).unwrap(),
    }
}

fn chan(s: &str) -> ChannelName {
    ChannelName::parse(s).unwrap()
}

#[test]
fn the_first_subscriber_asks_the_owner_and_later_ones_wait_or_join() {
    let mut s = Subscriptions::default();
    let c = chan("room");
    assert_eq!(
        s.join(&c, &joining(1), 8, 7, Kind::default()),
        Joined::AskOwner(7)
    );
    assert_eq!(
        s.join(&c, &joining(2), 8, 8, Kind::default()),
        Joined::Waiting
    );
    assert_eq!(
        s.join(&c, &joining(1), 8, 9, Kind::default()),
        Joined::Already
    );
    assert!(
        s.ready("room", 99).is_empty(),
        "a stale answer joins nobody"
    );
    let joined = s.ready("room", 7);
    assert_eq!(joined.len(), 2);
    s.admit("room", &joined);
    assert_eq!(*s.get("room").unwrap().members, vec![1, 2]);
    assert_eq!(s.join(&c, &joining(3), 8, 10, Kind::default()), Joined::Now);
    assert_eq!(*s.get("room").unwrap().members, vec![1, 2, 3]);
    assert_eq!(s.count(), 3);
}

#[test]
fn the_last_subscriber_leaving_frees_the_channel() {
    let mut s = Subscriptions::default();
    let c = chan("room");
    s.join(&c, &joining(1), 8, 7, Kind::default());
    s.join(&c, &joining(2), 8, 7, Kind::default());
    assert_eq!(s.leave("room", 1).unwrap().emptied, None);
    assert!(s.leave("room", 1).is_none(), "not subscribed any more");
    assert_eq!(s.leave("room", 2).unwrap().emptied, Some(7));
    assert!(s.get("room").is_none());
    assert_eq!((s.count(), s.channels()), (0, 0));
}

#[test]
fn a_closing_connection_leaves_every_channel_and_the_limit_holds() {
    let mut s = Subscriptions::default();
    for name in ["a", "b", "c"] {
        assert_eq!(
            s.join(&chan(name), &joining(1), 3, 1, Kind::default()),
            Joined::AskOwner(1)
        );
    }
    assert_eq!(
        s.join(&chan("d"), &joining(1), 3, 1, Kind::default()),
        Joined::TooMany
    );
    s.join(&chan("a"), &joining(2), 3, 1, Kind::default());
    let mut emptied: Vec<_> = s
        .remove_conn(1)
        .into_iter()
        .filter(|l| l.emptied.is_some())
        .map(|l| l.channel)
        .collect();
    emptied.sort();
    assert_eq!(emptied, vec![chan("b"), chan("c")]);
    assert_eq!(s.count(), 1);
    assert!(s.of_conn(1).is_empty());
    assert_eq!(s.of_conn(2), vec![chan("a")]);
}

const HISTORY: Kind = Kind {
    history: true,
    presence: true,
};

#[test]
fn a_recovering_subscriber_buffers_live_publications_and_skips_copies() {
    let mut s = Subscriptions::default();
    let c = chan("h:1");
    assert_eq!(s.join(&c, &joining(1), 8, 5, HISTORY), Joined::AskOwner(5));
    let joined = s.ready("h:1", 5);
    s.begin_reads("h:1", joined.into_iter().map(|j| (j, 9)).collect());
    let frame = Bytes::from_static(b"p");
    for offset in [3, 4] {
        let targets = s.publication("h:1", Some(offset), &frame);
        assert!(matches!(targets, Some(Targets::Shared(m)) if m.is_empty()));
    }
    let r = s.finish_read("h:1", 9, Some(3)).unwrap();
    assert_eq!(
        r.buffer.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert!(s.count_in("h:1", 1, &UserId::parse("u1").unwrap()));
    assert!(
        !s.count_in("h:1", 1, &UserId::parse("u1").unwrap()),
        "counted once"
    );
    let late_copy = s.publication("h:1", Some(3), &frame);
    assert!(
        matches!(late_copy, Some(Targets::Some(t)) if t.is_empty()),
        "3 was read"
    );
    let next = match s.publication("h:1", Some(5), &frame) {
        Some(Targets::Shared(m)) => m.to_vec(),
        Some(Targets::Some(t)) => t,
        None => Vec::new(),
    };
    assert_eq!(next, vec![1], "past the read: delivered");
    let after = s.publication("h:1", Some(6), &frame);
    assert!(
        matches!(after, Some(Targets::Shared(_))),
        "the skip is gone"
    );
    let left = s.leave("h:1", 1).unwrap();
    assert_eq!(left.counted, UserId::parse("u1"), "presence counts it out");
}

/// A subscriber of `h:2` (read token 9) whose read is under way.
fn reading(s: &mut Subscriptions) {
    s.join(&chan("h:2"), &joining(1), 8, 5, HISTORY);
    let joined = s.ready("h:2", 5);
    s.begin_reads("h:2", joined.into_iter().map(|j| (j, 9)).collect());
}

/// Whether member 1 gets the publication at `offset`.
fn delivered(s: &mut Subscriptions, offset: u64) -> bool {
    let frame = Bytes::from_static(b"p");
    match s.publication("h:2", Some(offset), &frame) {
        Some(Targets::Shared(m)) => m.contains(&1),
        Some(Targets::Some(t)) => t.contains(&1),
        None => false,
    }
}

#[test]
fn a_flood_during_the_read_drops_the_buffer_and_moves_the_position_past_it() {
    let mut s = Subscriptions::default();
    reading(&mut s);
    let frame = Bytes::from_static(b"p");
    let last = 10 + MAX_BUFFERED as u64 + 500;
    for offset in 11..=last {
        s.publication("h:2", Some(offset), &frame);
    }
    let r = s.finish_read("h:2", 9, Some(10)).unwrap();
    assert!(r.overflowed() && r.buffer.is_empty(), "bounded");
    assert_eq!(
        r.buffer.capacity(),
        0,
        "the dropped frames' memory is freed"
    );
    assert_eq!(r.position(Some(10)), Some(last), "past the newest dropped");
    assert!(
        !delivered(&mut s, last),
        "a late copy of a dropped one is skipped"
    );
    assert!(
        delivered(&mut s, last + 1),
        "the next one continues the position"
    );
}

#[test]
fn without_overflow_the_position_is_the_reads_and_the_buffer_follows_it() {
    let mut s = Subscriptions::default();
    reading(&mut s);
    let frame = Bytes::from_static(b"p");
    for offset in 8..=(7 + MAX_BUFFERED as u64) {
        s.publication("h:2", Some(offset), &frame);
    }
    let r = s.finish_read("h:2", 9, Some(10)).unwrap();
    assert!(!r.overflowed());
    assert_eq!(r.buffer.len(), MAX_BUFFERED, "exactly the bound fits");
    assert_eq!(r.position(Some(10)), Some(10));
    assert_eq!(r.position(None), None, "a failed read reports no position");
}
