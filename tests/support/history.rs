//! History, recovery and inbox scenarios, run on one embedded instance
//! (`tests/history.rs`) and on two instances over Redis (standalone and
//! Cluster). A `Setup` starts the instances; every check is the same.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::channels::{ack, config_file, publish};
use super::{Client, ServerProcess};

/// Namespaces of these scenarios: `hist` keeps 5 publications for a minute.
pub const NAMESPACES: &str = "\
[namespaces.hist]
public = true
client_publish = true
history_size = 5
history_ttl_secs = 60

[namespaces.big]
public = true
client_publish = true
history_size = 2000
history_ttl_secs = 60
";

/// Starts instances with extra environment (`INBOX_SIZE`, `CHANNELS_CONFIG`, …).
pub type Setup<'a> = &'a dyn Fn(&[(&str, &str)]) -> Vec<ServerProcess>;

/// Instances with the namespaces above and an inbox of 200 (more than one
/// 100-message `inbox` answer).
pub fn start(setup: Setup<'_>) -> (Vec<ServerProcess>, tempfile::NamedTempFile) {
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    let env = [
        ("CHANNELS_CONFIG", path.as_str()),
        ("INBOX_SIZE", "200"),
        // The storm publishes faster than a client's default budget.
        ("RATE_LIMIT_PER_SEC", "100000"),
        ("RATE_LIMIT_BURST", "100000"),
    ];
    let servers = setup(&env);
    (servers, file)
}

/// Subscribes with an optional recovery; returns the `subscribed` answer.
pub fn subscribe_from(c: &mut Client, channel: &str, recover: Option<(u64, &str)>) -> Value {
    let mut msg = json!({"type": "subscribe", "channel": channel, "id": "s"});
    if let Some((offset, epoch)) = recover {
        msg["recover"] = json!({"offset": offset, "epoch": epoch});
    }
    c.send(&msg);
    let answer = c.recv_type("subscribed");
    assert_eq!(answer["id"], "s", "{answer}");
    answer
}

/// Publishes `n` and returns the ack's offset.
pub fn publish_at(c: &mut Client, channel: &str, n: u64) -> u64 {
    let id = format!("p{n}");
    publish(c, channel, n, &id);
    let a = ack(c, &id);
    assert_eq!(a["status"], "published", "{a}");
    a["offset"]
        .as_u64()
        .expect("offset in the ack of a channel with history")
}

/// The offsets of `count` publications received live.
pub fn live_offsets(c: &mut Client, count: usize) -> Vec<u64> {
    (0..count)
        .map(|_| {
            c.recv_type("publication")["offset"]
                .as_u64()
                .expect("offset")
        })
        .collect()
}

fn offsets(list: &Value) -> Vec<u64> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|p| p["offset"].as_u64().expect("offset"))
        .collect()
}

/// A subscriber leaves, publications go on from every instance, it comes
/// back to the last instance with its position and gets exactly what it
/// missed, in order; then a position trimmed out of the history, or of
/// another epoch, recovers nothing.
pub fn recovery_is_exact_or_refused(servers: &[ServerProcess]) {
    let last = servers.len() - 1;
    let mut publishers: Vec<Client> = servers.iter().map(|s| s.user("pub")).collect();
    let mut sub = servers[0].user("sub");
    let first = subscribe_from(&mut sub, "hist:r", None);
    let epoch = first["epoch"].as_str().expect("epoch").to_owned();
    assert_eq!(first["offset"], 0, "a new channel starts at 0");
    assert_eq!(publish_at(&mut publishers[0], "hist:r", 1), 1);
    assert_eq!(live_offsets(&mut sub, 1), vec![1]);
    drop(sub);
    for n in 2..=4 {
        let p = &mut publishers[n as usize % servers.len()];
        assert_eq!(publish_at(p, "hist:r", n), n);
    }
    let mut back = servers[last].user("sub");
    let answer = subscribe_from(&mut back, "hist:r", Some((1, &epoch)));
    assert_eq!(answer["recovered"], true, "{answer}");
    assert_eq!(offsets(&answer["publications"]), vec![2, 3, 4]);
    assert_eq!(answer["offset"], 4);
    assert!(back.silent_for(Duration::from_millis(200)), "nothing twice");
    for n in 5..=10 {
        publish_at(&mut publishers[0], "hist:r", n);
    }
    assert_eq!(live_offsets(&mut back, 6), (5..=10).collect::<Vec<_>>());
    let mut late = servers[0].user("late");
    let trimmed = subscribe_from(&mut late, "hist:r", Some((4, &epoch)));
    assert_eq!(trimmed["recovered"], false, "6 missed, 5 kept: {trimmed}");
    assert_eq!(trimmed["publications"], json!([]));
    let mut other = servers[0].user("other");
    let wrong = subscribe_from(&mut other, "hist:r", Some((9, "not-this-epoch")));
    assert_eq!(wrong["recovered"], false, "{wrong}");
}

/// `history`: the newest, and pages after a position.
pub fn history_pages(servers: &[ServerProcess]) {
    let mut c = servers[0].user("reader");
    for n in 1..=7 {
        publish_at(&mut c, "hist:h", n);
    }
    c.send(&json!({"type": "history", "channel": "hist:h", "limit": 2, "id": "h1"}));
    let newest = c.recv_type("history");
    assert_eq!(offsets(&newest["publications"]), vec![6, 7]);
    assert_eq!(newest["offset"], 7);
    let epoch = newest["epoch"].clone();
    let reader = servers.last().unwrap();
    let mut c = reader.user("reader2");
    c.send(&json!({"type": "history", "channel": "hist:h", "since": {"offset": 3, "epoch": epoch}, "limit": 2, "id": "h2"}));
    let page = c.recv_type("history");
    assert_eq!(
        (page["recovered"].clone(), offsets(&page["publications"])),
        (json!(true), vec![4, 5])
    );
    c.send(&json!({"type": "history", "channel": "hist:h", "since": {"offset": 1, "epoch": epoch}, "id": "h3"}));
    assert_eq!(
        c.recv_type("history")["recovered"],
        false,
        "offset 2 was trimmed"
    );
}

/// Direct messages to an offline user are `stored`; the user's welcome
/// carries the inbox position and `inbox` returns what it missed; live
/// messages carry their offset too.
pub fn inbox_keeps_what_an_offline_user_missed(servers: &[ServerProcess]) {
    let mut alice = servers[0].user("alice");
    let mut first = servers.last().unwrap().user("bob");
    alice.send(&json!({"type": "chat_message", "receiverID": "bob", "payload": 1, "id": "m1"}));
    let live = first.recv_type("chat_message");
    let a = ack(&mut alice, "m1");
    assert_eq!(a["status"], "delivered", "{a}");
    assert_eq!(
        a["offset"], live["offset"],
        "ack and frame agree on the offset"
    );
    let seen = live["offset"].as_u64().unwrap();
    first.close();
    // Every message after m1 lands in the inbox, whether bob's connection
    // was still closing (delivered) or gone (stored); send until two were
    // stored.
    let (mut sent, mut stored, mut i) = (Vec::new(), 0, 1);
    while stored < 2 {
        i += 1;
        assert!(i < 200, "no stored ack after bob left");
        let id = format!("m{i}");
        alice.send(&json!({"type": "chat_message", "receiverID": "bob", "payload": i, "id": id}));
        let a = ack(&mut alice, &id);
        if a["status"] == "stored" {
            stored += 1;
        }
        sent.push(a["offset"].as_u64().expect("an offset in every ack"));
    }
    let mut bob = Client::connect(servers[0].addr, "/ws?userId=bob").unwrap();
    let welcome = bob.recv_type("welcome");
    let top = welcome["inbox"]["offset"]
        .as_u64()
        .expect("inbox in welcome");
    assert_eq!(top, *sent.last().unwrap());
    let epoch = welcome["inbox"]["epoch"].clone();
    bob.send(&json!({"type": "inbox", "since": {"offset": seen, "epoch": epoch}, "id": "i"}));
    let inbox = bob.recv_type("inbox");
    assert_eq!(inbox["recovered"], true, "{inbox}");
    assert_eq!(
        offsets(&inbox["messages"]),
        sent,
        "exactly the missed ones, in order"
    );
}

/// 150 direct messages wait for a user who never connected: `inbox` from
/// offset 0 answers the oldest 100 (offsets 1..=100) with the inbox's
/// `offset` 150, asking again from 100 gives 101..=150, and from 150
/// nothing: every payload exactly once, in order, each answer `recovered`.
pub fn inbox_pages(servers: &[ServerProcess]) {
    let mut sender = servers[0].user("pager");
    for n in 1..=150u64 {
        let id = format!("d{n}");
        sender
            .send(&json!({"type": "chat_message", "receiverID": "paged", "payload": n, "id": id}));
        let a = ack(&mut sender, &id);
        assert_eq!(
            (&a["status"], &a["offset"]),
            (&json!("stored"), &json!(n)),
            "{a}"
        );
    }
    let mut reader = Client::connect(servers.last().unwrap().addr, "/ws?userId=paged").unwrap();
    let welcome = reader.recv_type("welcome");
    assert_eq!(welcome["inbox"]["offset"], 150, "{welcome}");
    let epoch = welcome["inbox"]["epoch"].clone();
    let (mut since, mut payloads, mut pages) = (0u64, Vec::new(), Vec::new());
    loop {
        // The default limit, then one above the cap: 100 either way.
        let mut ask = json!({"type": "inbox", "since": {"offset": since, "epoch": epoch}});
        if since > 0 {
            ask["limit"] = json!(500);
        }
        reader.send(&ask);
        let page = reader.recv_type("inbox");
        assert_eq!(
            (&page["recovered"], &page["offset"]),
            (&json!(true), &json!(150)),
            "{page}"
        );
        let got = offsets(&page["messages"]);
        pages.push(got.clone());
        let Some(&last) = got.last() else { break };
        payloads.extend(
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["payload"].clone()),
        );
        since = last;
        assert!(pages.len() < 5, "paging does not end: {pages:?}");
    }
    let expected = [(1..=100).collect(), (101..=150).collect(), Vec::new()];
    assert_eq!(pages, expected, "pages of at most 100, oldest first");
    assert_eq!(payloads, (1..=150).map(|n| json!(n)).collect::<Vec<_>>());
}

/// Publishers publish continuously while many clients subscribe with a
/// recovery position taken at random: every client's offsets, recovered
/// then live, are exactly `start+1..=N`, with no gap or duplicate.
pub fn recovery_storm_has_no_gap_or_duplicate(servers: &[ServerProcess], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let channel = format!("big:s{seed}");
    let channel = channel.as_str();
    let mut publisher = servers[0].user("storm");
    let warmup = 50;
    for n in 1..=warmup {
        publish(&mut publisher, channel, n, &format!("w{n}"));
    }
    for n in 1..=warmup {
        ack(&mut publisher, &format!("w{n}"));
    }
    publisher.send(&json!({"type": "history", "channel": channel, "limit": 0, "id": "e"}));
    let epoch = publisher.recv_type("history")["epoch"]
        .as_str()
        .expect("epoch")
        .to_owned();
    let mut clients = Vec::new();
    let total = 200u64;
    for n in warmup + 1..=total {
        publish(&mut publisher, channel, n, &format!("p{n}"));
        if n % 10 == 0 && clients.len() < 12 {
            let server = &servers[rng.random_range(0..servers.len())];
            let mut c = server.user(&format!("r{n}"));
            let start = rng.random_range(0..n.min(warmup));
            c.send(&json!({"type": "subscribe", "channel": channel, "id": "s",
                "recover": {"offset": start, "epoch": epoch}}));
            clients.push((c, start));
        }
    }
    for n in warmup + 1..=total {
        ack(&mut publisher, &format!("p{n}"));
    }
    for (c, start) in &mut clients {
        let mut seen = Vec::new();
        let answer = c.recv_type("subscribed");
        assert_eq!(answer["recovered"], true, "seed {seed}: {answer}");
        seen.extend(offsets(&answer["publications"]));
        while seen.last().copied().unwrap_or(*start) < total {
            let p = c.recv_type("publication");
            seen.push(p["offset"].as_u64().unwrap());
        }
        let expected: Vec<u64> = (*start + 1..=total).collect();
        assert_eq!(seen, expected, "seed {seed}: start {start}");
        let unique: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len());
    }
}
