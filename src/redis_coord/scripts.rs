//! The Lua scripts that make liveness and the route-table epoch safe, and
//! the parsing of their replies.
//!
//! Each script touches one key, so it runs atomically on the key's node,
//! on a standalone server and on a Cluster alike (the key is `KEYS[1]`).
//!
//! - [`CLAIM`]: write `server_alive:<id>` only while it is ours (or free):
//!   compare-and-set. Another process's value is returned with its
//!   remaining TTL instead, so a duplicate `SERVER_ID` is seen, never
//!   overwritten.
//! - [`RELEASE`]: delete it only while it is ours (compare-and-delete), so
//!   a stopping duplicate cannot remove the live holder's key.
//! - [`EPOCH`]: read the route-table epoch marker, creating it (`SET NX`
//!   semantics) with Redis's own clock when it is missing. A missing marker
//!   means the data set was lost (or is new): see `docs/REDIS.md`.

use redis::Value;

/// `KEYS[1]` = liveness key, `ARGV[1]` = our boot id, `ARGV[2]` = TTL ms.
/// Returns 1 when the key is (now) ours, else `{holder, pttl_ms}`.
pub const CLAIM: &str = r#"
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return {v, redis.call('PTTL', KEYS[1])}
"#;

/// `KEYS[1]` = liveness key, `ARGV[1]` = our boot id. Returns the number of
/// keys deleted (0 when the key is not ours).
pub const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// `KEYS[1]` = the epoch marker, `ARGV[1]` = our boot id (makes a marker
/// created in the same millisecond by two instances still unique).
/// Returns `{marker, redis_now_ms}`; a new marker is `<redis_now_ms>:<boot id>`.
pub const EPOCH: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('GET', KEYS[1])
if v == false then
  v = string.format('%.0f', now) .. ':' .. ARGV[1]
  redis.call('SET', KEYS[1], v)
end
return {v, now}
"#;

/// What the claim script said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The liveness key is ours.
    Ours,
    /// Another process holds it: its boot id and the key's remaining TTL.
    Held {
        /// The holder's boot id (the key's value).
        holder: String,
        /// Milliseconds left on the key (negative: no TTL / gone meanwhile).
        pttl_ms: i64,
    },
}

/// The claim script's reply, if it is one.
pub fn parse_claim(value: &Value) -> Option<Claim> {
    match value {
        Value::Int(1) => Some(Claim::Ours),
        Value::Array(parts) if parts.len() == 2 => {
            let holder = text(&parts[0])?;
            let Value::Int(pttl_ms) = parts[1] else {
                return None;
            };
            Some(Claim::Held { holder, pttl_ms })
        }
        _ => None,
    }
}

/// The epoch script's reply: `(marker, redis_now_ms)`.
pub fn parse_epoch(value: &Value) -> Option<(String, u64)> {
    let Value::Array(parts) = value else {
        return None;
    };
    match parts.as_slice() {
        [marker, Value::Int(now)] => Some((text(marker)?, u64::try_from(*now).ok()?)),
        _ => None,
    }
}

/// When the epoch `marker` was created, in Redis's clock (Unix ms).
pub fn epoch_created_ms(marker: &str) -> Option<u64> {
    marker.split(':').next()?.parse().ok()
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn claim_replies_parse() {
        assert_eq!(parse_claim(&Value::Int(1)), Some(Claim::Ours));
        assert_eq!(
            parse_claim(&Value::Array(vec![bulk("17-ab"), Value::Int(900)])),
            Some(Claim::Held {
                holder: "17-ab".into(),
                pttl_ms: 900
            })
        );
        for garbage in [
            Value::Int(0),
            Value::Nil,
            Value::Okay,
            Value::Array(vec![bulk("x")]),
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
        ] {
            assert_eq!(parse_claim(&garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn epoch_replies_parse() {
        let reply = Value::Array(vec![
            bulk("1700000000123:9-ff"),
            Value::Int(1_700_000_000_500),
        ]);
        let (marker, now) = parse_epoch(&reply).unwrap();
        assert_eq!(
            (marker.as_str(), now),
            ("1700000000123:9-ff", 1_700_000_000_500)
        );
        assert_eq!(epoch_created_ms(&marker), Some(1_700_000_000_123));
        assert_eq!(epoch_created_ms("junk"), None);
        assert_eq!(
            parse_epoch(&Value::Array(vec![bulk("m"), Value::Int(-1)])),
            None
        );
        assert_eq!(parse_epoch(&Value::Int(3)), None);
    }
}
