//! The JavaScript client library (`src/web/client.js`): how the server serves
//! it, and its own tests (`tests/client/*.test.mjs`, Node's built-in test
//! runner) against this build of the server binary, and the TypeScript check
//! of `src/web/client.d.ts`. Needs `node` (22, or 20.10 to 21) and
//! `tests/client/node_modules` (`npm install` there; tests/run-all.sh does
//! it); it fails (never skips) without them.

mod support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{http_get, ServerProcess};

/// The test files: the real server (version 1 and, in `v2.test.mjs`,
/// channels, recovery, inbox, token refresh, presence and the server API
/// over a real `redis-server`), and the client's own logic against a
/// scripted server (`logic.test.mjs`), and `tsc --strict` on the
/// declarations (`types.test.mjs`).
const FILES: &[&str] = &[
    "tests/client/connection.test.mjs",
    "tests/client/acks.test.mjs",
    "tests/client/auth.test.mjs",
    "tests/client/logic.test.mjs",
    "tests/client/v2.test.mjs",
    "tests/client/types.test.mjs",
];

/// Bound on the whole Node run.
const NODE_LIMIT: Duration = Duration::from_secs(240);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `node` arguments that give it a global `WebSocket`: none from Node 22 on,
/// `--experimental-websocket` on Node 20.10 to 21 (decided by probing, not by
/// the version number).
fn websocket_flags() -> Vec<&'static str> {
    let probe = |flags: &[&str]| {
        Command::new("node")
            .args(flags)
            .args([
                "-e",
                "process.exit(typeof WebSocket === 'function' ? 0 : 1)",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if probe(&[]) {
        return vec![];
    }
    assert!(
        probe(&["--experimental-websocket"]),
        "node is missing, or has no WebSocket even with --experimental-websocket: install Node.js 22 (or 20.10 to 21)"
    );
    vec!["--experimental-websocket"]
}

#[test]
fn library_is_served_in_every_dashboard_mode() {
    let js = std::fs::read_to_string(root().join("src/web/client.js")).unwrap();
    let dts = std::fs::read_to_string(root().join("src/web/client.d.ts")).unwrap();
    for mode in ["on", "off"] {
        let server = ServerProcess::start(&["--shards", "1"], &[("DASHBOARD", mode)]);
        let (status, answer) = http_get(server.addr, "/client.js");
        assert_eq!(status, 200, "DASHBOARD={mode}: {answer}");
        assert!(
            answer.contains("Content-Type: application/javascript; charset=utf-8"),
            "{answer}"
        );
        assert!(answer.contains("Access-Control-Allow-Origin: *"));
        assert!(answer.ends_with(&js), "/client.js is not src/web/client.js");
        let (status, answer) = http_get(server.addr, "/client.d.ts");
        assert_eq!(status, 200, "DASHBOARD={mode}: {answer}");
        assert!(
            answer.ends_with(&dts),
            "/client.d.ts is not src/web/client.d.ts"
        );
    }
}

/// Runs `node --test` on [`FILES`] and fails with its output.
#[test]
fn node_tests_against_the_server() {
    let mut cmd = Command::new("node");
    cmd.args(websocket_flags())
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(FILES)
        .current_dir(root())
        .env("WEBSOCKET_APP_BIN", env!("CARGO_BIN_EXE_websocket-app"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, stdout, stderr) = run_bounded(cmd, NODE_LIMIT);
    println!("{stdout}");
    match status {
        Some(true) => {}
        Some(false) => panic!("node tests failed:\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}"),
        None => panic!(
            "node tests did not finish within {NODE_LIMIT:?}:\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}"
        ),
    }
}

/// Runs `cmd` with a time limit; returns (success, or None on timeout; stdout; stderr).
fn run_bounded(mut cmd: Command, limit: Duration) -> (Option<bool>, String, String) {
    let mut child = cmd.spawn().expect("spawn node");
    let readers = [
        read_all(child.stdout.take().unwrap()),
        read_all(child.stderr.take().unwrap()),
    ];
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status.success());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let [out, err] = readers.map(|r| r.join().unwrap_or_default());
    (status, out, err)
}

fn read_all(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stream.read_to_string(&mut s);
        s
    })
}
