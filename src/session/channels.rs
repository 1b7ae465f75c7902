//! Version 2 client messages: channels, the inbox and token refresh.
//!
//! Each request is checked here against the namespace's options and the
//! connection's grants (a token's `channels`/`subs` claims; insecure mode
//! allows every channel, but the namespace options apply in both modes), so
//! the core only ever sees requests it may carry out.

use std::borrow::Cow;

use bytes::Bytes;

use super::{check_size_json, error, message_id, Outcome, Rules, Sender};
use crate::auth::may_subscribe;
use crate::protocol::channel::ChannelName;
use crate::protocol::envelope::server_v2::write_publication;
use crate::protocol::envelope::{ClientMessage, ErrorCode, Timestamp};
use crate::protocol::UserId;

/// Handles a version 2 message (anything but version 1's types).
pub(super) fn handle(
    msg: ClientMessage<'_>,
    from: &Sender<'_>,
    next_message: &mut u64,
    rules: &Rules<'_>,
    timestamp: &Timestamp,
) -> Outcome {
    match msg {
        ClientMessage::Subscribe {
            channel,
            recover,
            id,
        } => match allowed(&channel, from, rules, id.as_deref()) {
            Err(refused) => refused,
            Ok(()) => Outcome::Subscribe {
                user: UserId(from.user.into()),
                channel,
                recover: recover.map(|p| p.into_owned()),
                id: owned(id),
            },
        },
        ClientMessage::Unsubscribe { channel, id } => Outcome::Unsubscribe {
            channel,
            id: owned(id),
        },
        ClientMessage::Publish {
            channel,
            payload,
            id,
        } => publish(channel, payload, id, from, next_message, rules, timestamp),
        ClientMessage::History {
            channel,
            since,
            limit,
            id,
        } => {
            if !rules.namespaces.options(&channel).has_history() {
                return not_available("this channel keeps no history", id.as_deref());
            }
            match allowed(&channel, from, rules, id.as_deref()) {
                Err(refused) => refused,
                Ok(()) => Outcome::History {
                    channel,
                    since: since.map(|p| p.into_owned()),
                    limit,
                    id: owned(id),
                },
            }
        }
        ClientMessage::Presence { channel, id } => presence(channel, false, id, from, rules),
        ClientMessage::PresenceStats { channel, id } => presence(channel, true, id, from, rules),
        ClientMessage::Inbox { since, limit, id } if rules.inbox => Outcome::Inbox {
            user: UserId(from.user.into()),
            since: since.map(|p| p.into_owned()),
            limit,
            id: owned(id),
        },
        ClientMessage::Inbox { id, .. } => {
            not_available("this server keeps no inbox (INBOX_SIZE=0)", id.as_deref())
        }
        ClientMessage::Refresh { token, id } => Outcome::Refresh {
            token: token.into_owned(),
            id: owned(id),
        },
        // Version 1 messages never reach here.
        _ => error(ErrorCode::UnknownType, "unexpected message", None),
    }
}

fn owned(id: Option<Cow<'_, str>>) -> Option<String> {
    id.map(Cow::into_owned)
}

fn not_available(message: &str, id: Option<&str>) -> Outcome {
    error(ErrorCode::NotAvailable, message, id)
}

/// Whether the connection may subscribe to (and so read) `channel`.
fn allowed(
    channel: &ChannelName,
    from: &Sender<'_>,
    rules: &Rules<'_>,
    id: Option<&str>,
) -> Result<(), Outcome> {
    let public = rules.namespaces.options(channel).public;
    if may_subscribe(from.insecure, from.grants, public, channel) {
        Ok(())
    } else {
        Err(error(
            ErrorCode::Forbidden,
            "not allowed to subscribe to this channel",
            id,
        ))
    }
}

fn publish(
    channel: ChannelName,
    payload: &serde_json::value::RawValue,
    id: Option<Cow<'_, str>>,
    from: &Sender<'_>,
    next_message: &mut u64,
    rules: &Rules<'_>,
    timestamp: &Timestamp,
) -> Outcome {
    if !rules.namespaces.options(&channel).client_publish {
        return error(
            ErrorCode::Forbidden,
            "this namespace does not allow publishing from clients",
            id.as_deref(),
        );
    }
    if let Err(refused) = allowed(&channel, from, rules, id.as_deref()) {
        return refused;
    }
    let msg_id = message_id(id.as_deref(), from.connection_id, next_message);
    let mut json = Vec::new();
    write_publication(
        &mut json,
        &channel,
        &msg_id,
        Some(from.user),
        payload,
        timestamp.as_str(),
    );
    if let Some(too_large) = check_size_json(json.len(), rules, id.as_deref()) {
        return too_large;
    }
    Outcome::Publish {
        channel,
        json: Bytes::from(json),
        ack: owned(id),
    }
}

fn presence(
    channel: ChannelName,
    stats: bool,
    id: Option<Cow<'_, str>>,
    from: &Sender<'_>,
    rules: &Rules<'_>,
) -> Outcome {
    if !rules.namespaces.options(&channel).presence {
        return not_available("this channel has no presence", id.as_deref());
    }
    match allowed(&channel, from, rules, id.as_deref()) {
        Err(refused) => refused,
        Ok(()) => Outcome::Presence {
            channel,
            stats,
            id: owned(id),
        },
    }
}
