//! Where a user is connected (the server API's user status), free of I/O:
//! the user's route set, then the liveness of each server in it, so a
//! crashed instance is never listed once its liveness key expired.

use redis::{Cmd, Value};

use super::keys;
use super::round::{as_int, as_strings, Tag, Target};

/// A status read in progress.
#[derive(Debug)]
pub struct Pending {
    /// The asking shard.
    pub shard: u16,
    /// Its token.
    pub token: u64,
    /// Liveness answers still awaited (`None` before the route set came).
    pub waiting: Option<usize>,
    /// Live servers found so far.
    pub live: Vec<String>,
}

impl Pending {
    /// A read for `(shard, token)`.
    pub fn new(shard: u16, token: u64) -> Self {
        Self {
            shard,
            token,
            waiting: None,
            live: Vec::new(),
        }
    }
}

/// `SMEMBERS user_servers:<user>`.
pub fn members(user: &str) -> Cmd {
    let mut cmd = redis::cmd("SMEMBERS");
    cmd.arg(keys::route_key(user));
    cmd
}

/// What the route set asks next: the liveness of each server (`None` when
/// the reply is unreadable: the read failed).
pub fn on_members(id: u64, reply: Option<Value>) -> Option<Vec<(Cmd, Target, Tag)>> {
    let servers = as_strings(reply?)?;
    let checks = servers
        .into_iter()
        .map(|server| {
            let key = keys::alive_key(&server);
            let mut cmd = redis::cmd("EXISTS");
            cmd.arg(&key);
            (cmd, Target::Key(key), Tag::StatusAlive { id, server })
        })
        .collect();
    Some(checks)
}

/// Folds in one liveness answer; true when the read is complete.
pub fn on_alive(p: &mut Pending, server: String, reply: Option<&Value>) -> Option<bool> {
    let alive = as_int(reply?)? > 0;
    if alive {
        p.live.push(server);
    }
    let waiting = p.waiting.get_or_insert(0);
    *waiting = waiting.saturating_sub(1);
    Some(*waiting == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_servers_are_listed() {
        let set = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"dead".to_vec()),
        ]);
        let checks = on_members(7, Some(set)).unwrap();
        assert_eq!(checks.len(), 2);
        let mut p = Pending::new(0, 1);
        p.waiting = Some(2);
        assert_eq!(
            on_alive(&mut p, "a".into(), Some(&Value::Int(1))),
            Some(false)
        );
        assert_eq!(
            on_alive(&mut p, "dead".into(), Some(&Value::Int(0))),
            Some(true)
        );
        assert_eq!(p.live, vec!["a".to_owned()]);
        assert!(on_members(7, Some(Value::Okay)).is_none());
    }
}
