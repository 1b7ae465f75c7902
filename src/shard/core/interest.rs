//! The channel owner's view: which shards of the instance want a channel's
//! publications, and whether the instance is subscribed to it in the
//! coordination layer.
//!
//! Every channel has one owner shard (a fixed hash of its name, like a
//! user's). Shards tell it when their first local subscriber arrives and
//! when their last one leaves; it asks the coordination layer to subscribe
//! the instance when the first shard wants the channel and to unsubscribe it
//! when the last one stops, and answers each shard once the subscription is
//! in place. All publications of a channel pass through its owner on their
//! way to the interested shards, so every shard sees them in one order.

use std::collections::HashMap;

use smallvec::SmallVec;

use crate::protocol::channel::ChannelName;

/// A shard's `Interest` waiting for the coordination layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker {
    /// The shard.
    pub shard: u16,
    /// Its token, echoed in `InterestReady`.
    pub token: u64,
}

/// Whether the instance is subscribed in the coordination layer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Remote {
    /// A subscribe with this token is in flight; `askers` wait for it.
    Subscribing {
        /// The owner's token for the coordinator.
        token: u64,
        /// Shards to answer once it is in place.
        askers: SmallVec<[Asker; 2]>,
    },
    /// Subscribed (or no coordination layer to subscribe in).
    Active,
}

/// One owned channel with interested shards.
#[derive(Debug)]
struct Owned {
    /// Shards with a local subscriber.
    shards: SmallVec<[u16; 4]>,
    /// The instance's subscription.
    remote: Remote,
}

/// What the owner must do after a shard's `Interest`.
#[derive(Debug, PartialEq, Eq)]
pub enum InterestStep {
    /// Answer the shard now.
    Answer,
    /// Ask the coordination layer to subscribe (with this token); the
    /// answer comes with its confirmation.
    Subscribe(u64),
    /// A subscribe is in flight; the answer comes with its confirmation.
    Wait,
    /// Nothing (a shard stopped, others remain).
    Nothing,
    /// No shard wants the channel any more: unsubscribe the instance.
    Unsubscribe,
}

/// The channels this shard owns that some shard wants.
#[derive(Debug, Default)]
pub struct Interests {
    /// Channel → its interested shards.
    owned: HashMap<ChannelName, Owned>,
    /// Coordinator token → channel being subscribed.
    tokens: HashMap<u64, ChannelName>,
}

impl Interests {
    /// Channels some shard of the instance wants (this owner's share).
    pub fn len(&self) -> usize {
        self.owned.len()
    }

    /// True when no owned channel is wanted.
    pub fn is_empty(&self) -> bool {
        self.owned.is_empty()
    }

    /// Shards wanting `channel`.
    pub fn shards(&self, channel: &str) -> &[u16] {
        self.owned.get(channel).map_or(&[], |o| o.shards.as_slice())
    }

    /// `asker` wants the channel; `remote` says whether the instance must
    /// subscribe in a coordination layer; `token` is used if it must.
    pub fn want(
        &mut self,
        channel: &ChannelName,
        asker: Asker,
        remote: bool,
        token: u64,
    ) -> InterestStep {
        let owned = self.owned.entry(channel.clone()).or_insert_with(|| Owned {
            shards: SmallVec::new(),
            remote: if remote {
                Remote::Subscribing {
                    token: 0,
                    askers: SmallVec::new(),
                }
            } else {
                Remote::Active
            },
        });
        if !owned.shards.contains(&asker.shard) {
            owned.shards.push(asker.shard);
        }
        match &mut owned.remote {
            Remote::Active => InterestStep::Answer,
            Remote::Subscribing { token: 0, askers } => {
                askers.push(asker);
                owned.remote = Remote::Subscribing {
                    token,
                    askers: std::mem::take(askers),
                };
                self.tokens.insert(token, channel.clone());
                InterestStep::Subscribe(token)
            }
            Remote::Subscribing { askers, .. } => {
                askers.push(asker);
                InterestStep::Wait
            }
        }
    }

    /// `shard` no longer wants the channel.
    pub fn unwant(&mut self, channel: &str, shard: u16) -> InterestStep {
        let Some(owned) = self.owned.get_mut(channel) else {
            return InterestStep::Nothing;
        };
        owned.shards.retain(|s| *s != shard);
        if let Remote::Subscribing { askers, .. } = &mut owned.remote {
            askers.retain(|a| a.shard != shard);
        }
        if !owned.shards.is_empty() {
            return InterestStep::Nothing;
        }
        if let Some(Owned {
            remote: Remote::Subscribing { token, .. },
            ..
        }) = self.owned.remove(channel)
        {
            self.tokens.remove(&token);
        }
        InterestStep::Unsubscribe
    }

    /// The coordination layer confirmed `token`: the shards to answer. A
    /// confirmation of an earlier subscribe (the channel was dropped and
    /// wanted again since) answers nobody.
    pub fn subscribed(&mut self, token: u64) -> Option<(ChannelName, SmallVec<[Asker; 2]>)> {
        let channel = self.tokens.remove(&token)?;
        let owned = self.owned.get_mut(&channel)?;
        match &mut owned.remote {
            Remote::Subscribing { token: t, askers } if *t == token => {
                let askers = std::mem::take(askers);
                owned.remote = Remote::Active;
                Some((channel, askers))
            }
            _ => None,
        }
    }

    /// Every channel the instance is subscribed to (or subscribing).
    pub fn channels(&self) -> impl Iterator<Item = &ChannelName> {
        self.owned.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    fn asker(shard: u16, token: u64) -> Asker {
        Asker { shard, token }
    }

    #[test]
    fn the_instance_subscribes_once_and_answers_every_waiting_shard() {
        let mut i = Interests::default();
        let c = chan("room");
        assert_eq!(
            i.want(&c, asker(0, 1), true, 100),
            InterestStep::Subscribe(100)
        );
        assert_eq!(i.want(&c, asker(1, 2), true, 101), InterestStep::Wait);
        let (channel, askers) = i.subscribed(100).unwrap();
        assert_eq!(channel, c);
        assert_eq!(askers.as_slice(), &[asker(0, 1), asker(1, 2)]);
        assert_eq!(i.want(&c, asker(2, 3), true, 102), InterestStep::Answer);
        assert_eq!(i.shards("room"), &[0, 1, 2]);
    }

    #[test]
    fn the_last_shard_leaving_unsubscribes_and_old_confirmations_answer_nobody() {
        let mut i = Interests::default();
        let c = chan("room");
        i.want(&c, asker(0, 1), true, 100);
        assert_eq!(i.unwant("room", 0), InterestStep::Unsubscribe);
        assert_eq!(
            i.want(&c, asker(0, 2), true, 101),
            InterestStep::Subscribe(101)
        );
        assert!(i.subscribed(100).is_none());
        assert_eq!(i.subscribed(101).unwrap().1.as_slice(), &[asker(0, 2)]);
        i.want(&c, asker(1, 3), true, 102);
        assert_eq!(i.unwant("room", 0), InterestStep::Nothing);
        assert_eq!(i.unwant("room", 1), InterestStep::Unsubscribe);
        assert!(i.is_empty());
        assert_eq!(i.unwant("room", 1), InterestStep::Nothing);
    }

    #[test]
    fn without_a_coordination_layer_every_shard_is_answered_at_once() {
        let mut i = Interests::default();
        assert_eq!(
            i.want(&chan("a"), asker(0, 1), false, 9),
            InterestStep::Answer
        );
        assert_eq!(i.len(), 1);
    }
}
