//! What Redis answers our commands: the input is one reply in RESP2 or
//! RESP3 bytes, read with the `redis` crate's own parser (so the value is
//! exactly what the client would hand us), then given to every parser of
//! replies in `redis_coord` and to the engine with one request of each kind
//! in flight (`redis_coord::fuzzing`, also run by the unit tests over the
//! seeds in `fuzz/seeds/redis_reply/`).
//!
//! Invariants: nothing panics; a parser accepts only what its contract
//! says (offsets and counts are the numbers in the reply, epochs are ones a
//! client can send back, a page has no more entries than the reply nor
//! than its top offset, a presence list no more users than asked, a claim
//! is one of the documented answers) and says `None` to the rest; the
//! engine answers each request exactly once, with what the parser made of
//! the reply, `Failed`/`None` for a bad one, and counts a command's error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use websocket_app::redis_coord::fuzzing::check_resp;

fuzz_target!(|data: &[u8]| check_resp(data));
