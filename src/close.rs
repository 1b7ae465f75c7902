//! Why the server closes a connection: one value carries the close code,
//! the text sent with it, the counter it bumps and how the disconnect is
//! counted, so no call site can count one reason and send another.

use std::borrow::Cow;

use crate::metrics::Counter;
use crate::protocol::close;
use crate::protocol::frame::ProtocolViolation;

/// How long a closing connection may take to answer our close frame.
pub const CLOSE_GRACE_MS: u32 = 2_000;
/// A slow consumer gets longer: its close frame waits behind a full socket
/// buffer until it reads again (its send queue is already freed).
pub const SLOW_CONSUMER_GRACE_MS: u32 = 5_000;

/// One reason to close a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// The close code sent to the client.
    pub code: u16,
    /// The text sent in the close frame.
    pub text: Cow<'static, str>,
    /// The counter this close bumps, if any.
    pub counter: Option<Counter>,
    /// True when the disconnect counts as unexpected (`UnexpectedDisconnects`).
    pub unexpected: bool,
    /// Drop what is still queued for the client (it is not reading).
    pub discard_queue: bool,
    /// How long the client has to answer with its own close frame.
    pub grace_ms: u32,
}

impl CloseReason {
    /// A reason with the usual grace and nothing discarded.
    const fn new(
        code: u16,
        text: &'static str,
        counter: Option<Counter>,
        unexpected: bool,
    ) -> Self {
        Self {
            code,
            text: Cow::Borrowed(text),
            counter,
            unexpected,
            discard_queue: false,
            grace_ms: CLOSE_GRACE_MS,
        }
    }

    /// Graceful shutdown (1001).
    pub const SHUTDOWN: Self = Self::new(close::GOING_AWAY, "server shutting down", None, false);
    /// Drain: reconnect elsewhere (1012).
    pub const DRAIN: Self = Self::new(
        close::SERVICE_RESTART,
        "server restarting, reconnect",
        None,
        false,
    );
    /// Silent past the heartbeat timeout (4000).
    pub const HEARTBEAT_TIMEOUT: Self = Self::new(
        close::HEARTBEAT_TIMEOUT,
        "heartbeat timeout",
        Some(Counter::HeartbeatTimeouts),
        true,
    );
    /// The send queue overflowed (4008): what is queued is dropped, and the
    /// close frame waits longer behind the full socket buffer.
    pub const SLOW_CONSUMER: Self = Self {
        code: close::SLOW_CONSUMER,
        text: Cow::Borrowed("slow consumer"),
        counter: Some(Counter::SlowConsumerCloses),
        unexpected: true,
        discard_queue: true,
        grace_ms: SLOW_CONSUMER_GRACE_MS,
    };
    /// Refused by the rate limit too many times in a row (4029).
    pub const RATE_LIMITED: Self = Self::new(
        close::RATE_LIMITED,
        "rate limit exceeded",
        Some(Counter::RateLimited),
        true,
    );
    /// The token expired and was not refreshed within the grace (4001).
    pub const TOKEN_EXPIRED: Self = Self::new(close::TOKEN_EXPIRED, "token expired", None, true);
    /// A binary frame (1003).
    pub const BINARY: Self = Self::new(
        close::UNSUPPORTED_DATA,
        "binary frames are not accepted",
        Some(Counter::ProtocolErrors),
        true,
    );
    /// A started frame or message not completed within
    /// `MESSAGE_COMPLETE_TIMEOUT_MS` (1008).
    pub const MESSAGE_TIMEOUT: Self = Self::new(
        close::POLICY_VIOLATION,
        "message not completed in time",
        Some(Counter::ProtocolErrors),
        true,
    );
    /// This connection's unfinished message took the shard's unfinished
    /// messages past `PARTIAL_MESSAGE_BYTES_PER_SHARD` (1009). Not 1008:
    /// the message may be an innocent one that arrived while others filled
    /// the budget, and clients stop for good after 1008 but reconnect (with
    /// backoff) after 1009.
    pub const UNFINISHED_BUDGET: Self = Self::new(
        close::TOO_BIG,
        "too much unfinished message data on this server",
        Some(Counter::ProtocolErrors),
        true,
    );

    /// Disconnected through the server API (4010), with the API's reason.
    pub fn disconnected(reason: &str) -> Self {
        let text = if reason.is_empty() {
            Cow::Borrowed("disconnected")
        } else {
            Cow::Owned(reason.to_owned())
        };
        Self {
            code: close::DISCONNECTED,
            text,
            counter: None,
            unexpected: false,
            discard_queue: false,
            grace_ms: CLOSE_GRACE_MS,
        }
    }

    /// A frame that broke the protocol (1002, 1007, 1009).
    pub fn violation(v: ProtocolViolation) -> Self {
        Self::new(v.code, v.reason, Some(Counter::ProtocolErrors), true)
    }

    /// The answer to the client's own close frame, echoing its code
    /// (1000 when it sent none); expected for 1000 and 1001.
    pub fn echo(code: Option<u16>) -> Self {
        let code = code.unwrap_or(close::NORMAL);
        Self::new(code, "", None, !close::is_expected_from_client(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_closes_count_as_expected_only_for_1000_and_1001() {
        assert!(!CloseReason::echo(None).unexpected);
        assert!(!CloseReason::echo(Some(1001)).unexpected);
        assert!(CloseReason::echo(Some(1002)).unexpected);
        assert_eq!(CloseReason::echo(Some(4000)).code, 4000);
    }

    #[test]
    fn a_late_message_is_a_policy_violation_but_a_full_budget_is_too_big() {
        // Clients (src/web/client.js) stop after 1008 and reconnect after
        // 1009: only the message that took too long is the client's fault.
        assert_eq!(CloseReason::MESSAGE_TIMEOUT.code, close::POLICY_VIOLATION);
        assert_eq!(CloseReason::UNFINISHED_BUDGET.code, close::TOO_BIG);
    }

    #[test]
    fn only_a_slow_consumer_loses_its_queue_and_gets_a_longer_grace() {
        let all = [
            CloseReason::SHUTDOWN,
            CloseReason::DRAIN,
            CloseReason::HEARTBEAT_TIMEOUT,
            CloseReason::SLOW_CONSUMER,
            CloseReason::RATE_LIMITED,
            CloseReason::BINARY,
            CloseReason::MESSAGE_TIMEOUT,
            CloseReason::UNFINISHED_BUDGET,
        ];
        for r in &all {
            let slow = r.code == close::SLOW_CONSUMER;
            assert_eq!(r.discard_queue, slow, "{r:?}");
            let grace = if slow {
                SLOW_CONSUMER_GRACE_MS
            } else {
                CLOSE_GRACE_MS
            };
            assert_eq!(r.grace_ms, grace, "{r:?}");
        }
    }
}
