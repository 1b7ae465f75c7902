//! Recovery on channels with history: a new subscriber's position (and,
//! when asked, the publications it missed) is read first; live publications
//! meanwhile wait in its buffer, and once it is a member it skips those
//! already read, so none is lost or sent twice.

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
    /// More arrived than [`MAX_BUFFERED`]: the recovery cannot be complete.
    pub overflowed: bool,
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
                ch.recovering.push(Recovering {
                    joining,
                    token,
                    buffer: Vec::new(),
                    overflowed: false,
                });
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
                if r.buffer.len() >= MAX_BUFFERED {
                    r.overflowed = true;
                    r.buffer.clear();
                } else if !r.overflowed {
                    r.buffer.push((offset, frame.clone()));
                }
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

    /// The read with `token` returned: the recovering subscriber leaves
    /// recovery and becomes a member that skips publications up to `upto`.
    pub fn finish_read(
        &mut self,
        channel: &str,
        token: u64,
        upto: Option<u64>,
    ) -> Option<Recovering> {
        let &slot = self.by_name.get(channel)?;
        let ch = &mut self.slots[slot as usize];
        let pos = ch.recovering.iter().position(|r| r.token == token)?;
        let r = ch.recovering.swap_remove(pos);
        let index = r.joining.conn.index;
        Rc::make_mut(&mut ch.members).push(index);
        if let Some(upto) = upto {
            ch.skips.push((index, upto));
        }
        Some(r)
    }
}
