//! WebSocket conformance: the Autobahn|Testsuite cases run by `kosoku`
//! against the real server's echo path. Sections 1–7, 9, 10 (framing, UTF-8,
//! closing, fragmentation, limits) without compression; sections 12 and 13
//! (permessage-deflate) against a server with `--compression on`.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::ServerProcess;

fn kosoku() -> PathBuf {
    let path = std::env::var_os("KOSOKU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/kosoku")));
    assert!(
        path.exists(),
        "kosoku not found at {} (run tests/run-all.sh, which installs it)",
        path.display()
    );
    path
}

/// The echo server every run uses; `extra` adds flags.
fn echo_server(extra: &[&str]) -> ServerProcess {
    let mut args = vec![
        "--echo-path",
        "/autobahn",
        "--shards",
        "2",
        "--max-message-bytes",
        "16777216",
        "--send-queue-bytes",
        "67108864",
        "--rate-limit",
        "0",
        // Four 16 MiB cases at a time may be assembled on one shard.
        "--partial-message-bytes-per-shard",
        "1073741824",
    ];
    args.extend_from_slice(extra);
    ServerProcess::start(&args, &[])
}

/// One case's verdicts: `behavior` and `behaviorClose`.
struct Verdict {
    case: String,
    behavior: String,
    close: String,
}

/// Runs kosoku on `sections` (globs), excluding `excluded`; returns every
/// case's verdict and kosoku's exit status.
fn run_cases(
    server: &ServerProcess,
    sections: &[&str],
    excluded: &[&str],
) -> (Vec<Verdict>, std::process::ExitStatus) {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(kosoku());
    for section in sections {
        cmd.args(["-i", section]);
    }
    for section in excluded {
        cmd.args(["-x", section]);
    }
    cmd.args(["-p", "4", "-o"])
        .arg(out.path())
        .arg(server.url("/autobahn"));
    let status = cmd.status().expect("run kosoku");
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    let mut verdicts = Vec::new();
    for (_agent, cases) in index.as_object().unwrap() {
        for (case, result) in cases.as_object().unwrap() {
            verdicts.push(Verdict {
                case: case.clone(),
                behavior: result["behavior"].as_str().unwrap_or("?").to_owned(),
                close: result["behaviorClose"].as_str().unwrap_or("?").to_owned(),
            });
        }
    }
    (verdicts, status)
}

#[test]
fn autobahn_sections_1_to_7_9_10_have_no_failures() {
    let s = echo_server(&[]);
    let (verdicts, status) = run_cases(
        &s,
        &[
            "1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*",
        ],
        &["12.*", "13.*"],
    );
    let ok = |b: &str| matches!(b, "OK" | "NON-STRICT" | "INFORMATIONAL" | "UNIMPLEMENTED");
    let failed: Vec<String> = verdicts
        .iter()
        .filter(|v| !ok(&v.behavior) || !ok(&v.close))
        .map(|v| format!("{}: {}/{}", v.case, v.behavior, v.close))
        .collect();
    let total = verdicts.len();
    assert!(
        total > 250,
        "only {total} cases ran (kosoku exit {status:?})"
    );
    assert!(
        failed.is_empty(),
        "{} of {total} Autobahn cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Sections 12 and 13: 216 cases, each echoing 1,000 messages of 16 B to
/// 128 KiB (some auto-fragmented) through permessage-deflate.
///
/// Every case must be OK, strictly. The server declines none of these offers,
/// so none may be UNIMPLEMENTED (the report's verdict for a declined offer):
/// - 12.*: the default offer
///   (`client_no_context_takeover; client_max_window_bits`);
/// - 13.1, 13.2, 13.4, 13.6: no window request, or
///   `server_max_window_bits=15`, with or without `server_no_context_takeover`;
/// - 13.3, 13.5: `server_max_window_bits=9`, honoured by compressing with a
///   9-bit window; 13.7 offers (9, none, none) and gets the first.
///
/// The server answers `client_no_context_takeover` to all of them, which the
/// client accepts (its offers say it can).
///
/// The echo path compresses every echoed message, also those shorter than
/// `COMPRESSION_MIN_BYTES` (16 and 64 B cases) and incompressible ones (the
/// bitmap and PDF data sets), so the codec is exercised by every case. It
/// must: RFC 7692 lets a server send any message plain, but kosoku 0.1.0
/// hands an uncompressed echo to these cases as a `str`, which their SHA-1
/// comparison cannot hash, and the case ends in ERROR. So NON-STRICT is not
/// expected either (these cases never give it: they compare payloads).
#[test]
fn autobahn_sections_12_13_compression_have_no_failures() {
    let s = echo_server(&["--compression", "on"]);
    let (verdicts, status) = run_cases(&s, &["12.*", "13.*"], &[]);
    let total = verdicts.len();
    assert_eq!(
        total, 216,
        "12.* and 13.* cases ran (kosoku exit {status:?})"
    );
    let not_ok: Vec<String> = verdicts
        .iter()
        .filter(|v| v.behavior != "OK" || v.close != "OK")
        .map(|v| format!("{}: {}/{}", v.case, v.behavior, v.close))
        .collect();
    assert!(
        not_ok.is_empty(),
        "{} of {total} compression cases not OK:\n{}",
        not_ok.len(),
        not_ok.join("\n")
    );
}
