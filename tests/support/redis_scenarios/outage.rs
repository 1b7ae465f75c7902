//! Presence across a Redis link outage: what changed while the link was
//! down is announced once it is back.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Instant;

use serde_json::json;

use crate::support::channels::{config_file, subscribe};
use crate::support::presence::{presence, recv_skipping_events, NAMESPACES};
use crate::support::redis::RedisServer;
use crate::support::WAIT;

use super::{instance_with, wait_ready};

/// A `redis-cli SUBSCRIBE` as user `observer`; its output lines arrive on
/// the receiver. Killed on drop.
struct Observer {
    child: Child,
    lines: Receiver<String>,
}

impl Observer {
    fn subscribe(redis: &RedisServer, pubsub: &str) -> Self {
        let mut child = observer_cli(redis)
            .args(["SUBSCRIBE", pubsub])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-cli subscribe");
        let stdout = child.stdout.take().expect("subscriber stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let observer = Self { child, lines };
        observer.wait_for("1", "its subscription confirmed");
        observer
    }

    /// Waits (bounded) for a line containing `needle`.
    fn wait_for(&self, needle: &str, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what} ({needle:?})"),
            }
        }
    }
}

/// `redis-cli` logged in as user `observer`.
fn observer_cli(redis: &RedisServer) -> Command {
    let mut cli = Command::new("redis-cli");
    cli.args(["-h", "127.0.0.1", "-p", &redis.port.to_string()])
        .args(["--user", "observer", "--pass", "pw", "--no-auth-warning"]);
    cli
}

impl Drop for Observer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ann leaves a channel while the instance's Redis link is down (Redis
/// kept its data): once the link is back, the instance's presence reset
/// announces her `leave` on the channel, and presence lists only Ben. The
/// restarted Redis admits only an `observer` user at first, so the
/// observer is subscribed before the instance can reconnect.
pub fn a_link_outage_announces_the_leaves_it_hid(redis: &mut RedisServer) {
    let file = config_file(NAMESPACES);
    let path = file.path().to_str().unwrap().to_owned();
    let server = instance_with(&*redis, "a", &[("CHANNELS_CONFIG", path.as_str())]);
    let mut ann = server.user("ann");
    let mut ben = server.user("ben");
    subscribe(&mut ann, "room:r");
    subscribe(&mut ben, "room:r");
    let both = vec![("ann".to_owned(), 1), ("ben".to_owned(), 1)];
    crate::support::eventually("both listed", || {
        (presence(&mut ben, "room:r") == both).then_some(())
    });
    assert_eq!(redis.cli(&["SAVE"]), "OK", "snapshot before the outage");
    redis.stop();
    wait_ready(&server, 503);
    ann.send(&json!({"type": "unsubscribe", "channel": "room:r", "id": "u"}));
    recv_skipping_events(&mut ann, "unsubscribed");
    redis.launch_with(&[
        "--user", "observer", "on", ">pw", "~*", "&*", "+@all", "--user", "default", "off",
    ]);
    let observer = Observer::subscribe(redis, "ch:{room:r}");
    let admit = [
        "ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all",
    ];
    let out = observer_cli(redis)
        .args(admit)
        .output()
        .expect("run redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    wait_ready(&server, 200);
    let leave = observer.wait_for("\"type\":\"leave\"", "ann's leave announced");
    assert!(leave.contains("\"userId\":\"ann\""), "{leave}");
    let only_ben = vec![("ben".to_owned(), 1)];
    crate::support::eventually("only ben listed", || {
        (presence(&mut ben, "room:r") == only_ben).then_some(())
    });
}
