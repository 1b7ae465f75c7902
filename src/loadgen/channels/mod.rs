//! The `channels` scenario: who subscribes to what, on which instance, and
//! who publishes where.
//!
//! The plan is pure arithmetic on indices, so every connection task and the
//! driver derive the same assignment without sharing tables:
//!
//! - Subscriber `m` (0..S) of every channel is on URL `m mod U`: a channel's
//!   subscribers spread evenly over the instances, whatever `C`, `S` and `K`.
//!   URL `u` so holds `S_u` "columns" (`m ≡ u mod U`) of `C` subscriptions.
//! - The subscriber connections of URL `u` form one block of indices; within
//!   it, slot `t` (0..C × S_u) belongs to the block's connection `t / K` and
//!   is a subscription to channel `(t + t / C) mod C`. Each run of `C` slots
//!   covers every channel once, so every channel gets exactly `S_u`
//!   subscriptions on URL `u`, and the `K` slots of one connection are `K`
//!   distinct channels (they span at most two runs: `K + 1` consecutive
//!   residues with one skipped; `K = C` slots are exactly one run).
//! - Publishers are the connections after the subscribers; publisher `p` is
//!   on URL `p mod U`. Publication `g` (the run's global sequence) goes to
//!   channel `g mod C` from publisher `(g / C + g mod C) mod P`: the channels
//!   take turns, and each channel's publications rotate over every
//!   publisher, so with several URLs every channel gets publications from
//!   every instance.
//!
//! # Layout
//! - `subs`: a subscriber connection's subscriptions and what it checks on
//!   each publication (duplicates, per-publisher order, an order digest).
//! - `order`: the end-of-run check that all subscribers of a channel saw one
//!   order.

pub mod order;
pub mod subs;

use crate::args::RunArgs;

/// Publications per second one publisher sends by default: half the
/// server's default rate limit (100/s per connection), so a default run is
/// never rate limited.
const RATE_PER_PUBLISHER: f64 = 50.0;

/// The subscriber connections of one URL.
#[derive(Debug, Clone)]
struct Block {
    /// First connection index.
    start: usize,
    /// Connections.
    conns: usize,
    /// Subscriptions per channel on this URL (`S_u`).
    columns: u64,
}

/// Who subscribes to what and who publishes (see the module docs).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Number of channels `C`.
    pub channels: u32,
    /// Subscribers per channel `S`.
    pub per_channel: u32,
    /// Subscriptions per subscriber connection `K`.
    pub per_conn: u32,
    /// Subscriber connections, indices `0..sub_conns`.
    pub sub_conns: usize,
    /// Publisher connections `P`, indices `sub_conns..sub_conns + P`.
    pub publishers: usize,
    /// Number of URLs `U`.
    urls: usize,
    /// One block of subscriber connections per URL.
    blocks: Vec<Block>,
}

impl Plan {
    /// Checks the channel options of `args` and derives the plan.
    pub fn new(args: &RunArgs) -> Result<Plan, String> {
        let o = &args.channels;
        if o.count == 0 || o.count > u32::MAX as usize {
            return Err("--channels must be between 1 and 4294967295".into());
        }
        if o.subscribers_per_channel > u32::MAX as usize {
            return Err("--subscribers-per-channel is too large".into());
        }
        if o.subscriptions_per_connection == 0 || o.subscriptions_per_connection > o.count {
            return Err(format!(
                "--subscriptions-per-connection must be between 1 and --channels ({})",
                o.count
            ));
        }
        let publishers = match o.publishers {
            Some(p) => p,
            None if args.rate <= 0.0 => 0,
            None => ((args.rate / RATE_PER_PUBLISHER).ceil() as usize).max(args.urls.len()),
        };
        if publishers == 0 && args.rate > 0.0 {
            return Err("--publishers 0 needs --rate 0".into());
        }
        let plan = Plan::build(
            o.count as u32,
            o.subscribers_per_channel as u32,
            o.subscriptions_per_connection as u32,
            publishers,
            args.urls.len(),
        );
        if plan.connections() == 0 {
            return Err("no connections: give --subscribers-per-channel or --publishers".into());
        }
        Ok(plan)
    }

    /// The plan for `c` channels × `s` subscribers, `k` per connection,
    /// `p` publishers over `urls` URLs (arguments already checked).
    fn build(c: u32, s: u32, k: u32, p: usize, urls: usize) -> Plan {
        let urls = urls.max(1);
        let mut blocks = Vec::with_capacity(urls);
        let mut start = 0;
        for u in 0..urls as u64 {
            let columns = (s as u64).saturating_sub(u).div_ceil(urls as u64);
            let conns = (c as u64 * columns).div_ceil(k as u64) as usize;
            blocks.push(Block {
                start,
                conns,
                columns,
            });
            start += conns;
        }
        Plan {
            channels: c,
            per_channel: s,
            per_conn: k,
            sub_conns: start,
            publishers: p,
            urls,
            blocks,
        }
    }

    /// All connections: subscribers, then publishers.
    pub fn connections(&self) -> usize {
        self.sub_conns + self.publishers
    }

    /// The subscriber block (URL) of connection `idx`, if a subscriber.
    fn block_of(&self, idx: usize) -> Option<(usize, &Block)> {
        if idx >= self.sub_conns {
            return None;
        }
        // Blocks are in index order; the first one ending after idx holds it.
        let u = self.blocks.partition_point(|b| b.start + b.conns <= idx);
        Some((u, &self.blocks[u]))
    }

    /// The URL (index into `--url`) connection `idx` uses.
    pub fn url_of(&self, idx: usize) -> usize {
        match self.block_of(idx) {
            Some((u, _)) => u,
            None => (idx - self.sub_conns) % self.urls,
        }
    }

    /// The channels connection `idx` subscribes to (none for a publisher).
    pub fn channels_of(&self, idx: usize) -> impl Iterator<Item = u32> {
        let c = self.channels as u64;
        let (first, last) = match self.block_of(idx) {
            Some((_, b)) => {
                let slots = c * b.columns;
                let k = self.per_conn as u64;
                let first = ((idx - b.start) as u64 * k).min(slots);
                (first, (first + k).min(slots))
            }
            None => (0, 0),
        };
        (first..last).map(move |t| ((t + t / c) % c) as u32)
    }

    /// The channel of publication `g`.
    pub fn channel_for(&self, g: u64) -> u32 {
        (g % self.channels as u64) as u32
    }

    /// The publisher number (0..P) that should send publication `g`.
    pub fn publisher_for(&self, g: u64) -> usize {
        let c = self.channels as u64;
        ((g / c + g % c) % self.publishers.max(1) as u64) as usize
    }

    /// The connection index of publisher `p`.
    pub fn publisher_conn(&self, p: usize) -> usize {
        self.sub_conns + p
    }

    /// Publisher number of connection `idx`, if it is one.
    pub fn publisher_of(&self, idx: usize) -> Option<u32> {
        idx.checked_sub(self.sub_conns).map(|p| p as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn plan(c: u32, s: u32, k: u32, p: usize) -> Plan {
        Plan::build(c, s, k, p, 1)
    }

    #[test]
    fn every_channel_gets_s_subscribers_and_a_connection_distinct_channels() {
        for (c, s, k) in [
            (10, 10, 1),
            (7, 3, 2),
            (10, 8, 8),
            (5, 4, 5),
            (9, 9, 4),
            (1, 50, 1),
        ] {
            let p = plan(c, s, k, 2);
            let mut per_channel = vec![0u32; c as usize];
            for idx in 0..p.sub_conns {
                let mine: Vec<u32> = p.channels_of(idx).collect();
                let distinct: HashSet<u32> = mine.iter().copied().collect();
                assert_eq!(
                    distinct.len(),
                    mine.len(),
                    "c={c} k={k} conn {idx}: {mine:?}"
                );
                assert!(mine.len() <= k as usize);
                for ch in mine {
                    per_channel[ch as usize] += 1;
                }
            }
            assert!(
                per_channel.iter().all(|&n| n == s),
                "c={c} s={s} k={k}: {per_channel:?}"
            );
            assert_eq!(
                p.channels_of(p.sub_conns).count(),
                0,
                "publishers subscribe nothing"
            );
        }
    }

    #[test]
    fn a_channels_subscribers_spread_evenly_over_the_urls() {
        for (c, s, k, urls) in [
            (4, 6, 1, 2),
            (10_000, 10, 10, 2),
            (20, 7, 8, 3),
            (6, 1, 2, 2),
        ] {
            let p = Plan::build(c, s, k, 3, urls);
            let mut on = vec![vec![0u32; urls]; c as usize];
            for idx in 0..p.sub_conns {
                let mine: Vec<u32> = p.channels_of(idx).collect();
                assert!(!mine.is_empty(), "c={c} s={s} k={k}: connection {idx} idle");
                let distinct: HashSet<u32> = mine.iter().copied().collect();
                assert_eq!(distinct.len(), mine.len(), "connection {idx}: {mine:?}");
                for ch in mine {
                    on[ch as usize][p.url_of(idx)] += 1;
                }
            }
            for (ch, per_url) in on.iter().enumerate() {
                let want: Vec<u32> = (0..urls as u32)
                    .map(|u| (s.saturating_sub(u)).div_ceil(urls as u32))
                    .collect();
                assert_eq!(per_url, &want, "c={c} s={s} k={k}: channel {ch}");
            }
            let pub_urls: Vec<usize> = (0..3).map(|q| p.url_of(p.publisher_conn(q))).collect();
            assert_eq!(pub_urls, (0..3).map(|q| q % urls).collect::<Vec<_>>());
        }
    }

    #[test]
    fn each_channel_gets_publications_from_every_publisher() {
        for (c, pubs) in [(4, 2), (1, 2), (1, 3), (6, 3), (2, 4)] {
            let p = plan(c, 1, 1, pubs);
            let mut seen = HashSet::new();
            let mut load = vec![0u32; pubs];
            for g in 0..(c as u64 * pubs as u64 * 4) {
                seen.insert((p.channel_for(g), p.publisher_for(g)));
                load[p.publisher_for(g)] += 1;
            }
            assert_eq!(seen.len(), c as usize * pubs, "c={c} p={pubs}: {seen:?}");
            assert!(load.iter().all(|&n| n == load[0]), "even load: {load:?}");
        }
    }
}
