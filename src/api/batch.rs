//! `POST /api/v1/batch`: up to [`MAX_COMMANDS`] writes carried out in
//! order, each answered in `results` at its position (its answer, or its
//! error), one failing command not stopping the rest.
//!
//! Commands are the six writes (`publish`, `send`, `broadcast`,
//! `disconnect`, `subscribe`, `unsubscribe`); `params` is what the
//! endpoint's body would be, its `idempotencyKey` included. The batch itself
//! may carry an `idempotencyKey` too (then a replay answers the whole
//! `results` again). Between two commands the task yields to the runtime,
//! so the shard's WebSocket reads and writes go on during a large batch.

use std::borrow::Cow;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::answer::{Answer, ApiError};
use super::execute;
use super::request::{idempotency_key, object, parse_write};
use crate::metrics::ApiEndpoint;
use crate::shard::Shard;

/// Most commands in one batch.
pub const MAX_COMMANDS: usize = 1000;

/// The methods a batch command may name.
const METHODS: [ApiEndpoint; 6] = [
    ApiEndpoint::Publish,
    ApiEndpoint::Send,
    ApiEndpoint::Broadcast,
    ApiEndpoint::Disconnect,
    ApiEndpoint::Subscribe,
    ApiEndpoint::Unsubscribe,
];

/// A parsed batch: its commands (raw, each parsed when its turn comes) and key.
#[derive(Debug)]
pub struct Batch<'a> {
    /// The commands, in order.
    pub commands: Vec<&'a RawValue>,
    /// The batch's own `idempotencyKey`.
    pub key: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BatchFields<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    commands: Option<&'a RawValue>,
    #[serde(
        rename = "idempotencyKey",
        default,
        borrow,
        deserialize_with = "present"
    )]
    key: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CommandFields<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Parses a batch body; the commands themselves are checked one by one.
pub fn parse(text: &str) -> Result<Batch<'_>, ApiError> {
    let f: BatchFields<'_> = object(text, "body")?;
    let key = idempotency_key(f.key)?;
    let raw = f.commands.ok_or_else(|| ApiError::missing("commands"))?;
    let commands: Vec<&RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| ApiError::bad_request("commands must be an array"))?;
    if commands.len() > MAX_COMMANDS {
        return Err(ApiError::bad_request(format!(
            "commands holds {} commands; at most {MAX_COMMANDS} are allowed",
            commands.len()
        )));
    }
    Ok(Batch { commands, key })
}

/// Carries out every command in order and answers `{"results": [...]}`.
pub async fn run(shard: &Rc<Shard>, batch: &Batch<'_>) -> Answer {
    let work = async {
        let mut body = b"{\"results\":[".to_vec();
        for (i, raw) in batch.commands.iter().enumerate() {
            if i > 0 {
                body.push(b',');
                yield_now().await;
            }
            let answer = match command(raw.get(), i) {
                Ok(write) => execute::write(shard, write).await,
                Err(e) => e.into(),
            };
            body.extend_from_slice(&answer.body);
        }
        body.extend_from_slice(b"]}");
        Answer { status: 200, body }
    };
    match &batch.key {
        None => work.await,
        Some(key) => execute::idempotent(shard, key, work).await,
    }
}

/// Command `i` as a write; errors name it (`commands[i]...`).
pub fn command(text: &str, i: usize) -> Result<super::request::Write<'_>, ApiError> {
    let what = format!("commands[{i}]");
    let f: CommandFields<'_> = object(text, &what)?;
    let in_command = |e: ApiError| ApiError {
        message: format!("{what}: {}", e.message).into(),
        ..e
    };
    let method = f
        .method
        .ok_or_else(|| ApiError::missing(&format!("{what}.method")))?;
    let method = serde_json::from_str::<Cow<'_, str>>(method.get()).ok();
    let endpoint = METHODS
        .into_iter()
        .find(|m| method.as_deref() == Some(m.label()))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{what}.method must be one of publish, send, broadcast, disconnect, subscribe, unsubscribe"
            ))
        })?;
    let params = f
        .params
        .ok_or_else(|| ApiError::missing(&format!("{what}.params")))?;
    parse_write(endpoint, params.get(), &format!("{what}.params")).map_err(in_command)
}

/// Lets every other ready task of the shard run once.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded_and_commands_checked_one_by_one() {
        let b =
            parse(r#"{"commands":[{"method":"publish","params":{}}, 3],"idempotencyKey":"b1"}"#)
                .unwrap();
        assert_eq!((b.commands.len(), b.key.as_deref()), (2, Some("b1")));
        let e = command(b.commands[0].get(), 0).unwrap_err();
        assert_eq!(e.message, "commands[0]: missing field: channel");
        let e = command(b.commands[1].get(), 1).unwrap_err();
        assert!(
            e.message.contains("commands[1] must be a JSON object"),
            "{}",
            e.message
        );
        let e = command(r#"{"method":"history","params":{}}"#, 2).unwrap_err();
        assert!(
            e.message.contains("commands[2].method must be one of"),
            "{}",
            e.message
        );
        let e = command(r#"{"method":"send"}"#, 3).unwrap_err();
        assert!(e.message.contains("commands[3].params"), "{}", e.message);
        let ok = command(r#"{"method":"broadcast","params":{"payload":[1]}}"#, 4).unwrap();
        assert!(matches!(
            ok.command,
            super::super::request::Command::Broadcast { .. }
        ));
        assert!(parse(r#"{"commands":{}}"#)
            .unwrap_err()
            .message
            .contains("array"));
        assert!(parse("{}").unwrap_err().message.contains("commands"));
        let many = format!(
            r#"{{"commands":[{}]}}"#,
            vec!["1"; MAX_COMMANDS + 1].join(",")
        );
        assert!(parse(&many).unwrap_err().message.contains("at most 1000"));
    }
}
