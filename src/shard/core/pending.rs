//! Acks a sender waits for: the sum of delivery counts from every shard that
//! holds the receiver, plus the remote instances' answer.

use std::collections::HashMap;

use crate::coordinator::RemoteOutcome;
use crate::protocol::envelope::AckStatus;

use super::ConnKey;

/// The remote half of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// Nothing is remote (embedded coordinator, or a broadcast).
    None,
    /// The coordination layer will answer.
    Waiting,
    /// It answered.
    Done(RemoteOutcome),
}

/// Who waits for an answer: a client (an `ack` with its message id) or a
/// server API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckTarget {
    /// A client connection.
    Client {
        /// The sending connection.
        conn: ConnKey,
        /// The client's message id.
        id: String,
    },
    /// A server API request, by its token.
    Api {
        /// The request's token.
        token: u64,
        /// It counts connections changed (a user operation) rather than
        /// reporting a delivery status.
        counts: bool,
    },
}

/// One message waiting for its ack.
#[derive(Debug)]
pub struct PendingAck {
    /// Who waits for it.
    pub target: AckTarget,
    /// Parts (shards) expected; 0 until the first report says.
    pub parts: u32,
    /// Parts reported so far.
    pub reported: u32,
    /// Local receiver connections that accepted the message.
    pub connections: u32,
    /// The remote half.
    pub remote: Remote,
    /// Shard clock (ms) after which a missing remote answer counts as `failed`.
    pub deadline_ms: u32,
    /// The receiver's inbox is on: the message's place in it (`None` while
    /// it is being stored, or when storing it failed).
    pub inbox: Option<Option<u64>>,
}

impl PendingAck {
    /// The ack status once every part is in, or `None` while waiting.
    pub fn status(&self) -> Option<AckStatus> {
        if self.parts == 0 || self.reported < self.parts || self.remote == Remote::Waiting {
            return None;
        }
        Some(self.final_status())
    }

    /// Connections that took it here and on other instances.
    pub fn total(&self) -> u32 {
        let remote = match self.remote {
            Remote::Done(RemoteOutcome::Delivered { connections }) => connections,
            _ => 0,
        };
        self.connections + remote
    }

    /// Every part answered and no instance failed.
    pub fn is_complete(&self) -> bool {
        let remote_ok = !matches!(
            self.remote,
            Remote::Waiting | Remote::Done(RemoteOutcome::Failed)
        );
        self.parts > 0 && self.reported >= self.parts && remote_ok
    }

    /// The status given what is known now (used at the deadline).
    pub fn final_status(&self) -> AckStatus {
        let remote_connections = match self.remote {
            Remote::Done(RemoteOutcome::Delivered { connections }) => connections,
            _ => 0,
        };
        let total = self.connections + remote_connections;
        if total > 0 {
            AckStatus::Delivered { connections: total }
        } else if let Some(Some(offset)) = self.inbox {
            // Kept in the inbox: the receiver gets it whether or not an
            // instance that did not answer (or a route table too new to
            // trust) had a connection of theirs. `failed` would invite a
            // retry and a duplicate in the inbox.
            AckStatus::Stored { offset }
        } else if matches!(
            self.remote,
            Remote::Waiting | Remote::Done(RemoteOutcome::Failed)
        ) || self.reported < self.parts
        {
            AckStatus::Failed
        } else {
            match self.inbox {
                None => AckStatus::Offline,
                Some(Some(offset)) => AckStatus::Stored { offset },
                // Nobody took it and it could not be kept: it is lost.
                Some(None) => AckStatus::Failed,
            }
        }
    }
}

/// A shard's pending acks by token.
#[derive(Debug, Default)]
pub struct PendingAcks {
    /// Token → pending ack.
    acks: HashMap<u64, PendingAck>,
}

impl PendingAcks {
    /// Starts waiting for `token`.
    pub fn insert(&mut self, token: u64, ack: PendingAck) {
        self.acks.insert(token, ack);
    }

    /// Folds in one shard's count; returns the ack when complete.
    pub fn report(
        &mut self,
        token: u64,
        connections: u32,
        parts: u32,
    ) -> Option<(PendingAck, AckStatus)> {
        let ack = self.acks.get_mut(&token)?;
        ack.parts = parts.max(1);
        ack.reported += 1;
        ack.connections += connections;
        self.take_if_done(token)
    }

    /// Folds in the remote answer; returns the ack when complete.
    pub fn remote(
        &mut self,
        token: u64,
        outcome: RemoteOutcome,
    ) -> Option<(PendingAck, AckStatus)> {
        let ack = self.acks.get_mut(&token)?;
        ack.remote = Remote::Done(outcome);
        self.take_if_done(token)
    }

    fn take_if_done(&mut self, token: u64) -> Option<(PendingAck, AckStatus)> {
        let status = self.acks.get(&token)?.status()?;
        self.acks.remove(&token).map(|a| (a, status))
    }

    /// Removes and returns every ack whose deadline passed at `now_ms`.
    pub fn expire(&mut self, now_ms: u32) -> Vec<(PendingAck, AckStatus)> {
        let expired: Vec<u64> = self
            .acks
            .iter()
            .filter(|(_, a)| now_ms.wrapping_sub(a.deadline_ms) < u32::MAX / 2)
            .map(|(t, _)| *t)
            .collect();
        expired
            .into_iter()
            .filter_map(|t| self.acks.remove(&t))
            .map(|a| {
                let status = a.final_status();
                (a, status)
            })
            .collect()
    }

    /// Where the message landed in the receiver's inbox.
    pub fn stored_at(&mut self, token: u64, offset: Option<u64>) {
        if let Some(ack) = self.acks.get_mut(&token) {
            ack.inbox = Some(offset);
        }
    }

    /// Gives back the room a burst of acks left behind.
    pub fn shrink_if_sparse(&mut self) {
        use super::footprint::Shrink;
        self.acks.shrink_if_sparse();
    }

    /// Number of acks waiting.
    pub fn len(&self) -> usize {
        self.acks.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(remote: Remote) -> PendingAck {
        PendingAck {
            target: AckTarget::Client {
                conn: ConnKey {
                    index: 0,
                    generation: 1,
                },
                id: "m1".into(),
            },
            parts: 0,
            reported: 0,
            connections: 0,
            remote,
            deadline_ms: 1000,
            inbox: None,
        }
    }

    #[test]
    fn delivered_when_all_parts_report() {
        let mut p = PendingAcks::default();
        p.insert(1, pending(Remote::None));
        assert!(p.report(1, 2, 2).is_none());
        let (_, status) = p.report(1, 1, 2).unwrap();
        assert_eq!(status, AckStatus::Delivered { connections: 3 });
        assert!(p.is_empty());
    }

    #[test]
    fn offline_when_nobody_took_it() {
        let mut p = PendingAcks::default();
        p.insert(1, pending(Remote::Waiting));
        assert!(p.report(1, 0, 1).is_none(), "waits for the remote answer");
        let (_, status) = p.remote(1, RemoteOutcome::Offline).unwrap();
        assert_eq!(status, AckStatus::Offline);
    }

    #[test]
    fn remote_failure_with_no_local_receiver_is_failed() {
        let mut p = PendingAcks::default();
        p.insert(1, pending(Remote::Waiting));
        p.report(1, 0, 1);
        let (_, status) = p.remote(1, RemoteOutcome::Failed).unwrap();
        assert_eq!(status, AckStatus::Failed);
    }

    #[test]
    fn remote_and_local_counts_add_up() {
        let mut p = PendingAcks::default();
        p.insert(1, pending(Remote::Waiting));
        p.remote(1, RemoteOutcome::Delivered { connections: 2 });
        let (_, status) = p.report(1, 1, 1).unwrap();
        assert_eq!(status, AckStatus::Delivered { connections: 3 });
    }

    #[test]
    fn deadline_turns_a_silent_remote_into_failed() {
        let mut p = PendingAcks::default();
        p.insert(1, pending(Remote::Waiting));
        p.report(1, 0, 1);
        assert!(p.expire(999).is_empty());
        let expired = p.expire(1000);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].1, AckStatus::Failed);
    }

    #[test]
    fn an_offline_receiver_with_an_inbox_is_stored_or_failed() {
        let mut p = PendingAcks::default();
        let mut stored = pending(Remote::None);
        stored.inbox = Some(Some(7));
        p.insert(1, stored);
        let (_, status) = p.report(1, 0, 1).unwrap();
        assert_eq!(status, AckStatus::Stored { offset: 7 });
        let mut lost = pending(Remote::None);
        lost.inbox = Some(None);
        p.insert(2, lost);
        assert_eq!(p.report(2, 0, 1).unwrap().1, AckStatus::Failed);
    }

    #[test]
    fn a_message_kept_in_the_inbox_is_stored_even_when_the_remote_half_failed() {
        let mut p = PendingAcks::default();
        let mut kept = pending(Remote::Waiting);
        kept.inbox = Some(Some(3));
        p.insert(1, kept);
        assert!(p.report(1, 0, 1).is_none());
        let (_, status) = p.remote(1, RemoteOutcome::Failed).unwrap();
        assert_eq!(status, AckStatus::Stored { offset: 3 });
        let mut silent = pending(Remote::Waiting);
        silent.inbox = Some(Some(4));
        p.insert(2, silent);
        p.report(2, 0, 1);
        let expired = p.expire(1000);
        assert_eq!(expired[0].1, AckStatus::Stored { offset: 4 });
    }
}
