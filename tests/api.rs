//! The HTTP server API against real servers and real WebSocket clients:
//! every endpoint's effect on one embedded instance, and on two instances
//! over a real Redis (standalone and a 3-master Cluster); idempotent
//! replays across instances; refusals (keys, sizes, slow bodies, bad JSON,
//! features a channel lacks); a killed instance; answers checked against
//! `docs/openapi.yaml` (see `support/openapi.rs`).

// Only part of the shared scenarios is used here.
#[allow(unused_imports)]
mod support;

use support::redis_scenarios as scenarios;

use std::time::{Duration, Instant};

use serde_json::json;
use support::api::{self, Api, KEY, KEY2};
use support::api_scenarios as s;
use support::redis::{RedisCluster, RedisServer};
use support::{http_request, ServerProcess};

fn one(env: &[(&str, &str)]) -> Vec<ServerProcess> {
    vec![ServerProcess::start(&["--shards", "2"], env)]
}

/// Two instances, `a` and `b`, on `dep`.
fn two(dep: &dyn scenarios::Deployment) -> impl Fn(&[(&str, &str)]) -> Vec<ServerProcess> + '_ {
    move |env: &[(&str, &str)]| {
        vec![
            scenarios::instance_with(dep, "a", env),
            scenarios::instance_with(dep, "b", env),
        ]
    }
}

/// Every endpoint's effect, in turn, on `servers`.
fn every_endpoint(servers: &[ServerProcess], inbox: bool) {
    s::publish_reaches_subscribers(servers);
    s::send_reaches_every_connection(servers, inbox);
    s::broadcast_reaches_everyone(servers);
    s::disconnect_closes_everywhere(servers);
    s::subscribe_and_unsubscribe_everywhere(servers);
    s::reads(servers);
    s::idempotent_replays(servers);
    s::batch_in_order(servers);
}

#[test]
fn every_endpoint_on_one_instance() {
    let (servers, _f) = api::start(&one, &[]);
    every_endpoint(&servers, false);
}

#[test]
fn every_endpoint_across_instances_on_standalone_redis() {
    let redis = RedisServer::start();
    let setup = two(&redis);
    let (servers, _f) = api::start(&setup, &[("INBOX_SIZE", "10")]);
    every_endpoint(&servers, true);
}

#[test]
fn every_endpoint_across_instances_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3);
    let setup = two(&cluster);
    let (servers, _f) = api::start(&setup, &[("INBOX_SIZE", "10")]);
    every_endpoint(&servers, true);
}

/// `kill -9` of the instance a user is on: `send` never answers
/// `delivered`, and answers `offline` (`stored` with an inbox) within the
/// liveness bound.
fn send_to_a_killed_instance(dep: &dyn scenarios::Deployment, inbox: bool) {
    let setup = two(dep);
    let env: &[(&str, &str)] = if inbox { &[("INBOX_SIZE", "10")] } else { &[] };
    let (mut servers, _f) = api::start(&setup, env);
    let _victim = servers[1].user("victim");
    let mut api = Api::connect(&servers[0]);
    let body = json!({"userId": "victim", "payload": 1});
    assert_eq!(api.post("/api/v1/send", &body)["status"], "delivered");
    servers[1].signal(9);
    servers[1].wait_exit(Duration::from_secs(5));
    let killed = Instant::now();
    let settled = if inbox { "stored" } else { "offline" };
    let bound =
        Duration::from_millis(scenarios::TTL_MS + scenarios::SWEEP_MS) + Duration::from_secs(2);
    loop {
        let answer = api.post("/api/v1/send", &body);
        let status = answer["status"].as_str().unwrap().to_owned();
        assert_ne!(
            status, "delivered",
            "delivered to a killed instance: {answer}"
        );
        if status == settled {
            break;
        }
        assert_eq!(status, "failed", "{answer}");
        assert!(
            killed.elapsed() < bound,
            "still {status} after {:?}",
            killed.elapsed()
        );
    }
    assert!(
        killed.elapsed() < bound,
        "{settled} only after {:?}",
        killed.elapsed()
    );
}

#[test]
fn send_to_a_killed_instance_is_offline_on_standalone_redis() {
    send_to_a_killed_instance(&RedisServer::start(), false);
}

#[test]
fn send_to_a_killed_instance_is_stored_on_a_redis_cluster() {
    send_to_a_killed_instance(&RedisCluster::start(3), true);
}

#[test]
fn keys_are_required_and_either_header_works() {
    let (servers, _f) = api::start(&one, &[]);
    let server = &servers[0];
    let mut api = Api::connect(server);
    let publish = br#"{"channel":"chat:k","payload":1}"#;
    for headers in [
        "",
        "Authorization: apikey wrong-key-0123456789\r\n",
        "X-API-Key: \r\n",
    ] {
        let a = api.request("POST", "/api/v1/publish", headers, publish);
        a.error(401, "unauthorized");
        assert_eq!(a.header("www-authenticate"), Some("apikey"));
        api = Api::connect(server);
    }
    for headers in [
        format!("Authorization: apikey {KEY}\r\n"),
        format!("X-API-Key: {KEY2}\r\n"),
    ] {
        let a = api.request("POST", "/api/v1/publish", &headers, publish);
        assert_eq!(
            (a.status, a.header("connection")),
            (200, Some("keep-alive")),
            "{a:?}"
        );
    }
    assert_eq!(api::metric(server, "wss_api_auth_failures_total", ""), 3.0);
    let log = server.log_text();
    assert!(log.contains("missing or wrong API key"), "logged");
    assert!(
        !log.contains("wrong-key-0123456789") && !log.contains(KEY),
        "never the key"
    );
    let served = api::metric(
        server,
        "wss_api_requests_total",
        "endpoint=\"publish\",status=\"401\"",
    );
    assert_eq!(served, 3.0);
}

#[test]
fn without_keys_the_api_does_not_exist() {
    let server = ServerProcess::start(&[], &[]);
    let (status, text) = http_request(
        server.addr,
        &format!(
            "POST /api/v1/publish HTTP/1.1\r\nX-API-Key: {KEY}\r\nContent-Length: 2\r\n\r\n{{}}"
        ),
    );
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("not_found"), "{text}");
}

#[test]
fn bad_requests_are_refused_with_their_reason() {
    let (servers, _f) = api::start(&one, &[("API_MAX_BODY_BYTES", "2048")]);
    let mut api = Api::connect(&servers[0]);
    let post = |api: &mut Api, path: &str, body: &str| {
        let auth = format!("X-API-Key: {KEY}\r\n");
        api.request("POST", path, &auth, body.as_bytes())
    };
    let cases: [(&str, &str, u16, &str, &str); 8] = [
        (
            "/api/v1/publish",
            "{not json",
            400,
            "bad_request",
            "not valid JSON",
        ),
        ("/api/v1/publish", "[1]", 400, "bad_request", "JSON object"),
        (
            "/api/v1/publish",
            r#"{"payload":1}"#,
            400,
            "bad_request",
            "channel",
        ),
        (
            "/api/v1/send",
            r#"{"userId":"a b","payload":1}"#,
            400,
            "bad_request",
            "userId",
        ),
        (
            "/api/v1/disconnect",
            r#"{"reason":"x"}"#,
            400,
            "bad_request",
            "userId",
        ),
        (
            "/api/v1/nothing",
            "{}",
            404,
            "not_found",
            "no such endpoint",
        ),
        (
            "/api/v1/channels/chat:x/presence",
            "",
            405,
            "method_not_allowed",
            "GET",
        ),
        (
            "/api/v1/broadcast",
            r#"{"payload":1,"idempotencyKey":""}"#,
            400,
            "bad_request",
            "idempotencyKey",
        ),
    ];
    for (path, body, status, code, names) in cases {
        let a = post(&mut api, path, body);
        let msg = a.error(status, code);
        assert!(msg.contains(names), "{path} {body}: {msg}");
    }
    assert_eq!(
        post(&mut api, "/api/v1/users/x", "").header("allow"),
        Some("GET")
    );
    let a = api.get_answer("/api/v1/channels/chat:x/history");
    assert!(a.error(404, "not_found").contains("chat:x"));
    let mut big_api = Api::connect(&servers[0]);
    // Oversize: answered on the head, before (and without) the body.
    big_api.send_raw(
        format!(
            "POST /api/v1/publish HTTP/1.1\r\nX-API-Key: {KEY}\r\nContent-Length: 5000000\r\n\r\n"
        )
        .as_bytes(),
    );
    big_api.read_answer().error(413, "too_large");
    assert!(
        big_api.closed_by_server(),
        "the rest of the body is not read"
    );
    // Chunked bodies have no length: refused, connection closed.
    let mut chunked = Api::connect(&servers[0]);
    chunked.send_raw(format!("POST /api/v1/publish HTTP/1.1\r\nX-API-Key: {KEY}\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes());
    assert!(chunked
        .read_answer()
        .error(400, "bad_request")
        .contains("Content-Length"));
    assert!(chunked.closed_by_server());
    // The connection that saw every error above still serves.
    assert_eq!(
        post(&mut api, "/api/v1/broadcast", r#"{"payload":1}"#).status,
        200
    );
}

#[test]
fn a_payload_larger_than_a_message_is_too_large() {
    let (servers, _f) = api::start(&one, &[("MAX_MESSAGE_BYTES", "1024")]);
    let mut api = Api::connect(&servers[0]);
    let body = json!({"channel": "chat:big", "payload": "x".repeat(2000)});
    let msg = api
        .post_answer("/api/v1/publish", &body)
        .error(413, "too_large");
    assert!(msg.contains("MAX_MESSAGE_BYTES"), "{msg}");
}

#[test]
fn slow_requests_are_cut_and_idle_connections_closed() {
    let (servers, _f) = api::start(&one, &[("API_REQUEST_TIMEOUT_MS", "300")]);
    let server = &servers[0];
    let mut slow = Api::connect(server);
    slow.send_raw(format!("POST /api/v1/publish HTTP/1.1\r\nX-API-Key: {KEY}\r\nContent-Length: 40\r\n\r\n{{\"chan").as_bytes());
    let started = Instant::now();
    assert!(slow.closed_by_server(), "cut");
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut idle = Api::connect(server);
    assert_eq!(
        idle.post("/api/v1/broadcast", &json!({"payload": 1})),
        json!({"status": "published"})
    );
    assert!(idle.closed_by_server(), "idle keep-alive closed");
    support::eventually("the cut request counted", || {
        (api::metric(server, "wss_api_requests_total", "status=\"timeout\"") == 1.0).then_some(())
    });
}

#[test]
fn keys_are_rate_limited() {
    let (servers, _f) = api::start(&one, &[("API_RATE_LIMIT", "5")]);
    let mut api = Api::connect(&servers[0]);
    // A burst of one second's worth, then refusals (12 requests take far
    // less than the 1.4 s the rate would need).
    let answers: Vec<_> = (0..12)
        .map(|_| api.get_answer("/api/v1/users/someone"))
        .collect();
    assert!(answers[..5].iter().all(|a| a.status == 200), "{answers:?}");
    let refused = answers.iter().find(|a| a.status == 429).expect("a 429");
    refused.error(429, "rate_limited");
    assert_eq!(refused.header("retry-after"), Some("1"));
}

#[test]
fn answers_match_the_openapi_description() {
    support::openapi::check_every_endpoint();
}
