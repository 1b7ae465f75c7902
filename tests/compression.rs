//! permessage-deflate end to end (issue 15): the real server with
//! `--compression on` (or off), raw clients that offer and speak RFC 7692
//! (`support::deflate`) next to plain tungstenite clients, over loopback.

mod support;

use serde_json::{json, Value};
use support::channels::{config_file, subscribe, NAMESPACES};
use support::deflate::{deflate, inflate, DeflateClient};
use support::{http_get, Client, ServerProcess};

/// What browsers offer.
const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";
/// The only answer the server gives to an offer it takes with a 15-bit window.
const ANSWER: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// A dashboard-like payload of about 1 KB: repetitive JSON, well above
/// `COMPRESSION_MIN_BYTES` (256).
fn dashboard(tag: &str) -> Value {
    let series: Vec<Value> = (0..12)
        .map(|i| json!({"host": format!("web-{i:02}"), "cpu": 0.25 + f64::from(i) / 100.0, "mem": 512 + i, "status": "ok"}))
        .collect();
    json!({"tag": tag, "series": series})
}

fn server(args: &[&str]) -> (ServerProcess, tempfile::NamedTempFile) {
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    let mut all = vec!["--shards", "2"];
    all.extend_from_slice(args);
    let s = ServerProcess::start(&all, &[("CHANNELS_CONFIG", path.as_str())]);
    (s, file)
}

/// A raw client for `user` offering `offer`, past its (plain) welcome.
fn deflate_user(s: &ServerProcess, user: &str, offer: Option<&str>) -> DeflateClient {
    let mut c = DeflateClient::connect(s.addr, &format!("/ws?userId={user}"), offer);
    let (w, compressed) = c.recv_type("welcome");
    assert_eq!(w["userId"], user, "{w}");
    assert!(!compressed, "welcome is sent plain");
    c
}

/// Reads messages until one of type `ty`, skipping only acks (whose order
/// against deliveries is not fixed).
fn recv_skipping_acks(c: &mut DeflateClient, ty: &str) -> (Value, bool) {
    loop {
        let (v, compressed) = c.recv();
        if v["type"] == "ack" {
            continue;
        }
        assert_eq!(v["type"], ty, "expected {ty}, got {v}");
        return (v, compressed);
    }
}

/// One Prometheus counter of the server.
fn counter(s: &ServerProcess, name: &str) -> f64 {
    let (_, body) = http_get(s.addr, "/metrics");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{body}"))
}

#[test]
fn a_browser_offer_is_accepted_with_no_context_takeover_both_ways() {
    let (s, _f) = server(&["--compression", "on"]);
    let mut alice = deflate_user(&s, "alice", Some(BROWSER_OFFER));
    assert_eq!(alice.extensions(), Some(ANSWER), "{}", alice.head);
    let mut bob = s.user("bob");

    // A compressed client message is inflated and goes the normal way.
    let payload = dashboard("to-bob");
    let msg = json!({"type": "chat_message", "receiverID": "bob", "payload": payload, "id": "m1"});
    alice.send_text(&msg.to_string(), true);
    let got = bob.recv_type("chat_message");
    assert_eq!(got["payload"], payload, "{got}");
    let (ack, compressed) = alice.recv_type("ack");
    assert_eq!(ack["id"], "m1", "{ack}");
    assert!(!compressed, "an ack is below COMPRESSION_MIN_BYTES");

    // Large server frames come compressed and inflate on their own (no
    // context takeover): twice the same message, each inflated fresh.
    for n in 0..2 {
        let payload = dashboard(&format!("to-alice-{n}"));
        bob.send(&json!({"type": "chat_message", "receiverID": "alice", "payload": payload}));
        let (got, compressed) = alice.recv_type("chat_message");
        assert!(compressed, "a 1 KB message to a deflate client has RSV1");
        assert_eq!(got["payload"], payload, "{got}");
    }
    // Small messages stay plain, plain client messages are still accepted.
    for compress in [false, true] {
        alice.send_text(&json!({"type": "heartbeat"}).to_string(), compress);
        assert!(
            !alice.recv_type("heartbeat_ack").1,
            "heartbeat_ack is small"
        );
    }
}

#[test]
fn a_smaller_server_window_is_honoured() {
    let (s, _f) = server(&["--compression", "on"]);
    let offer = "permessage-deflate; server_max_window_bits=10; client_max_window_bits";
    let mut alice = deflate_user(&s, "alice", Some(offer));
    assert_eq!(
        alice.extensions(),
        Some(format!("{ANSWER}; server_max_window_bits=10").as_str())
    );
    let mut bob = s.user("bob");
    let payload = dashboard("small-window");
    bob.send(&json!({"type": "chat_message", "receiverID": "alice", "payload": payload}));
    let (got, compressed) = alice.recv_type("chat_message");
    assert!(compressed);
    assert_eq!(got["payload"], payload);
}

#[test]
fn compressed_and_plain_clients_share_a_channel_and_a_broadcast() {
    let (s, _f) = server(&["--compression", "on"]);
    // Four deflate clients (spread over both shards) and two plain ones.
    let mut zs: Vec<DeflateClient> = (0..4)
        .map(|i| deflate_user(&s, &format!("z{i}"), Some(BROWSER_OFFER)))
        .collect();
    let mut ps: Vec<Client> = (0..2).map(|i| s.user(&format!("p{i}"))).collect();
    for (i, z) in zs.iter_mut().enumerate() {
        let id = format!("s{i}");
        z.send_text(
            &json!({"type": "subscribe", "channel": "chat:room", "id": id}).to_string(),
            true,
        );
        assert_eq!(z.recv_type("subscribed").0["id"], id);
    }
    for p in &mut ps {
        subscribe(p, "chat:room");
    }

    // A publication from a deflate client, sent compressed.
    let payload = dashboard("publication");
    let publish =
        json!({"type": "publish", "channel": "chat:room", "payload": payload, "id": "pub"});
    zs[0].send_text(&publish.to_string(), true);
    for (i, z) in zs.iter_mut().enumerate() {
        let (p, compressed) = recv_skipping_acks(z, "publication");
        assert!(compressed, "z{i}: publication without RSV1");
        assert_eq!(p["payload"], payload, "z{i}: {p}");
    }
    for p in &mut ps {
        // tungstenite refuses RSV1 here (no extension): plain frames only.
        let got = p.recv_type("publication");
        assert_eq!(got["payload"], payload);
    }

    // A broadcast from a plain client reaches everyone else.
    let payload = dashboard("broadcast");
    ps[0].send(&json!({"type": "broadcast", "payload": payload}));
    for (i, z) in zs.iter_mut().enumerate() {
        let (b, compressed) = recv_skipping_acks(z, "broadcast");
        assert!(compressed, "z{i}: broadcast without RSV1");
        assert_eq!(b["payload"], payload, "z{i}: {b}");
    }
    assert_eq!(ps[1].recv_type("broadcast")["payload"], payload);

    // Compress once: 8 compressed frames queued (two messages, four
    // receivers each), from at most one compression per shard per message.
    assert_eq!(counter(&s, "wss_deflate_frames_total"), 8.0);
    let compressions = counter(&s, "wss_deflate_compressions_total");
    assert!(
        (2.0..=4.0).contains(&compressions),
        "{compressions} compressions for 2 messages on 2 shards"
    );
    assert!(counter(&s, "wss_deflate_saved_bytes_total") > 8.0 * 300.0);
}

/// Compress once for a direct message: a user's deflate connections on one
/// shard all get the same compressed frame, made by one compression; the
/// user's plain connection gets the plain frame.
#[test]
fn a_direct_message_to_several_connections_of_a_user_is_compressed_once() {
    // One shard: every connection of the receiver shares its codec.
    let s = ServerProcess::start(&["--shards", "1", "--compression", "on"], &[]);
    let mut zs: Vec<DeflateClient> = (0..3)
        .map(|_| deflate_user(&s, "bob", Some(BROWSER_OFFER)))
        .collect();
    let mut plain = s.user("bob");
    let mut alice = s.user("alice");
    let compressions = counter(&s, "wss_deflate_compressions_total");
    let frames = counter(&s, "wss_deflate_frames_total");

    let payload = dashboard("direct");
    alice
        .send(&json!({"type": "chat_message", "receiverID": "bob", "payload": payload, "id": "d"}));
    assert_eq!(alice.recv_type("ack")["connections"], 4);
    let wire: Vec<Vec<u8>> = zs
        .iter_mut()
        .map(|z| {
            let f = z.frame();
            assert!(f.rsv1 && f.opcode == 0x1, "a compressed text frame: {f:?}");
            f.payload
        })
        .collect();
    assert!(
        wire.iter().all(|w| *w == wire[0]),
        "one compressed frame for all"
    );
    let got: Value = serde_json::from_slice(&inflate(&wire[0])).expect("JSON");
    assert_eq!(
        (&got["type"], &got["payload"]),
        (&json!("chat_message"), &payload)
    );
    assert_eq!(plain.recv_type("chat_message")["payload"], payload);

    let made = counter(&s, "wss_deflate_compressions_total") - compressions;
    assert_eq!(
        made, 1.0,
        "compressions for one message to 3 deflate connections"
    );
    let queued = counter(&s, "wss_deflate_frames_total") - frames;
    assert_eq!(queued, 3.0, "compressed frames queued");
}

#[test]
fn a_zip_bomb_is_closed_1009_with_memory_bounded_and_others_unharmed() {
    let (s, _f) = server(&["--compression", "on"]);
    let mut bob = deflate_user(&s, "bob", Some(BROWSER_OFFER));
    let mut carol = s.user("carol");
    let mut mallory = deflate_user(&s, "mallory", Some(BROWSER_OFFER));

    // 32 MiB of spaces in ~32 KB: under MAX_MESSAGE_BYTES (64 KiB) as
    // received, 500 times over it once inflated.
    let bomb = deflate(&vec![b' '; 32 << 20]);
    assert!(bomb.len() < 60_000, "bomb is {} bytes", bomb.len());
    let peak_before = peak_rss_kib(s.pid());
    mallory.send_frame(0x1, true, &bomb);
    assert_eq!(mallory.expect_close(), 1009);
    let grown = peak_rss_kib(s.pid()).saturating_sub(peak_before);
    assert!(
        grown < 8 * 1024,
        "peak RSS grew by {grown} KiB inflating a 32 MiB bomb"
    );

    // Corrupt compressed data is 1007, on its own connection only.
    let mut eve = deflate_user(&s, "eve", Some(BROWSER_OFFER));
    eve.send_frame(0x1, true, &[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(eve.expect_close(), 1007);

    // The others go on, compressed both ways.
    let payload = dashboard("after-the-bomb");
    let msg = json!({"type": "chat_message", "receiverID": "carol", "payload": payload, "id": "a"});
    bob.send_text(&msg.to_string(), true);
    assert_eq!(carol.recv_type("chat_message")["payload"], payload);
    assert_eq!(bob.recv_type("ack").0["status"], "delivered");
    carol.send(&json!({"type": "chat_message", "receiverID": "bob", "payload": payload}));
    let (got, compressed) = bob.recv_type("chat_message");
    assert!(compressed);
    assert_eq!(got["payload"], payload);
}

/// The process's peak resident set (`VmHWM`), KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// Checks that `c` (connected with a declined offer) is plain both ways: a
/// large message arrives without RSV1, and RSV1 from it is a protocol error.
fn assert_plain(c: &mut DeflateClient, user: &str, sender: &mut Client) {
    assert_eq!(c.extensions(), None, "offer should be declined: {}", c.head);
    let payload = dashboard(user);
    sender.send(&json!({"type": "chat_message", "receiverID": user, "payload": payload}));
    let (got, compressed) = c.recv_type("chat_message");
    assert!(!compressed, "{user}: RSV1 without an agreement");
    assert_eq!(got["payload"], payload);
    c.send_text(&json!({"type": "heartbeat"}).to_string(), true);
    assert_eq!(c.expect_close(), 1002, "{user}: RSV1 must be refused");
}

#[test]
fn offers_the_server_cannot_honour_are_declined_and_the_connection_goes_on_plain() {
    let (s, _f) = server(&["--compression", "on"]);
    let mut sender = s.user("sender");
    let declined = [
        "permessage-deflate; server_max_window_bits=8",
        "permessage-deflate; no_such_parameter",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "x-webkit-deflate-frame",
    ];
    for (i, offer) in declined.iter().enumerate() {
        let user = format!("d{i}");
        let mut c = deflate_user(&s, &user, Some(offer));
        assert_plain(&mut c, &user, &mut sender);
    }
    // A declined offer followed by one it can honour: the second is taken.
    let offer = "permessage-deflate; server_max_window_bits=8, permessage-deflate";
    let c = deflate_user(&s, "second", Some(offer));
    assert_eq!(c.extensions(), Some(ANSWER));
}

#[test]
fn with_compression_off_offers_are_ignored() {
    let (s, _f) = server(&[]);
    let mut sender = s.user("sender");
    let mut c = deflate_user(&s, "browser", Some(BROWSER_OFFER));
    assert_plain(&mut c, "browser", &mut sender);
}
