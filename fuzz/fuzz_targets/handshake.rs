//! Fuzzes the HTTP handshake: arbitrary bytes through `parse_request`, and
//! every request it accepts through routing, the upgrade check, the
//! response builders and both authentication modes. None may panic.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use websocket_app::auth::Authenticator;
use websocket_app::protocol::handshake::{check_upgrade, parse_request, upgrade_response, Request};

/// A fixed token-mode and insecure-mode configuration, built once.
fn authenticators() -> &'static [Authenticator; 3] {
    static AUTH: OnceLock<[Authenticator; 3]> = OnceLock::new();
    AUTH.get_or_init(|| {
        let origins = Some(vec!["https://app.example".to_owned()]);
        [
            Authenticator::token(b"fuzz-secret", None),
            Authenticator::token(b"fuzz-secret", origins.clone()),
            Authenticator::insecure(origins),
        ]
    })
}

/// Everything the server does with a parsed request before the upgrade.
fn exercise(req: &Request, data_len: usize) {
    assert!(req.head_len <= data_len);
    let _ = req.route(Some("/echo"));
    let _ = req.query_param("token");
    let _ = req.query_param("userId");
    match check_upgrade(req) {
        Ok(()) => {
            let _ = upgrade_response(req.ws_key.as_deref().unwrap_or_default(), req.deflate);
        }
        Err(refusal) => {
            let _ = refusal.to_response();
        }
    }
    for (i, auth) in authenticators().iter().enumerate() {
        let now = [0, 1_700_000_000, u64::MAX][i];
        if let Err(refusal) = auth.authenticate(req, now) {
            let _ = refusal.to_response();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(Some(req)) => exercise(&req, data.len()),
        Ok(None) => {}
        Err(e) => {
            let _ = e.refusal().to_response();
        }
    }
});
