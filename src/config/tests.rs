//! Defaults, validation errors, and that secrets stay out of output.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::settings::{Dashboard, IoDriver};

/// A 32-byte secret, the shortest accepted.
pub(super) const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Loads with `args` after the program name and `env` as the environment.
pub(super) fn load_with(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_from(
        std::iter::once("websocket-app").chain(args.iter().copied()),
        &env,
    )
}

/// Loads with flags only.
pub(super) fn flags(args: &[&str]) -> Result<Config, ConfigError> {
    load_with(args, &[])
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = flags(&[]).unwrap();
    let s = &c.settings;
    assert_eq!(s.listen.to_string(), "127.0.0.1:8081");
    assert!((1..=1024).contains(&s.shards), "0 = one per core");
    assert_eq!(s.io_driver, IoDriver::Auto);
    assert!(s.server_id.ends_with("-8081"), "{}", s.server_id);
    assert_eq!(s.max_message_bytes, 65_536);
    assert_eq!(s.send_queue_bytes, 1_048_576);
    assert_eq!(s.max_connections, 1_000_000);
    assert_eq!(
        (
            s.rate_limit.per_sec,
            s.rate_limit.burst,
            s.rate_limit.strikes
        ),
        (100, 200, 100)
    );
    assert_eq!(s.heartbeat_interval, Duration::from_secs(30));
    assert_eq!(s.heartbeat_timeout, Duration::from_secs(60));
    assert_eq!(s.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(s.drain_rate, 1000);
    assert!(s.broadcast_enabled);
    assert_eq!(s.echo_path, None);
    assert_eq!(s.delivery_timeout, Duration::from_secs(5));
    assert_eq!(s.dashboard, Dashboard::On);
    assert_eq!(c.auth, ResolvedAuth::Insecure { explicit: false });
    assert_eq!(c.allowed_origins, None);
    assert_eq!(c.environment, "development");
    assert!(c.redis.is_none(), "embedded broker by default");
    assert!(c.cloudwatch.is_none(), "no AWS by default");
    assert_eq!(c.log, "info");
    assert!(!c.no_color);
}

#[test]
fn each_bad_value_names_its_setting() {
    let cases: &[(&[&str], &str)] = &[
        (&["--shards", "1025"], "WSS_SHARDS"),
        (&["--server-id", "has space"], "SERVER_ID"),
        (&["--server-id", ""], "SERVER_ID"),
        (&["--server-id", &"x".repeat(65)], "SERVER_ID"),
        (&["--jwt-secret", "too short"], "JWT_SECRET"),
        (
            &["--allowed-origins", "https://a.example/"],
            "ALLOWED_ORIGINS",
        ),
        (&["--allowed-origins", "*"], "ALLOWED_ORIGINS"),
        (&["--allowed-origins", " , "], "ALLOWED_ORIGINS"),
        (&["--environment", ""], "ENVIRONMENT"),
        (&["--redis-uri", "http://x:6379"], "REDIS_URI"),
        (&["--redis-uri", "redis://:pw@"], "REDIS_URI"),
        (&["--redis-uri", "redis://h:99999"], "REDIS_URI"),
        (&["--redis-uri", "redis://a,rediss://b"], "REDIS_URI"),
        (&["--redis-uri", "redis://0.0.0.0:6379"], "REDIS_URI"),
        (&["--redis-uri", "rediss://h/#verify"], "REDIS_URI"),
        (
            &[
                "--redis-uri",
                "redis://a,redis://b",
                "--redis-cluster",
                "off",
            ],
            "REDIS_CLUSTER",
        ),
        (&["--redis-cluster", "on"], "REDIS_CLUSTER"),
        (&["--liveness-ttl-ms", "10"], "LIVENESS_TTL_MS"),
        (&["--route-sweep-ms", "1"], "ROUTE_SWEEP_MS"),
        (&["--max-message-bytes", "255"], "MAX_MESSAGE_BYTES"),
        (&["--max-message-bytes", "16777217"], "MAX_MESSAGE_BYTES"),
        (&["--send-queue-bytes", "66559"], "SEND_QUEUE_BYTES"),
        (&["--max-connections", "0"], "MAX_CONNECTIONS"),
        (&["--rate-limit-burst", "0"], "RATE_LIMIT_BURST"),
        (&["--rate-limit", "2000000"], "RATE_LIMIT_PER_SEC"),
        (&["--rate-limit-strikes", "0"], "RATE_LIMIT_STRIKES"),
        (&["--heartbeat-interval-ms", "0"], "HEARTBEAT_INTERVAL_MS"),
        (&["--heartbeat-timeout-ms", "30000"], "HEARTBEAT_TIMEOUT_MS"),
        (&["--shutdown-timeout-ms", "3600001"], "SHUTDOWN_TIMEOUT_MS"),
        (&["--drain-rate", "0"], "DRAIN_RATE"),
        (
            &["--echo-path", "/echo", "--jwt-secret", SECRET],
            "ECHO_PATH",
        ),
        (&["--echo-path", "/ws"], "ECHO_PATH"),
        (&["--echo-path", "echo"], "ECHO_PATH"),
        (&["--delivery-timeout-ms", "0"], "DELIVERY_TIMEOUT_MS"),
        (&["--metrics-interval-secs", "0"], "METRICS_INTERVAL_SECS"),
        (
            &["--metrics-interval-secs", "3601"],
            "METRICS_INTERVAL_SECS",
        ),
        (
            &["--cloudwatch-namespace", "AWS/EC2"],
            "CLOUDWATCH_NAMESPACE",
        ),
        (&["--cloudwatch-namespace", ""], "CLOUDWATCH_NAMESPACE"),
        (&["--aws-region", "US East"], "AWS_REGION"),
        (
            &["--aws-endpoint-url", "localhost:4566"],
            "AWS_ENDPOINT_URL",
        ),
        (&["--log", "=[bad"], "RUST_LOG"),
    ];
    for (args, setting) in cases {
        let err = flags(args).expect_err(&format!("{args:?} must be refused"));
        assert_eq!(err.setting(), Some(*setting), "{args:?}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(setting),
            "{args:?}: message {text:?} names {setting}"
        );
        assert!(
            text.contains(&error::flag_for(setting)),
            "{text:?} names the flag"
        );
    }
}

#[test]
fn limits_accept_their_bounds() {
    let c = flags(&[
        "--shards",
        "1024",
        "--max-message-bytes",
        "16777216",
        "--send-queue-bytes",
        "16778240",
        "--rate-limit",
        "0",
        "--rate-limit-burst",
        "0",
        "--heartbeat-interval-ms",
        "200",
        "--heartbeat-timeout-ms",
        "600",
        "--shutdown-timeout-ms",
        "0",
        "--metrics-interval-secs",
        "3600",
        "--port",
        "0",
    ])
    .unwrap();
    assert_eq!(c.settings.shards, 1024);
    assert_eq!(c.settings.send_queue_bytes, 16_778_240);
    assert_eq!(c.settings.rate_limit.per_sec, 0, "0 turns the limit off");
    assert_eq!(c.settings.heartbeat_interval, Duration::from_millis(200));
    assert!(
        c.settings
            .server_id
            .ends_with(&format!("-0-{}", std::process::id())),
        "port 0: the pid keeps ids of processes on one host apart: {}",
        c.settings.server_id
    );
}

#[test]
fn enums_and_switches_parse() {
    let c = flags(&[
        "--io-driver",
        "legacy",
        "--dashboard",
        "readonly",
        "--broadcast=false",
        "--cloudwatch",
        "--aws-region",
        "eu-west-1",
        "--log",
        "websocket_app=debug,info",
    ])
    .unwrap();
    assert_eq!(c.settings.io_driver, IoDriver::Legacy);
    assert_eq!(c.settings.dashboard, Dashboard::ReadOnly);
    assert!(!c.settings.broadcast_enabled);
    let cw = c.cloudwatch.unwrap();
    assert_eq!(cw.namespace, "wss/metrics");
    assert_eq!(cw.interval, Duration::from_secs(60));
    assert_eq!(cw.region.as_deref(), Some("eu-west-1"));
    assert!(
        !flags(&["--broadcast", "false"])
            .unwrap()
            .settings
            .broadcast_enabled
    );
    assert!(flags(&["--io-driver", "kqueue"])
        .unwrap_err()
        .to_string()
        .contains("--io-driver"));
}

/// Moved from `tests/cloudwatch.rs`: the push no longer re-checks its
/// settings, so what it used to refuse is refused here.
#[test]
fn invalid_cloudwatch_configuration_is_refused() {
    let err = flags(&["--cloudwatch", "--metrics-interval-secs", "0"])
        .expect_err("zero interval refused");
    assert_eq!(err.setting(), Some("METRICS_INTERVAL_SECS"));
    assert!(flags(&["--cloudwatch", "--cloudwatch-namespace", "AWS/EC2"]).is_err());
}

#[test]
fn cloudwatch_endpoint_is_a_setting() {
    let c = load_with(
        &["--cloudwatch", "--server-id", "srv-1"],
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")],
    )
    .unwrap();
    assert!(c.summary().contains("endpoint=http://127.0.0.1:5000"));
    let cw = c.cloudwatch.unwrap();
    assert_eq!(cw.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!(cw.server_id, "srv-1", "the ServerID dimension");
    for bad in [
        "127.0.0.1:5000",
        "ftp://h",
        "https://",
        "https://key:secret@h",
    ] {
        let err = flags(&["--aws-endpoint-url", bad]).unwrap_err();
        assert_eq!(err.setting(), Some("AWS_ENDPOINT_URL"), "{bad}: {err}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

#[test]
fn origins_are_trimmed_and_serialized() {
    let c = flags(&[
        "--allowed-origins",
        "HTTPS://App.example:443, http://localhost:3000,https://app.example",
    ])
    .unwrap();
    assert_eq!(
        c.allowed_origins.unwrap(),
        ["https://app.example", "http://localhost:3000"]
    );
    let err = flags(&["--allowed-origins", "https://bücher.example"]).unwrap_err();
    assert!(err.to_string().contains("xn--"), "{err}");
}

#[test]
fn hardening_settings_default_and_bounds() {
    let c = flags(&[]).unwrap();
    assert_eq!(c.hardening.jwt_leeway, Duration::from_secs(5));
    assert_eq!(c.hardening.max_json_depth, 64);
    assert_eq!(c.settings.max_json_depth, 64);
    let c = load_with(&[], &[("JWT_LEEWAY_SECS", "0"), ("MAX_JSON_DEPTH", "1000")]).unwrap();
    assert_eq!(c.hardening.jwt_leeway, Duration::ZERO);
    assert_eq!(c.settings.max_json_depth, 1000);
    for (args, setting) in [
        (["--jwt-leeway-secs", "301"], "JWT_LEEWAY_SECS"),
        (["--max-json-depth", "0"], "MAX_JSON_DEPTH"),
        (["--max-json-depth", "1001"], "MAX_JSON_DEPTH"),
    ] {
        let err = flags(&args).unwrap_err();
        assert_eq!(err.setting(), Some(setting), "{err}");
    }
    let err = load_with(&[], &[("MAX_JSON_DEPTH", "deep")]).unwrap_err();
    assert_eq!(err.setting(), Some("MAX_JSON_DEPTH"), "{err}");
    assert!(flags(&[]).unwrap().summary().contains("max_json_depth=64"));
}

#[test]
fn redis_seeds_and_cluster() {
    let c = flags(&[
        "--redis-uri",
        "redis://:pw@10.0.0.1:6379/0, redis://[::1]:7000",
    ])
    .unwrap();
    let r = c.redis.unwrap();
    assert_eq!(
        r.nodes,
        ["redis://:pw@10.0.0.1:6379/0", "redis://[::1]:7000"]
    );
    assert_eq!(r.cluster, ClusterMode::Auto);
    assert_eq!(r.liveness_ttl, Duration::from_secs(10));
    assert_eq!(r.sweep_interval, Duration::from_secs(30));
    assert_eq!(r.server_id, c.settings.server_id, "the instance's id");
    assert_eq!(r.delivery_timeout, c.settings.delivery_timeout);
    let addrs: Vec<String> = r.seeds.iter().map(|s| s.addr().to_string()).collect();
    assert_eq!(
        addrs,
        ["10.0.0.1:6379", "::1:7000"],
        "parsed seeds, in order"
    );
    assert_eq!(
        r.redacted(),
        "redis://***@10.0.0.1:6379/0,redis://[::1]:7000"
    );
    let one = flags(&["--redis-uri", "rediss://user:pw@h", "--redis-cluster", "on"]).unwrap();
    assert_eq!(one.redis.unwrap().cluster, ClusterMode::On);
    assert_eq!(redact_uri("redis://h:1/2"), "redis://h:1/2");
}

/// Moved from `redis_coord`, which no longer parses or checks seeds.
#[test]
fn seeds_parse_and_a_bad_one_is_named() {
    let redis = |uri: &str| flags(&["--redis-uri", uri]).map(|c| c.redis.unwrap());
    assert_eq!(redis("redis://a:1, redis://b:2").unwrap().seeds.len(), 2);
    let err = redis(" , ").unwrap_err();
    assert_eq!(err.setting(), Some("REDIS_URI"), "{err}");
    let err = redis("redis://a:1,http://x").unwrap_err();
    assert!(err.to_string().contains("http://x"), "{err}");
    assert!(redis("rediss://secure.example:6380").is_ok(), "TLS seeds");
}

#[test]
fn secrets_stay_out_of_debug_summary_and_errors() {
    let pw = "hunter2-redis-password";
    let c = flags(&[
        "--jwt-secret",
        SECRET,
        "--redis-uri",
        &format!("redis://u:{pw}@h:6379"),
    ])
    .unwrap();
    for text in [format!("{c:?}"), c.summary()] {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains(pw), "redis password leaked: {text}");
    }
    assert!(c.summary().contains("auth=token"));
    assert!(!c.summary().contains('\n'), "one line");
    let err = flags(&["--redis-uri", &format!("redis://u:{pw}@h:0")]).unwrap_err();
    assert!(!err.to_string().contains(pw), "{err}");
    let args = <Args as clap::Parser>::try_parse_from([
        "websocket-app",
        "--jwt-secret",
        SECRET,
        "--redis-uri",
        &format!("redis://u:{pw}@h"),
    ])
    .unwrap();
    let raw = format!("{args:?}");
    assert!(!raw.contains(SECRET) && !raw.contains(pw), "{raw}");
    let err = flags(&["--jwt-secret", "short-secret-value"]).unwrap_err();
    assert!(!err.to_string().contains("short-secret-value"), "{err}");
}
