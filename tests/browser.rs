//! The demo page (`GET /`) in a real browser: starts the server, then runs
//! `tests/browser/e2e.mjs` (Playwright driving headless Chromium) against it.
//! Needs `/usr/bin/chromium`, `node` and `tests/browser/node_modules`; it fails
//! (never skips) without them: `tests/run-all.sh` installs all three.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::channels::config_file;
use support::{http_get, ServerProcess};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Bound on the whole Node run (it bounds itself at 120 s too).
const NODE_LIMIT: Duration = Duration::from_secs(150);

/// The page's rooms: `room` as docs/CLIENT.md suggests it (plus presence),
/// and `news`, which clients may join but not publish to (the page must
/// show `forbidden`).
const NAMESPACES: &str = "\
[namespaces.room]
public = true
client_publish = true
history_size = 50
history_ttl_secs = 3600
presence = true
join_leave = true
join_leave_per_sec = 0

[namespaces.news]
public = true
";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `<target dir>/test-output/browser`, next to the binary's profile directory
/// (respects `CARGO_TARGET_DIR`).
fn out_dir() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_websocket-app"));
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("binary under <target>/<profile>/");
    let dir = target.join("test-output").join("browser");
    std::fs::create_dir_all(&dir).expect("create the test output directory");
    dir
}

/// Fails with a clear message when something the browser test needs is missing.
fn check_prerequisites() {
    let fix = "run tests/run-all.sh (it installs Chromium and runs `npm install` in tests/browser)";
    assert!(
        Path::new(CHROMIUM).exists(),
        "Chromium is missing at {CHROMIUM}: {fix}"
    );
    assert!(
        Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "node is missing: install Node.js 18 or later, then {fix}"
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "tests/browser/node_modules/playwright-core is missing: {fix}"
    );
}

#[test]
fn demo_page_in_chromium() {
    check_prerequisites();
    // A short heartbeat interval so the page's heartbeats are exercised (and a
    // page that forgot them would be closed 4000 within the run).
    let namespaces = config_file(NAMESPACES);
    let server = ServerProcess::start(
        &[
            "--shards",
            "2",
            "--heartbeat-interval-ms",
            "1000",
            "--heartbeat-timeout-ms",
            "5000",
        ],
        &[(
            "CHANNELS_CONFIG",
            namespaces.path().to_str().expect("UTF-8 temp path"),
        )],
    );
    let readonly = ServerProcess::start(&["--shards", "1"], &[("DASHBOARD", "readonly")]);
    // No CHANNELS_CONFIG: the page must say rooms are unavailable.
    let no_rooms = ServerProcess::start(&["--shards", "1"], &[]);
    let out = out_dir();
    let base = format!("http://{}", server.addr);
    let readonly_base = format!("http://{}", readonly.addr);
    let no_rooms_base = format!("http://{}", no_rooms.addr);

    let mut child = Command::new("node")
        .arg(browser_dir().join("e2e.mjs"))
        .arg(&base)
        .arg(&out)
        .arg(&readonly_base)
        .arg(&no_rooms_base)
        .current_dir(browser_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if start.elapsed() > NODE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    println!("{stdout}");
    match status {
        Some(s) if s.success() => {}
        other => panic!(
            "browser test {} (screenshots in {}):\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}\n--- server log:\n{}",
            match other {
                None => format!("did not finish within {NODE_LIMIT:?}"),
                Some(s) => format!("failed ({s})"),
            },
            out.display(),
            server.log_text()
        ),
    }
    assert!(out.join("alice.png").exists(), "no screenshot saved");
}

/// What `GET /` serves in each `DASHBOARD` mode (no browser needed).
#[test]
fn index_follows_dashboard_mode() {
    let on = ServerProcess::start(&["--shards", "1"], &[]);
    let (status, page) = http_get(on.addr, "/");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Content-Type: text/html; charset=utf-8"),
        "{page}"
    );
    assert!(page.contains("Content-Security-Policy:"), "{page}");
    assert!(page.contains("id=\"chat\"") && page.contains("id=\"dashboard\""));
    assert_eq!(http_get(on.addr, "/stats").0, 200);

    let ro = ServerProcess::start(&["--shards", "1"], &[("DASHBOARD", "readonly")]);
    let (status, page) = http_get(ro.addr, "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"dashboard\""), "{page}");
    assert!(!page.contains("id=\"chat\"") && !page.contains("WebSocket"));
    assert_eq!(http_get(ro.addr, "/stats").0, 200);

    let off = ServerProcess::start(&["--shards", "1"], &[("DASHBOARD", "off")]);
    assert_eq!(http_get(off.addr, "/").0, 404);
    assert_eq!(http_get(off.addr, "/stats").0, 404);
}
