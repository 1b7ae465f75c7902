//! This instance's presence writes, batched per round, and the sweep that
//! removes dead instances' presence (free of I/O).
//!
//! The channels' owner shards send every change (`(user, ±1)`); changes of
//! one channel are summed until the next round, which carries one function
//! call per changed channel. While the link is down nothing is queued: on
//! reconnection the owners send their whole tables (`reset`), which are the
//! truth the Redis side is rebuilt from.
//!
//! The sweep (every sweep interval) reads `presence_servers`, checks each
//! other server's liveness key, and for a dead one removes its part of every
//! channel it had presence in (the function announces the `leave`s), so a
//! crashed instance's members are gone within its liveness TTL plus one
//! sweep interval, and cannot come back: only a live instance writes its part.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use redis::{Cmd, Value};

use crate::namespaces::Namespaces;
use crate::protocol::channel::ChannelName;
use crate::protocol::UserId;

use super::functions::presence as f;
use super::keys;
use super::round::{as_int, as_strings, Round, Tag, Target};

/// The presence side of the engine.
pub struct Presence {
    /// Summed changes per channel since the last round.
    pending: HashMap<ChannelName, HashMap<UserId, i32>>,
    /// Whole tables to write (after the link came back).
    resets: HashMap<ChannelName, Vec<(UserId, u32)>>,
    /// Channels registered in `server_presence:<me>` on this link.
    registered: HashSet<ChannelName>,
    /// When the next sweep pass starts.
    next_sweep: Instant,
    /// Time between sweep passes.
    interval: Duration,
    /// Sweep commands for the next round.
    queued: Vec<(Cmd, Target, Tag)>,
}

impl Presence {
    /// Nothing pending; the first sweep after `interval`.
    pub fn new(interval: Duration, now: Instant) -> Self {
        Self {
            pending: HashMap::new(),
            resets: HashMap::new(),
            registered: HashSet::new(),
            next_sweep: now + interval,
            interval,
            queued: Vec::new(),
        }
    }

    /// Changes from an owner shard.
    pub fn changes(&mut self, channel: ChannelName, changes: Vec<(UserId, i32)>) {
        let users = self.pending.entry(channel).or_default();
        for (user, delta) in changes {
            *users.entry(user).or_default() += delta;
        }
    }

    /// An owner's whole table (replaces what was pending for the channel).
    pub fn reset(&mut self, channel: ChannelName, users: Vec<(UserId, u32)>) {
        self.pending.remove(&channel);
        self.resets.insert(channel, users);
    }

    /// The link is down: nothing pending survives (the owners send their
    /// tables on reconnection).
    pub fn link_lost(&mut self, now: Instant) {
        self.pending.clear();
        self.resets.clear();
        self.registered.clear();
        self.queued.clear();
        self.next_sweep = now + self.interval;
    }

    /// Adds this round's presence commands.
    pub fn build(
        &mut self,
        round: &mut Round,
        me: &str,
        ns: &Namespaces,
        sharded: bool,
        sent_at_us: u64,
        now: Instant,
    ) {
        for (channel, users) in std::mem::take(&mut self.resets) {
            self.register(round, me, &channel);
            let options = ns.options(&channel);
            let (cmd, key) = f::reset(&channel, me, options, sharded, sent_at_us, &users);
            round.push(cmd, Target::Key(key), Tag::Presence);
        }
        for (channel, users) in std::mem::take(&mut self.pending) {
            let deltas: Vec<(UserId, i32)> = users.into_iter().filter(|(_, d)| *d != 0).collect();
            if deltas.is_empty() {
                continue;
            }
            self.register(round, me, &channel);
            let options = ns.options(&channel);
            let (cmd, key) = f::changes(&channel, me, options, sharded, sent_at_us, &deltas);
            round.push(cmd, Target::Key(key), Tag::Presence);
        }
        for (cmd, target, tag) in self.queued.drain(..) {
            round.push(cmd, target, tag);
        }
        if now >= self.next_sweep {
            self.next_sweep = now + self.interval;
            round.push(
                smembers(f::SERVERS_KEY),
                Target::Key(f::SERVERS_KEY.to_owned()),
                Tag::PresenceServers,
            );
        }
    }

    /// Records that this server has presence in `channel` (once per link).
    fn register(&mut self, round: &mut Round, me: &str, channel: &ChannelName) {
        if self.registered.is_empty() {
            let mut cmd = redis::cmd("SADD");
            cmd.arg(f::SERVERS_KEY).arg(me);
            round.push(cmd, Target::Key(f::SERVERS_KEY.to_owned()), Tag::Presence);
        }
        if self.registered.insert(channel.clone()) {
            let key = f::server_key(me);
            let mut cmd = redis::cmd("SADD");
            cmd.arg(&key).arg(&**channel);
            round.push(cmd, Target::Key(key), Tag::Presence);
        }
    }

    /// The servers with presence: check the others' liveness.
    pub fn on_servers(&mut self, reply: Option<Value>, me: &str) {
        for server in reply.and_then(as_strings).unwrap_or_default() {
            if server != me {
                let key = keys::alive_key(&server);
                let mut cmd = redis::cmd("EXISTS");
                cmd.arg(&key);
                self.queued
                    .push((cmd, Target::Key(key), Tag::PresenceAlive { server }));
            }
        }
    }

    /// A server's liveness: a dead one's channels are read next.
    pub fn on_alive(&mut self, server: String, reply: Option<&Value>) {
        if reply.and_then(as_int) == Some(0) {
            let key = f::server_key(&server);
            self.queued.push((
                smembers(&key),
                Target::Key(key),
                Tag::PresenceChannels { server },
            ));
        }
    }

    /// A dead server's channels: remove its part of each, then its records.
    pub fn on_dead_channels(
        &mut self,
        server: String,
        reply: Option<Value>,
        ns: &Namespaces,
        sharded: bool,
        sent_at_us: u64,
    ) {
        let Some(channels) = reply.and_then(as_strings) else {
            return;
        };
        for channel in channels.iter().filter_map(|c| ChannelName::parse(c)) {
            let (cmd, key) = f::drop(&channel, &server, ns.options(&channel), sharded, sent_at_us);
            self.queued.push((cmd, Target::Key(key), Tag::Presence));
        }
        let key = f::server_key(&server);
        let mut del = redis::cmd("DEL");
        del.arg(&key);
        self.queued.push((del, Target::Key(key), Tag::Presence));
        let mut srem = redis::cmd("SREM");
        srem.arg(f::SERVERS_KEY).arg(&server);
        self.queued
            .push((srem, Target::Key(f::SERVERS_KEY.to_owned()), Tag::Presence));
        tracing::info!(%server, channels = channels.len(), "removed a dead instance's presence");
    }
}

fn smembers(key: &str) -> Cmd {
    let mut cmd = redis::cmd("SMEMBERS");
    cmd.arg(key);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn packed(round: &Round) -> Vec<String> {
        round
            .cmds
            .iter()
            .map(|c| String::from_utf8_lossy(&c.get_packed_command()).into_owned())
            .collect()
    }

    #[test]
    fn changes_of_a_round_are_summed_into_one_call_per_channel() {
        let now = Instant::now();
        let mut p = Presence::new(Duration::from_secs(30), now);
        p.changes(chan("a"), vec![(user("u"), 1), (user("v"), 1)]);
        p.changes(chan("a"), vec![(user("u"), -1)]);
        p.changes(chan("b"), vec![(user("w"), 1), (user("w"), -1)]);
        let mut round = Round::default();
        p.build(&mut round, "me", &Namespaces::default(), false, 1, now);
        let calls: Vec<String> = packed(&round)
            .into_iter()
            .filter(|c| c.contains("FCALL"))
            .collect();
        assert_eq!(calls.len(), 1, "b's changes cancel out: {calls:?}");
        assert!(calls[0].contains("\r\nv\r\n") && !calls[0].contains("\r\nu\r\n"));
        let mut again = Round::default();
        p.build(&mut again, "me", &Namespaces::default(), false, 1, now);
        assert!(again.is_empty(), "nothing twice");
    }

    #[test]
    fn a_dead_servers_part_is_dropped_from_each_of_its_channels() {
        let now = Instant::now();
        let mut p = Presence::new(Duration::from_millis(10), now);
        let mut round = Round::default();
        p.build(
            &mut round,
            "me",
            &Namespaces::default(),
            false,
            1,
            now + Duration::from_millis(20),
        );
        assert_eq!(round.tags, vec![Tag::PresenceServers]);
        let servers = Value::Array(vec![
            Value::BulkString(b"me".to_vec()),
            Value::BulkString(b"dead".to_vec()),
        ]);
        p.on_servers(Some(servers), "me");
        p.on_alive("dead".into(), Some(&Value::Int(0)));
        let channels = Value::Array(vec![Value::BulkString(b"room".to_vec())]);
        p.on_dead_channels(
            "dead".into(),
            Some(channels),
            &Namespaces::default(),
            false,
            1,
        );
        let mut round = Round::default();
        p.build(
            &mut round,
            "me",
            &Namespaces::default(),
            false,
            1,
            now + Duration::from_millis(21),
        );
        let cmds = packed(&round);
        assert!(
            cmds.iter().any(|c| c.contains("wss_presence_drop")),
            "{cmds:?}"
        );
        assert!(cmds.iter().any(|c| c.contains("SREM")));
    }
}
