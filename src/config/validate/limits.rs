//! Per-connection and per-shard limits that depend on each other: the send
//! queue, both rate-limit budgets and the budget of unfinished messages.

use super::super::cli::{AbuseLimitsArgs, LimitsArgs};
use super::super::error::{invalid, ConfigError};
use super::range;
use crate::ratelimit::RateLimit;

/// `SEND_QUEUE_BYTES`, which must hold one largest message with room to spare.
pub(super) fn queue_bytes(a: &LimitsArgs) -> Result<usize, ConfigError> {
    let min = a.max_message_bytes.saturating_add(1024);
    range("SEND_QUEUE_BYTES", a.send_queue_bytes, min, 1 << 30).map_err(|_| {
        invalid(
            "SEND_QUEUE_BYTES",
            format!(
                "{} must be at least MAX_MESSAGE_BYTES + 1024 = {min} and at most 1 GiB",
                a.send_queue_bytes
            ),
        )
    })
}

/// Lowest accepted `RATE_LIMIT_BYTES_PER_SEC` while on: the budget refills
/// by the millisecond, so slower rates would round to nothing.
const MIN_BYTES_PER_SEC: u32 = 1024;
/// Room left in an idle receiver's queue after a sender's whole byte burst:
/// the envelope of its last message (sender, timestamp, id), charged after
/// the message was allowed, fits in it.
const BURST_HEADROOM: usize = 1024;

/// Both budgets. The byte burst holds one largest message (else it could
/// never be sent) and stays below the send queue by [`BURST_HEADROOM`], so
/// one client alone can never overflow an idle receiver's queue.
pub(super) fn rate_limit(
    a: &LimitsArgs,
    abuse: &AbuseLimitsArgs,
    send_queue_bytes: usize,
) -> Result<RateLimit, ConfigError> {
    let per_sec = range("RATE_LIMIT_PER_SEC", a.rate_limit, 0, 1_000_000)?;
    let burst = range("RATE_LIMIT_BURST", a.rate_limit_burst, 0, 1_000_000)?;
    if per_sec > 0 && burst == 0 {
        return Err(invalid(
            "RATE_LIMIT_BURST",
            "must be at least 1 while RATE_LIMIT_PER_SEC is on (0 would refuse every message)",
        ));
    }
    let strikes = range("RATE_LIMIT_STRIKES", a.rate_limit_strikes, 1, u16::MAX)?;
    let bytes_per_sec = abuse.rate_limit_bytes;
    if bytes_per_sec != 0 && !(MIN_BYTES_PER_SEC..=1 << 30).contains(&bytes_per_sec) {
        return Err(invalid(
            "RATE_LIMIT_BYTES_PER_SEC",
            format!(
                "{bytes_per_sec} must be 0 (off) or {MIN_BYTES_PER_SEC}..={}",
                1u32 << 30
            ),
        ));
    }
    let (min, max) = (a.max_message_bytes, send_queue_bytes - BURST_HEADROOM);
    let bytes_burst = match abuse.rate_limit_bytes_burst {
        None => (send_queue_bytes / 2).clamp(min, max),
        Some(b) if (min..=max).contains(&(b as usize)) => b as usize,
        Some(b) => {
            return Err(invalid(
                "RATE_LIMIT_BYTES_BURST",
                format!(
                    "{b} must be at least MAX_MESSAGE_BYTES ({min}), so that one largest message \
                     can pass, and at most SEND_QUEUE_BYTES - {BURST_HEADROOM} ({max}), so that \
                     one client cannot fill another's send queue"
                ),
            ))
        }
    };
    Ok(RateLimit {
        per_sec,
        burst,
        strikes,
        bytes_per_sec,
        // At most 1 GiB (the send queue's bound).
        bytes_burst: bytes_burst as u32,
    })
}
/// `PARTIAL_MESSAGE_BYTES_PER_SHARD`: room for one largest message being
/// assembled (with the decoder's state), so a lone client is never refused.
pub(super) fn partial_message_budget(
    a: &LimitsArgs,
    abuse: &AbuseLimitsArgs,
) -> Result<usize, ConfigError> {
    let min = a.max_message_bytes.saturating_add(1024);
    let budget = abuse.partial_message_bytes_per_shard;
    if !(min..=1 << 40).contains(&budget) {
        return Err(invalid(
            "PARTIAL_MESSAGE_BYTES_PER_SHARD",
            format!(
                "{budget} must be at least MAX_MESSAGE_BYTES + 1024 = {min} (one largest \
                 message being assembled) and at most 1 TiB"
            ),
        ));
    }
    Ok(budget)
}
