//! The abuse limits of issue 17: their defaults and how each is checked
//! against the settings it depends on.

use std::time::Duration;

use super::tests::flags;

#[test]
fn byte_budget_defaults_to_half_the_send_queue_at_a_modest_rate() {
    let rl = flags(&[]).unwrap().settings.rate_limit;
    assert_eq!((rl.bytes_per_sec, rl.bytes_burst), (131_072, 524_288));
    // Derived from the queue it protects.
    let rl = flags(&["--send-queue-bytes", "200000"])
        .unwrap()
        .settings
        .rate_limit;
    assert_eq!(rl.bytes_burst, 100_000);
    // ...but always holding one largest message.
    let rl = flags(&[
        "--max-message-bytes",
        "100000",
        "--send-queue-bytes",
        "101024",
    ])
    .unwrap()
    .settings
    .rate_limit;
    assert_eq!(rl.bytes_burst, 100_000);
    let rl = flags(&["--rate-limit-bytes", "0"])
        .unwrap()
        .settings
        .rate_limit;
    assert_eq!(rl.bytes_per_sec, 0, "0 turns the byte limit off");
}

#[test]
fn byte_burst_must_hold_a_message_and_stay_below_the_queue() {
    for (burst, ok) in [
        ("65535", false),
        ("65536", true),
        ("1047552", true),
        ("1047553", false),
    ] {
        let r = flags(&["--rate-limit-bytes-burst", burst]);
        assert_eq!(r.is_ok(), ok, "burst {burst}: {r:?}");
        if let Err(e) = r {
            assert_eq!(e.setting(), Some("RATE_LIMIT_BYTES_BURST"), "{e}");
            assert!(e.to_string().contains("SEND_QUEUE_BYTES"), "{e}");
        }
    }
    for (rate, ok) in [("1", false), ("1023", false), ("1024", true), ("0", true)] {
        let r = flags(&["--rate-limit-bytes", rate]);
        assert_eq!(r.is_ok(), ok, "rate {rate}: {r:?}");
    }
    let e = flags(&["--rate-limit-bytes", "10"]).unwrap_err();
    assert_eq!(e.setting(), Some("RATE_LIMIT_BYTES_PER_SEC"), "{e}");
}

#[test]
fn unfinished_messages_have_a_deadline_and_a_shard_budget() {
    let s = flags(&[]).unwrap().settings;
    assert_eq!(s.message_complete_timeout, Duration::from_secs(30));
    assert_eq!(s.partial_message_budget, 32 << 20);
    for (ms, ok) in [
        ("99", false),
        ("100", true),
        ("3600000", true),
        ("3600001", false),
    ] {
        let r = flags(&["--message-complete-timeout-ms", ms]);
        assert_eq!(r.is_ok(), ok, "timeout {ms}: {r:?}");
    }
    // The budget holds one largest message being assembled.
    let r = flags(&[
        "--max-message-bytes",
        "100000",
        "--partial-message-bytes-per-shard",
        "101023",
    ]);
    let e = r.unwrap_err();
    assert_eq!(e.setting(), Some("PARTIAL_MESSAGE_BYTES_PER_SHARD"), "{e}");
    assert!(e.to_string().contains("MAX_MESSAGE_BYTES"), "{e}");
    let ok = flags(&[
        "--max-message-bytes",
        "100000",
        "--partial-message-bytes-per-shard",
        "101024",
    ]);
    assert_eq!(ok.unwrap().settings.partial_message_budget, 101_024);
}

#[test]
fn readiness_resumes_at_a_percentage_of_the_connection_limit() {
    assert_eq!(flags(&[]).unwrap().settings.ready_resume_percent, 95);
    assert_eq!(
        flags(&["--ready-resume-percent", "0"])
            .unwrap()
            .settings
            .ready_resume_percent,
        0
    );
    let e = flags(&["--ready-resume-percent", "101"]).unwrap_err();
    assert_eq!(e.setting(), Some("READY_RESUME_PERCENT"), "{e}");
}
