//! Arbitrary `Sec-WebSocket-Extensions` values through the offer parser and
//! the negotiation. Nothing may panic; an accepted offer must be one the
//! parser sees as well-formed permessage-deflate; and our answer, read back
//! as an offer, must give the same agreement (what we say is what we do).
#![no_main]

use libfuzzer_sys::fuzz_target;
use websocket_app::protocol::deflate::{accept, extensions, negotiate, Agreement};

fuzz_target!(|data: &[u8]| {
    let mut first_accepted: Option<Agreement> = None;
    for ext in extensions(data) {
        let Ok(ext) = ext else { continue };
        assert!(!ext.name.is_empty());
        for param in ext.params() {
            let Ok(param) = param else { break };
            assert!(!param.name.is_empty());
            if let Some(v) = param.value {
                let _ = v.bytes().count();
            }
        }
        if let (None, Ok(a)) = (first_accepted, accept(&ext)) {
            assert!(ext.name.eq_ignore_ascii_case(b"permessage-deflate"));
            first_accepted = Some(a);
        }
    }
    let agreed = negotiate(data);
    assert_eq!(
        agreed, first_accepted,
        "negotiate takes the first acceptable"
    );
    if let Some(a) = agreed {
        let answer = a.response_value();
        assert!(answer.starts_with(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ));
        // Every parameter of our answer is also an offer parameter: read
        // back as an offer, it asks for exactly what we agreed to.
        assert_eq!(negotiate(answer.as_bytes()), Some(a));
        assert!((9..=15).contains(&a.server_window().get()));
    }
});
