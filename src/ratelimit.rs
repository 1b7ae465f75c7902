//! Per-connection message rate limit: a token bucket with a strike counter.
//!
//! I/O-free and clock-free: the caller passes the current time in
//! milliseconds (a shard-local monotonic clock), so the bucket is eight bytes
//! per connection and needs no timer.

/// Rate-limit settings shared by every connection, validated once by the
/// config layer: `burst` is at least 1 while `per_sec` is on, `strikes` at
/// least 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second; 0 turns the limit off.
    pub per_sec: u32,
    /// Bucket size: how many messages a client may send at once after a pause.
    pub burst: u32,
    /// Consecutive refused messages after which the connection is closed with 4029.
    pub strikes: u16,
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

/// One connection's bucket. Tokens are kept in thousandths to stay integral.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenBucket {
    /// Available tokens × 1000 (milli-tokens); starts full on first use.
    milli_tokens: u32,
    /// Shard clock (ms) of the last refill; 0 means "never used yet".
    last_ms: u32,
    /// Consecutive refusals, reset by any allowed message.
    strikes: u16,
}

impl TokenBucket {
    /// Takes one token for a message arriving at `now_ms` (shard clock).
    pub fn check(&mut self, limit: &RateLimit, now_ms: u32) -> Verdict {
        if limit.per_sec == 0 {
            return Verdict::Allow;
        }
        self.refill(limit, now_ms);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
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

    fn refill(&mut self, limit: &RateLimit, now_ms: u32) {
        let cap = limit.burst.saturating_mul(1000);
        if self.last_ms == 0 {
            self.milli_tokens = cap;
        } else {
            let elapsed = u64::from(now_ms.wrapping_sub(self.last_ms));
            let added = elapsed.saturating_mul(u64::from(limit.per_sec));
            self.milli_tokens = (u64::from(self.milli_tokens) + added).min(u64::from(cap)) as u32;
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
    };

    #[test]
    fn burst_then_refuse_then_close() {
        let mut b = TokenBucket::default();
        for _ in 0..5 {
            assert_eq!(b.check(&LIMIT, 1), Verdict::Allow);
        }
        assert_eq!(b.check(&LIMIT, 1), Verdict::Refuse);
        assert_eq!(b.check(&LIMIT, 1), Verdict::Refuse);
        assert_eq!(b.check(&LIMIT, 1), Verdict::Close);
    }

    #[test]
    fn refills_at_the_configured_rate() {
        let mut b = TokenBucket::default();
        for _ in 0..5 {
            b.check(&LIMIT, 1);
        }
        assert_eq!(b.check(&LIMIT, 50), Verdict::Refuse);
        // 100 ms at 10/s gives one token.
        assert_eq!(b.check(&LIMIT, 101), Verdict::Allow);
        assert_eq!(b.check(&LIMIT, 101), Verdict::Refuse);
    }

    #[test]
    fn an_allowed_message_resets_strikes() {
        let mut b = TokenBucket::default();
        for _ in 0..5 {
            b.check(&LIMIT, 1);
        }
        assert_eq!(b.check(&LIMIT, 1), Verdict::Refuse);
        assert_eq!(b.check(&LIMIT, 1), Verdict::Refuse);
        assert_eq!(b.check(&LIMIT, 1000), Verdict::Allow);
        assert_eq!(b.check(&LIMIT, 1000), Verdict::Allow);
    }

    #[test]
    fn zero_rate_means_no_limit() {
        let off = RateLimit {
            per_sec: 0,
            ..LIMIT
        };
        let mut b = TokenBucket::default();
        for _ in 0..10_000 {
            assert_eq!(b.check(&off, 1), Verdict::Allow);
        }
    }

    #[test]
    fn bucket_is_small() {
        assert!(std::mem::size_of::<TokenBucket>() <= 12);
    }
}
