//! Bytes from a client: frames, control frames, and the close handshake.

use std::rc::Rc;

use crate::metrics::Counter;
use crate::protocol::frame::{encode_frame, pong_frame, FrameDecoder, Opcode, WsMessage};

use super::{ConnKey, Ending, Phase, Shard};

/// Close code for binary frames.
const CLOSE_BINARY: u16 = 1003;

impl Shard {
    /// Feeds bytes read from a connection. Returns false when the connection
    /// is gone and the reader should stop.
    pub fn on_bytes(self: &Rc<Self>, key: ConnKey, data: &mut [u8]) -> bool {
        let now = self.now_ms();
        let decoder = self.with_conn(key, |c| {
            c.last_seen_ms = now;
            std::mem::replace(&mut c.decoder, FrameDecoder::new())
        });
        let Some(mut decoder) = decoder else {
            return false;
        };
        let max = self.instance.settings.max_message_bytes;
        let result = decoder.feed(data, max, false, |msg| self.on_ws_message(key, msg));
        let alive = self.with_conn(key, |c| c.decoder = decoder).is_some();
        if let Err(violation) = result {
            self.metrics.incr(Counter::ProtocolErrors);
            self.close_conn(
                key,
                violation.code,
                violation.reason,
                Ending::Unexpected,
                false,
            );
        }
        alive
    }

    /// One complete message or control frame. Returns false to stop decoding
    /// (the connection is closing).
    fn on_ws_message(self: &Rc<Self>, key: ConnKey, msg: WsMessage<'_>) -> bool {
        let Some((phase, echo)) = self.with_conn(key, |c| (c.phase, c.echo)) else {
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
                self.metrics.incr(Counter::ProtocolErrors);
                self.close_conn(
                    key,
                    CLOSE_BINARY,
                    "binary frames are not accepted",
                    Ending::Unexpected,
                    false,
                );
                return false;
            }
            WsMessage::Ping(payload) => {
                self.enqueue(key, pong_frame(payload), 0);
            }
            WsMessage::Pong(_) => {}
            // Never produced yet: `feed` is told deflate is off until the
            // handshake negotiates it (issue 15 wiring).
            WsMessage::Compressed { .. } => {
                self.metrics.incr(Counter::ProtocolErrors);
                self.close_conn(
                    key,
                    1002,
                    "compressed message without permessage-deflate",
                    Ending::Unexpected,
                    false,
                );
                return false;
            }
            WsMessage::Close(frame) => {
                let code = frame.as_ref().map(|f| f.code);
                let ending = match code {
                    Some(1000) | Some(1001) => Ending::Expected,
                    _ => Ending::Unexpected,
                };
                self.close_conn(key, code.unwrap_or(1000), "", ending, false);
                return false;
            }
        }
        true
    }
}
