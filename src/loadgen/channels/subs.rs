//! A subscriber connection's subscriptions, and what it checks on every
//! publication it receives.
//!
//! Per subscription it keeps:
//! - a bitmap of the channel's publication numbers `n` it saw (the driver
//!   numbers each channel's publications 0, 1, 2, …, so the bitmap is dense:
//!   one bit per publication of the channel), which tells duplicates apart;
//! - the last sequence number `q` seen from each publisher, so a publication
//!   older than one already seen from the same publisher counts as out of
//!   order (a publisher sends in `q` order on one connection, and the server
//!   must keep that order in every channel);
//! - a digest of the order in which it received the counted publications.
//!   All subscribers of a channel that received the same publications must
//!   have the same digest (one channel order); `order::check` compares them at
//!   the end. A digest costs 16 bytes per subscription whatever the run's
//!   length, where keeping the sequences would grow with every publication.

use std::sync::atomic::Ordering::Relaxed;

use super::order::SubResult;
use crate::shared::Shared;

/// What a received publication was to this connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Seen for the first time; `out_of_order` when its publisher had
    /// already been seen with a later sequence number on this channel.
    First { out_of_order: bool },
    /// Seen before on this subscription.
    Duplicate,
    /// A channel this connection is not (yet) subscribed to.
    Unexpected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `subscribe` sent, no answer yet.
    Pending,
    /// `subscribed` received.
    Active,
    /// Refused with an `error`.
    Refused,
}

struct Sub {
    channel: u32,
    state: State,
    /// Bit `n` set: publication `n` of the channel was seen.
    seen: Vec<u64>,
    /// `(publisher, last q)` pairs, one per publisher seen on this channel.
    last: Vec<(u32, u64)>,
    /// Order digest of the counted publications, in arrival order.
    digest: u64,
    /// Counted publications received (duplicates excluded).
    count: u64,
}

/// The subscriptions of one connection, sorted by channel.
#[derive(Default)]
pub struct Subs {
    list: Vec<Sub>,
    finished: bool,
}

impl Subs {
    /// Subscriptions to `channels` (distinct), all pending.
    pub fn new(channels: impl Iterator<Item = u32>) -> Self {
        let mut list: Vec<Sub> = channels
            .map(|channel| Sub {
                channel,
                state: State::Pending,
                seen: Vec::new(),
                last: Vec::new(),
                digest: 0,
                count: 0,
            })
            .collect();
        list.sort_unstable_by_key(|s| s.channel);
        Subs {
            list,
            finished: false,
        }
    }

    /// Number of subscriptions wanted.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// No subscriptions (not a channels subscriber).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The `subscribe` frames to send once the welcome arrived.
    pub fn requests<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = String> + 'a {
        self.list.iter().map(move |s| {
            format!(
                "{{\"type\":\"subscribe\",\"channel\":\"{prefix}{}\",\"id\":\"{}\"}}",
                s.channel,
                request_id(s.channel)
            )
        })
    }

    fn find(&mut self, channel: u32) -> Option<&mut Sub> {
        let i = self
            .list
            .binary_search_by_key(&channel, |s| s.channel)
            .ok()?;
        Some(&mut self.list[i])
    }

    fn answer(&mut self, id: &str, to: State) -> Option<u32> {
        let channel = parse_request_id(id)?;
        let sub = self.find(channel)?;
        if sub.state != State::Pending {
            return None;
        }
        sub.state = to;
        Some(channel)
    }

    /// A `subscribed` answer with this `id`: the channel it activated.
    pub fn subscribed(&mut self, id: &str) -> Option<u32> {
        self.answer(id, State::Active)
    }

    /// An `error` answer with this `id`: whether it refused a pending subscribe.
    pub fn refused(&mut self, id: &str) -> bool {
        self.answer(id, State::Refused).is_some()
    }

    /// A counted publication: channel `c`, channel number `n`, publisher
    /// `p`, the publisher's sequence `q`, the run's global sequence `g`.
    pub fn publication(&mut self, c: u32, n: u64, p: u32, q: u64, g: u64) -> Received {
        let Some(sub) = self.find(c) else {
            return Received::Unexpected;
        };
        if sub.state != State::Active {
            return Received::Unexpected;
        }
        let word = (n >> 6) as usize;
        if word >= sub.seen.len() {
            sub.seen.resize(word + 1, 0);
        }
        let bit = 1u64 << (n & 63);
        if sub.seen[word] & bit != 0 {
            return Received::Duplicate;
        }
        sub.seen[word] |= bit;
        sub.count += 1;
        sub.digest = (sub.digest.rotate_left(5) ^ g).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let out_of_order = match sub.last.iter_mut().find(|(who, _)| *who == p) {
            Some((_, last)) if q < *last => true,
            Some((_, last)) => {
                *last = q;
                false
            }
            None => {
                sub.last.push((p, q));
                false
            }
        };
        Received::First { out_of_order }
    }

    /// The connection ends (or the run is being counted): its active
    /// subscriptions stop counting in expectations, their order digests go
    /// to the order check, and unanswered ones are counted as lost. Runs once.
    pub fn finish(&mut self, sh: &Shared) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let mut results = Vec::new();
        let mut lost = 0;
        for s in &self.list {
            match s.state {
                State::Active => {
                    sh.chan_subs[s.channel as usize].fetch_sub(1, Relaxed);
                    results.push(SubResult {
                        channel: s.channel,
                        count: s.count,
                        digest: s.digest,
                    });
                }
                State::Pending => lost += 1,
                State::Refused => {}
            }
        }
        sh.sub_lost.fetch_add(lost, Relaxed);
        if !results.is_empty() {
            sh.sub_results.lock().unwrap().extend(results);
        }
    }
}

/// The `id` of the subscribe request for channel `c`.
fn request_id(c: u32) -> String {
    format!("s{c}")
}

fn parse_request_id(id: &str) -> Option<u32> {
    id.strip_prefix('s')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(channels: &[u32]) -> Subs {
        let mut s = Subs::new(channels.iter().copied());
        for c in channels {
            assert_eq!(s.subscribed(&request_id(*c)), Some(*c));
        }
        s
    }

    #[test]
    fn answers_match_their_requests_once() {
        let mut s = Subs::new([3, 1, 2].into_iter());
        let reqs: Vec<String> = s.requests("lg:").collect();
        assert_eq!(reqs.len(), 3);
        assert!(reqs[0].contains("\"channel\":\"lg:1\"") && reqs[0].contains("\"id\":\"s1\""));
        assert_eq!(s.subscribed("s2"), Some(2));
        assert_eq!(s.subscribed("s2"), None, "answered already");
        assert!(s.refused("s3"));
        assert!(!s.refused("s9"), "not ours");
        assert_eq!(s.subscribed("x1"), None);
        assert_eq!(
            s.publication(3, 0, 0, 0, 0),
            Received::Unexpected,
            "refused"
        );
        assert_eq!(
            s.publication(1, 0, 0, 0, 0),
            Received::Unexpected,
            "pending"
        );
    }

    #[test]
    fn duplicates_and_a_publishers_regressions_are_told_apart() {
        let mut s = active(&[7]);
        let first = |o| Received::First { out_of_order: o };
        assert_eq!(s.publication(7, 0, 1, 10, 100), first(false));
        assert_eq!(
            s.publication(7, 1, 2, 5, 101),
            first(false),
            "another publisher"
        );
        assert_eq!(s.publication(7, 0, 1, 10, 100), Received::Duplicate);
        assert_eq!(s.publication(7, 3, 1, 12, 103), first(false));
        assert_eq!(s.publication(7, 2, 1, 11, 102), first(true), "11 after 12");
        assert_eq!(
            s.publication(7, 200, 2, 6, 300),
            first(false),
            "bitmap grows"
        );
        assert_eq!(s.publication(8, 0, 1, 1, 1), Received::Unexpected);
    }

    #[test]
    fn the_digest_depends_on_the_order() {
        let (mut a, mut b, mut c) = (active(&[0]), active(&[0]), active(&[0]));
        for (n, g) in [(0, 10), (1, 11), (2, 12)] {
            a.publication(0, n, 0, g, g);
            c.publication(0, n, 0, g, g);
        }
        for (n, g) in [(1, 11), (0, 10), (2, 12)] {
            b.publication(0, n, 0, g, g);
        }
        assert_eq!(a.list[0].count, b.list[0].count);
        assert_eq!(a.list[0].digest, c.list[0].digest);
        assert_ne!(a.list[0].digest, b.list[0].digest);
    }
}
