//! Server API scenarios seen by real WebSocket clients, run on one embedded
//! instance (`tests/api.rs`) and on two instances over Redis (standalone
//! and Cluster, also in `tests/api.rs`). `servers[i % len]` spreads the
//! clients and the API calls over every instance.

use std::time::Duration;

use serde_json::{json, Value};

use super::api::{publication, Api};
use super::channels::subscribe;
use super::{Client, ServerProcess};

/// The instance for the `i`-th client or call.
fn at(servers: &[ServerProcess], i: usize) -> &ServerProcess {
    &servers[i % servers.len()]
}

/// Reads the next publication of `channel` and returns it.
fn next_publication(c: &mut Client, channel: &str) -> Value {
    let p = c.recv_type("publication");
    assert_eq!(p["channel"], channel, "{p}");
    p
}

/// `publish` reaches every subscriber on every instance, without
/// `senderId`; with history it answers and carries the offset.
pub fn publish_reaches_subscribers(servers: &[ServerProcess]) {
    let mut subs: Vec<Client> = (0..4)
        .map(|i| at(servers, i).user(&format!("ps{i}")))
        .collect();
    for c in &mut subs {
        subscribe(c, "chat:pub");
        subscribe(c, "hist:pub");
    }
    let mut api = Api::connect(at(servers, 1));
    assert_eq!(
        api.post("/api/v1/publish", &publication("chat:pub", 7, None)),
        json!({})
    );
    // (No order between two channels: each is read before the next publish.)
    for c in &mut subs {
        let p = next_publication(c, "chat:pub");
        assert_eq!(p["payload"], json!({"n": 7}));
        assert!(
            p.get("senderId").is_none(),
            "server publications have no sender: {p}"
        );
        assert!(p.get("offset").is_none(), "{p}");
        assert!(p["id"].as_str().unwrap().contains("api."), "{p}");
    }
    let first = api.post("/api/v1/publish", &publication("hist:pub", 8, None));
    assert_eq!(first["offset"], 1, "{first}");
    let epoch = first["epoch"].as_str().expect("epoch").to_owned();
    for c in &mut subs {
        let p = next_publication(c, "hist:pub");
        assert_eq!(
            (p["offset"].as_u64(), &p["payload"]),
            (Some(1), &json!({"n": 8}))
        );
    }
    let second = api.post("/api/v1/publish", &publication("hist:pub", 9, None));
    assert_eq!(
        (second["offset"].as_u64(), second["epoch"].as_str()),
        (Some(2), Some(&*epoch))
    );
    for c in &mut subs {
        assert_eq!(next_publication(c, "hist:pub")["offset"], 2);
    }
}

/// `send` reaches every connection of the user on every instance as a
/// `server_message`; a user without connections is `offline` (or `stored`
/// when `inbox` is on).
pub fn send_reaches_every_connection(servers: &[ServerProcess], inbox: bool) {
    let mut conns: Vec<Client> = (0..3).map(|i| at(servers, i).user("sendee")).collect();
    let mut api = Api::connect(at(servers, 1));
    let body = json!({"userId": "sendee", "payload": {"notice": "hi"}});
    let answer = api.post("/api/v1/send", &body);
    assert_eq!(
        (&answer["status"], &answer["connections"]),
        (&json!("delivered"), &json!(3)),
        "{answer}"
    );
    assert_eq!(answer.get("offset").is_some(), inbox, "{answer}");
    for c in &mut conns {
        let m = c.recv_type("server_message");
        assert_eq!(m["payload"], json!({"notice": "hi"}), "{m}");
        assert!(
            m.get("senderId").is_none() && m["timestamp"].is_string(),
            "{m}"
        );
        assert_eq!(m.get("offset").is_some(), inbox, "{m}");
    }
    let answer = api.post(
        "/api/v1/send",
        &json!({"userId": "nobody-here", "payload": 1}),
    );
    if inbox {
        assert_eq!(answer["status"], "stored", "{answer}");
        assert_eq!(answer["offset"], 1, "{answer}");
    } else {
        assert_eq!(answer, json!({"status": "offline", "connections": 0}));
    }
}

/// `broadcast` reaches every connection once, without `senderId`.
pub fn broadcast_reaches_everyone(servers: &[ServerProcess]) {
    let mut conns: Vec<Client> = (0..4)
        .map(|i| at(servers, i).user(&format!("bc{i}")))
        .collect();
    let mut api = Api::connect(at(servers, 0));
    let answer = api.post("/api/v1/broadcast", &json!({"payload": {"alert": 1}}));
    assert_eq!(answer, json!({"status": "published"}));
    for c in &mut conns {
        let b = c.recv_type("broadcast");
        assert_eq!(b["payload"], json!({"alert": 1}));
        assert!(b.get("senderId").is_none(), "{b}");
    }
    for c in &mut conns {
        assert!(c.silent_for(Duration::from_millis(150)), "once");
    }
}

/// `disconnect` closes every connection of the user, everywhere, with 4010
/// and the reason; others stay.
pub fn disconnect_closes_everywhere(servers: &[ServerProcess]) {
    let mut banned: Vec<Client> = (0..3).map(|i| at(servers, i).user("banned")).collect();
    let mut other = at(servers, 0).user("stays");
    let mut api = Api::connect(at(servers, 1));
    let body = json!({"userId": "banned", "reason": "banned by moderator"});
    assert_eq!(
        api.post("/api/v1/disconnect", &body),
        json!({"connections": 3})
    );
    for c in &mut banned {
        assert_eq!(c.expect_close(), 4010);
    }
    // Once their close handshakes are over, nothing is left to disconnect.
    super::eventually("banned offline", || {
        (api.get("/api/v1/users/banned")["online"] == false).then_some(())
    });
    let body = json!({"userId": "banned"});
    assert_eq!(
        api.post("/api/v1/disconnect", &body),
        json!({"connections": 0})
    );
    other.send(&json!({"type": "heartbeat"}));
    other.recv_type("heartbeat_ack");
}

/// `subscribe` subscribes every connection of the user everywhere (told
/// with `subscribed`), publications then reach them; `unsubscribe` ends it
/// with `reason: server`.
pub fn subscribe_and_unsubscribe_everywhere(servers: &[ServerProcess]) {
    let mut conns: Vec<Client> = (0..3).map(|i| at(servers, i).user("mover")).collect();
    let mut api = Api::connect(at(servers, 1));
    let body = json!({"userId": "mover", "channel": "chat:moved"});
    assert_eq!(
        api.post("/api/v1/subscribe", &body),
        json!({"connections": 3})
    );
    for c in &mut conns {
        let s = c.recv_type("subscribed");
        assert_eq!(s["channel"], "chat:moved", "{s}");
    }
    api.post("/api/v1/publish", &publication("chat:moved", 1, None));
    for c in &mut conns {
        assert_eq!(next_publication(c, "chat:moved")["payload"]["n"], 1);
    }
    assert_eq!(
        api.post("/api/v1/unsubscribe", &body),
        json!({"connections": 3})
    );
    for c in &mut conns {
        let u = c.recv_type("unsubscribed");
        assert_eq!(
            (&u["channel"], &u["reason"]),
            (&json!("chat:moved"), &json!("server")),
            "{u}"
        );
    }
    assert_eq!(
        api.post("/api/v1/unsubscribe", &body),
        json!({"connections": 0})
    );
    api.post("/api/v1/publish", &publication("chat:moved", 2, None));
    for c in &mut conns {
        assert!(c.silent_for(Duration::from_millis(150)), "unsubscribed");
    }
}

/// Presence, history and user status, and 404 for a channel without the feature.
pub fn reads(servers: &[ServerProcess]) {
    let mut members: Vec<Client> = (0..3)
        .map(|i| at(servers, i).user(if i == 2 { "reader1" } else { "reader0" }))
        .collect();
    for c in &mut members {
        subscribe(c, "room:read");
    }
    let mut api = Api::connect(at(servers, 1));
    let expected = vec![("reader0".to_owned(), 2), ("reader1".to_owned(), 1)];
    super::eventually("every member listed", || {
        let presence = api.get("/api/v1/channels/room:read/presence");
        let mut users: Vec<(String, u64)> = presence["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| {
                let id = u["userId"].as_str().unwrap().to_owned();
                (id, u["connections"].as_u64().unwrap())
            })
            .collect();
        users.sort();
        (users == expected).then_some(())
    });
    api.get_answer("/api/v1/channels/chat:x/presence")
        .error(404, "not_found");
    api.get_answer("/api/v1/channels/room:read/history")
        .error(404, "not_found");
    for n in 1..=4 {
        api.post("/api/v1/publish", &publication("hist:read", n, None));
    }
    let h = api.get("/api/v1/channels/hist:read/history");
    let offsets: Vec<u64> = h["publications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (offsets, &h["offset"], &h["recovered"]),
        (vec![1, 2, 3, 4], &json!(4), &json!(true)),
        "{h}"
    );
    let epoch = h["epoch"].as_str().unwrap().to_owned();
    let h = api.get(&format!(
        "/api/v1/channels/hist:read/history?since=2&epoch={epoch}&limit=1"
    ));
    assert_eq!(h["publications"][0]["payload"]["n"], 3, "{h}");
    assert_eq!(
        (h["publications"].as_array().unwrap().len(), &h["recovered"]),
        (1, &json!(true))
    );
    let h = api.get("/api/v1/channels/hist:read/history?since=2&epoch=another");
    assert_eq!(
        (&h["recovered"], h["publications"].as_array().unwrap().len()),
        (&json!(false), 0),
        "{h}"
    );
    let msg = api
        .get_answer("/api/v1/channels/hist:read/history?since=2")
        .error(400, "bad_request");
    assert!(msg.contains("epoch"), "{msg}");
    let status = api.get("/api/v1/users/reader0");
    assert_eq!(status["online"], true, "{status}");
    let mut servers_seen: Vec<&str> = status["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    servers_seen.sort();
    let mut ids: Vec<String> = servers.iter().take(2).map(server_id).collect();
    ids.sort();
    assert_eq!(servers_seen, ids, "{status}");
    assert_eq!(
        api.get("/api/v1/users/nobody-at-all"),
        json!({"online": false, "servers": []})
    );
}

/// The `serverId` a client of `server` is welcomed with.
pub fn server_id(server: &ServerProcess) -> String {
    let mut c = Client::connect(server.addr, "/ws?userId=probe").expect("upgrade");
    c.recv_type("welcome")["serverId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A write with an `idempotencyKey` is carried out once, wherever it is
/// repeated, and every repeat answers what the first one answered.
pub fn idempotent_replays(servers: &[ServerProcess]) {
    let mut sub = at(servers, 0).user("idem");
    subscribe(&mut sub, "hist:idem");
    let body = publication("hist:idem", 1, Some("publish-once-1"));
    let first = Api::connect(at(servers, 0)).post("/api/v1/publish", &body);
    for i in 0..3 {
        let again = Api::connect(at(servers, i + 1)).post("/api/v1/publish", &body);
        assert_eq!(
            again,
            first,
            "replayed on instance {}",
            (i + 1) % servers.len()
        );
    }
    assert_eq!(next_publication(&mut sub, "hist:idem")["offset"], 1);
    assert!(sub.silent_for(Duration::from_millis(200)), "published once");
    let next = Api::connect(at(servers, 1)).post(
        "/api/v1/publish",
        &publication("hist:idem", 2, Some("publish-once-2")),
    );
    assert_eq!(next["offset"], 2, "another key is another write");
    next_publication(&mut sub, "hist:idem");
    // The same key at the same moment on every instance: one is carried
    // out, the others wait for it (or replay it) and answer the same.
    let body = publication("hist:idem", 3, Some("publish-once-3"));
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..4)
            .map(|i| {
                let (server, body) = (at(servers, i), &body);
                scope.spawn(move || Api::connect(server).post("/api/v1/publish", body))
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0]["offset"], 3, "{answers:?}");
    assert_eq!(next_publication(&mut sub, "hist:idem")["offset"], 3);
    assert!(sub.silent_for(Duration::from_millis(200)), "published once");
    let replays: f64 = servers
        .iter()
        .map(|s| super::api::metric(s, "wss_api_idempotent_replays_total", ""))
        .sum();
    assert_eq!(replays, 6.0, "replays counted");
}

/// A batch is carried out in order; a failing command answers its error in
/// its place and the rest go on; a full batch of 1,000 arrives in order.
pub fn batch_in_order(servers: &[ServerProcess]) {
    let mut sub = at(servers, 1).user("batcher");
    subscribe(&mut sub, "chat:batch");
    let mut commands: Vec<Value> = (0..5)
        .map(|n| json!({"method": "publish", "params": publication("chat:batch", n, None)}))
        .collect();
    commands[2] = json!({"method": "publish", "params": {"channel": "chat:batch"}});
    commands.push(json!({"method": "fly", "params": {}}));
    commands.push(json!({"method": "send", "params": {"userId": "batcher", "payload": "direct"}}));
    let mut api = Api::connect(at(servers, 0));
    let answer = api.post("/api/v1/batch", &json!({"commands": commands}));
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 7);
    assert_eq!(results[0], json!({}));
    assert_eq!(results[2]["error"], "bad_request");
    assert!(
        results[2]["message"]
            .as_str()
            .unwrap()
            .contains("commands[2]: missing field: payload"),
        "{}",
        results[2]
    );
    assert!(
        results[5]["message"]
            .as_str()
            .unwrap()
            .contains("commands[5].method"),
        "{}",
        results[5]
    );
    assert_eq!(
        (&results[6]["status"], &results[6]["connections"]),
        (&json!("delivered"), &json!(1))
    );
    // The channel's order is the batch's; the direct message takes another
    // path, so it may arrive anywhere among them.
    let mut got = Vec::new();
    let mut direct = Vec::new();
    for _ in 0..5 {
        let m = sub.recv();
        match m["type"].as_str() {
            Some("publication") => got.push(m["payload"]["n"].as_u64().unwrap()),
            Some("server_message") => direct.push(m["payload"].clone()),
            _ => panic!("unexpected {m}"),
        }
    }
    assert_eq!((got, direct), (vec![0, 1, 3, 4], vec![json!("direct")]));
    let full: Vec<Value> = (0..1000)
        .map(|n| json!({"method": "publish", "params": publication("chat:batch", n, None)}))
        .collect();
    let answer = api.post("/api/v1/batch", &json!({"commands": full}));
    assert_eq!(answer["results"].as_array().unwrap().len(), 1000);
    for n in 0..1000 {
        assert_eq!(next_publication(&mut sub, "chat:batch")["payload"]["n"], n);
    }
    let over: Vec<Value> = (0..1001).map(|_| json!({})).collect();
    let msg = api
        .post_answer("/api/v1/batch", &json!({"commands": over}))
        .error(400, "bad_request");
    assert!(msg.contains("at most 1000"), "{msg}");
}
