//! Bytes from a client: frames, control frames, the close handshake, and
//! the session's verdict on each text message (handed to the core).

use std::rc::Rc;

use std::time::SystemTime;

use crate::close::CloseReason;
use crate::metrics::Counter;
use crate::protocol::frame::{
    encode_frame, pong_frame, FrameDecoder, Opcode, ProtocolViolation, WsMessage,
};
use crate::session::{self, Rules, Sender, SessionState};

use super::core::unix_micros;
use super::unfinished::Verdict;
use super::{ConnKey, Flags, Phase, Shard};

/// RSV1 on a connection without permessage-deflate.
const NOT_NEGOTIATED: ProtocolViolation = ProtocolViolation {
    code: crate::protocol::close::PROTOCOL_ERROR,
    reason: "compressed message without permessage-deflate",
};

impl Shard {
    /// Feeds bytes read from a connection. Returns false when the connection
    /// is gone and the reader should stop.
    pub fn on_bytes(self: &Rc<Self>, key: ConnKey, data: &mut [u8]) -> bool {
        let now = self.now_ms();
        let decoder = self.with_conn(key, |c| {
            if c.phase != Phase::Closing {
                c.clock_ms = now;
            }
            (
                std::mem::replace(&mut c.decoder, FrameDecoder::new()),
                c.deflate.is_some(),
            )
        });
        let Some((mut decoder, deflate)) = decoder else {
            return false;
        };
        let max = self.instance.settings.max_message_bytes;
        let mut completed = false;
        // With permessage-deflate, RSV1 marks a compressed message
        // (`Compressed`); without it RSV1 is a protocol error (1002).
        let result = decoder.feed(data, max, deflate, |msg| {
            // Control frames may come between fragments: only a data
            // message ends what was unfinished.
            completed |= matches!(
                msg,
                WsMessage::Text(_) | WsMessage::Binary(_) | WsMessage::Compressed { .. }
            );
            self.on_ws_message(key, msg)
        });
        let held = decoder.held_bytes();
        let alive = self.with_conn(key, |c| c.decoder = decoder).is_some();
        if let Err(violation) = result {
            self.close_conn(key, CloseReason::violation(violation));
        }
        if alive {
            self.check_unfinished(key, held, completed, now);
        }
        alive
    }

    /// Holds what the connection keeps unfinished after a read to the
    /// deadline and the shard's budget; past either, closes it (1008 past
    /// the deadline, 1009 past the budget) and frees its unfinished message
    /// at once.
    fn check_unfinished(&self, key: ConnKey, held: usize, completed: bool, now: u32) {
        let verdict = self
            .unfinished
            .borrow_mut()
            .update(key, held, completed, now);
        let reason = match verdict {
            Verdict::Ok => return,
            Verdict::Overdue => CloseReason::MESSAGE_TIMEOUT,
            Verdict::OverBudget => CloseReason::UNFINISHED_BUDGET,
        };
        self.close_conn(key, reason);
        self.drop_unfinished(key);
    }

    /// Frees a connection's unfinished frame or message. Used only once the
    /// connection is closing: what it sends next is read only to find its
    /// close frame, and a frame cut in two there at worst hides that close
    /// until the socket is cut at the close deadline.
    pub(super) fn drop_unfinished(&self, key: ConnKey) {
        self.with_conn(key, |c| c.decoder = FrameDecoder::new());
        self.unfinished.borrow_mut().remove(key);
    }

    /// One complete message or control frame. Returns false to stop decoding
    /// (the connection is closing).
    fn on_ws_message(self: &Rc<Self>, key: ConnKey, msg: WsMessage<'_>) -> bool {
        let Some((phase, echo)) = self.with_conn(key, |c| (c.phase, c.is_echo())) else {
            return false;
        };
        if phase == Phase::Closing {
            // Only the peer's close matters now; the reader waits for EOF.
            return !matches!(msg, WsMessage::Close(_));
        }
        match msg {
            WsMessage::Text(_) | WsMessage::Binary(_) => return self.on_data(key, msg, echo),
            WsMessage::Compressed { text, data } => {
                return self.on_compressed(key, text, data, echo)
            }
            WsMessage::Ping(payload) => {
                self.enqueue(key, pong_frame(payload), 0);
            }
            WsMessage::Pong(_) => {}
            WsMessage::Close(frame) => {
                let code = frame.as_ref().map(|f| f.code);
                self.close_conn(key, CloseReason::echo(code));
                return false;
            }
        }
        true
    }

    /// A complete text or binary message, as sent or once inflated. Returns
    /// false when the connection is closing.
    fn on_data(self: &Rc<Self>, key: ConnKey, msg: WsMessage<'_>, echo: bool) -> bool {
        match msg {
            WsMessage::Text(text) if echo => self.echo(key, Opcode::Text, text.as_bytes()),
            WsMessage::Text(text) => self.on_text(key, text),
            WsMessage::Binary(data) if echo => self.echo(key, Opcode::Binary, data),
            _ => {
                self.close_conn(key, CloseReason::BINARY);
                return false;
            }
        }
        true
    }

    /// A compressed message (RSV1; only decoded so with permessage-deflate):
    /// inflated into a pooled buffer, bounded by `MAX_MESSAGE_BYTES` (1009
    /// as soon as it goes past, the rest not inflated; 1007 for bad data),
    /// then handled like any message.
    fn on_compressed(self: &Rc<Self>, key: ConnKey, text: bool, data: &[u8], echo: bool) -> bool {
        let Some(codec) = &self.codec else {
            // Unreachable: without a codec no agreement is made, so RSV1 is
            // refused by the decoder. Still a clear close, never a panic.
            self.close_conn(key, CloseReason::violation(NOT_NEGOTIATED));
            return false;
        };
        let max = self.instance.settings.max_message_bytes;
        let mut buf = self.take_read_buffer();
        let alive = match codec.inflate(text, data, max, &mut buf) {
            Ok(msg) => self.on_data(key, msg, echo),
            Err(violation) => {
                self.close_conn(key, CloseReason::violation(violation));
                false
            }
        };
        self.give_read_buffer(buf);
        alive
    }

    /// Echoes a message (conformance path); with permessage-deflate every
    /// echo is compressed ([`super::compression::ShardCodec::compress_echo`]).
    fn echo(self: &Rc<Self>, key: ConnKey, opcode: Opcode, payload: &[u8]) {
        let agreement = self.with_conn(key, |c| c.deflate).flatten();
        let compressed = agreement
            .zip(self.codec.as_ref())
            .and_then(|(a, codec)| codec.compress_echo(opcode, payload, a));
        let frame = compressed.unwrap_or_else(|| encode_frame(opcode, payload));
        self.enqueue(key, frame, 0);
    }

    /// A text message from an open protocol connection: the session judges
    /// it, the core routes what it decided.
    fn on_text(self: &Rc<Self>, key: ConnKey, text: &str) {
        self.metrics.incr(Counter::MessagesTotal);
        let now = SystemTime::now();
        let now_ms = self.now_ms();
        let settings = &self.instance.settings;
        let rules = Rules {
            max_message_bytes: settings.max_message_bytes,
            broadcast_enabled: settings.broadcast_enabled,
            rate_limit: settings.rate_limit,
            namespaces: &settings.namespaces,
            inbox: settings.inbox.is_some(),
            max_json_depth: settings.max_json_depth,
        };
        let mut next_message = self.next_message.get();
        let outcome = self.with_conn(key, |c| {
            let connection_id = self.connection_id(c.seq);
            let from = Sender {
                user: &c.user,
                connection_id: &connection_id,
                now,
                now_ms,
                insecure: c.flags.has(Flags::INSECURE),
                grants: c.grants.as_deref(),
            };
            let state = SessionState {
                bucket: &mut c.bucket,
                next_message: &mut next_message,
            };
            session::handle_text(text, &from, state, &rules)
        });
        self.next_message.set(next_message);
        let Some(outcome) = outcome else { return };
        if let session::Outcome::Refresh { token, id } = outcome {
            return self.refresh(key, &token, id.as_deref());
        }
        if matches!(
            outcome,
            session::Outcome::Subscribe { .. } | session::Outcome::Unsubscribe { .. }
        ) {
            // A subscribe storm leaves garbage like a connect storm does.
            self.reclaim.note();
        }
        let sent_at_us = unix_micros(now);
        self.with_core(|core| core.client_outcome(key, outcome, sent_at_us, now_ms));
    }
}
