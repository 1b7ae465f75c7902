//! Streams: a channel's history or a user's inbox, numbered 1, 2, 3, … in
//! one epoch. What the shards ask of them and what comes back, the same for
//! Redis and for the embedded broker.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

/// Which stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamKey {
    /// A channel's history.
    Channel(ChannelName),
    /// A user's inbox of direct messages.
    Inbox(UserId),
}

impl StreamKey {
    /// The name the stream is owned and keyed by (the channel, or the user).
    pub fn name(&self) -> &str {
        match self {
            StreamKey::Channel(c) => c,
            StreamKey::Inbox(u) => u,
        }
    }
}

/// How a stream keeps its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Entries kept.
    pub size: u32,
    /// How long an idle stream is kept.
    pub ttl: Duration,
}

/// A read of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamQuery {
    /// Only entries after this offset of this epoch (`None`: the newest).
    pub since: Option<(u64, Arc<str>)>,
    /// At most this many entries (0: only the position).
    pub limit: u32,
    /// How the stream is kept (a stream that does not exist yet starts an
    /// epoch, kept this long).
    pub retention: Retention,
}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPage {
    /// Offset of the newest entry (0: none yet).
    pub top: u64,
    /// The current epoch.
    pub epoch: Arc<str>,
    /// With `since`: true when it is in this epoch and every entry after it
    /// is still kept (then `entries` are the first of them, oldest first);
    /// false otherwise (and `entries` is empty). Without `since`: true.
    pub complete: bool,
    /// Entries (JSON objects carrying their `offset`), oldest first.
    pub entries: Vec<Bytes>,
}

/// Where an appended entry landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its offset.
    pub offset: u64,
    /// The stream's epoch.
    pub epoch: Arc<str>,
}

/// A channel's presence as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresencePage {
    /// Users with their connection counts (at most the asked cap).
    pub users: Vec<(String, u32)>,
    /// Users subscribed, in all.
    pub user_count: u64,
    /// Connections subscribed, in all.
    pub connections: u64,
    /// More users than listed.
    pub truncated: bool,
}
