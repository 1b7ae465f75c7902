//! Recovery on channels with history: a new subscriber's position (and,
//! when asked, the publications it missed) is read first; live publications
//! meanwhile wait in its buffer, and once it is a member it skips those
//! already read, so none is lost or sent twice.
//!
//! The buffer is bounded ([`MAX_BUFFERED`]). Past it, the buffered frames
//! are dropped and only the newest dropped offset is remembered: the
//! subscriber's position becomes that offset (never older than the read's),
//! so `subscribed` reports the offset right before the first publication it
//! then receives, a plain subscriber is never silently missing one after
//! the offset it was told, and a recovery answers `recovered: false`.

use std::rc::Rc;

use bytes::Bytes;

use super::{Joining, Subscriptions, Targets};

/// A subscriber of a channel with history whose position (and, asked to
/// recover, missed publications) is being read: live publications wait in
/// its buffer until the read returns, so none is lost or sent twice.
#[derive(Debug)]
pub struct Recovering {
    /// The subscribe request.
    pub joining: Joining,
    /// The read's token.
    pub token: u64,
    /// Live publications meanwhile: `(offset, frame)`, in channel order.
    pub buffer: Vec<(u64, Bytes)>,
    /// More arrived than [`MAX_BUFFERED`]: the buffer was dropped, and this
    /// is the offset of the newest publication dropped (the recovery cannot
    /// be complete; the position moves past it).
    pub dropped: Option<u64>,
}

impl Recovering {
    /// `joining`'s read with `token` is under way; nothing buffered yet.
    pub fn new(joining: Joining, token: u64) -> Self {
        Self {
            joining,
            token,
            buffer: Vec::new(),
            dropped: None,
        }
    }

    /// A live publication while the read is under way: buffered, or past
    /// [`MAX_BUFFERED`] dropped with everything buffered (memory stays
    /// bounded; only its offset is kept).
    fn live(&mut self, offset: u64, frame: &Bytes) {
        if self.dropped.is_none() && self.buffer.len() < MAX_BUFFERED {
            self.buffer.push((offset, frame.clone()));
        } else {
            self.buffer = Vec::new();
            self.dropped = Some(offset);
        }
    }

    /// More live publications arrived than could be buffered.
    pub fn overflowed(&self) -> bool {
        self.dropped.is_some()
    }

    /// The subscriber's position once the read found the channel at `top`:
    /// `top`, or the newest dropped publication when that is newer, so the
    /// publications it receives next continue right after it.
    pub fn position(&self, top: Option<u64>) -> Option<u64> {
        match (top, self.dropped) {
            (Some(top), Some(dropped)) => Some(top.max(dropped)),
            (top, _) => top,
        }
    }
}

/// Most live publications buffered per recovering subscriber.
pub const MAX_BUFFERED: usize = 1_000;

impl Subscriptions {
    /// The connections of `joined` read their position first (with these
    /// tokens): from joining to recovering.
    pub fn begin_reads(&mut self, channel: &str, joined: Vec<(Joining, u64)>) {
        if let Some(&slot) = self.by_name.get(channel) {
            let ch = &mut self.slots[slot as usize];
            for (joining, token) in joined {
                ch.recovering.push(Recovering::new(joining, token));
            }
        }
    }

    /// A live publication: every recovering subscriber buffers it. Returns
    /// the members to deliver it to: the shared list, or (while a recovered
    /// member may already have it) the list without those.
    pub fn publication(
        &mut self,
        channel: &str,
        offset: Option<u64>,
        frame: &Bytes,
    ) -> Option<Targets> {
        let &slot = self.by_name.get(channel)?;
        let ch = &mut self.slots[slot as usize];
        if let Some(offset) = offset {
            for r in &mut ch.recovering {
                r.live(offset, frame);
            }
        }
        if ch.skips.is_empty() || offset.is_none() {
            return Some(Targets::Shared(ch.members.clone()));
        }
        let offset = offset.unwrap_or(0);
        let skipped: Vec<u32> = ch
            .skips
            .iter()
            .filter(|(_, upto)| offset <= *upto)
            .map(|(m, _)| *m)
            .collect();
        ch.skips.retain(|(_, upto)| offset <= *upto);
        let targets = ch
            .members
            .iter()
            .copied()
            .filter(|m| !skipped.contains(m))
            .collect();
        Some(Targets::Some(targets))
    }

    /// The read with `token` returned (the channel at `top`): the
    /// recovering subscriber leaves recovery and becomes a member that skips
    /// publications up to its [`Recovering::position`].
    pub fn finish_read(
        &mut self,
        channel: &str,
        token: u64,
        top: Option<u64>,
    ) -> Option<Recovering> {
        let &slot = self.by_name.get(channel)?;
        let ch = &mut self.slots[slot as usize];
        let pos = ch.recovering.iter().position(|r| r.token == token)?;
        let r = ch.recovering.swap_remove(pos);
        let index = r.joining.conn.index;
        Rc::make_mut(&mut ch.members).push(index);
        if let Some(upto) = r.position(top) {
            ch.skips.push((index, upto));
        }
        Some(r)
    }
}
