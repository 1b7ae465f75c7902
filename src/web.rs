//! The demo page served at `GET /` (chat demo and live dashboard).

use crate::protocol::handshake::http_response;
use crate::settings::Dashboard;

/// The page, compiled into the binary.
const INDEX_HTML: &str = "<!doctype html><title>websocket-app</title><p>websocket-app is running.";

/// The response for `GET /`.
pub fn index_response(_mode: Dashboard) -> Vec<u8> {
    http_response(200, "text/html; charset=utf-8", INDEX_HTML.as_bytes())
}
