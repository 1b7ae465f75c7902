use clap::{CommandFactory, Parser};

use super::super::{Args, Config, ConfigError, ResolvedAuth};

fn parse(args: &[&str]) -> Result<Config, ConfigError> {
    let mut argv = vec!["websocket-app"];
    argv.extend_from_slice(args);
    Config::from_args(Args::try_parse_from(argv).expect("clap accepts the flags"))
}

fn setting_of(e: ConfigError) -> &'static str {
    match e {
        ConfigError::Invalid { setting, .. } => setting,
        other => panic!("unexpected {other}"),
    }
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn defaults_are_the_documented_ones() {
    let c = parse(&["--server-id", "s1"]).unwrap();
    let s = &c.settings;
    assert_eq!(s.listen.to_string(), "127.0.0.1:8081");
    assert_eq!(s.max_message_bytes, 65_536);
    assert_eq!(s.send_queue_bytes, 1_048_576);
    assert_eq!(s.heartbeat_interval.as_millis(), 30_000);
    assert_eq!(s.heartbeat_timeout.as_millis(), 60_000);
    assert!(s.broadcast_enabled);
    assert!(s.shards >= 1);
    assert!(c.redis.is_none(), "embedded broker by default");
    assert!(c.cloudwatch.is_none(), "no AWS by default");
    assert_eq!(c.auth, ResolvedAuth::Insecure { explicit: false });
}

#[test]
fn auth_resolution_follows_the_contract() {
    assert!(matches!(parse(&["--jwt-secret", SECRET]).unwrap().auth, ResolvedAuth::Token { .. }));
    assert_eq!(setting_of(parse(&["--jwt-secret", "short"]).unwrap_err()), "JWT_SECRET");
    assert_eq!(setting_of(parse(&["--jwt-secret", SECRET, "--auth-mode", "insecure"]).unwrap_err()), "AUTH_MODE");
    assert_eq!(setting_of(parse(&["--auth-mode", "token"]).unwrap_err()), "JWT_SECRET");
    for host in ["0.0.0.0", "10.1.2.3", "::"] {
        assert_eq!(setting_of(parse(&["--host", host]).unwrap_err()), "JWT_SECRET", "{host}");
        let c = parse(&["--host", host, "--auth-mode", "insecure"]).unwrap();
        assert_eq!(c.auth, ResolvedAuth::Insecure { explicit: true });
    }
    assert_eq!(parse(&["--host", "::1"]).unwrap().auth, ResolvedAuth::Insecure { explicit: false });
    assert!(matches!(parse(&["--host", "0.0.0.0", "--jwt-secret", SECRET]).unwrap().auth, ResolvedAuth::Token { .. }));
}

#[test]
fn each_bad_value_names_its_setting() {
    let cases: &[(&[&str], &str)] = &[
        (&["--max-message-bytes", "10"], "MAX_MESSAGE_BYTES"),
        (&["--send-queue-bytes", "1000"], "SEND_QUEUE_BYTES"),
        (&["--max-connections", "0"], "MAX_CONNECTIONS"),
        (&["--heartbeat-timeout-ms", "1000", "--heartbeat-interval-ms", "2000"], "HEARTBEAT_TIMEOUT_MS"),
        (&["--server-id", "has space"], "SERVER_ID"),
        (&["--redis-uri", "http://x"], "REDIS_URI"),
        (&["--cloudwatch", "true", "--metrics-interval-secs", "0"], "METRICS_INTERVAL_SECS"),
        (&["--echo-path", "/echo", "--jwt-secret", SECRET], "ECHO_PATH"),
        (&["--drain-rate", "0"], "DRAIN_RATE"),
        (&["--shards", "5000"], "WSS_SHARDS"),
    ];
    for (args, setting) in cases {
        assert_eq!(setting_of(parse(args).unwrap_err()), *setting, "{args:?}");
    }
}

#[test]
fn redis_and_cloudwatch_when_configured() {
    let c = parse(&["--redis-uri", "redis://127.0.0.1:6379", "--cloudwatch", "true", "--metrics-interval-secs", "5"])
        .unwrap();
    assert_eq!(c.redis.unwrap().uri, "redis://127.0.0.1:6379");
    let cw = c.cloudwatch.unwrap();
    assert_eq!(cw.namespace, "wss/metrics");
    assert_eq!(cw.interval.as_secs(), 5);
}

#[test]
fn broadcast_can_be_switched_off() {
    assert!(!parse(&["--broadcast", "false"]).unwrap().settings.broadcast_enabled);
}

#[test]
fn help_lists_every_environment_variable() {
    let help = Args::command().render_long_help().to_string();
    for var in [
        "WSS_HOST", "WSS_PORT", "WSS_SHARDS", "IO_DRIVER", "SERVER_ID", "JWT_SECRET", "AUTH_MODE", "ALLOWED_ORIGINS",
        "ENVIRONMENT", "REDIS_URI", "REDIS_CLUSTER", "LIVENESS_TTL_MS", "ROUTE_SWEEP_MS", "MAX_MESSAGE_BYTES",
        "SEND_QUEUE_BYTES", "MAX_CONNECTIONS", "RATE_LIMIT_PER_SEC", "RATE_LIMIT_BURST", "RATE_LIMIT_STRIKES",
        "HEARTBEAT_INTERVAL_MS", "HEARTBEAT_TIMEOUT_MS", "SHUTDOWN_TIMEOUT_MS", "DRAIN_RATE", "BROADCAST_ENABLED",
        "ECHO_PATH", "DELIVERY_TIMEOUT_MS", "CLOUDWATCH_ENABLED", "CLOUDWATCH_NAMESPACE", "METRICS_INTERVAL_SECS",
        "AWS_REGION", "DASHBOARD", "RUST_LOG",
    ] {
        assert!(help.contains(var), "--help lacks {var}");
    }
    assert!(help.contains("default"), "defaults are shown");
}

#[test]
fn env_file_does_not_override_set_variables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.env");
    std::fs::write(&path, "WSA_TEST_FROM_FILE=file\nWSA_TEST_ALREADY_SET=file\n").unwrap();
    // SAFETY: these variable names are used by this test only.
    unsafe { std::env::set_var("WSA_TEST_ALREADY_SET", "process") };
    super::super::load_env_file(Some(&path)).unwrap();
    assert_eq!(std::env::var("WSA_TEST_FROM_FILE").unwrap(), "file");
    assert_eq!(std::env::var("WSA_TEST_ALREADY_SET").unwrap(), "process");
}
