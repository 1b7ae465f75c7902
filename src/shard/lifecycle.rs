//! A connection's life on its shard: insert, welcome, remove; closing
//! every connection for shutdown or drain.

use std::os::fd::OwnedFd;
use std::rc::Rc;

use std::sync::Arc;

use crate::auth::Identity;
use crate::close::CloseReason;
use crate::metrics::Counter;
use crate::protocol::channel::ChannelName;
use crate::protocol::deflate::Agreement;
use crate::protocol::envelope::{self, InboxTop, Welcome};
use crate::protocol::frame::text_frame_with;

use super::conn::generation_of;
use super::{CloseAll, Conn, ConnKey, Ending, OutFrame, Phase, Shard};

impl Shard {
    /// Adds an upgraded connection (its socket not yet in the readiness set).
    /// Protocol connections start registering their route (their frames
    /// are held until the core asks for the welcome); echo connections are
    /// open at once and never reach the core.
    pub fn insert_conn(
        self: &Rc<Self>,
        identity: Identity,
        fd: OwnedFd,
        echo: bool,
        deflate: Option<Agreement>,
    ) -> ConnKey {
        let Identity {
            user,
            grants,
            insecure,
            expires_at,
        } = identity;
        let subs = grants.as_ref().map(|g| g.subs.to_vec()).unwrap_or_default();
        let grants = grants.map(|g| self.grants_cache.borrow_mut().intern(g));
        let seq = self.next_seq();
        let conn = Conn::new(user.clone(), fd, echo, seq, self.now_ms())
            .with_grants(grants, insecure, expires_at)
            .with_deflate(deflate);
        let index = self.conns.borrow_mut().insert(conn) as u32;
        self.metrics.connection_opened();
        let key = ConnKey {
            index,
            generation: generation_of(seq),
        };
        if !echo {
            self.with_core(|core| core.conn_opened(key, &user, &subs));
        }
        key
    }

    /// Sends `welcome` first, then releases what was held behind it.
    pub(super) fn welcome(
        &self,
        index: u32,
        subscriptions: &[ChannelName],
        inbox: Option<(u64, Arc<str>)>,
    ) {
        let settings = &self.instance.settings;
        let mut conns = self.conns.borrow_mut();
        let Some(c) = conns.get_mut(index as usize) else {
            return;
        };
        if c.phase != Phase::Registering {
            return;
        }
        let connection_id = self.connection_id(c.seq).to_string();
        let names: Vec<&str> = subscriptions.iter().map(|c| &**c).collect();
        let expires_at = c.expiry().map(super::token::rfc3339);
        let frame = text_frame_with(|out| {
            let w = Welcome {
                connection_id: &connection_id,
                user_id: &c.user,
                server_id: &settings.server_id,
                heartbeat_interval_ms: settings.heartbeat_interval.as_millis() as u64,
                max_message_bytes: settings.max_message_bytes,
                subscriptions: &names,
                inbox: inbox.as_ref().map(|(offset, epoch)| InboxTop {
                    offset: *offset,
                    epoch,
                }),
                expires_at: expires_at.as_deref(),
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
            generation: c.generation(),
        };
        self.schedule_flush(key, c);
    }

    /// The socket ended (EOF or a read error): forget the connection and
    /// tell the core (which tells the owner shard if it was the user's last
    /// connection here).
    pub fn remove_conn(self: &Rc<Self>, key: ConnKey) {
        let conn = {
            let mut conns = self.conns.borrow_mut();
            match conns.get(key.index as usize) {
                Some(c) if c.generation() == key.generation => conns.remove(key.index as usize),
                _ => return,
            }
        };
        self.unfinished.borrow_mut().remove(key);
        let unexpected = conn.ending != Ending::Expected;
        self.metrics.connection_closed(unexpected);
        self.reclaim.note();
        self.instance.release_connection();
        if !conn.is_echo() {
            self.with_core(|core| core.conn_closed(key, &conn.user));
        }
    }

    /// Shutdown or drain: stop taking connections and close the ones we have.
    pub fn begin_close_all(self: &Rc<Self>, how: CloseAll) {
        self.closing_all.set(Some(how));
        if how == CloseAll::Shutdown {
            for key in self.all_keys() {
                self.close_conn(key, CloseReason::SHUTDOWN);
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
                generation: c.generation(),
            })
            .collect()
    }

    /// Counts a refused upgrade.
    pub fn count_auth_failure(&self) {
        self.metrics.incr(Counter::AuthFailures);
    }
}
