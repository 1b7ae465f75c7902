//! A channel publication as it travels through Redis pub/sub, and the
//! Redis channel it travels on.
//!
//! ```text
//! P1 <sent_at_us> <offset> <epoch>\n<publication JSON>
//! ```
//!
//! A short text header, then the `publication` JSON with its `offset` when
//! the channel keeps history (`offset` 0 and epoch `-` otherwise). Text,
//! because with history the header and the JSON are put together by a
//! script inside Redis, which numbers the publication as it keeps it. Each
//! receiving instance frames the JSON once for all its subscribers.
//!
//! A channel `c` travels on the Redis channel `ch:{c}`: apart from the
//! per-server channels (`server:<id>`), and with the channel name as hash
//! tag, so on a Cluster its sharded pub/sub and its history keys share a
//! slot (channel names never contain braces).

use bytes::Bytes;

use crate::protocol::channel::ChannelName;

/// Prefix of every channel's Redis pub/sub channel.
pub const CHANNEL_PREFIX: &str = "ch:{";

/// The Redis pub/sub channel of `channel`.
pub fn redis_channel(channel: &str) -> String {
    format!("{CHANNEL_PREFIX}{channel}}}")
}

/// The channel a Redis pub/sub channel name carries, if it is one of ours.
pub fn channel_of(redis_channel: &[u8]) -> Option<ChannelName> {
    let name = std::str::from_utf8(redis_channel).ok()?;
    let inner = name.strip_prefix(CHANNEL_PREFIX)?.strip_suffix('}')?;
    ChannelName::parse(inner)
}

/// The payload for a publication without history.
pub fn encode(sent_at_us: u64, json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 32);
    out.extend_from_slice(format!("P1 {sent_at_us} 0 -\n").as_bytes());
    out.extend_from_slice(json);
    out
}

/// A publication read back from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// When the publisher's instance received it.
    pub sent_at_us: u64,
    /// Its offset when the channel keeps history.
    pub offset: Option<u64>,
    /// The history's epoch.
    pub epoch: Option<String>,
    /// The `publication` JSON.
    pub json: Bytes,
}

/// Decodes a payload; `None` for anything malformed (counted and dropped).
pub fn decode(payload: Bytes) -> Option<Incoming> {
    let newline = payload.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&payload[..newline]).ok()?;
    let mut parts = header.split(' ');
    if parts.next()? != "P1" {
        return None;
    }
    let sent_at_us = parts.next()?.parse().ok()?;
    let offset: u64 = parts.next()?.parse().ok()?;
    let epoch = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let json = payload.slice(newline + 1..);
    if json.is_empty() {
        return None;
    }
    Some(Incoming {
        sent_at_us,
        offset: (offset > 0).then_some(offset),
        epoch: (epoch != "-").then(|| epoch.to_owned()),
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip_and_others_are_not_ours() {
        assert_eq!(redis_channel("chat:1"), "ch:{chat:1}");
        assert_eq!(channel_of(b"ch:{chat:1}"), ChannelName::parse("chat:1"));
        assert_eq!(channel_of(b"server:s1"), None);
        assert_eq!(channel_of(b"ch:{a b}"), None);
        assert_eq!(channel_of(b"ch:{x"), None);
    }

    #[test]
    fn payloads_round_trip_and_garbage_is_refused() {
        let p = decode(Bytes::from(encode(17, br#"{"type":"publication"}"#))).unwrap();
        assert_eq!((p.sent_at_us, p.offset, p.epoch), (17, None, None));
        assert_eq!(&p.json[..], br#"{"type":"publication"}"#);
        let with = decode(Bytes::from_static(b"P1 5 42 ab12\n{}")).unwrap();
        assert_eq!(
            (with.offset, with.epoch.as_deref()),
            (Some(42), Some("ab12"))
        );
        for bad in [
            &b""[..],
            b"P1 1 0 -",
            b"P2 1 0 -\n{}",
            b"P1 x 0 -\n{}",
            b"P1 1 0 - x\n{}",
            b"P1 1 0 -\n",
        ] {
            assert!(decode(Bytes::copy_from_slice(bad)).is_none(), "{bad:?}");
        }
    }
}
