//! Real answers of every endpoint (successes and the errors each one
//! describes), recorded from a running server and checked against
//! `docs/openapi.yaml` by `tests/openapi_check.py` (PyYAML, jsonschema and
//! openapi-spec-validator from the crate's `.venv`, which
//! `tests/run-all.sh` creates; `$OPENAPI_PYTHON` overrides the
//! interpreter). Deterministic: fixed requests, no generated ones.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use super::api::{self, Answer, Api, KEY};
use super::channels::subscribe;
use super::ServerProcess;

/// One recorded answer.
struct Recorded {
    method: &'static str,
    template: &'static str,
    answer: Answer,
}

/// Records answers of every operation of the description and checks them.
pub fn check_every_endpoint() {
    let setup = |env: &[(&str, &str)]| vec![ServerProcess::start(&["--shards", "2"], env)];
    let (servers, _f) = api::start(
        &setup,
        &[
            ("INBOX_SIZE", "5"),
            ("API_MAX_BODY_BYTES", "4096"),
            ("MAX_MESSAGE_BYTES", "2048"),
        ],
    );
    let server = &servers[0];
    let mut user = server.user("member");
    subscribe(&mut user, "room:o");
    let mut api = Api::connect(server);
    let mut out: Vec<Recorded> = Vec::new();
    let mut post = |api: &mut Api, template: &'static str, body: Value| {
        let answer = api.post_answer(template, &body);
        out.push(Recorded {
            method: "POST",
            template,
            answer,
        });
    };
    post(
        &mut api,
        "/api/v1/publish",
        json!({"channel": "chat:o", "payload": 1}),
    );
    post(
        &mut api,
        "/api/v1/publish",
        json!({"channel": "hist:o", "payload": {"a": [1]}}),
    );
    post(
        &mut api,
        "/api/v1/publish",
        json!({"channel": "hist:o", "payload": 2, "idempotencyKey": "o1"}),
    );
    post(
        &mut api,
        "/api/v1/publish",
        json!({"channel": "hist:o", "payload": 2, "idempotencyKey": "o1"}),
    );
    post(&mut api, "/api/v1/publish", json!({"channel": "chat:o"}));
    post(
        &mut api,
        "/api/v1/publish",
        json!({"channel": "chat:o", "payload": "x".repeat(3000)}),
    );
    post(
        &mut api,
        "/api/v1/send",
        json!({"userId": "member", "payload": "hi"}),
    );
    post(
        &mut api,
        "/api/v1/send",
        json!({"userId": "away", "payload": "later"}),
    );
    post(
        &mut api,
        "/api/v1/send",
        json!({"userId": "bad user", "payload": 1}),
    );
    post(
        &mut api,
        "/api/v1/broadcast",
        json!({"payload": {"b": true}}),
    );
    post(&mut api, "/api/v1/broadcast", json!({}));
    post(
        &mut api,
        "/api/v1/subscribe",
        json!({"userId": "member", "channel": "chat:o"}),
    );
    post(&mut api, "/api/v1/subscribe", json!({"userId": "member"}));
    post(
        &mut api,
        "/api/v1/unsubscribe",
        json!({"userId": "member", "channel": "chat:o"}),
    );
    post(
        &mut api,
        "/api/v1/unsubscribe",
        json!({"channel": "chat:o"}),
    );
    post(
        &mut api,
        "/api/v1/disconnect",
        json!({"userId": "nobody", "reason": "bye"}),
    );
    post(&mut api, "/api/v1/disconnect", json!({"userId": 5}));
    let commands = json!([
        {"method": "publish", "params": {"channel": "hist:o", "payload": 3}},
        {"method": "publish", "params": {"channel": "chat:o", "payload": 3}},
        {"method": "send", "params": {"userId": "away", "payload": 3}},
        {"method": "broadcast", "params": {"payload": 3}},
        {"method": "subscribe", "params": {"userId": "away", "channel": "chat:o"}},
        {"method": "publish", "params": {}},
        {"method": "jump"},
    ]);
    post(&mut api, "/api/v1/batch", json!({"commands": commands}));
    post(&mut api, "/api/v1/batch", json!({"commands": 1}));
    let mut get = |api: &mut Api, template: &'static str, path: &str| {
        let answer = api.get_answer(path);
        out.push(Recorded {
            method: "GET",
            template,
            answer,
        });
    };
    let presence = "/api/v1/channels/{channel}/presence";
    get(&mut api, presence, "/api/v1/channels/room:o/presence");
    get(&mut api, presence, "/api/v1/channels/chat:o/presence");
    get(&mut api, presence, "/api/v1/channels/bad%20name/presence");
    let history = "/api/v1/channels/{channel}/history";
    get(&mut api, history, "/api/v1/channels/hist:o/history");
    get(
        &mut api,
        history,
        "/api/v1/channels/hist:o/history?since=1&epoch=zz&limit=2",
    );
    get(&mut api, history, "/api/v1/channels/hist:o/history?since=1");
    get(&mut api, history, "/api/v1/channels/chat:o/history");
    let status = "/api/v1/users/{userId}";
    get(&mut api, status, "/api/v1/users/member");
    get(&mut api, status, "/api/v1/users/away");
    get(&mut api, status, "/api/v1/users/not%20valid");
    // Refusals every operation shares: a wrong key, a body too large.
    let wrong = "X-API-Key: wrong-key-0123456789abc\r\n";
    let answer = Api::connect(server).request("POST", "/api/v1/send", wrong, b"{}");
    out.push(Recorded {
        method: "POST",
        template: "/api/v1/send",
        answer,
    });
    let big = vec![b' '; 5000];
    let auth = format!("X-API-Key: {KEY}\r\n");
    let answer = Api::connect(server).request("POST", "/api/v1/batch", &auth, &big);
    out.push(Recorded {
        method: "POST",
        template: "/api/v1/batch",
        answer,
    });
    let statuses: Vec<u16> = out.iter().map(|r| r.answer.status).collect();
    for expected in [200, 400, 401, 404, 413] {
        assert!(
            statuses.contains(&expected),
            "no {expected} recorded: {statuses:?}"
        );
    }
    run_checker(&out);
}

fn run_checker(out: &[Recorded]) {
    let records: Vec<Value> = out
        .iter()
        .map(|r| {
            json!({"method": r.method, "path": r.template, "status": r.answer.status, "body": r.answer.body})
        })
        .collect();
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), serde_json::to_vec_pretty(&records).unwrap()).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("OPENAPI_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    assert!(
        python.is_file(),
        "{} not found (set OPENAPI_PYTHON, or create it: python3 -m venv .venv && \
         .venv/bin/pip install pyyaml jsonschema openapi-spec-validator)",
        python.display()
    );
    let result = Command::new(&python)
        .arg(root.join("tests/openapi_check.py"))
        .arg(root.join("docs/openapi.yaml"))
        .arg(file.path())
        .output()
        .expect("run tests/openapi_check.py");
    let report = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "answers do not match docs/openapi.yaml:\n{report}{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(report.contains(" 0 failures"), "{report}");
}
