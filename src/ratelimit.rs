//! Per-connection rate limit: a token bucket for messages and a byte budget
//! beside it, sharing one refill clock and one strike counter.
//!
//! I/O-free and clock-free: the caller passes the current time in
//! milliseconds (a shard-local monotonic clock), so both buckets fit in 16
//! bytes per connection and need no timer.
//!
//! Why bytes as well as messages: a message budget alone lets one client put
//! `burst × MAX_MESSAGE_BYTES` (200 × 64 KiB ≈ 13 MB by default) on every
//! receiver's send queue at once, and so get healthy receivers closed as slow
//! consumers. The byte budget bounds what one connection can push into any
//! other connection's queue: at most `bytes_burst` at once (less than
//! `SEND_QUEUE_BYTES`, checked by the config layer) and `bytes_per_sec` after
//! that.

/// Rate-limit settings shared by every connection, validated once by the
/// config layer: `burst` is at least 1 while `per_sec` is on, `strikes` at
/// least 1, and while `bytes_per_sec` is on `bytes_burst` holds one largest
/// message with its envelope and stays below `SEND_QUEUE_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second; 0 turns the message limit off.
    pub per_sec: u32,
    /// Bucket size: how many messages a client may send at once after a pause.
    pub burst: u32,
    /// Consecutive refused messages after which the connection is closed with 4029.
    pub strikes: u16,
    /// Bytes added to the byte budget per second; 0 turns the byte limit off.
    pub bytes_per_sec: u32,
    /// Byte budget size: how many bytes a client may send at once after a pause.
    pub bytes_burst: u32,
}

impl RateLimit {
    /// No limit at all (tests, tools).
    pub const OFF: RateLimit = RateLimit {
        per_sec: 0,
        burst: 0,
        strikes: u16::MAX,
        bytes_per_sec: 0,
        bytes_burst: 0,
    };

    fn is_off(&self) -> bool {
        self.per_sec == 0 && self.bytes_per_sec == 0
    }
}

/// What the limiter decided for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The message may go on.
    Allow,
    /// Refuse this message (answer `rate_limited`), keep the connection.
    Refuse,
    /// Refused too many times in a row: close with 4029.
    Close,
}

/// One connection's buckets. Message tokens are kept in thousandths to stay
/// integral.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenBucket {
    /// Available message tokens × 1000 (milli-tokens); starts full on first use.
    milli_tokens: u32,
    /// Available bytes; starts full on first use. Below zero by at most one
    /// message's envelope (see [`TokenBucket::charge_extra`]).
    bytes: i32,
    /// Shard clock (ms) of the last refill; 0 means "never used yet".
    last_ms: u32,
    /// Consecutive refusals, reset by any allowed message.
    strikes: u16,
}

impl TokenBucket {
    /// Takes one message token and `len` bytes for a message of `len` bytes
    /// arriving at `now_ms` (shard clock): both, or neither and a strike.
    pub fn check(&mut self, limit: &RateLimit, now_ms: u32, len: usize) -> Verdict {
        if limit.is_off() {
            return Verdict::Allow;
        }
        self.refill(limit, now_ms);
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        let message_ok = limit.per_sec == 0 || self.milli_tokens >= 1000;
        let bytes_ok = limit.bytes_per_sec == 0 || self.bytes >= len;
        if message_ok && bytes_ok {
            if limit.per_sec > 0 {
                self.milli_tokens -= 1000;
            }
            if limit.bytes_per_sec > 0 {
                self.bytes -= len;
            }
            self.strikes = 0;
            return Verdict::Allow;
        }
        self.strikes = self.strikes.saturating_add(1);
        if self.strikes >= limit.strikes {
            Verdict::Close
        } else {
            Verdict::Refuse
        }
    }

    /// Charges `extra` bytes to an allowed message: what its delivery puts on
    /// receivers' queues beyond its own length (the server's envelope:
    /// sender, timestamp, id). Never refuses, since the message is already
    /// built: the budget goes below zero by at most that much, and the next
    /// message waits for it.
    pub fn charge_extra(&mut self, limit: &RateLimit, extra: usize) {
        if limit.bytes_per_sec > 0 {
            let extra = i32::try_from(extra).unwrap_or(i32::MAX);
            self.bytes = self.bytes.saturating_sub(extra);
        }
    }

    fn refill(&mut self, limit: &RateLimit, now_ms: u32) {
        let cap = limit.burst.saturating_mul(1000);
        let byte_cap = i32::try_from(limit.bytes_burst).unwrap_or(i32::MAX);
        if self.last_ms == 0 {
            self.milli_tokens = cap;
            self.bytes = byte_cap;
        } else {
            let elapsed = u64::from(now_ms.wrapping_sub(self.last_ms));
            let added = elapsed.saturating_mul(u64::from(limit.per_sec));
            self.milli_tokens = (u64::from(self.milli_tokens) + added).min(u64::from(cap)) as u32;
            // Rounded down: at most one byte per refill is lost, on the strict side.
            let added = elapsed.saturating_mul(u64::from(limit.bytes_per_sec)) / 1000;
            let bytes = i64::from(self.bytes).saturating_add(added.min(i64::MAX as u64) as i64);
            self.bytes = bytes.min(i64::from(byte_cap)) as i32;
        }
        self.last_ms = now_ms.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        per_sec: 10,
        burst: 5,
        strikes: 3,
        bytes_per_sec: 0,
        bytes_burst: 0,
    };

    /// Bytes only: 10 KB/s, 4 KB at once.
    const BYTES: RateLimit = RateLimit {
        per_sec: 0,
        burst: 0,
        strikes: 3,
        bytes_per_sec: 10_000,
        bytes_burst: 4_000,
    };

    #[test]
    fn burst_then_refuse_then_close() {
        let mut b = TokenBucket::default();
        for _ in 0..5 {
            assert_eq!(b.check(&LIMIT, 1, 10), Verdict::Allow);
        }
        assert_eq!(b.check(&LIMIT, 1, 10), Verdict::Refuse);
        assert_eq!(b.check(&LIMIT, 1, 10), Verdict::Refuse);
        assert_eq!(b.check(&LIMIT, 1, 10), Verdict::Close);
    }

    #[test]
    fn refills_at_the_configured_rate() {
        let mut b = TokenBucket::default();
        for _ in 0..5 {
            b.check(&LIMIT, 1, 10);
        }
        assert_eq!(b.check(&LIMIT, 50, 10), Verdict::Refuse);
        // 100 ms at 10/s gives one token.
        assert_eq!(b.check(&LIMIT, 101, 10), Verdict::Allow);
        assert_eq!(b.check(&LIMIT, 101, 10), Verdict::Refuse);
    }

    #[test]
    fn an_allowed_message_resets_strikes() {
        let mut b = TokenBucket::default();
        for _ in 0..5 {
            b.check(&LIMIT, 1, 10);
        }
        assert_eq!(b.check(&LIMIT, 1, 10), Verdict::Refuse);
        assert_eq!(b.check(&LIMIT, 1, 10), Verdict::Refuse);
        assert_eq!(b.check(&LIMIT, 1000, 10), Verdict::Allow);
        assert_eq!(b.check(&LIMIT, 1000, 10), Verdict::Allow);
    }

    #[test]
    fn zero_rate_means_no_limit() {
        let mut b = TokenBucket::default();
        for _ in 0..10_000 {
            assert_eq!(b.check(&RateLimit::OFF, 1, 1 << 20), Verdict::Allow);
        }
    }

    #[test]
    fn bytes_burst_then_refill_by_the_millisecond() {
        let mut b = TokenBucket::default();
        assert_eq!(b.check(&BYTES, 1, 3_000), Verdict::Allow);
        assert_eq!(b.check(&BYTES, 1, 1_000), Verdict::Allow);
        assert_eq!(b.check(&BYTES, 1, 1), Verdict::Refuse, "burst spent");
        // 10 KB/s is 10 bytes per millisecond.
        assert_eq!(b.check(&BYTES, 50, 500), Verdict::Refuse, "490 bytes back");
        assert_eq!(b.check(&BYTES, 51, 500), Verdict::Allow);
        // A long pause refills to the burst, never beyond.
        assert_eq!(b.check(&BYTES, 60_000, 4_001), Verdict::Refuse);
        assert_eq!(b.check(&BYTES, 60_000, 4_000), Verdict::Allow);
    }

    #[test]
    fn a_refusal_takes_neither_budget() {
        let both = RateLimit {
            bytes_per_sec: 10_000,
            bytes_burst: 4_000,
            ..LIMIT
        };
        let mut b = TokenBucket::default();
        // Too many bytes: refused, and no message token is spent on it.
        assert_eq!(b.check(&both, 1, 5_000), Verdict::Refuse);
        for _ in 0..5 {
            assert_eq!(b.check(&both, 1, 100), Verdict::Allow);
        }
        // Out of message tokens: refused, and no bytes are spent on it.
        assert_eq!(b.check(&both, 1, 100), Verdict::Refuse);
        assert_eq!(b.check(&both, 101, 3_500), Verdict::Allow, "bytes kept");
    }

    #[test]
    fn the_envelope_is_charged_as_debt_the_next_message_waits_for() {
        let mut b = TokenBucket::default();
        assert_eq!(b.check(&BYTES, 1, 4_000), Verdict::Allow);
        b.charge_extra(&BYTES, 200);
        // 20 ms bring 200 bytes: the debt is paid, nothing left.
        assert_eq!(b.check(&BYTES, 21, 1), Verdict::Refuse);
        assert_eq!(b.check(&BYTES, 22, 10), Verdict::Allow);
        // Byte strikes close like message strikes.
        assert_eq!(b.check(&BYTES, 22, 10), Verdict::Refuse);
        assert_eq!(b.check(&BYTES, 22, 10), Verdict::Refuse);
        assert_eq!(b.check(&BYTES, 22, 10), Verdict::Close);
    }

    #[test]
    fn over_any_window_bytes_stay_within_burst_plus_rate_plus_one_envelope() {
        // A client that sends as fast as it is allowed, 1 KB at a time,
        // each with a 300 byte envelope, for ten seconds.
        let mut b = TokenBucket::default();
        let mut sent = 0u64;
        for now in 1..=10_000u32 {
            while b.check(&BYTES, now, 1_000) == Verdict::Allow {
                b.charge_extra(&BYTES, 300);
                sent += 1_300;
            }
        }
        let bound = 4_000 + 10_000 * 10 + 300;
        assert!(sent <= bound, "{sent} > {bound}");
        assert!(
            sent >= bound - 2_600,
            "{sent}: the rate is honoured, not undercut"
        );
    }

    #[test]
    fn bucket_is_small() {
        assert!(std::mem::size_of::<TokenBucket>() <= 16);
    }
}
