//! The server API's parsing, I/O-free: request heads, the checks on a head
//! (`api::parse::screen`), and the bodies of every endpoint and of batches
//! (`api::parse::body`, `api::batch::command`).
//!
//! Byte 0 picks the mode: 0 reads the rest as a whole request (head and
//! body, like the session); otherwise byte 1 picks an endpoint and the rest
//! is its body (or, for the GET endpoints, `path-target?query`).
//!
//! Invariants: nothing panics; a head is parsed the same from any longer
//! buffer and a strict prefix of it asks for more; a refused head is a 431
//! or a 400, a refused request a 4xx (405 with `Allow`); a refused body a
//! 400 whose answer is a JSON object and survives the idempotency encoding;
//! whatever is accepted is within the limits (valid channels and users,
//! `limit` ≤ 100, epochs, keys and reasons bounded, at most 1,000 batch
//! commands, payloads JSON), and every batch command's error names it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use websocket_app::api::answer::{Answer, ApiError};
use websocket_app::api::batch::{command, MAX_COMMANDS};
use websocket_app::api::http::{parse_head, write_response, Head, Method};
use websocket_app::api::parse::{body, head_error, screen, Parsed};
use websocket_app::api::request::{Command, Write, MAX_IDEMPOTENCY_KEY_BYTES, MAX_REASON_BYTES};
use websocket_app::api::route::{route, Routed};
use websocket_app::metrics::ApiEndpoint;
use websocket_app::protocol::channel::is_valid_channel;
use websocket_app::protocol::envelope::{MAX_EPOCH_BYTES, MAX_HISTORY_LIMIT};
use websocket_app::protocol::handshake::MAX_REQUEST_HEAD_BYTES;
use websocket_app::protocol::is_valid_user_id;

const MAX_BODY: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0, request)) => whole(request),
        Some((_, rest)) => {
            if let Some((&which, rest)) = rest.split_first() {
                endpoint(which, rest);
            }
        }
        None => {}
    }
});

/// A whole request, as the session reads it.
fn whole(data: &[u8]) {
    let head = match parse_head(data) {
        Ok(Some(head)) => head,
        Ok(None) => {
            assert!(
                data.len() < MAX_REQUEST_HEAD_BYTES,
                "a full window is decided"
            );
            return;
        }
        Err(e) => {
            let e = head_error(e);
            assert!(matches!(e.status, 400 | 431));
            return check_error(&e);
        }
    };
    check_head(&head, data);
    let routed = match screen(&head, route(head.method, &head.path), MAX_BODY) {
        Ok(r) => r,
        Err((_, e, extra)) => {
            assert!(matches!(e.status, 400 | 404 | 405 | 413), "{e:?}");
            assert_eq!(e.status == 405, extra.iter().any(|(k, _)| *k == "Allow"));
            return check_error(&e);
        }
    };
    assert!(head.content_length <= MAX_BODY as u64);
    let end = head.head_len + head.content_length as usize;
    let Some(b) = data.get(head.head_len..end) else {
        return; // the session would wait for the rest
    };
    check_body(&routed, &head, b);
}

/// The head parser agrees with itself on every split of the bytes.
fn check_head(head: &Head, data: &[u8]) {
    assert!(head.head_len <= data.len() && head.head_len <= MAX_REQUEST_HEAD_BYTES);
    assert!(data[..head.head_len].ends_with(b"\n"));
    assert_eq!(parse_head(&data[..head.head_len]), Ok(Some(head.clone())));
    assert_eq!(parse_head(&data[..head.head_len - 1]), Ok(None));
    if let Some(key) = &head.api_key {
        assert!(!key.is_empty() && key.trim_ascii() == &key[..]);
    }
    assert!(!head.path.contains('?'));
}

/// One endpoint's body (or target and query) on its own.
fn endpoint(which: u8, rest: &[u8]) {
    let endpoint = ApiEndpoint::ALL[usize::from(which) % ApiEndpoint::ALL.len()];
    let mut head = parse_head(b"POST / HTTP/1.1\r\n\r\n").unwrap().unwrap();
    let routed = match endpoint {
        ApiEndpoint::Presence | ApiEndpoint::History | ApiEndpoint::User => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let (target, query) = match text.split_once('?') {
                Some((t, q)) => (t, Some(q.to_owned())),
                None => (text, None),
            };
            head.method = Method::Get;
            head.query = query;
            Routed {
                endpoint,
                target: Some(target.to_owned()),
            }
        }
        _ => Routed {
            endpoint,
            target: None,
        },
    };
    check_body(&routed, &head, rest);
}

fn check_body(routed: &Routed, head: &Head, b: &[u8]) {
    match body(routed, head, b) {
        Err(e) => {
            assert_eq!((e.status, e.code), (400, "bad_request"), "{e:?}");
            check_error(&e);
        }
        Ok(Parsed::Read(c)) => check_command(&c),
        Ok(Parsed::Write(w)) => check_write(&w),
        Ok(Parsed::Batch(batch)) => {
            assert!(batch.commands.len() <= MAX_COMMANDS);
            check_key(batch.key.as_deref());
            for (i, raw) in batch.commands.iter().enumerate() {
                match command(raw.get(), i) {
                    Ok(w) => check_write(&w),
                    Err(e) => {
                        assert_eq!(e.status, 400);
                        let name = format!("commands[{i}]");
                        assert!(e.message.starts_with(&name), "{}", e.message);
                        check_error(&e);
                    }
                }
            }
        }
    }
}

fn check_write(w: &Write<'_>) {
    check_key(w.key.as_deref());
    check_command(&w.command);
}

fn check_key(key: Option<&str>) {
    if let Some(k) = key {
        assert!((1..=MAX_IDEMPOTENCY_KEY_BYTES).contains(&k.len()));
    }
}

fn check_command(c: &Command<'_>) {
    let json = |raw: &serde_json::value::RawValue| {
        serde_json::from_str::<Value>(raw.get()).expect("payloads are JSON");
    };
    match c {
        Command::Publish { channel, payload } => {
            assert!(is_valid_channel(channel));
            json(payload);
        }
        Command::Send { user, payload } => {
            assert!(is_valid_user_id(user));
            json(payload);
        }
        Command::Broadcast { payload } => json(payload),
        Command::Disconnect { user, reason } => {
            assert!(is_valid_user_id(user));
            assert!(reason.len() <= MAX_REASON_BYTES);
        }
        Command::Subscribe { user, channel } | Command::Unsubscribe { user, channel } => {
            assert!(is_valid_user_id(user) && is_valid_channel(channel));
        }
        Command::Presence { channel } => assert!(is_valid_channel(channel)),
        Command::History {
            channel,
            since,
            limit,
        } => {
            assert!(is_valid_channel(channel));
            assert!(*limit <= MAX_HISTORY_LIMIT);
            if let Some((_, epoch)) = since {
                assert!((1..=MAX_EPOCH_BYTES).contains(&epoch.len()));
            }
        }
        Command::User { user } => assert!(is_valid_user_id(user)),
    }
}

/// An error's answer is a JSON object naming it, written as a complete
/// HTTP answer, and kept by an idempotency key byte for byte.
fn check_error(e: &ApiError) {
    let answer = Answer::from(e.clone());
    let v: Value = serde_json::from_slice(&answer.body).expect("error body is JSON");
    assert_eq!(v["error"], e.code);
    assert_eq!(v["message"], &*e.message);
    assert_eq!(Answer::decode(&answer.encode()), Some(answer.clone()));
    let mut out = Vec::new();
    write_response(&mut out, answer.status, &[], &answer.body, false);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut res = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(n)) = res.parse(&out) else {
        panic!("answer head does not parse");
    };
    assert_eq!(res.code, Some(answer.status));
    assert_eq!(&out[n..], &answer.body[..]);
}
