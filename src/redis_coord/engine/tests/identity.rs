//! The liveness key claim (ours, or held by another process) and the
//! route table's epoch (its grace, and re-registering when it changes).

use redis::Value;

use super::*;

#[test]
fn shutdown_removes_local_routes_and_liveness() {
    let (mut e, _, _, now) = engine();
    e.on_command(
        Command::AddRoute {
            user: user("a"),
            shard: 0,
            token: 1,
        },
        now,
    );
    assert!(!e.on_command(Command::Shutdown, now));
    let round = e.shutdown_round();
    assert_eq!(names(&round), vec!["SREM", "EVAL"]);
    assert_eq!(round.tags[1], Tag::Release);
    assert_eq!(
        &arg(&round, 1, 1)[..],
        crate::redis_coord::scripts::RELEASE.as_bytes()
    );
    assert_eq!(&arg(&round, 1, 3)[..], b"server_alive:me");
    assert_eq!(
        &arg(&round, 1, 4)[..],
        b"boot-me",
        "deletes only our own key"
    );
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// An epoch reply: marker created at `created` ms, Redis's clock at `now` ms.
fn epoch_reply(created: u64, now: u64) -> Value {
    Value::Array(vec![
        bulk(&format!("{created}:boot-x")),
        Value::Int(now as i64),
    ])
}

/// A successful handshake's replies: key claimed, `epoch`, both function
/// libraries loaded.
fn handshake_replies(epoch: Value) -> Vec<crate::redis_coord::round::Reply> {
    let loaded = |lib: &str| Ok(bulk(lib));
    vec![
        Ok(Value::Int(1)),
        Ok(epoch),
        loaded("wss_streams"),
        loaded("wss_presence"),
    ]
}

#[test]
fn the_handshake_claims_our_key_and_refuses_a_held_one() {
    let (mut e, _, _, now) = engine();
    let round = e.handshake_round();
    assert_eq!(
        round.tags,
        vec![Tag::Alive, Tag::Epoch, Tag::Functions, Tag::Functions]
    );
    assert_eq!(&arg(&round, 0, 3)[..], b"server_alive:me");
    assert_eq!(&arg(&round, 0, 4)[..], b"boot-me");
    assert_eq!(&arg(&round, 0, 5)[..], b"10000", "PX = the liveness TTL");
    let held = Value::Array(vec![bulk("boot-other"), Value::Int(8000)]);
    assert_eq!(
        e.on_handshake(vec![Ok(held), Ok(epoch_reply(1, 100_000))], now),
        Err(Refused::Held {
            holder: "boot-other".into(),
            pttl_ms: 8000
        })
    );
    assert!(matches!(
        e.on_handshake(vec![Err("NOSCRIPT".into())], now),
        Err(Refused::Error(_))
    ));
    assert!(matches!(
        e.on_handshake(vec![Ok(Value::Int(1))], now),
        Err(Refused::Error(_))
    ));
    assert_eq!(
        e.on_handshake(handshake_replies(epoch_reply(1, 100_000)), now),
        Ok(())
    );
}

#[test]
fn a_refresh_that_finds_another_holder_is_a_conflict() {
    let (mut e, _, _, now) = engine();
    let refresh = e.build_round(now + Duration::from_secs(4));
    assert!(refresh.tags.contains(&Tag::Alive));
    answer(&mut e, refresh, now, |t| match t {
        Tag::Alive => Value::Array(vec![bulk("boot-other"), Value::Int(9000)]),
        Tag::Epoch => epoch_reply(1, 100_000),
        _ => Value::Array(vec![bulk("0"), Value::Array(vec![])]),
    });
    assert_eq!(e.take_conflict().as_deref(), Some("boot-other"));
    assert_eq!(e.take_conflict(), None, "reported once");
}

#[test]
fn a_new_epoch_makes_no_route_failed_for_the_grace_then_offline() {
    let (mut e, rec, _, now) = engine();
    // Marker created 1 s ago by Redis's clock: 2 s of the 3 s grace left.
    e.on_handshake(handshake_replies(epoch_reply(99_000, 100_000)), now)
        .unwrap();
    e.build_round(now);
    direct(&mut e, "nobody", 5, now);
    let lookup = e.build_round(now);
    answer(&mut e, lookup, now, |_| Value::Set(vec![]));
    assert_eq!(rec.take(), vec![Call::Outcome(1, 5, RemoteOutcome::Failed)]);
    let after = now + Duration::from_secs(2);
    direct(&mut e, "nobody", 6, after);
    let lookup = e.build_round(after);
    answer(&mut e, lookup, after, |_| Value::Set(vec![]));
    assert_eq!(
        rec.take(),
        vec![Call::Outcome(1, 6, RemoteOutcome::Offline)]
    );
}

#[test]
fn an_old_epoch_gives_no_grace_and_a_changed_one_reregisters() {
    let (mut e, rec, _, now) = engine();
    e.on_handshake(handshake_replies(epoch_reply(1_000, 100_000)), now)
        .unwrap();
    e.build_round(now);
    direct(&mut e, "nobody", 5, now);
    let lookup = e.build_round(now);
    answer(&mut e, lookup, now, |_| Value::Set(vec![]));
    assert_eq!(
        rec.take(),
        vec![Call::Outcome(1, 5, RemoteOutcome::Offline)]
    );
    // A refresh finds another marker: Redis lost the table under our link.
    let later = now + Duration::from_secs(4);
    let refresh = e.build_round(later);
    answer(&mut e, refresh, later, |t| match t {
        Tag::Alive => Value::Int(1),
        Tag::Epoch => epoch_reply(100_000, 100_010),
        _ => Value::Array(vec![bulk("0"), Value::Array(vec![])]),
    });
    assert_eq!(rec.take(), vec![Call::Reregister]);
    direct(&mut e, "nobody", 7, later);
    let lookup = e.build_round(later);
    answer(&mut e, lookup, later, |_| Value::Set(vec![]));
    assert_eq!(rec.take(), vec![Call::Outcome(1, 7, RemoteOutcome::Failed)]);
}
