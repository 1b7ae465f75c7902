//! Arbitrary client bytes, split at an arbitrary point, through the frame
//! decoder: it must never panic, must stay bounded, and every text message it
//! yields must be valid UTF-8 within the size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use websocket_app::protocol::frame::{FrameDecoder, WsMessage};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = usize::from(data[0]) % data.len();
    let mut first = data[1..=split.max(1).min(data.len() - 1)].to_vec();
    let mut second = data[split.max(1).min(data.len() - 1) + 1..].to_vec();
    let mut decoder = FrameDecoder::new();
    for chunk in [&mut first, &mut second] {
        let result = decoder.feed(chunk, MAX, |msg| {
            match msg {
                WsMessage::Text(t) => assert!(t.len() <= MAX),
                WsMessage::Binary(b) => assert!(b.len() <= MAX),
                WsMessage::Ping(p) | WsMessage::Pong(p) => assert!(p.len() <= 125),
                WsMessage::Close(_) => {}
            }
            true
        });
        if let Err(v) = result {
            assert!(matches!(v.code, 1002 | 1007 | 1009));
            return;
        }
    }
});
