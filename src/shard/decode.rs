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

impl Shard {
    /// Feeds bytes read from a connection. Returns false when the connection
    /// is gone and the reader should stop.
    pub fn on_bytes(self: &Rc<Self>, key: ConnKey, data: &mut [u8]) -> bool {
        let now = self.now_ms();
        let decoder = self.with_conn(key, |c| {
            if c.phase != Phase::Closing {
                c.clock_ms = now;
            }
            std::mem::replace(&mut c.decoder, FrameDecoder::new())
        });
        let Some(mut decoder) = decoder else {
            return false;
        };
        let max = self.instance.settings.max_message_bytes;
        let mut completed = false;
        let result = decoder.feed(data, max, false, |msg| {
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
    /// deadline and the shard's budget; past either, closes it (1008) and
    /// frees its unfinished message at once.
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
            WsMessage::Text(text) if echo => {
                self.enqueue(key, encode_frame(Opcode::Text, text.as_bytes()), 0);
            }
            WsMessage::Text(text) => self.on_text(key, text),
            WsMessage::Binary(data) if echo => {
                self.enqueue(key, encode_frame(Opcode::Binary, data), 0);
            }
            WsMessage::Binary(_) => {
                self.close_conn(key, CloseReason::BINARY);
                return false;
            }
            WsMessage::Ping(payload) => {
                self.enqueue(key, pong_frame(payload), 0);
            }
            WsMessage::Pong(_) => {}
            // Never produced yet: `feed` is told deflate is off until the
            // handshake negotiates it (issue 15 wiring).
            WsMessage::Compressed { .. } => {
                self.close_conn(
                    key,
                    CloseReason::violation(ProtocolViolation {
                        code: crate::protocol::close::PROTOCOL_ERROR,
                        reason: "compressed message without permessage-deflate",
                    }),
                );
                return false;
            }
            WsMessage::Close(frame) => {
                let code = frame.as_ref().map(|f| f.code);
                self.close_conn(key, CloseReason::echo(code));
                return false;
            }
        }
        true
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
                next_message: &mut c.next_message,
            };
            session::handle_text(text, &from, state, &rules)
        });
        let Some(outcome) = outcome else { return };
        if let session::Outcome::Refresh { token, id } = outcome {
            return self.refresh(key, &token, id.as_deref());
        }
        let sent_at_us = unix_micros(now);
        self.with_core(|core| core.client_outcome(key, outcome, sent_at_us, now_ms));
    }
}
