//! Presence scenarios, run on one embedded instance (`tests/presence.rs`)
//! and on instances over Redis (standalone and Cluster).

use std::time::Duration;

use serde_json::{json, Value};

use super::channels::{config_file, subscribe};
use super::{Client, ServerProcess};

/// `room` has presence and join/leave (no rate limit in the tests).
pub const NAMESPACES: &str = "\
[namespaces.room]
public = true
client_publish = true
presence = true
join_leave = true
join_leave_per_sec = 0
";

/// Instances with the namespaces above.
pub fn start(setup: super::history::Setup<'_>) -> (Vec<ServerProcess>, tempfile::NamedTempFile) {
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    (setup(&[("CHANNELS_CONFIG", path.as_str())]), file)
}

/// The next message of type `ty`, skipping `join`/`leave` (every member
/// gets those).
pub fn recv_skipping_events(c: &mut Client, ty: &str) -> Value {
    loop {
        let v = c.recv();
        if v["type"] == "join" || v["type"] == "leave" {
            continue;
        }
        assert_eq!(v["type"], ty, "expected {ty}, got {v}");
        return v;
    }
}

/// The channel's presence as `(user, connections)`, sorted.
pub fn presence(c: &mut Client, channel: &str) -> Vec<(String, u64)> {
    c.send(&json!({"type": "presence", "channel": channel, "id": "p"}));
    let answer = recv_skipping_events(c, "presence");
    let mut users: Vec<(String, u64)> = answer["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            let id = u["userId"].as_str().unwrap().to_owned();
            (id, u["connections"].as_u64().unwrap())
        })
        .collect();
    users.sort();
    users
}

/// The channel's `(users, connections)` counts.
pub fn stats(c: &mut Client, channel: &str) -> (u64, u64) {
    c.send(&json!({"type": "presence_stats", "channel": channel, "id": "ps"}));
    let answer = recv_skipping_events(c, "presence_stats");
    (
        answer["users"].as_u64().unwrap(),
        answer["connections"].as_u64().unwrap(),
    )
}

/// The next `join`/`leave` of `channel`, as `(kind, user)`.
pub fn event(c: &mut Client) -> (String, String) {
    let v: Value = c.recv();
    let kind = v["type"].as_str().unwrap_or_default().to_owned();
    assert!(
        kind == "join" || kind == "leave",
        "expected join/leave, got {v}"
    );
    (kind, v["userId"].as_str().unwrap().to_owned())
}

fn owned(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(u, n)| (u.to_string(), *n)).collect()
}

/// Members on every instance are listed with their connection counts; the
/// stats match the list; `join`/`leave` come once per user, not per tab.
pub fn members_and_join_leave(servers: &[ServerProcess]) {
    let last = servers.len() - 1;
    let mut watcher = servers[0].user("watcher");
    subscribe(&mut watcher, "room:1");
    assert_eq!(event(&mut watcher), ("join".into(), "watcher".into()));
    let mut tab1 = servers[0].user("alice");
    subscribe(&mut tab1, "room:1");
    assert_eq!(event(&mut watcher), ("join".into(), "alice".into()));
    let mut tab2 = servers[last].user("alice");
    subscribe(&mut tab2, "room:1");
    let mut bob = servers[last].user("bob");
    subscribe(&mut bob, "room:1");
    assert_eq!(
        event(&mut watcher),
        ("join".into(), "bob".into()),
        "no second join for alice"
    );
    let expected = owned(&[("alice", 2), ("bob", 1), ("watcher", 1)]);
    crate::support::eventually("every member listed", || {
        (presence(&mut bob, "room:1") == expected).then_some(())
    });
    assert_eq!(stats(&mut tab1, "room:1"), (3, 4), "stats match the list");
    tab1.send(&json!({"type": "unsubscribe", "channel": "room:1", "id": "u"}));
    recv_skipping_events(&mut tab1, "unsubscribed");
    assert!(
        watcher.silent_for(Duration::from_millis(300)),
        "alice still has a tab"
    );
    drop(tab2);
    assert_eq!(event(&mut watcher), ("leave".into(), "alice".into()));
    assert_eq!(
        presence(&mut watcher, "room:1"),
        owned(&[("bob", 1), ("watcher", 1)])
    );
}

/// Presence is asked of a namespace that has none: `not_available`.
pub fn no_presence_without_the_option(servers: &[ServerProcess]) {
    let mut c = servers[0].user("x");
    c.send(&json!({"type": "presence", "channel": "other:1", "id": "p"}));
    assert_eq!(c.recv_type("error")["code"], "not_available");
}
