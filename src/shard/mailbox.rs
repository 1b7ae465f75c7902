//! Cross-shard mailboxes: the only way shards (and the coordination thread)
//! talk to a shard.
//!
//! # Wake-up strategy
//! A mailbox is a lock-free `crossbeam` [`SegQueue`] plus one [`AtomicWaker`]
//! and a `notified` flag. A producer pushes, then sets `notified`; only the
//! producer that flips it from `false` to `true` wakes the shard (under monoio's
//! `sync` feature that is one eventfd write to the parked thread). The shard
//! drains up to a batch of messages per turn and clears `notified` only after
//! finding the queue empty and re-registering its waker, then looks once more.
//! So a burst of N messages from any number of threads costs one wake-up, and
//! no message can be left behind without one.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;

use atomic_waker::AtomicWaker;
use crossbeam_queue::SegQueue;
use crossbeam_utils::CachePadded;

use super::messages::ShardMsg;

/// One shard's inbox.
#[derive(Default)]
pub struct Mailbox {
    /// The messages, in push order per producer.
    queue: SegQueue<ShardMsg>,
    /// The shard's mailbox task, woken on the empty → non-empty edge.
    waker: AtomicWaker,
    /// Set by the first producer after the shard last looked; coalesces wake-ups.
    notified: CachePadded<AtomicBool>,
    /// Messages pushed so far (for the mailbox-depth figure in metrics and tests).
    pushed: AtomicU64,
}

impl Mailbox {
    /// Creates an empty mailbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Enqueues a message and wakes the shard if it may be asleep.
    pub fn push(&self, msg: ShardMsg) {
        self.queue.push(msg);
        self.pushed.fetch_add(1, Ordering::Relaxed);
        if !self.notified.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Messages pushed since start.
    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Relaxed)
    }

    /// Waits until at least one message is there, then moves up to `max` of
    /// them into `out`.
    pub async fn recv_batch(&self, out: &mut Vec<ShardMsg>, max: usize) {
        poll_fn(|cx| {
            if self.drain(out, max) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            self.notified.store(false, Ordering::Release);
            if self.drain(out, max) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Moves up to `max` messages into `out` without waiting; true if any moved.
    pub fn drain(&self, out: &mut Vec<ShardMsg>, max: usize) -> bool {
        let before = out.len();
        while out.len() - before < max {
            match self.queue.pop() {
                Some(msg) => out.push(msg),
                None => break,
            }
        }
        out.len() > before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn messages_from_other_threads_arrive_in_order_per_producer() {
        let mailbox = Arc::new(Mailbox::new());
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let mb = mailbox.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        mb.push(ShardMsg::DeliveryReport {
                            token: p * 10_000 + i,
                            connections: 0,
                            parts: 1,
                        });
                    }
                })
            })
            .collect();
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let mut out = Vec::new();
            while out.len() < 2000 {
                mailbox.recv_batch(&mut out, 64).await;
            }
            out
        });
        for p in producers {
            p.join().unwrap();
        }
        let mut last = [None::<u64>; 2];
        for msg in got {
            let ShardMsg::DeliveryReport { token, .. } = msg else {
                panic!("unexpected message")
            };
            let p = (token / 10_000) as usize;
            assert!(
                last[p].is_none_or(|l| l < token),
                "out of order for producer {p}"
            );
            last[p] = Some(token);
        }
        assert_eq!(mailbox.pushed(), 2000);
    }
}
