//! Where values come from: flags over environment over env file, the env
//! file's rules, `--help`, and the documentation listing every variable.

use std::collections::HashMap;
use std::io::Write;

use super::tests::load_with;
use super::*;

/// Every variable a setting is read from (the contract of `--help`, the docs
/// and `.env.example`).
const ALL_VARS: [&str; 56] = [
    "JWT_PUBLIC_KEY_FILE",
    "JWT_LEEWAY_SECS",
    "MAX_JSON_DEPTH",
    "TOKEN_NOTICE_MS",
    "TOKEN_GRACE_MS",
    "INBOX_SIZE",
    "INBOX_TTL_SECS",
    "CHANNELS_CONFIG",
    "MAX_CHANNELS_PER_CONNECTION",
    "WSS_HOST",
    "WSS_PORT",
    "WSS_SHARDS",
    "IO_DRIVER",
    "SERVER_ID",
    "JWT_SECRET",
    "AUTH_MODE",
    "ALLOWED_ORIGINS",
    "ENVIRONMENT",
    "REDIS_URI",
    "REDIS_CLUSTER",
    "LIVENESS_TTL_MS",
    "ROUTE_SWEEP_MS",
    "MAX_MESSAGE_BYTES",
    "SEND_QUEUE_BYTES",
    "MAX_CONNECTIONS",
    "RATE_LIMIT_PER_SEC",
    "RATE_LIMIT_BURST",
    "RATE_LIMIT_STRIKES",
    "HEARTBEAT_INTERVAL_MS",
    "HEARTBEAT_TIMEOUT_MS",
    "SHUTDOWN_TIMEOUT_MS",
    "DRAIN_RATE",
    "BROADCAST_ENABLED",
    "ECHO_PATH",
    "DELIVERY_TIMEOUT_MS",
    "METRICS_INTERVAL_SECS",
    "CLOUDWATCH_ENABLED",
    "CLOUDWATCH_NAMESPACE",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "DASHBOARD",
    "RUST_LOG",
    "NO_COLOR",
    "API_KEYS",
    "API_MAX_BODY_BYTES",
    "API_REQUEST_TIMEOUT_MS",
    "API_RATE_LIMIT",
    // Abuse limits (issue 17).
    "RATE_LIMIT_BYTES_PER_SEC",
    "RATE_LIMIT_BYTES_BURST",
    "MESSAGE_COMPLETE_TIMEOUT_MS",
    "PARTIAL_MESSAGE_BYTES_PER_SHARD",
    "READY_RESUME_PERCENT",
    // Compression (issue 15).
    "COMPRESSION",
    "COMPRESSION_MIN_BYTES",
    "COMPRESSION_LEVEL",
    // Not a variable: keeps the list honest about the flag-only setting.
    "--env-file",
];

fn env_file(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

#[test]
fn flag_overrides_env_which_overrides_the_default() {
    let env = [("WSS_PORT", "9001"), ("MAX_CONNECTIONS", "7")];
    let c = load_with(&["--port", "9000"], &env).unwrap();
    assert_eq!(c.settings.listen.port(), 9000, "flag wins");
    assert_eq!(c.settings.max_connections, 7, "env beats the default");
    let c = load_with(&["--port=9002"], &env).unwrap();
    assert_eq!(c.settings.listen.port(), 9002, "--flag=value form");
    assert_eq!(load_with(&[], &env).unwrap().settings.listen.port(), 9001);
    let c = load_with(
        &[],
        &[("BROADCAST_ENABLED", "false"), ("CLOUDWATCH_ENABLED", "1")],
    )
    .unwrap();
    assert!(!c.settings.broadcast_enabled);
    assert!(
        c.cloudwatch.is_some(),
        "boolish values: 1/0, yes/no, on/off"
    );
    for (value, no_color) in [("1", true), ("anything", true), ("0", false)] {
        let c = load_with(&[], &[("NO_COLOR", value)]).unwrap();
        assert_eq!(c.no_color, no_color, "NO_COLOR={value}");
    }
    let c = load_with(&["--broadcast"], &[("BROADCAST_ENABLED", "off")]).unwrap();
    assert!(
        c.settings.broadcast_enabled,
        "a bare flag means true and wins"
    );
}

#[test]
fn a_bad_variable_is_named_and_a_flag_shadows_it() {
    let err = load_with(&[], &[("WSS_PORT", "eighty")]).unwrap_err();
    assert_eq!(err.setting(), Some("WSS_PORT"), "{err}");
    assert!(
        err.to_string().contains("eighty") && err.to_string().contains("--port"),
        "{err}"
    );
    let err = load_with(&[], &[("IO_DRIVER", "kqueue")]).unwrap_err();
    assert_eq!(err.setting(), Some("IO_DRIVER"), "{err}");
    assert!(
        err.to_string().contains("uring"),
        "lists the accepted values: {err}"
    );
    let ok = load_with(&["--port", "80"], &[("WSS_PORT", "eighty")]).unwrap();
    assert_eq!(ok.settings.listen.port(), 80);
}

#[test]
fn env_file_fills_only_what_is_unset() {
    let file = env_file(
        "# comment\nWSS_PORT=9100\nMAX_CONNECTIONS=5\nexport ENVIRONMENT=\"staging\"\nWSA_UNRELATED=x\n",
    );
    let path = file.path().to_str().unwrap();
    let c = load_with(&["--env-file", path], &[("WSS_PORT", "9200")]).unwrap();
    assert_eq!(
        c.settings.listen.port(),
        9200,
        "the environment beats the file"
    );
    assert_eq!(c.settings.max_connections, 5, "the file beats the default");
    assert_eq!(c.environment, "staging");
    let c = load_with(&[&format!("--env-file={path}"), "--port", "9300"], &[]).unwrap();
    assert_eq!(c.settings.listen.port(), 9300, "flags beat the file");

    let mut env = HashMap::from([("WSS_PORT".to_owned(), "1".to_owned())]);
    assert_eq!(merge_env_file(&mut env, file.path()).unwrap(), 3);
    assert_eq!(env["WSS_PORT"], "1");
}

#[test]
fn default_env_file_in_a_directory_does_not_override_process_variables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEFAULT_ENV_FILE);
    // Names used by this test only, so parallel tests are not affected.
    std::fs::write(&path, "WSA_CFG_TEST_NEW=file\nWSA_CFG_TEST_SET=file\n").unwrap();
    std::env::set_var("WSA_CFG_TEST_SET", "process");
    export_env_file(&path).unwrap();
    assert_eq!(std::env::var("WSA_CFG_TEST_NEW").unwrap(), "file");
    assert_eq!(std::env::var("WSA_CFG_TEST_SET").unwrap(), "process");
}

#[test]
fn env_file_errors_name_the_file_but_not_the_secret() {
    let err = load_with(&["--env-file", "/nonexistent/x.env"], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::EnvFile { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/x.env"));
    let file = env_file("JWT_SECRET=abc'def-secret-value\n");
    let err = load_with(&["--env-file", file.path().to_str().unwrap()], &[]).unwrap_err();
    assert!(matches!(err, ConfigError::EnvFile { .. }), "{err}");
    assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    assert!(!err.to_string().contains("secret-value"), "{err}");
}

#[test]
fn help_lists_every_variable_with_its_default() {
    let err = load_with(
        &["--help"],
        &[("JWT_SECRET", "s3cr3t-in-env-0123456789abcdef-xx")],
    )
    .unwrap_err();
    assert!(err.is_help());
    let ConfigError::Cli(e) = err else {
        unreachable!()
    };
    let help = e.render().to_string();
    for var in ALL_VARS {
        let shown = if var.starts_with("--") {
            var.to_owned()
        } else {
            format!("[env: {var}]")
        };
        assert!(help.contains(&shown), "--help lacks {shown}:\n{help}");
    }
    for default in [
        "[default: 8081]",
        "[default: 127.0.0.1]",
        "[default: wss/metrics]",
        "[default: 65536]",
    ] {
        assert!(help.contains(default), "--help lacks {default}");
    }
    assert!(
        !help.contains("s3cr3t"),
        "--help never shows a value from the environment"
    );
    let mut names = env_names();
    names.push("--env-file".into());
    names.sort();
    let mut all: Vec<_> = ALL_VARS.iter().map(|v| v.to_string()).collect();
    all.sort();
    assert_eq!(names, all, "ALL_VARS and the docs must list every setting");
}

#[test]
fn docs_and_env_example_list_every_variable() {
    let root = env!("CARGO_MANIFEST_DIR");
    let docs = std::fs::read_to_string(format!("{root}/docs/CONFIGURATION.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/.env.example")).unwrap();
    for var in ALL_VARS {
        assert!(docs.contains(var), "docs/CONFIGURATION.md lacks {var}");
        if !var.starts_with("--") {
            assert!(
                example.contains(&format!("{var}=")),
                ".env.example lacks {var}"
            );
        }
    }
    let mut env = HashMap::new();
    merge_env_file(
        &mut env,
        std::path::Path::new(&format!("{root}/.env.example")),
    )
    .unwrap();
    assert!(
        env.is_empty(),
        ".env.example keeps every setting commented out"
    );
}
