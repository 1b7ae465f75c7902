//! A connection's token over time: `expiresAt` in `welcome`, `refresh`
//! (the same user's new token replaces the old one without reconnecting),
//! `token_expiring` once near the end, and 4001 after the grace.
//!
//! Expiry is watched by the shard's sweep (see [`super::sweep`]): no timer
//! per connection. Only connections whose token has `exp` are looked at,
//! through the four bytes of `Conn::expires_at`; an idle connection pays
//! nothing else.

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::auth::may_subscribe;
use crate::close::CloseReason;
use crate::protocol::envelope::server_v2::{write_refreshed, write_token_expiring};
use crate::protocol::envelope::ErrorCode;
use crate::protocol::frame::text_frame_with;
use crate::session::error_frame;

use super::{Conn, ConnKey, Flags, Phase, Shard};

/// What the sweep does about one connection's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    /// Nothing yet.
    Fine,
    /// Send `token_expiring` (once per token).
    Notify,
    /// Expired and the grace is over: close 4001.
    Close,
}

/// Where a token expiring at `exp_secs` stands at `now_ms` (Unix ms).
pub(super) fn expiry(
    exp_secs: u64,
    now_ms: u64,
    notified: bool,
    notice: Duration,
    grace: Duration,
) -> Expiry {
    let exp_ms = exp_secs.saturating_mul(1000);
    if now_ms >= exp_ms.saturating_add(grace.as_millis() as u64) {
        Expiry::Close
    } else if !notified && now_ms.saturating_add(notice.as_millis() as u64) >= exp_ms {
        Expiry::Notify
    } else {
        Expiry::Fine
    }
}

/// `exp` (Unix seconds) as RFC 3339, as `expiresAt` carries it.
pub(super) fn rfc3339(exp_secs: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(exp_secs);
    humantime::format_rfc3339_seconds(at).to_string()
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Shard {
    /// `refresh`: verify the token as at connect; it must name the same
    /// user. On success the grants are replaced, `refreshed` answers, and
    /// subscriptions the new token no longer allows end (`forbidden`). On
    /// failure the old token stays and `error` `forbidden` says why.
    pub(super) fn refresh(self: &Rc<Self>, key: ConnKey, token: &str, id: Option<&str>) {
        let auth = &self.instance.auth;
        if auth.is_insecure() {
            let msg = "tokens are not used in insecure mode";
            return self.reply_now(key, error_frame(ErrorCode::NotAvailable, msg, id));
        }
        let verified = auth.verify_token(token, unix_now().as_secs());
        let same_user = self.with_conn(key, |c| match &verified {
            Ok(identity) => identity.user == c.user,
            Err(_) => true,
        });
        let identity = match (verified, same_user) {
            (_, None) => return,
            (Err(refusal), _) => {
                let frame = error_frame(ErrorCode::Forbidden, &refusal.message, id);
                return self.reply_now(key, frame);
            }
            (Ok(_), Some(false)) => {
                let msg = "the token is for another user";
                return self.reply_now(key, error_frame(ErrorCode::Forbidden, msg, id));
            }
            (Ok(identity), Some(true)) => identity,
        };
        let grants = identity
            .grants
            .map(|g| self.grants_cache.borrow_mut().intern(g));
        // The expiry the connection keeps (an `exp` past 2106 clamped), so
        // `refreshed` says what `welcome` would and what 4001 will follow.
        let kept = self.with_conn(key, |c| {
            c.grants = grants.clone();
            c.set_expiry(identity.expires_at);
            c.flags.set(Flags::EXPIRY_NOTIFIED, false);
            c.expiry()
        });
        let expires_at = kept.flatten().map(rfc3339);
        let frame = text_frame_with(|out| write_refreshed(out, id, expires_at.as_deref()));
        self.reply_now(key, frame);
        let namespaces = self.instance.settings.namespaces.clone();
        let allowed = |channel: &crate::protocol::channel::ChannelName| {
            let public = namespaces.options(channel).public;
            may_subscribe(false, grants.as_deref(), public, channel)
        };
        self.with_core(|core| core.drop_forbidden(key, allowed));
    }

    /// Queues a frame for one connection (an answer made on the I/O side).
    fn reply_now(self: &Rc<Self>, key: ConnKey, frame: bytes::Bytes) {
        self.enqueue(key, frame, 0);
    }

    /// Sweep, per connection: where its token stands (`Fine` without
    /// `exp`, and until welcomed).
    pub(super) fn token_state(&self, c: &Conn, now_unix_ms: u64) -> Expiry {
        let Some(exp) = c.expiry() else {
            return Expiry::Fine;
        };
        if c.phase != Phase::Open {
            return Expiry::Fine;
        }
        let settings = &self.instance.settings;
        let notified = c.flags.has(Flags::EXPIRY_NOTIFIED);
        expiry(
            exp,
            now_unix_ms,
            notified,
            settings.token_notice,
            settings.token_grace,
        )
    }

    /// Sweep: `token_expiring` (once per token) to a connection entering
    /// the notice window.
    pub(super) fn notify_expiring(self: &Rc<Self>, key: ConnKey) {
        let exp = self.with_conn(key, |c| {
            c.flags.set(Flags::EXPIRY_NOTIFIED, true);
            c.expiry()
        });
        if let Some(Some(exp)) = exp {
            let at = rfc3339(exp);
            self.reply_now(key, text_frame_with(|out| write_token_expiring(out, &at)));
        }
    }

    /// Sweep: the token expired and the grace is over.
    pub(super) fn close_expired(&self, key: ConnKey) {
        self.close_conn(key, CloseReason::TOKEN_EXPIRED);
    }
}

/// Unix time now in ms, for the sweep.
pub(super) fn unix_now_ms() -> u64 {
    unix_now().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTICE: Duration = Duration::from_secs(30);
    const GRACE: Duration = Duration::from_secs(10);

    fn at(exp: u64, now_ms: u64, notified: bool) -> Expiry {
        expiry(exp, now_ms, notified, NOTICE, GRACE)
    }

    #[test]
    fn notice_once_then_close_after_the_grace() {
        let exp = 1_000;
        assert_eq!(at(exp, 969_999, false), Expiry::Fine);
        assert_eq!(at(exp, 970_000, false), Expiry::Notify);
        assert_eq!(at(exp, 970_000, true), Expiry::Fine, "once per token");
        assert_eq!(at(exp, 1_009_999, true), Expiry::Fine, "in the grace");
        assert_eq!(at(exp, 1_010_000, true), Expiry::Close);
        assert_eq!(at(exp, 1_010_000, false), Expiry::Close);
    }

    #[test]
    fn expiry_is_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
