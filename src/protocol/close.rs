//! Every WebSocket close code the server sends, named once (RFC 6455 §7.4
//! and the contract's 4xxx application codes).

/// Normal closure (also what a client sends when it leaves on purpose).
pub const NORMAL: u16 = 1000;
/// The server is shutting down.
pub const GOING_AWAY: u16 = 1001;
/// A frame broke RFC 6455.
pub const PROTOCOL_ERROR: u16 = 1002;
/// A binary frame: the protocol carries JSON text only.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// A text message that is not valid UTF-8.
pub const INVALID_UTF8: u16 = 1007;
/// Policy violation: a message not completed in time
/// (`MESSAGE_COMPLETE_TIMEOUT_MS`).
pub const POLICY_VIOLATION: u16 = 1008;
/// A message larger than `MAX_MESSAGE_BYTES`, or one that took the shard's
/// unfinished messages past their budget (`PARTIAL_MESSAGE_BYTES_PER_SHARD`).
pub const TOO_BIG: u16 = 1009;
/// The server failed; reconnecting may help.
pub const INTERNAL_ERROR: u16 = 1011;
/// Drain: this instance is restarting, reconnect to another one.
pub const SERVICE_RESTART: u16 = 1012;
/// No frame from the client within the heartbeat timeout.
pub const HEARTBEAT_TIMEOUT: u16 = 4000;
/// The connection's token expired and was not refreshed in time.
pub const TOKEN_EXPIRED: u16 = 4001;
/// The send queue overflowed: the client reads too slowly.
pub const SLOW_CONSUMER: u16 = 4008;
/// Disconnected through the server API.
pub const DISCONNECTED: u16 = 4010;
/// The client exceeded its rate limit repeatedly.
pub const RATE_LIMITED: u16 = 4029;

/// True for the codes after which a disconnect counts as expected: the
/// client left on purpose (1000, 1001).
pub fn is_expected_from_client(code: u16) -> bool {
    matches!(code, NORMAL | GOING_AWAY)
}
