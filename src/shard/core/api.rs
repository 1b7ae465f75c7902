//! Server API commands through the core: what a backend asks (publish,
//! send, broadcast, disconnect, subscribe and unsubscribe a user everywhere,
//! presence, history, user status) and what it gets back, for the whole
//! cluster. The HTTP side (`crate::api`) turns requests into
//! [`ApiCommand`]s and [`ApiOutcome`]s into responses; the core carries
//! them out like client messages, answering with `Action::ApiReply`.
//!
//! Operations on a user's connections (disconnect, subscribe, unsubscribe)
//! travel like a direct message: to the user's owner shard, to each shard
//! holding the user, and through the coordination layer to every other
//! instance holding it; each counts the connections it changed, and the
//! counts add up into the answer.

use std::sync::Arc;

use bytes::Bytes;

pub use crate::coordinator::UserOp;
use crate::coordinator::{PresencePage, StreamPage};
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::server_v2::UnsubscribeReason;
use crate::protocol::envelope::AckStatus;
use crate::protocol::UserId;

use super::channels::Joining;
use super::pending::{AckTarget, Remote};
use super::{Action, ConnKey, CoordinatorCall, ShardCore};

/// Who waits for an answer that may carry the request's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A client connection, and its request id.
    Client {
        /// The connection.
        conn: ConnKey,
        /// Its id, echoed.
        id: Option<String>,
    },
    /// A server API request.
    Api {
        /// Its token.
        token: u64,
    },
}

/// One server API command.
#[derive(Debug, Clone)]
pub enum ApiCommand {
    /// Publish (the `publication` JSON, without `senderId` and offset).
    Publish {
        /// The channel.
        channel: ChannelName,
        /// The publication's JSON.
        json: Bytes,
    },
    /// Send a `server_message` frame to every connection of a user.
    Send {
        /// The user.
        user: UserId,
        /// The framed `server_message`.
        frame: Bytes,
    },
    /// Broadcast a frame to every connection.
    Broadcast {
        /// The framed `broadcast`.
        frame: Bytes,
    },
    /// An operation on every connection of a user.
    User {
        /// The user.
        user: UserId,
        /// What to do.
        op: UserOp,
    },
    /// A channel's presence.
    Presence {
        /// The channel.
        channel: ChannelName,
    },
    /// A channel's history.
    History {
        /// The channel.
        channel: ChannelName,
        /// Only publications after this position.
        since: Option<(u64, Arc<str>)>,
        /// At most this many.
        limit: u32,
    },
    /// Where a user is connected.
    UserStatus {
        /// The user.
        user: UserId,
    },
    /// An idempotency key arrives: claim it (first time), or learn the
    /// answer it already had (or that another request is carrying it out).
    Claim {
        /// The key.
        key: Arc<str>,
    },
    /// Remember the answer of a claimed key for [`IDEMPOTENCY_TTL`].
    Settle {
        /// The key.
        key: Arc<str>,
        /// The answer to replay.
        answer: Bytes,
    },
}

/// How long an idempotency key is remembered, cluster-wide.
pub const IDEMPOTENCY_TTL: std::time::Duration =
    std::time::Duration::from_millis(crate::coordinator::IDEMPOTENCY_TTL_MS);

/// What claiming an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The key is new: carry the request out, then settle it.
    Fresh,
    /// A request with this key was carried out: its answer.
    Replay(Bytes),
    /// A request with this key is being carried out right now.
    InProgress,
}

/// The answer to an [`ApiCommand`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiOutcome {
    /// Published (with the offset and epoch when the channel keeps history).
    Published {
        /// Its offset.
        offset: Option<u64>,
        /// Its history's epoch.
        epoch: Option<Arc<str>>,
    },
    /// What became of a `send`.
    Sent {
        /// `delivered` (with its count), `stored`, `offline` or `failed`.
        status: AckStatus,
        /// Its place in the user's inbox.
        offset: Option<u64>,
    },
    /// A broadcast handed to every shard (and instance).
    Broadcast,
    /// Connections changed by a user operation; `complete` is false when
    /// some instance did not answer (the count is then a lower bound).
    Connections {
        /// How many.
        connections: u32,
        /// Every instance holding the user answered.
        complete: bool,
    },
    /// A channel's presence.
    Presence(PresencePage),
    /// A channel's history.
    History(StreamPage),
    /// The live servers holding a user's connections.
    UserStatus {
        /// Their ids.
        servers: Vec<String>,
    },
    /// What claiming an idempotency key found.
    Claim(Claimed),
    /// An idempotency key's answer is remembered.
    Settled,
    /// The channel's namespace lacks the feature (presence, history).
    NotAvailable,
    /// The coordination layer failed: nothing (or not everything) was done.
    Unavailable,
}

impl ShardCore {
    /// A server API command; the answer comes as `Action::ApiReply { token }`.
    pub fn api(&mut self, token: u64, cmd: ApiCommand, sent_at_us: u64, now_ms: u32) {
        self.now_ms = now_ms;
        match cmd {
            ApiCommand::Publish { channel, json } => {
                let target = Some(AckTarget::Api {
                    token,
                    counts: false,
                });
                self.publish(target, channel, json, sent_at_us)
            }
            ApiCommand::Send { user, frame } => {
                let target = Some(AckTarget::Api {
                    token,
                    counts: false,
                });
                self.send_direct_to(target, user, frame, sent_at_us)
            }
            ApiCommand::Broadcast { frame } => {
                self.send_broadcast(None, frame, None, sent_at_us);
                self.api_reply(token, ApiOutcome::Broadcast);
            }
            ApiCommand::User { user, op } => self.user_op(token, user, op),
            ApiCommand::Presence { channel } => {
                if !self.namespaces.options(&channel).presence {
                    return self.api_reply(token, ApiOutcome::NotAvailable);
                }
                self.presence_request(Who::Api { token }, channel, false)
            }
            ApiCommand::History {
                channel,
                since,
                limit,
            } => self.history(Who::Api { token }, channel, since, limit),
            ApiCommand::UserStatus { user } => self.user_status(token, user),
            ApiCommand::Claim { key } => self.idempotency(token, key, None),
            ApiCommand::Settle { key, answer } => self.idempotency(token, key, Some(answer)),
        }
    }

    /// Answers a server API command.
    pub(super) fn api_reply(&mut self, token: u64, outcome: ApiOutcome) {
        self.act(Action::ApiReply { token, outcome });
    }

    /// Sends an operation to every connection of `user`, everywhere.
    fn user_op(&mut self, token: u64, user: UserId, op: UserOp) {
        let remote = if self.cfg.remote {
            Remote::Waiting
        } else {
            Remote::None
        };
        let reply = self.pending_for(
            AckTarget::Api {
                token,
                counts: true,
            },
            remote,
        );
        self.route_op(user, op, reply);
    }

    /// Applies a user operation to one local connection; true when it
    /// changed something (counted in the answer).
    pub fn apply_user_op(&mut self, conn: ConnKey, user: &UserId, op: &UserOp) -> bool {
        match op {
            UserOp::Disconnect(reason) => {
                let reason = crate::close::CloseReason::disconnected(reason);
                self.act(Action::Close { conn, reason });
                true
            }
            UserOp::Subscribe(channel) => {
                let joining = Joining {
                    conn,
                    id: None,
                    recover: None,
                    at_connect: false,
                    user: user.clone(),
                };
                self.subscribe(joining, channel.clone());
                true
            }
            UserOp::Unsubscribe(channel) => {
                self.end_subscription(conn, channel, UnsubscribeReason::Server)
            }
        }
    }

    /// Claims (`answer` `None`) or settles an idempotency key: in the
    /// coordination layer (cluster-wide), or at the key's owner shard.
    fn idempotency(&mut self, token: u64, key: Arc<str>, answer: Option<Bytes>) {
        let shard = self.cfg.index;
        if self.cfg.remote {
            return self.coordinator(CoordinatorCall::Idempotency {
                key,
                answer,
                shard,
                token,
            });
        }
        let owner = self.owner_of(&key);
        let msg = super::ShardMsg::Idempotency {
            key,
            answer,
            shard,
            token,
        };
        self.send(owner, msg);
    }

    /// Owner (embedded mode): the instance's idempotency keys.
    pub(super) fn on_idempotency(
        &mut self,
        key: Arc<str>,
        answer: Option<Bytes>,
        shard: u16,
        token: u64,
    ) {
        let now = self.now_ms;
        let ttl = IDEMPOTENCY_TTL.as_millis() as u32;
        self.idempotency
            .retain(|_, (_, expires)| now.wrapping_sub(*expires) >= u32::MAX / 2);
        let outcome = match answer {
            Some(answer) => {
                self.idempotency
                    .insert(key, (Some(answer), now.wrapping_add(ttl)));
                ApiOutcome::Settled
            }
            None => match self.idempotency.get(&key) {
                Some((Some(answer), _)) => ApiOutcome::Claim(Claimed::Replay(answer.clone())),
                Some((None, _)) => ApiOutcome::Claim(Claimed::InProgress),
                None => {
                    self.idempotency.insert(key, (None, now.wrapping_add(ttl)));
                    ApiOutcome::Claim(Claimed::Fresh)
                }
            },
        };
        self.send(shard, super::ShardMsg::ApiAnswer { token, outcome });
    }

    /// Where `user` is connected: this instance's directory in embedded
    /// mode, the route table (live servers only) with Redis.
    fn user_status(&mut self, token: u64, user: UserId) {
        if self.cfg.remote {
            let shard = self.cfg.index;
            self.coordinator(CoordinatorCall::UserServers { user, shard, token });
            return;
        }
        let owner = self.owner_of(&user);
        let shard = self.cfg.index;
        self.send(owner, super::ShardMsg::UserStatus { user, shard, token });
    }

    /// Owner (embedded mode): whether a shard here holds `user`.
    pub(super) fn on_user_status(&mut self, user: UserId, shard: u16, token: u64) {
        let online = !self.directory.shards_of(&user).is_empty();
        let servers = if online {
            vec![self.server_id.to_string()]
        } else {
            Vec::new()
        };
        self.send(
            shard,
            super::ShardMsg::UserServers {
                token,
                servers: Some(servers),
            },
        );
    }

    /// The answer to a user status request of this shard.
    pub(super) fn on_user_servers(&mut self, token: u64, servers: Option<Vec<String>>) {
        let outcome = match servers {
            Some(servers) => ApiOutcome::UserStatus { servers },
            None => ApiOutcome::Unavailable,
        };
        self.api_reply(token, outcome);
    }
}
