//! The server's life on the real process: admission (`/ready` with its
//! hysteresis, running out of file descriptors), signals (shutdown, drain,
//! SIGHUP) and serving on both I/O drivers. Close codes and limits of one
//! connection are in `protocol_closes.rs`.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{http_get, limits, Client, ServerProcess};

/// Issue 17 #8: `/ready` answers 503 from when the instance is full until
/// its connections fall to `READY_RESUME_PERCENT` of the limit, so a load
/// balancer stops sending clients and does not flap it back in at once.
#[test]
fn ready_is_503_from_the_connection_limit_down_to_the_resume_mark() {
    // One shard: a close is counted before any later request is answered.
    let s = ServerProcess::start(
        &["--shards", "1", "--max-connections", "4"],
        &[("READY_RESUME_PERCENT", "50")],
    );
    let mut clients: Vec<Client> = (0..3).map(|i| s.user(&format!("u{i}"))).collect();
    assert_eq!(http_get(s.addr, "/ready").0, 200, "3 of 4");
    clients.push(s.user("u3"));
    assert_eq!(http_get(s.addr, "/ready").0, 503, "4 of 4");
    for (open, ready) in [(3.0, 503), (2.0, 200)] {
        clients.pop().unwrap().close();
        support::eventually("the close to be counted", || {
            (limits::active_connections(&s) == open).then_some(())
        });
        assert_eq!(
            http_get(s.addr, "/ready").0,
            ready,
            "{open} of 4, resume at 2"
        );
    }
    // Below the limit upgrades are admitted all along.
    clients.push(s.user("u4"));
    assert_eq!(
        http_get(s.addr, "/ready").0,
        200,
        "3 of 4, after the resume"
    );
}

/// Issue 17 #8: out of file descriptors, the server backs off, answers the
/// clients waiting in its backlog (503 to an upgrade and to `/ready`, 200 to
/// `/health`) instead of leaving them hanging, logs it once instead of ~40
/// times a second, and takes clients again once descriptors are free.
#[test]
fn out_of_file_descriptors_the_server_answers_503_and_recovers() {
    let started = Instant::now();
    let s = ServerProcess::start(&["--shards", "1"], &[]);
    let mut clients = vec![s.user("u0")];
    // Room for three more descriptors: two clients, and the one the
    // server's next accept(2) allocates before it looks at the backlog
    // (the server keeps one more in reserve).
    limits::limit_open_files(s.pid(), 3);
    clients.push(s.user("u1"));
    clients.push(s.user("u2"));
    let refused = Client::connect(s.addr, "/ws?userId=u3")
        .err()
        .expect("no descriptor left for u3");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.body.contains("file descriptors"),
        "{}",
        refused.body
    );
    assert_eq!(http_get(s.addr, "/ready").0, 503);
    assert_eq!(http_get(s.addr, "/health").0, 200, "alive all along");
    clients.pop().unwrap().close();
    clients.pop().unwrap().close();
    support::eventually("/ready to turn 200", || {
        (http_get(s.addr, "/ready").0 == 200).then_some(())
    });
    clients.push(s.user("u4"));
    let log = s.log_text();
    let lines = log
        .lines()
        .filter(|l| l.contains("lack of descriptors"))
        .count();
    let periods = started.elapsed().as_secs() as usize / 10 + 1;
    assert!(
        (1..=periods).contains(&lines),
        "{lines} lines about failing accepts in {:?}:\n{log}",
        started.elapsed()
    );
}

/// Sends `signal`, checks `/ready` turns 503 and new upgrades are refused
/// while connections close with `code`, then that the process exits 0.
fn signal_closes_everyone_then_exits(args: &[&str], signal: i32, code: u16) {
    let mut s = ServerProcess::start(args, &[]);
    let mut clients: Vec<_> = (0..3).map(|i| s.user(&format!("u{i}"))).collect();
    s.wait_log("signals: ");
    s.signal(signal);
    support::eventually("/ready to turn 503", || {
        (http_get(s.addr, "/ready").0 == 503).then_some(())
    });
    if code == 1012 {
        // Draining takes seconds here, so the server is surely still up.
        let refused = Client::connect(s.addr, "/ws?userId=late")
            .err()
            .expect("an upgrade during the drain is refused");
        assert_eq!(refused.status, 503, "late upgrade: {}", refused.body);
    }
    for c in &mut clients {
        assert_eq!(c.expect_close(), code);
    }
    drop(clients);
    let exit = s.wait_exit(Duration::from_secs(15));
    assert_eq!(exit, Some(0), "log:\n{}", s.log_text());
}

#[test]
fn sigterm_closes_everyone_1001_and_exits_0() {
    signal_closes_everyone_then_exits(&["--shards", "2"], libc::SIGTERM, 1001);
}

#[test]
fn sigusr1_drains_with_1012_paced_and_exits_0() {
    // One close per second: /ready is observably 503 during the drain.
    signal_closes_everyone_then_exits(&["--shards", "1", "--drain-rate", "1"], libc::SIGUSR1, 1012);
}

#[test]
fn sigterm_during_a_drain_switches_to_shutdown_at_once() {
    // 20 connections at 1 close per second: the drain alone would take 20 s.
    let mut s = ServerProcess::start(&["--shards", "1", "--drain-rate", "1"], &[]);
    let mut clients: Vec<_> = (0..20).map(|i| s.user(&format!("d{i}"))).collect();
    s.wait_log("signals: ");
    s.signal(libc::SIGUSR1);
    s.wait_log("SIGUSR1: draining");
    s.signal(libc::SIGTERM);
    s.wait_log("shutdown signal during the drain");
    let codes: Vec<u16> = clients.iter_mut().map(|c| c.expect_close()).collect();
    assert!(
        codes.iter().all(|&c| c == 1001 || c == 1012),
        "only drain or shutdown closes: {codes:?}"
    );
    let shutdown = codes.iter().filter(|&&c| c == 1001).count();
    assert!(
        shutdown >= 10,
        "the connections left after SIGTERM get 1001, not the drain's 1012: {codes:?}"
    );
    drop(clients);
    let exit = s.wait_exit(Duration::from_secs(8));
    assert_eq!(
        exit,
        Some(0),
        "did not exit before the drain's end; log:\n{}",
        s.log_text()
    );
}

#[test]
fn sighup_is_logged_and_ignored() {
    let mut s = ServerProcess::start(&["--shards", "1"], &[]);
    let mut a = s.user("alice");
    s.wait_log("signals: ");
    s.signal(libc::SIGHUP);
    s.wait_log("SIGHUP: ignored");
    a.send(&json!({"type": "heartbeat"}));
    a.recv_type("heartbeat_ack");
    assert_eq!(http_get(s.addr, "/ready").0, 200, "still serving");
    s.signal(libc::SIGTERM);
    assert_eq!(a.expect_close(), 1001);
    drop(a);
    assert_eq!(
        s.wait_exit(Duration::from_secs(15)),
        Some(0),
        "log:\n{}",
        s.log_text()
    );
}

/// A small and a large message (many reads in, partial writes out), a
/// broadcast, and a client close: the readiness set on this driver.
fn chat_round_trip(s: &ServerProcess) {
    let mut a = s.user("alice");
    let mut b = s.user("bob");
    a.send(&json!({"type": "chat_message", "receiverID": "bob", "payload": "d", "id": "1"}));
    assert_eq!(b.recv_type("chat_message")["payload"], "d");
    assert_eq!(a.recv_type("ack")["status"], "delivered");
    // Bursts of 8 x 60 KB: within bob's 1 MiB send queue even while he
    // does not read, and more than one read buffer in and one write out
    // (three in a row: more than the default byte budget, which is off here).
    let big = "x".repeat(60_000);
    for burst in 0..3 {
        for i in 0..8 {
            let id = format!("big{burst}-{i}");
            a.send(&json!({"type": "chat_message", "receiverID": "bob", "payload": big, "id": id}));
        }
        for i in 0..8 {
            let m = b.recv_type("chat_message");
            let len = m["payload"].as_str().map(str::len);
            assert_eq!(len, Some(60_000), "message {burst}-{i}");
            assert_eq!(a.recv_type("ack")["status"], "delivered");
        }
    }
    b.send(&json!({"type": "broadcast", "payload": "all"}));
    assert_eq!(a.recv_type("broadcast")["payload"], "all");
    a.close();
    b.send(&json!({"type": "chat_message", "receiverID": "alice", "payload": "gone?", "id": "2"}));
    support::eventually("alice's close to be seen", || {
        b.send(&json!({"type": "chat_message", "receiverID": "alice", "payload": "p", "id": "3"}));
        loop {
            let ack = b.recv_type("ack");
            if ack["id"] == "3" {
                return (ack["status"] == "offline").then_some(());
            }
        }
    });
}

#[test]
fn works_on_the_io_uring_driver() {
    let s = ServerProcess::start(
        &[
            "--io-driver",
            "uring",
            "--shards",
            "2",
            "--rate-limit-bytes",
            "0",
        ],
        &[],
    );
    s.wait_log("io driver: io_uring");
    chat_round_trip(&s);
}

#[test]
fn works_on_the_epoll_driver() {
    let s = ServerProcess::start(
        &[
            "--io-driver",
            "legacy",
            "--shards",
            "2",
            "--rate-limit-bytes",
            "0",
        ],
        &[],
    );
    s.wait_log("io driver: epoll");
    chat_round_trip(&s);
}
