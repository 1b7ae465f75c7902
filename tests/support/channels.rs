//! Channel helpers for the integration tests: a namespaces file, and
//! subscribing, publishing and reading publications with bounded waits.

use std::io::Write;

use serde_json::{json, Value};

use super::Client;

/// The namespaces the channel tests use:
/// - `chat`: public, clients may publish;
/// - `team`: private (token claim needed), clients may publish;
/// - `news`: public, only the server may publish;
/// - default: private, no client publish.
pub const NAMESPACES: &str = "\
[namespaces.chat]
public = true
client_publish = true

[namespaces.team]
client_publish = true

[namespaces.news]
public = true
";

/// A temporary `CHANNELS_CONFIG` file with `text`; keep it alive while the
/// server runs.
pub fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write namespaces");
    f
}

/// Subscribes and reads the `subscribed` answer.
pub fn subscribe(c: &mut Client, channel: &str) -> Value {
    let id = format!("s-{channel}");
    c.send(&json!({"type": "subscribe", "channel": channel, "id": id}));
    let answer = c.recv();
    assert_eq!(
        answer["type"], "subscribed",
        "subscribe {channel}: {answer}"
    );
    assert_eq!(answer["channel"], channel, "{answer}");
    assert_eq!(answer["id"], id, "{answer}");
    answer
}

/// Unsubscribes and reads the `unsubscribed` answer.
pub fn unsubscribe(c: &mut Client, channel: &str) {
    c.send(&json!({"type": "unsubscribe", "channel": channel, "id": "u"}));
    let answer = c.recv_type("unsubscribed");
    assert_eq!(answer["channel"], channel, "{answer}");
}

/// Publishes `{"n": n}` to `channel` with ack id `id`.
pub fn publish(c: &mut Client, channel: &str, n: u64, id: &str) {
    c.send(&json!({"type": "publish", "channel": channel, "payload": {"n": n}, "id": id}));
}

/// Reads the ack for `id`.
pub fn ack(c: &mut Client, id: &str) -> Value {
    let a = c.recv_type("ack");
    assert_eq!(a["id"], id, "ack for another message: {a}");
    a
}

/// Reads `count` publications of `channel` and returns their `payload.n`.
pub fn publications(c: &mut Client, channel: &str, count: usize) -> Vec<u64> {
    (0..count)
        .map(|i| {
            let p = c.recv();
            assert_eq!(p["type"], "publication", "publication {i}: {p}");
            assert_eq!(p["channel"], channel, "{p}");
            p["payload"]["n"].as_u64().expect("payload.n")
        })
        .collect()
}
