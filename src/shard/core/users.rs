//! Local users and their registration with the owner shard.
//!
//! A connection's shard adds it to its local users; on the user's first
//! connection on this shard it sends `Register` to the user's owner, and
//! welcomes the user's connections when `Registered` comes back (the route
//! is in place everywhere then). On the user's last close it sends
//! `Unregister`. The owner keeps the directory and, for the user's first
//! and last connection on the instance, asks the coordination layer to add
//! or remove the route: all of a user's route changes pass through one
//! shard in mailbox order.

use std::sync::Arc;

use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

use super::channels::Joining;
use super::directory::{Registration, Waiter};
use super::{Action, ConnKey, CoordinatorCall, ShardCore, ShardMsg};

/// A connection whose welcome waits for its token's `subs` channels.
#[derive(Debug)]
pub struct WelcomeWait {
    /// Channels not subscribed yet.
    pub pending: usize,
    /// Its route is in place (the welcome waits only for the channels).
    pub registered: bool,
    /// The channels, listed in the welcome.
    pub channels: Vec<ChannelName>,
    /// The inbox's position, listed in the welcome (when the server keeps inboxes).
    pub inbox: Option<(u64, Arc<str>)>,
    /// The connection's generation: answers for an earlier holder of the
    /// slot are not for it.
    pub generation: u32,
}

impl ShardCore {
    /// An authenticated protocol connection was upgraded (its frames are
    /// held until the core asks for its welcome). `subs` are the channels
    /// its token subscribes it to: the welcome waits for them too.
    pub fn conn_opened(&mut self, conn: ConnKey, user: &UserId, subs: &[ChannelName]) {
        let inbox = self.cfg.inbox.is_some();
        if !subs.is_empty() || inbox {
            let wait = WelcomeWait {
                pending: subs.len() + usize::from(inbox),
                registered: false,
                channels: subs.to_vec(),
                inbox: None,
                generation: conn.generation,
            };
            self.welcome_waits.insert(conn.index, wait);
            for channel in subs {
                let joining = Joining {
                    conn,
                    id: None,
                    recover: None,
                    at_connect: true,
                    user: user.clone(),
                };
                self.subscribe(joining, channel.clone());
            }
            if inbox {
                self.read_welcome_inbox(conn, user);
            }
        }
        let local = self.users.entry(user.clone()).or_default();
        local.conns.push(conn.index);
        if local.registering != 0 {
            // Welcomed with the others once the registration in flight ends.
            return;
        }
        if local.conns.len() > 1 {
            self.welcome(conn.index);
            return;
        }
        let token = self.token();
        if let Some(local) = self.users.get_mut(user) {
            local.registering = token;
        }
        self.registrations.insert(token, user.clone());
        let owner = self.owner_of(user);
        let msg = ShardMsg::Register {
            user: user.clone(),
            shard: self.cfg.index,
            token,
        };
        self.send(owner, msg);
    }

    /// A protocol connection is gone (its slot may be reused after this).
    pub fn conn_closed(&mut self, conn: ConnKey, user: &UserId) {
        self.drop_subscriptions(conn);
        let Some(local) = self.users.get_mut(user) else {
            return;
        };
        local.conns.retain(|i| *i != conn.index);
        if !local.conns.is_empty() {
            return;
        }
        if local.registering != 0 {
            let token = local.registering;
            self.registrations.remove(&token);
        }
        self.users.remove(user);
        let owner = self.owner_of(user);
        let msg = ShardMsg::Unregister {
            user: user.clone(),
            shard: self.cfg.index,
        };
        self.send(owner, msg);
    }

    /// The owner confirmed a registration: welcome every waiting connection.
    pub(super) fn on_registered(&mut self, token: u64) {
        let Some(user) = self.registrations.remove(&token) else {
            return;
        };
        let Some(local) = self.users.get_mut(&user) else {
            return;
        };
        if local.registering != token {
            return;
        }
        local.registering = 0;
        let conns = local.conns.clone();
        for conn in conns {
            self.welcome(conn);
        }
    }

    /// The connection's route is in place: welcome it, unless channels of
    /// its token's `subs` claim are still being subscribed.
    fn welcome(&mut self, conn: u32) {
        let (subscriptions, inbox) = match self.welcome_waits.get_mut(&conn) {
            Some(w) if w.pending > 0 => {
                w.registered = true;
                return;
            }
            Some(_) => self
                .welcome_waits
                .remove(&conn)
                .map(|w| (w.channels, w.inbox))
                .unwrap_or_default(),
            None => (Vec::new(), None),
        };
        self.act(Action::Welcome {
            conn,
            subscriptions,
            inbox,
        });
    }

    /// One thing the connection's welcome waits for is ready: a channel of
    /// its token's `subs` claim, or the inbox position.
    pub(super) fn subscription_ready(&mut self, conn: u32) {
        let Some(w) = self.welcome_waits.get_mut(&conn) else {
            return;
        };
        w.pending = w.pending.saturating_sub(1);
        if w.pending == 0 && w.registered {
            self.welcome(conn);
        }
    }

    /// Owner: `shard` now holds a connection of `user`.
    pub(super) fn on_register(&mut self, user: UserId, shard: u16, token: u64) {
        let waiter = Waiter { shard, token };
        match self.directory.register(&user, waiter) {
            Registration::Ready => self.answer_registration(waiter),
            Registration::Waiting => {}
            Registration::AddRoute if self.cfg.remote => {
                let token = self.token();
                self.directory.route_requested(&user, token);
                let shard = self.cfg.index;
                self.coordinator(CoordinatorCall::AddRoute { user, shard, token });
            }
            Registration::AddRoute => {
                // No other instance: the directory is the whole route table.
                for w in self.directory.take_waiters(&user) {
                    self.answer_registration(w);
                }
            }
        }
    }

    /// Owner: the coordination layer stored the route asked with `token`.
    pub(super) fn on_route_added(&mut self, token: u64) {
        for w in self.directory.route_added(token) {
            self.answer_registration(w);
        }
    }

    /// Owner: `shard` holds no connection of `user` any more.
    pub(super) fn on_unregister(&mut self, user: UserId, shard: u16) {
        if self.directory.unregister(&user, shard) && self.cfg.remote {
            self.coordinator(CoordinatorCall::RemoveRoute { user });
        }
    }

    fn answer_registration(&mut self, w: Waiter) {
        self.send(w.shard, ShardMsg::Registered { token: w.token });
    }

    /// The coordination layer lost its state: store every owned user's
    /// route again. Not awaited: these connections were welcomed long ago.
    pub(super) fn reregister_routes(&mut self) {
        if !self.cfg.remote {
            return;
        }
        let users: Vec<UserId> = self.directory.users().cloned().collect();
        let shard = self.cfg.index;
        for user in users {
            let token = self.token();
            self.coordinator(CoordinatorCall::AddRoute { user, shard, token });
        }
    }
}
