//! Presence answers and events: who is subscribed to a channel
//! (`presence`), how many (`presence_stats`), and who came or went
//! (`join` / `leave`).

use serde::Serialize;

use crate::protocol::envelope::encode::append;

/// `presence`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "presence")]
struct PresenceOut<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    users: Vec<PresenceUser<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

/// One entry of `presence.users` (the WebSocket answer and the server
/// API's share it).
#[derive(Serialize)]
pub struct PresenceUser<'a> {
    #[serde(rename = "userId")]
    user_id: &'a str,
    connections: u32,
}

/// `presence.users` from (user, connections) pairs.
pub fn presence_users(users: &[(String, u32)]) -> Vec<PresenceUser<'_>> {
    users
        .iter()
        .map(|(u, n)| PresenceUser {
            user_id: u,
            connections: *n,
        })
        .collect()
}

/// `presence_stats`.
#[derive(Serialize)]
#[serde(tag = "type", rename = "presence_stats")]
struct PresenceStatsOut<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    users: u64,
    connections: u64,
}

/// `join` / `leave`.
#[derive(Serialize)]
struct JoinLeaveOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    channel: &'a str,
    #[serde(rename = "userId")]
    user_id: &'a str,
}

/// Appends `presence`; `truncated` when more users are subscribed than listed.
pub fn write_presence(
    out: &mut Vec<u8>,
    channel: &str,
    id: Option<&str>,
    users: &[(String, u32)],
    truncated: bool,
) {
    let users = presence_users(users);
    append(
        out,
        &PresenceOut {
            channel,
            id,
            users,
            truncated,
        },
    );
}

/// Appends `presence_stats`.
pub fn write_presence_stats(
    out: &mut Vec<u8>,
    channel: &str,
    id: Option<&str>,
    users: u64,
    connections: u64,
) {
    append(
        out,
        &PresenceStatsOut {
            channel,
            id,
            users,
            connections,
        },
    );
}

/// Appends `join` or `leave` (`kind`).
pub fn write_join_leave(out: &mut Vec<u8>, kind: &str, channel: &str, user: &str) {
    append(
        out,
        &JoinLeaveOut {
            kind,
            channel,
            user_id: user,
        },
    );
}
