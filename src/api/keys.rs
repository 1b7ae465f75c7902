//! The server API's keys: who may call it, and how often.
//!
//! A presented key is hashed (SHA-256) and its digest compared with every
//! configured key's digest in constant time (`subtle`), without an early
//! exit: neither the position of a matching key, nor how many bytes of a
//! wrong key were right, nor the configured keys' lengths show in the time
//! an answer takes. Keys are never kept in clear after start, never logged.
//!
//! Each key has a rate limit (`API_RATE_LIMIT` requests per second, per
//! instance), kept as one atomic "theoretical arrival time" (GCRA): every
//! shard charges the same cell with a compare-and-swap, no lock. A burst of
//! one second's worth is allowed; a batch is charged its number of commands
//! once it is admitted (it is admitted when one request would be), so a
//! large batch delays the key's next requests instead of never passing.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The configured keys, with their rate limit state.
pub struct ApiKeys {
    /// One entry per key.
    keys: Box<[KeyEntry]>,
    /// Nanoseconds between two requests of one key (0: no limit).
    interval_ns: u64,
    /// Origin of the rate limit clock.
    origin: Instant,
}

/// One key: its digest and its rate limit cell.
struct KeyEntry {
    /// SHA-256 of the key.
    digest: [u8; 32],
    /// GCRA: when (ns since `origin`) the key's bucket is empty again.
    tat: AtomicU64,
}

/// Which key a request presented (its position in `API_KEYS`, which logs may
/// show: it names a key without revealing it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId(pub usize);

/// One second, the burst a key may spend at once.
const BURST_NS: u64 = 1_000_000_000;

impl ApiKeys {
    /// The keys (already validated), limited to `per_sec` requests per
    /// second each (0: no limit).
    pub fn new<S: AsRef<[u8]>>(keys: &[S], per_sec: u32) -> Self {
        let keys = keys
            .iter()
            .map(|k| KeyEntry {
                digest: Sha256::digest(k.as_ref()).into(),
                tat: AtomicU64::new(0),
            })
            .collect();
        Self {
            keys,
            interval_ns: if per_sec == 0 {
                0
            } else {
                BURST_NS / u64::from(per_sec)
            },
            origin: Instant::now(),
        }
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there is none (never after validation).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key `presented` matches, compared in constant time against every key.
    pub fn find(&self, presented: &[u8]) -> Option<KeyId> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = 0u64; // index + 1 of the match; 0: none
        for (i, key) in self.keys.iter().enumerate() {
            let hit = key.digest.ct_eq(&digest);
            found = u64::conditional_select(&found, &(i as u64 + 1), hit);
        }
        (found > 0).then(|| KeyId(found as usize - 1))
    }

    /// Charges `cost` requests to `key` at `now`; false (nothing charged)
    /// when the key is over its rate.
    pub fn admit(&self, key: KeyId, cost: u32, now: Instant) -> bool {
        if self.interval_ns == 0 {
            return true;
        }
        let Some(entry) = self.keys.get(key.0) else {
            return false;
        };
        let now = now.saturating_duration_since(self.origin).as_nanos() as u64;
        let mut tat = entry.tat.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now);
            // Admitted when one more request would still fit in the burst.
            if base + self.interval_ns - now > BURST_NS {
                return false;
            }
            let next = base.saturating_add(self.interval_ns.saturating_mul(u64::from(cost)));
            match entry
                .tat
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}

impl ApiKeys {
    /// Charges `cost` more requests to an admitted `key` (a batch's other
    /// commands), whatever the bucket holds: later requests wait it off.
    pub fn charge(&self, key: KeyId, cost: u32, now: Instant) {
        if self.interval_ns == 0 || cost == 0 {
            return;
        }
        let Some(entry) = self.keys.get(key.0) else {
            return;
        };
        let now = now.saturating_duration_since(self.origin).as_nanos() as u64;
        let add = self.interval_ns.saturating_mul(u64::from(cost));
        let _ = entry
            .tat
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tat| {
                Some(tat.max(now).saturating_add(add))
            });
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys(<{} keys hidden>)", self.keys.len())
    }
}

/// Logs refused keys at most once per period per shard, with how many were
/// refused since the last line; never the key.
#[derive(Debug)]
pub struct FailureLog {
    /// When the last line was written.
    last: Option<Instant>,
    /// Failures not logged since.
    suppressed: u64,
}

/// At most one auth failure line per shard per this period.
const LOG_PERIOD: std::time::Duration = std::time::Duration::from_secs(10);

impl FailureLog {
    /// Nothing logged yet.
    pub const fn new() -> Self {
        Self {
            last: None,
            suppressed: 0,
        }
    }

    /// One more failure at `now`: `Some(n)` when a line should be written
    /// now, saying that `n` failures (this one included) happened since
    /// the last line.
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        self.suppressed += 1;
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= LOG_PERIOD);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

impl Default for FailureLog {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_configured_keys_match() {
        let keys = ApiKeys::new(&["first-key-0123456789", "second-key-0123456789"], 0);
        assert_eq!(keys.find(b"first-key-0123456789"), Some(KeyId(0)));
        assert_eq!(keys.find(b"second-key-0123456789"), Some(KeyId(1)));
        for wrong in [
            &b""[..],
            b"first-key-012345678",
            b"first-key-01234567890",
            b"FIRST-key-0123456789",
        ] {
            assert_eq!(keys.find(wrong), None);
        }
        assert!(!format!("{keys:?}").contains("first"));
    }

    #[test]
    fn rate_limit_allows_a_burst_then_the_rate() {
        let keys = ApiKeys::new(&["k0123456789abcdef", "other0123456789ab"], 10);
        let t0 = keys.origin + Duration::from_secs(5);
        let admitted = (0..20).filter(|_| keys.admit(KeyId(0), 1, t0)).count();
        assert_eq!(admitted, 10, "one second's worth at once");
        assert!(keys.admit(KeyId(1), 1, t0), "each key has its own bucket");
        assert!(!keys.admit(KeyId(0), 1, t0 + Duration::from_millis(50)));
        assert!(keys.admit(KeyId(0), 1, t0 + Duration::from_millis(100)));
        // A batch of 30 is admitted on an idle key, then the key waits it off.
        let t1 = t0 + Duration::from_secs(10);
        assert!(keys.admit(KeyId(0), 1, t1));
        keys.charge(KeyId(0), 29, t1);
        assert!(!keys.admit(KeyId(0), 1, t1 + Duration::from_secs(1)));
        assert!(keys.admit(KeyId(0), 1, t1 + Duration::from_millis(2_100)));
        let unlimited = ApiKeys::new(&["k0123456789abcdef"], 0);
        assert!((0..10_000).all(|_| unlimited.admit(KeyId(0), 1000, t0)));
    }

    #[test]
    fn failures_are_logged_at_a_bounded_rate() {
        let mut log = FailureLog::new();
        let t0 = Instant::now();
        assert_eq!(log.note(t0), Some(1));
        assert_eq!(log.note(t0 + Duration::from_secs(1)), None);
        assert_eq!(log.note(t0 + Duration::from_secs(2)), None);
        assert_eq!(log.note(t0 + LOG_PERIOD), Some(3));
    }
}
