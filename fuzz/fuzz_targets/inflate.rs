//! Bounded inflate of arbitrary "compressed" client messages, and
//! compress-then-inflate round trips of arbitrary payloads.
//!
//! Never a panic; never more output than the bound (a fresh buffer never
//! even grows past it: zip bombs stop at max + 1 bytes); a refusal is 1009
//! or 1007; whatever the server compresses, it inflates back identically.
//!
//! The inflater and the deflaters live across runs, as a shard's do across
//! messages: a reset that forgets too little shows up as a wrong round trip.
//!
//! Layout: byte 0 picks the bound and the window, the rest is the input.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use websocket_app::protocol::deflate::{
    negotiate, DeflateConfig, Deflater, InflateError, Inflater,
};
use websocket_app::protocol::frame::{Opcode, ProtocolViolation, WsMessage};

thread_local! {
    static INFLATER: RefCell<Inflater> = RefCell::new(Inflater::new());
    /// One per level, as a shard has one (per window size) for its level.
    static DEFLATERS: RefCell<Vec<Deflater>> = RefCell::new(
        (1..=9)
            .map(|level| Deflater::new(DeflateConfig { min_bytes: 0, level }))
            .collect(),
    );
}

fuzz_target!(|data: &[u8]| {
    INFLATER.with_borrow_mut(|inflater| {
        DEFLATERS.with_borrow_mut(|deflaters| run(data, inflater, deflaters))
    })
});

fn run(data: &[u8], inflater: &mut Inflater, deflaters: &mut [Deflater]) {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let max = [0, 1, 100, 4096, 1 << 20][usize::from(pick % 5)];
    let mut out = Vec::new();
    match inflater.inflate(input, max, &mut out) {
        Ok(()) => assert!(out.len() <= max),
        Err(InflateError::TooBig) => assert!(out.capacity() <= max + 1),
        Err(InflateError::Corrupt) => {}
    }
    for text in [true, false] {
        match inflater.inflate_message(text, input, max, &mut out) {
            Ok(WsMessage::Text(t)) => assert!(text && t.len() <= max),
            Ok(WsMessage::Binary(b)) => assert!(!text && b.len() <= max),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(ProtocolViolation { code, .. }) => assert!(code == 1007 || code == 1009),
        }
    }
    // Round trip with the window picked by the first byte's high bits.
    let bits = 9 + (pick >> 5) % 7;
    let offer = format!("permessage-deflate; server_max_window_bits={bits}");
    let agreement = negotiate(offer.as_bytes()).expect("9..=15 is acceptable");
    let deflater = &mut deflaters[usize::from(pick % 9)];
    if let Some(frame) = deflater.compress_frame(Opcode::Binary, input, agreement) {
        assert_eq!(frame[0], 0xc2, "FIN, RSV1, binary");
        let at = match frame[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        assert!(frame.len() - at < input.len(), "only when smaller");
        inflater
            .inflate(&frame[at..], input.len(), &mut out)
            .expect("what we compress inflates");
        assert_eq!(out, input);
    }
}
