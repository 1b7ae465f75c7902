//! A connection's life on its shard: insert, register, welcome, remove.

use std::os::fd::OwnedFd;
use std::rc::Rc;

use crate::metrics::Counter;
use crate::protocol::envelope::{self, Welcome};
use crate::protocol::frame::text_frame_with;
use crate::protocol::UserId;

use super::{CloseAll, Conn, ConnKey, Ending, OutFrame, Phase, Shard, ShardMsg};

impl Shard {
    /// Adds an upgraded connection (its socket not yet in the readiness set).
    /// Protocol connections start registering their route; echo connections
    /// are open at once.
    pub fn insert_conn(self: &Rc<Self>, user: UserId, fd: OwnedFd, echo: bool) -> ConnKey {
        let generation = self.next_generation();
        let conn = Conn::new(
            user.clone(),
            fd,
            echo,
            generation,
            self.next_seq(),
            self.now_ms(),
        );
        let index = self.conns.borrow_mut().insert(conn) as u32;
        self.metrics.connection_opened();
        if !echo {
            self.add_local_user(&user, index);
        }
        ConnKey { index, generation }
    }

    fn add_local_user(self: &Rc<Self>, user: &UserId, index: u32) {
        let mut users = self.users.borrow_mut();
        let local = users.entry(user.clone()).or_default();
        local.conns.push(index);
        if local.conns.len() > 1 && local.registering == 0 {
            drop(users);
            self.welcome(index);
            return;
        }
        if local.registering == 0 {
            let token = self.token();
            local.registering = token;
            drop(users);
            self.registrations.borrow_mut().insert(token, user.clone());
            self.send_register(user.clone(), token);
        }
    }

    fn send_register(self: &Rc<Self>, user: UserId, token: u64) {
        let owner = self.instance.owner_of(&user);
        let msg = ShardMsg::Register {
            user,
            shard: self.index,
            token,
        };
        if owner == self.index {
            self.on_mailbox(msg);
        } else {
            self.instance.send(owner, msg);
        }
    }

    /// The owner shard confirmed a registration: welcome every waiting connection of the user.
    pub fn on_registered(self: &Rc<Self>, token: u64) {
        let Some(user) = self.registrations.borrow_mut().remove(&token) else {
            return;
        };
        let waiting: Vec<u32> = {
            let mut users = self.users.borrow_mut();
            let Some(local) = users.get_mut(&user) else {
                return;
            };
            if local.registering != token {
                return;
            }
            local.registering = 0;
            local.conns.to_vec()
        };
        waiting.into_iter().for_each(|i| self.welcome(i));
    }

    /// Sends `welcome` first, then releases what was held behind it.
    fn welcome(self: &Rc<Self>, index: u32) {
        let settings = &self.instance.settings;
        let mut conns = self.conns.borrow_mut();
        let Some(c) = conns.get_mut(index as usize) else {
            return;
        };
        if c.phase != Phase::Registering {
            return;
        }
        let connection_id = self.connection_id(c.seq).to_string();
        let frame = text_frame_with(|out| {
            let w = Welcome {
                connection_id: &connection_id,
                user_id: &c.user,
                server_id: &settings.server_id,
                heartbeat_interval_ms: settings.heartbeat_interval.as_millis() as u64,
                max_message_bytes: settings.max_message_bytes,
            };
            envelope::write_welcome(out, &w)
        });
        c.queued_bytes += frame.len() as u32;
        c.queue.push_front(OutFrame {
            frame,
            sent_at_us: 0,
        });
        c.phase = Phase::Open;
        let key = ConnKey {
            index,
            generation: c.generation,
        };
        self.schedule_flush(key, c);
    }

    /// The socket ended (EOF or a read error): forget the connection and, if
    /// it was the user's last on this shard, tell the owner shard.
    pub fn remove_conn(self: &Rc<Self>, key: ConnKey) {
        let conn = {
            let mut conns = self.conns.borrow_mut();
            match conns.get(key.index as usize) {
                Some(c) if c.generation == key.generation => conns.remove(key.index as usize),
                _ => return,
            }
        };
        let unexpected = conn.ending != Ending::Expected;
        self.metrics.connection_closed(unexpected);
        self.reclaim.note();
        self.instance.release_connection();
        if !conn.echo {
            self.remove_local_user(&conn.user, key.index);
        }
    }

    fn remove_local_user(self: &Rc<Self>, user: &UserId, index: u32) {
        let mut users = self.users.borrow_mut();
        let Some(local) = users.get_mut(user) else {
            return;
        };
        local.conns.retain(|i| *i != index);
        if !local.conns.is_empty() {
            return;
        }
        if local.registering != 0 {
            let token = local.registering;
            self.registrations.borrow_mut().remove(&token);
        }
        users.remove(user);
        drop(users);
        let owner = self.instance.owner_of(user);
        let msg = ShardMsg::Unregister {
            user: user.clone(),
            shard: self.index,
        };
        if owner == self.index {
            self.on_mailbox(msg);
        } else {
            self.instance.send(owner, msg);
        }
    }

    /// The coordination layer lost its state: store every owned user's route again.
    pub fn reregister_routes(self: &Rc<Self>) {
        let users: Vec<UserId> = self.directory.borrow().users().cloned().collect();
        for user in users {
            // Confirmation is not awaited: these connections were welcomed long ago.
            let token = self.token();
            self.instance
                .coordinator
                .add_route(&user, self.index, token);
        }
    }

    /// Shutdown or drain: stop taking connections and close the ones we have.
    pub fn begin_close_all(self: &Rc<Self>, how: CloseAll) {
        self.closing_all.set(Some(how));
        if how == CloseAll::Shutdown {
            for key in self.all_keys() {
                self.close_conn(key, 1001, "server shutting down", Ending::Expected, false);
            }
        }
        // Drain is paced by the sweep.
    }

    /// Keys of every connection on the shard.
    pub fn all_keys(&self) -> Vec<ConnKey> {
        let conns = self.conns.borrow();
        conns
            .iter()
            .map(|(i, c)| ConnKey {
                index: i as u32,
                generation: c.generation,
            })
            .collect()
    }

    /// Counts a refused upgrade.
    pub fn count_auth_failure(&self) {
        self.metrics.incr(Counter::AuthFailures);
    }
}
