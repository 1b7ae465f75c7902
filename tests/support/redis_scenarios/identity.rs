//! Scenarios about who an instance is in Redis and whether Redis still
//! knows every route (part of `redis_scenarios`): a duplicate
//! `SERVER_ID`, a crashed instance restarting under its id, and Redis
//! restarting empty while a receiver stays connected.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use websocket_app::config::ClusterMode;

use super::{
    ack, assert_delivered, chat, coordinator, instance, received, settled, wait_ready, Deployment,
    SWEEP_MS, TTL_MS,
};
use crate::support::{eventually, Client, WAIT};

/// What a server process that was expected to refuse to start did.
pub struct Refused {
    /// Its exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Starts a server with id `id` on `dep` and waits (bounded) for it to
/// exit; fails the test if it is still running after [`WAIT`].
pub fn start_expecting_refusal(dep: &dyn Deployment, id: &str) -> Refused {
    let (uri, ttl, sweep) = (dep.uri(), TTL_MS.to_string(), SWEEP_MS.to_string());
    let mut child = Command::new(env!("CARGO_BIN_EXE_websocket-app"))
        .args(["--host", "127.0.0.1", "--port", "0", "--shards", "1"])
        .env_remove("JWT_SECRET")
        .env_remove("AUTH_MODE")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("REDIS_URI", &uri)
        .env("SERVER_ID", id)
        .env("REDIS_CLUSTER", dep.cluster_flag())
        .env("LIVENESS_TTL_MS", &ttl)
        .env("ROUTE_SWEEP_MS", &sweep)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn websocket-app");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "a second instance with SERVER_ID {id} kept running; its log:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    Refused {
        code: status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A second instance with a live instance's `SERVER_ID` refuses to start,
/// naming the id, and leaves the first one's liveness key and service alone.
pub fn duplicate_server_id_is_refused(dep: &dyn Deployment) {
    let a = instance(dep, "dup");
    let mut alice = a.user("alice");
    let key = "server_alive:dup";
    let held = dep.cli(&["GET", key]);
    assert!(!held.is_empty(), "the first instance holds its key");
    let refused = start_expecting_refusal(dep, "dup");
    assert_ne!(refused.code, Some(0), "refused: {}", refused.stderr);
    assert!(
        refused.stderr.contains("SERVER_ID \"dup\"") && refused.stderr.contains("in use"),
        "the error names the id: {}",
        refused.stderr
    );
    assert_eq!(
        dep.cli(&["GET", key]),
        held,
        "the first one's key is untouched"
    );
    let b = instance(dep, "other");
    let mut bob = b.user("bob");
    chat(&mut bob, "alice", "d1");
    received(&mut alice, "d1");
    assert_delivered(&ack(&mut bob, "d1"), 1);
}

/// A crashed instance restarted under the same id at once is not a
/// duplicate: its predecessor's key stops being refreshed, expires, and the
/// new process takes it over.
pub fn crashed_instance_restarts_under_its_id(dep: &dyn Deployment) {
    let mut first = instance(dep, "phoenix");
    first.signal(libc::SIGKILL);
    first.wait_exit(WAIT);
    assert!(
        !dep.cli(&["GET", "server_alive:phoenix"]).is_empty(),
        "the dead process's key is still there"
    );
    let again = instance(dep, "phoenix");
    let mut carol = again.user("carol");
    chat(&mut carol, "carol", "p1");
    received(&mut carol, "p1");
    assert_delivered(&ack(&mut carol, "p1"), 1);
}

/// The liveness key is refreshed and deleted only while it holds our boot
/// id: once another process holds it, this one neither overwrites it nor
/// deletes it at shutdown (and reports not ready meanwhile).
pub fn coordinator_never_touches_another_holders_key(dep: &dyn Deployment, mode: ClusterMode) {
    settled(dep);
    let (a, _rec) = coordinator(&dep.uri(), mode, "cd");
    let key = "server_alive:cd";
    assert!(!dep.cli(&["GET", key]).is_empty());
    // Another process took the id over (we were cut off for longer than the TTL).
    dep.cli(&["SET", key, "someone-else", "PX", "60000"]);
    eventually("not ready once a refresh finds the key held", || {
        (!a.is_ready()).then_some(())
    });
    assert_eq!(dep.cli(&["GET", key]), "someone-else", "not overwritten");
    a.shutdown();
    assert_eq!(
        dep.cli(&["GET", key]),
        "someone-else",
        "not deleted at shutdown"
    );
}

/// Redis restarts empty while bob's instance has not registered him again
/// (it is frozen): a message to bob is `failed`, never `offline`, since bob
/// is connected. Once his instance is back, messages reach him; after the
/// grace period a user with no connection anywhere is `offline` again.
pub fn redis_restart_empty_never_acks_a_connected_user_offline(dep: &mut dyn Deployment) {
    let a = instance(dep, "a");
    let b = instance(dep, "b");
    let mut alice = a.user("alice");
    let mut bob = b.user("bob");
    b.signal(libc::SIGSTOP);
    let resume = Resume(b.pid());
    dep.stop();
    wait_ready(&a, 503);
    dep.start_again();
    wait_ready(&a, 200);
    chat(&mut alice, "bob", "r1");
    let first = ack(&mut alice, "r1");
    assert_eq!(
        first["status"], "failed",
        "bob is connected, his route is just not back yet: {first}"
    );
    drop(resume);
    eventually(
        "delivery to bob once his instance registered him again",
        || {
            chat(&mut alice, "bob", "r2");
            let a = ack(&mut alice, "r2");
            assert_ne!(a["status"], "offline", "bob is connected: {a}");
            (a["status"] == "delivered").then_some(())
        },
    );
    received(&mut bob, "r2");
    eventually("offline again for a user connected nowhere", || {
        chat(&mut alice, "nobody", "r3");
        (ack(&mut alice, "r3")["status"] == "offline").then_some(())
    });
    keep(&mut bob);
}

/// Sends SIGCONT to a stopped process when dropped (also when the test
/// fails), so that no frozen server outlives it.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        // SAFETY: kill(2) with our own child's pid; no memory is involved.
        unsafe { libc::kill(self.0 as i32, libc::SIGCONT) };
    }
}

/// Bob's connection must stay open to the end (he is "connected").
fn keep(bob: &mut Client) {
    bob.send(&serde_json::json!({"type": "heartbeat"}));
    bob.recv_type("heartbeat_ack");
}
