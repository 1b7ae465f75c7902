//! What the API answers: errors (`{"error","message"}`), and the success
//! bodies of API.md made from the core's [`ApiOutcome`]s.
//!
//! An [`Answer`] is a status and a JSON body; [`Answer::encode`] and
//! [`Answer::decode`] are how an idempotency key remembers one (`"<status>
//! <body>"`), so a replay answers the same bytes.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::coordinator::{PresencePage, StreamPage};
use crate::protocol::envelope::server_v2::{presence_users, PresenceUser};
use crate::protocol::envelope::AckStatus;
use crate::shard::core::ApiOutcome;

/// A status and its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl Answer {
    /// 200 with `body` serialized.
    pub fn ok(body: &impl Serialize) -> Self {
        Answer {
            status: 200,
            body: serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    /// How an idempotency key remembers it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{} ", self.status).into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// The answer [`Answer::encode`] wrote, if `bytes` is one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let space = bytes.iter().position(|&b| b == b' ')?;
        let status = std::str::from_utf8(&bytes[..space]).ok()?.parse().ok()?;
        Some(Answer {
            status,
            body: bytes[space + 1..].to_vec(),
        })
    }
}

/// An error answer: `{"error": code, "message": message}` (and, for a user
/// operation that not every instance confirmed, the `connections` changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The machine-readable code.
    pub code: &'static str,
    /// What happened; names the field at fault, never echoes a key.
    pub message: Cow<'static, str>,
    /// Connections changed before the answer was known to be incomplete.
    pub connections: Option<u32>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections: Option<u32>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: u16, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            connections: None,
        }
    }

    /// 400: the body or a field is wrong (the message names it).
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(400, "bad_request", message)
    }

    /// 400: a required field is absent.
    pub fn missing(field: &str) -> Self {
        Self::bad_request(format!("missing field: {field}"))
    }

    /// 404.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// 413.
    pub fn too_large(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(413, "too_large", message)
    }

    /// 503: the coordination layer could not do it.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(503, "unavailable", message)
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody {
            error: self.code,
            message: &self.message,
            connections: self.connections,
        })
        .unwrap_or_default()
    }
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Self {
        Answer {
            status: e.status,
            body: e.body(),
        }
    }
}

/// The answer to an outcome of the core. `feature` names what a `NotAvailable` lacked.
pub fn from_outcome(outcome: ApiOutcome, channel: Option<&str>) -> Answer {
    match outcome {
        ApiOutcome::Published { offset, epoch } => Answer::ok(&Published {
            offset,
            epoch: epoch.as_deref(),
        }),
        ApiOutcome::Sent { status, offset } => sent(status, offset),
        ApiOutcome::Broadcast => Answer::ok(&Status {
            status: "published",
        }),
        ApiOutcome::Connections {
            connections,
            complete: true,
        } => Answer::ok(&Connections { connections }),
        ApiOutcome::Connections {
            connections,
            complete: false,
        } => ApiError {
            connections: Some(connections),
            ..ApiError::unavailable(
                "not every instance holding the user answered: connections counts those changed on the instances that did",
            )
        }
        .into(),
        ApiOutcome::Presence(page) => presence(&page),
        ApiOutcome::History(page) => history(&page),
        ApiOutcome::UserStatus { servers } => Answer::ok(&UserStatus {
            online: !servers.is_empty(),
            servers: &servers,
        }),
        ApiOutcome::NotAvailable => ApiError::not_found(format!(
            "channel {} does not have this feature (see its namespace's options)",
            channel.unwrap_or_default()
        ))
        .into(),
        ApiOutcome::Unavailable => {
            ApiError::unavailable("the coordination layer is unavailable; nothing was done").into()
        }
        ApiOutcome::Claim(_) | ApiOutcome::Settled => {
            ApiError::unavailable("unexpected answer from the coordination layer").into()
        }
    }
}

#[derive(Serialize)]
struct Published<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a str>,
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

#[derive(Serialize)]
struct Connections {
    connections: u32,
}

#[derive(Serialize)]
struct Sent {
    status: &'static str,
    connections: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
}

fn sent(status: AckStatus, offset: Option<u64>) -> Answer {
    let (connections, offset) = match status {
        AckStatus::Delivered { connections } => (connections, offset),
        AckStatus::Stored { offset } => (0, Some(offset)),
        _ => (0, None),
    };
    Answer::ok(&Sent {
        status: status.as_str(),
        connections,
        offset,
    })
}

#[derive(Serialize)]
struct UserStatus<'a> {
    online: bool,
    servers: &'a [String],
}

#[derive(Serialize)]
struct PresenceBody<'a> {
    users: Vec<PresenceUser<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

fn presence(page: &PresencePage) -> Answer {
    Answer::ok(&PresenceBody {
        users: presence_users(&page.users),
        truncated: page.truncated,
    })
}

#[derive(Serialize)]
struct HistoryBody<'a> {
    publications: Vec<&'a RawValue>,
    offset: u64,
    epoch: &'a str,
    recovered: bool,
}

fn history(page: &StreamPage) -> Answer {
    // Entries are the publications as delivered (offset included): copied raw.
    let publications = page
        .entries
        .iter()
        .filter_map(|e| std::str::from_utf8(e).ok())
        .filter_map(|text| serde_json::from_str::<&RawValue>(text).ok())
        .collect();
    Answer::ok(&HistoryBody {
        publications,
        offset: page.top,
        epoch: &page.epoch,
        recovered: page.complete,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::{json, Value};

    use super::*;

    fn body(a: &Answer) -> Value {
        serde_json::from_slice(&a.body).unwrap()
    }

    #[test]
    fn outcomes_become_the_bodies_of_the_contract() {
        let a = from_outcome(
            ApiOutcome::Published {
                offset: Some(3),
                epoch: Some("e1".into()),
            },
            None,
        );
        assert_eq!(
            (a.status, body(&a)),
            (200, json!({"offset": 3, "epoch": "e1"}))
        );
        let a = from_outcome(
            ApiOutcome::Published {
                offset: None,
                epoch: None,
            },
            None,
        );
        assert_eq!(a.body, b"{}");
        let delivered = ApiOutcome::Sent {
            status: AckStatus::Delivered { connections: 2 },
            offset: None,
        };
        let a = from_outcome(delivered, None);
        assert_eq!(body(&a), json!({"status": "delivered", "connections": 2}));
        let stored = ApiOutcome::Sent {
            status: AckStatus::Stored { offset: 9 },
            offset: None,
        };
        let a = from_outcome(stored, None);
        assert_eq!(
            body(&a),
            json!({"status": "stored", "connections": 0, "offset": 9})
        );
        let a = from_outcome(ApiOutcome::UserStatus { servers: vec![] }, None);
        assert_eq!(body(&a), json!({"online": false, "servers": []}));
        let page = StreamPage {
            top: 2,
            epoch: "ep".into(),
            complete: true,
            entries: vec![Bytes::from_static(br#"{"type":"publication","offset":2}"#)],
        };
        let a = from_outcome(ApiOutcome::History(page), None);
        assert_eq!(body(&a)["publications"][0]["offset"], 2);
        assert_eq!(body(&a)["recovered"], true);
    }

    #[test]
    fn failures_become_errors() {
        let a = from_outcome(ApiOutcome::NotAvailable, Some("news:1"));
        assert_eq!(
            (a.status, body(&a)["error"].as_str()),
            (404, Some("not_found"))
        );
        assert!(body(&a)["message"].as_str().unwrap().contains("news:1"));
        let partial = ApiOutcome::Connections {
            connections: 3,
            complete: false,
        };
        let a = from_outcome(partial, None);
        assert_eq!(a.status, 503);
        assert_eq!(body(&a)["connections"], 3);
        assert_eq!(from_outcome(ApiOutcome::Unavailable, None).status, 503);
    }

    #[test]
    fn answers_survive_the_idempotency_store() {
        let a = Answer {
            status: 503,
            body: br#"{"error":"unavailable","message":"a b"}"#.to_vec(),
        };
        assert_eq!(Answer::decode(&a.encode()), Some(a));
        assert_eq!(Answer::decode(b"garbage"), None);
        assert_eq!(Answer::decode(b""), None);
    }
}
