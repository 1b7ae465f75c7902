//! What a connection receives, counted: deliveries (first sightings, with
//! their latency), duplicates, acks by status, heartbeat round trips,
//! errors, and for the channels scenario subscribe answers and publications.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use serde::Deserialize;

use super::unix_micros;
use super::wire::bump;
use crate::channels::subs::{Received, Subs};
use crate::shared::Shared;

#[derive(Deserialize)]
struct In {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    payload: Option<Payload>,
}

/// Our payload; foreign payloads (other shapes) fail to parse into it and are ignored.
#[derive(Deserialize)]
#[serde(untagged)]
enum Payload {
    Ours {
        /// The run's global sequence number.
        lg: u64,
        /// Send time, unix µs.
        t: u64,
        /// Run id.
        #[serde(default)]
        r: Option<u64>,
        /// Channels: channel index, the channel's publication number, the
        /// publisher's number and its own sequence number.
        #[serde(default)]
        c: Option<u32>,
        #[serde(default)]
        n: Option<u64>,
        #[serde(default)]
        p: Option<u32>,
        #[serde(default)]
        q: Option<u64>,
    },
    #[allow(dead_code)]
    Foreign(serde::de::IgnoredAny),
}

/// Seqs a connection has seen: chunk (seq / 64) → bitmask. Dense for
/// broadcast (one bit per message), a few words per message when sparse.
#[derive(Default)]
struct Seen(HashMap<u64, u64>);

impl Seen {
    /// True when `seq` is new.
    fn insert(&mut self, seq: u64) -> bool {
        let w = self.0.entry(seq >> 6).or_insert(0);
        let bit = 1u64 << (seq & 63);
        let new = *w & bit == 0;
        *w |= bit;
        new
    }
}

/// One connection's accounting.
pub struct Tally {
    /// Direct and broadcast messages seen.
    seen: Seen,
    /// Channel subscriptions (empty unless a channels subscriber).
    pub subs: Subs,
    /// When the outstanding heartbeat was sent.
    pub hb_sent: Option<Instant>,
}

impl Tally {
    pub fn new(subs: Subs) -> Self {
        Tally {
            seen: Seen::default(),
            subs,
            hb_sent: None,
        }
    }

    fn delivered(sh: &Shared, recv_us: u64, sent_us: u64) {
        sh.delivered.fetch_add(1, Relaxed);
        let _ = sh
            .lat_hist
            .lock()
            .unwrap()
            .record(recv_us.saturating_sub(sent_us).max(1));
    }

    /// Accounts for one text frame; returns a frame to send back, if any
    /// (a `latency_report` after a heartbeat round trip).
    pub fn on_text(&mut self, sh: &Shared, text: &str) -> Option<String> {
        let recv_us = unix_micros();
        let m = serde_json::from_str::<In>(text).ok()?;
        let seq_of = |id: &Option<String>| id.as_deref().and_then(|s| s.parse::<u64>().ok());
        match m.ty.as_str() {
            "chat_message" | "broadcast" => {
                if let Some(Payload::Ours { lg, t, r, .. }) = m.payload {
                    if r != Some(sh.run_id) || !sh.counts(lg) {
                        return None;
                    }
                    if self.seen.insert(lg) {
                        Self::delivered(sh, recv_us, t);
                    } else {
                        sh.duplicates.fetch_add(1, Relaxed);
                    }
                }
            }
            "publication" => {
                if let Some(Payload::Ours {
                    lg,
                    t,
                    r,
                    c: Some(c),
                    n: Some(n),
                    p: Some(p),
                    q: Some(q),
                }) = m.payload
                {
                    if r != Some(sh.run_id) || !sh.counts(lg) {
                        return None;
                    }
                    match self.subs.publication(c, n, p, q, lg) {
                        Received::First { out_of_order } => {
                            Self::delivered(sh, recv_us, t);
                            if out_of_order {
                                sh.out_of_order.fetch_add(1, Relaxed);
                            }
                        }
                        Received::Duplicate => {
                            sh.duplicates.fetch_add(1, Relaxed);
                        }
                        Received::Unexpected => {
                            sh.unexpected.fetch_add(1, Relaxed);
                        }
                    }
                }
            }
            "subscribed" => {
                if let Some(c) = m.id.as_deref().and_then(|id| self.subs.subscribed(id)) {
                    sh.chan_subs[c as usize].fetch_add(1, Relaxed);
                    sh.subscribed.fetch_add(1, Relaxed);
                }
            }
            "ack" => {
                let seq = seq_of(&m.id)?;
                if !sh.counts(seq) {
                    return None;
                }
                sh.answered.fetch_add(1, Relaxed);
                let counter = match m.status.as_deref() {
                    Some("delivered") => &sh.ack_delivered,
                    Some("offline") => &sh.ack_offline,
                    Some("published") => &sh.ack_published,
                    Some("failed") => &sh.ack_failed,
                    Some("rate_limited") => &sh.ack_rate_limited,
                    _ => return None,
                };
                counter.fetch_add(1, Relaxed);
            }
            "heartbeat_ack" => {
                let rtt = self.hb_sent.take()?.elapsed();
                sh.heartbeats.fetch_add(1, Relaxed);
                let _ = sh
                    .hb_hist
                    .lock()
                    .unwrap()
                    .record(rtt.as_micros().max(1) as u64);
                if sh.args.latency_reports {
                    let ms = (rtt.as_secs_f64() * 1e6).round() / 1e3;
                    return Some(format!("{{\"type\":\"latency_report\",\"payload\":{ms}}}"));
                }
            }
            "error" => {
                if let Some(seq) = seq_of(&m.id) {
                    if sh.counts(seq) {
                        sh.answered.fetch_add(1, Relaxed);
                    }
                } else if m.id.as_deref().is_some_and(|id| self.subs.refused(id)) {
                    sh.sub_refused.fetch_add(1, Relaxed);
                }
                bump(&sh.errors, m.code.as_deref().unwrap_or("unknown"));
            }
            _ => {}
        }
        None
    }
}
