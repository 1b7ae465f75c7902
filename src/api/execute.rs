//! Carrying a [`Command`] out on the cluster: the frames it sends (built
//! once here, with a server-made id and timestamp), the core's
//! [`Shard::api_call`], and the answer. Writes with an `idempotencyKey`
//! claim it first and settle it with their answer.
//!
//! A key being carried out by another request (`InProgress`) is claimed
//! again with a growing pause until the first request settles it, for at
//! most the delivery timeout plus a second (the longest a write may take);
//! if it is still in progress then, the answer is 503 `unavailable`
//! (nothing was done by this request; retrying later gets the first
//! request's answer). Every answer is remembered, errors included: a replay
//! answers what the first request answered, as API.md says.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::answer::{self, Answer, ApiError};
use super::request::{Command, Write};
use crate::coordinator::UserOp;
use crate::metrics::Counter;
use crate::protocol::envelope::server_v2::{write_publication, write_server_message};
use crate::protocol::envelope::{timestamp, write_server_broadcast};
use crate::protocol::frame::text_frame_with;
use crate::shard::core::{ApiCommand, ApiOutcome, Claimed};
use crate::shard::Shard;

/// Longest pause between two claims of a key in progress.
const MAX_CLAIM_PAUSE: Duration = Duration::from_millis(200);
/// Longest header of a text frame (a frame's size is checked without it).
const FRAME_HEADER_BYTES: usize = 10;

thread_local! {
    /// Message ids made on this shard (shards are threads).
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// A message id unique across servers, restarts and shards:
/// `<server>-<boot id hex>-<shard>-api.<n>`.
fn message_id(shard: &Shard) -> String {
    let n = NEXT_ID.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let instance = &shard.instance;
    format!(
        "{}-{:x}-{}-api.{n}",
        instance.settings.server_id, instance.boot_id, shard.index
    )
}

/// Carries out a write, honouring its idempotency key. A write refused
/// before it reaches the cluster (a message too large) does not use its key.
pub async fn write(shard: &Rc<Shard>, w: Write<'_>) -> Answer {
    let cmd = match to_core(shard, w.command) {
        Ok(cmd) => cmd,
        Err(e) => return e.into(),
    };
    let work = async { answer::from_outcome(call(shard, cmd).await, None) };
    match w.key {
        None => work.await,
        Some(key) => idempotent(shard, &key, work).await,
    }
}

/// Carries out one read (or a write without idempotency).
pub async fn carry_out(shard: &Rc<Shard>, command: Command<'_>) -> Answer {
    let channel = match &command {
        Command::Presence { channel } | Command::History { channel, .. } => {
            Some(channel.to_string())
        }
        _ => None,
    };
    match to_core(shard, command) {
        Ok(cmd) => answer::from_outcome(call(shard, cmd).await, channel.as_deref()),
        Err(e) => e.into(),
    }
}

/// Runs `work` once per idempotency key, cluster-wide (see the module docs).
pub async fn idempotent(
    shard: &Rc<Shard>,
    key: &str,
    work: impl Future<Output = Answer>,
) -> Answer {
    let key: Arc<str> = Arc::from(key);
    let deadline =
        Instant::now() + shard.instance.settings.delivery_timeout + Duration::from_secs(1);
    let mut pause = Duration::from_millis(10);
    loop {
        match call(shard, ApiCommand::Claim { key: key.clone() }).await {
            ApiOutcome::Claim(Claimed::Fresh) => break,
            ApiOutcome::Claim(Claimed::Replay(bytes)) => {
                shard.metrics.incr(Counter::ApiIdempotentReplays);
                return Answer::decode(&bytes).unwrap_or_else(|| {
                    ApiError::unavailable("the remembered answer of this idempotencyKey is unreadable")
                        .into()
                });
            }
            ApiOutcome::Claim(Claimed::InProgress) if Instant::now() + pause < deadline => {
                monoio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_CLAIM_PAUSE);
            }
            ApiOutcome::Claim(Claimed::InProgress) => {
                return ApiError::unavailable(
                    "a request with this idempotencyKey is still being carried out; nothing was done, retry later",
                )
                .into()
            }
            _ => {
                return ApiError::unavailable(
                    "the idempotencyKey cannot be checked now (coordination layer unavailable); nothing was done",
                )
                .into()
            }
        }
    }
    let answer = work.await;
    let settle = ApiCommand::Settle {
        key,
        answer: Bytes::from(answer.encode()),
    };
    if call(shard, settle).await != ApiOutcome::Settled {
        tracing::warn!(
            "an idempotencyKey's answer could not be remembered: retries with it answer 503 until it expires"
        );
    }
    answer
}

/// One call into the core, bounded in case no answer ever comes (the core
/// answers every command itself, with `Unavailable` after its own timeouts).
async fn call(shard: &Rc<Shard>, cmd: ApiCommand) -> ApiOutcome {
    let bound = shard.instance.settings.delivery_timeout * 2 + Duration::from_secs(1);
    monoio::time::timeout(bound, shard.api_call(cmd))
        .await
        .unwrap_or(ApiOutcome::Unavailable)
}

/// The core's command for `command`: frames built and size-checked.
fn to_core(shard: &Shard, command: Command<'_>) -> Result<ApiCommand, ApiError> {
    let max = shard.instance.settings.max_message_bytes;
    let too_large = |len: usize| {
        (len > max).then(|| {
            ApiError::too_large(format!(
                "payload with its envelope exceeds the maximum message size (MAX_MESSAGE_BYTES = {max})"
            ))
        })
    };
    let now = timestamp(SystemTime::now());
    Ok(match command {
        Command::Publish { channel, payload } => {
            let mut json = Vec::new();
            let id = message_id(shard);
            write_publication(&mut json, &channel, &id, None, payload, now.as_str());
            if let Some(e) = too_large(json.len()) {
                return Err(e);
            }
            ApiCommand::Publish {
                channel,
                json: Bytes::from(json),
            }
        }
        Command::Send { user, payload } => {
            let id = message_id(shard);
            let frame =
                text_frame_with(|out| write_server_message(out, &id, payload, now.as_str()));
            if let Some(e) = too_large(frame.len().saturating_sub(FRAME_HEADER_BYTES)) {
                return Err(e);
            }
            ApiCommand::Send { user, frame }
        }
        Command::Broadcast { payload } => {
            let id = message_id(shard);
            let frame =
                text_frame_with(|out| write_server_broadcast(out, &id, payload, now.as_str()));
            if let Some(e) = too_large(frame.len().saturating_sub(FRAME_HEADER_BYTES)) {
                return Err(e);
            }
            ApiCommand::Broadcast { frame }
        }
        Command::Disconnect { user, reason } => ApiCommand::User {
            user,
            op: UserOp::Disconnect(reason),
        },
        Command::Subscribe { user, channel } => ApiCommand::User {
            user,
            op: UserOp::Subscribe(channel),
        },
        Command::Unsubscribe { user, channel } => ApiCommand::User {
            user,
            op: UserOp::Unsubscribe(channel),
        },
        Command::Presence { channel } => ApiCommand::Presence { channel },
        Command::History {
            channel,
            since,
            limit,
        } => ApiCommand::History {
            channel,
            since,
            limit,
        },
        Command::User { user } => ApiCommand::UserStatus { user },
    })
}
