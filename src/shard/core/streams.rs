//! Streams kept in memory by their owner shard when there is no Redis (the
//! embedded broker): a channel's history, a user's inbox. The same
//! semantics as the Redis functions (`redis_coord::functions`): numbered
//! 1, 2, 3, … within an epoch, the last `size` entries kept, dropped (and a
//! new epoch started) once idle for the retention's TTL; lost on restart,
//! where every stream starts a new epoch.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::coordinator::{Appended, Retention, StreamKey, StreamPage, StreamQuery};
use crate::protocol::envelope::server_v2::with_offset;

/// One stream.
#[derive(Debug)]
struct MemStream {
    /// Its epoch.
    epoch: Arc<str>,
    /// Offset of the newest entry.
    top: u64,
    /// The kept entries, oldest first (JSON with `offset`).
    entries: VecDeque<Bytes>,
    /// Shard clock (ms) after which it is dropped.
    expires_ms: u32,
}

/// The streams an owner shard keeps.
#[derive(Debug, Default)]
pub struct Streams {
    /// By key.
    streams: HashMap<StreamKey, MemStream>,
    /// Prefix of new epochs (random per process), and a counter.
    epoch_prefix: u64,
    /// Epochs made so far.
    epochs: u64,
}

impl Streams {
    /// Streams whose epochs start with `seed` (random per process).
    pub fn new(seed: u64) -> Self {
        Self {
            streams: HashMap::new(),
            epoch_prefix: seed,
            epochs: 0,
        }
    }

    /// Streams kept now.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// The stream at `key`, dropping it first when past its expiry and
    /// starting a fresh epoch when it has none. Only a newly started stream
    /// gets an expiry here (`now + ttl`); an existing one keeps its own,
    /// which only [`Self::append`] moves. This is exactly what `wss_read` /
    /// `wss_append` do in Redis (`position` in `streams.lua`): a read of a
    /// missing stream writes its meta (offset 0, a new epoch) with the TTL,
    /// so an append soon after keeps the epoch the reader was told, while a
    /// read of an existing stream leaves its TTL alone, so a stream is kept
    /// for the TTL after its last publication, however often it is read.
    fn stream(&mut self, key: &StreamKey, retention: Retention, now_ms: u32) -> &mut MemStream {
        if self
            .streams
            .get(key)
            .is_some_and(|s| is_past(now_ms, s.expires_ms))
        {
            self.streams.remove(key);
        }
        if !self.streams.contains_key(key) {
            self.epochs += 1;
            let epoch: Arc<str> = format!("{:x}{:x}", self.epoch_prefix, self.epochs).into();
            let fresh = MemStream {
                epoch,
                top: 0,
                entries: VecDeque::new(),
                expires_ms: now_ms.wrapping_add(ttl_ms(retention)),
            };
            self.streams.insert(key.clone(), fresh);
        }
        self.streams.get_mut(key).expect("inserted above")
    }

    /// Appends `json` (without `offset`); returns the entry with its offset.
    pub fn append(
        &mut self,
        key: &StreamKey,
        json: &[u8],
        retention: Retention,
        now_ms: u32,
    ) -> (Appended, Bytes) {
        let s = self.stream(key, retention, now_ms);
        s.expires_ms = now_ms.wrapping_add(ttl_ms(retention));
        s.top += 1;
        let entry = Bytes::from(with_offset(json, s.top));
        s.entries.push_back(entry.clone());
        while s.entries.len() > retention.size as usize {
            s.entries.pop_front();
        }
        let at = Appended {
            offset: s.top,
            epoch: s.epoch.clone(),
        };
        (at, entry)
    }

    /// Reads a stream (starting an epoch if it has none); never extends an
    /// existing stream's life (see [`Self::stream`]).
    pub fn read(&mut self, key: &StreamKey, query: &StreamQuery, now_ms: u32) -> StreamPage {
        let limit = query.limit as usize;
        let s = self.stream(key, query.retention, now_ms);
        let kept = s.entries.len();
        let mut page = StreamPage {
            top: s.top,
            epoch: s.epoch.clone(),
            complete: true,
            entries: Vec::new(),
        };
        match &query.since {
            None => {
                let first = kept.saturating_sub(limit);
                page.entries = s.entries.iter().skip(first).cloned().collect();
            }
            Some((since, epoch)) => {
                let missed = s.top.checked_sub(*since);
                match missed {
                    Some(missed) if **epoch == *s.epoch && missed as usize <= kept => {
                        let first = kept - missed as usize;
                        page.entries = s.entries.iter().skip(first).take(limit).cloned().collect();
                    }
                    _ => page.complete = false,
                }
            }
        }
        page
    }

    /// Drops streams idle past their TTL.
    pub fn expire(&mut self, now_ms: u32) {
        self.streams.retain(|_, s| !is_past(now_ms, s.expires_ms));
    }
}

fn ttl_ms(r: Retention) -> u32 {
    r.ttl.as_millis().min(u128::from(u32::MAX / 4)) as u32
}

/// True when `deadline` (shard clock) has passed at `now`, wrap-safe.
fn is_past(now: u32, deadline: u32) -> bool {
    now.wrapping_sub(deadline) < u32::MAX / 2
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::channel::ChannelName;

    fn key() -> StreamKey {
        StreamKey::Channel(ChannelName::parse("c").unwrap())
    }

    const KEEP3: Retention = Retention {
        size: 3,
        ttl: Duration::from_secs(10),
    };

    fn query(since: Option<(u64, &str)>, limit: u32) -> StreamQuery {
        StreamQuery {
            since: since.map(|(o, e)| (o, Arc::from(e))),
            limit,
            retention: KEEP3,
        }
    }

    #[test]
    fn entries_are_numbered_trimmed_and_read_after_a_position() {
        let mut s = Streams::new(1);
        let mut epoch = None;
        for n in 1..=4u64 {
            let (at, entry) = s.append(&key(), br#"{"n":1}"#, KEEP3, 0);
            assert_eq!(at.offset, n);
            assert!(entry.ends_with(format!(r#""offset":{n}}}"#).as_bytes()));
            epoch = Some(at.epoch);
        }
        let e = epoch.unwrap();
        let page = s.read(&key(), &query(Some((1, &e)), 100), 0);
        assert!(page.complete);
        assert_eq!((page.top, page.entries.len()), (4, 3));
        let page = s.read(&key(), &query(Some((2, &e)), 1), 0);
        assert_eq!(page.entries.len(), 1, "limited, oldest first");
        assert!(
            !s.read(&key(), &query(Some((0, &e)), 100), 0).complete,
            "trimmed"
        );
        assert!(
            !s.read(&key(), &query(Some((2, "other")), 100), 0).complete,
            "epoch"
        );
        assert!(
            !s.read(&key(), &query(Some((9, &e)), 100), 0).complete,
            "ahead"
        );
        assert_eq!(s.read(&key(), &query(None, 2), 0).entries.len(), 2);
    }

    #[test]
    fn an_idle_stream_expires_and_comes_back_in_a_new_epoch() {
        let mut s = Streams::new(7);
        let (first, _) = s.append(&key(), b"{}", KEEP3, 0);
        s.expire(5_000);
        assert_eq!(s.len(), 1);
        s.expire(10_001);
        assert!(s.is_empty());
        let (again, _) = s.append(&key(), b"{}", KEEP3, 10_002);
        assert_eq!(again.offset, 1);
        assert_ne!(again.epoch, first.epoch);
    }

    /// The epoch a read at `now` reports.
    fn epoch_at(s: &mut Streams, now: u32) -> Arc<str> {
        s.read(&key(), &query(None, 100), now).epoch
    }

    #[test]
    fn reads_do_not_extend_a_streams_life_past_its_last_append() {
        let mut s = Streams::new(3);
        let (at, _) = s.append(&key(), b"{}", KEEP3, 1_000);
        for now in [6_000, 9_000, 10_999] {
            let page = s.read(&key(), &query(Some((0, &at.epoch)), 100), now);
            assert!(page.complete, "kept at {now}");
            assert_eq!((page.top, &page.epoch), (1, &at.epoch));
        }
        s.expire(10_999);
        assert_eq!(s.len(), 1, "still kept just before last append + ttl");
        s.expire(11_000);
        assert!(s.is_empty(), "gone at last append + ttl, despite the reads");
        let page = s.read(&key(), &query(Some((1, &at.epoch)), 100), 11_000);
        assert!(!page.complete);
        assert_eq!(page.top, 0);
        assert_ne!(page.epoch, at.epoch, "a new epoch after expiry");
    }

    #[test]
    fn a_read_past_the_ttl_without_housekeeping_sees_a_new_epoch() {
        let mut s = Streams::new(3);
        let (at, _) = s.append(&key(), b"{}", KEEP3, 0);
        assert_eq!(epoch_at(&mut s, 5_000), at.epoch);
        assert_ne!(epoch_at(&mut s, 10_000), at.epoch);
    }

    #[test]
    fn an_append_extends_a_streams_life() {
        let mut s = Streams::new(3);
        let (first, _) = s.append(&key(), b"{}", KEEP3, 0);
        let (second, _) = s.append(&key(), b"{}", KEEP3, 8_000);
        assert_eq!((second.offset, &second.epoch), (2, &first.epoch));
        assert_eq!(epoch_at(&mut s, 17_999), first.epoch, "kept 10 s after 8 s");
        s.expire(17_999);
        assert_eq!(s.len(), 1);
        s.expire(18_000);
        assert!(s.is_empty());
    }

    #[test]
    fn a_read_of_a_missing_stream_starts_the_epoch_a_later_append_keeps() {
        let mut s = Streams::new(3);
        let read = epoch_at(&mut s, 0);
        assert_eq!(epoch_at(&mut s, 4_000), read, "reads do not restart it");
        let (at, _) = s.append(&key(), b"{}", KEEP3, 5_000);
        assert_eq!(
            (at.offset, &at.epoch),
            (1, &read),
            "no epoch change under the reader"
        );
    }

    #[test]
    fn a_stream_only_ever_read_expires_ttl_after_the_read_that_started_it() {
        let mut s = Streams::new(3);
        let read = epoch_at(&mut s, 0);
        assert_eq!(epoch_at(&mut s, 9_999), read);
        s.expire(10_000);
        assert!(s.is_empty(), "like the meta `wss_read` writes with the TTL");
        assert_ne!(epoch_at(&mut s, 10_000), read);
    }
}
