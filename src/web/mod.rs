//! What the server serves to browsers, compiled into the binary: the demo
//! page at `GET /` (a chat demo and a live dashboard of this instance), and
//! the JavaScript client library at `GET /client.js` ([`library`]).
//!
//! The page is one static HTML page (CSS and its own JavaScript inlined, no
//! build step, nothing from another origin). It talks to the server only
//! through the public surface: the chat demo imports `/client.js` and
//! connects like any app (`?userId=…` or `?token=…`, so it never weakens
//! authentication), and the dashboard polls `GET /stats`. The chat demo's
//! rooms (`rooms.js`, protocol version 2 channels `room:<name>`) are appended
//! to its script: one module, so no other route is needed.
//! `DASHBOARD=readonly` serves the page without the chat demo's markup and
//! script; `DASHBOARD=off` answers 404 on `/` and `/stats` (the library stays).

mod library;

use std::sync::OnceLock;

pub use library::client_library_response;

use crate::protocol::handshake::{http_response_with, json_error_response};
use crate::settings::Dashboard;

/// The page template, with the markers replaced by [`render`].
const TEMPLATE: &str = include_str!("index.html");
/// Inlined into the template's `<style>`.
const STYLE: &str = include_str!("style.css");
/// The dashboard script (both modes).
const DASHBOARD_JS: &str = include_str!("dashboard.js");
/// The chat demo script (`DASHBOARD=on` only); it imports `/client.js`.
const CHAT_JS: &str = include_str!("chat.js");
/// The chat demo's rooms, in the same module as [`CHAT_JS`] (which calls it).
const ROOMS_JS: &str = include_str!("rooms.js");

const STYLE_MARK: &str = "/* @style */";
const SCRIPT_MARK: &str = "/* @script */";
const MODE_MARK: &str = "@mode";
const CHAT_START: &str = "<!-- @chat -->";
const CHAT_END: &str = "<!-- @end-chat -->";

/// The page may only run its own inline code and `/client.js`, fetch and
/// connect to its own origin (`'self'` covers `ws:`/`wss:` to the same host),
/// and not be framed.
const CSP: &str =
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// The page's HTML for `mode` (`Off` renders like `ReadOnly`; it is never served).
pub fn render(mode: Dashboard) -> String {
    let chat = mode == Dashboard::On;
    let mut page = TEMPLATE.to_owned();
    if !chat {
        let start = page.find(CHAT_START).expect("chat start marker");
        let end = page.find(CHAT_END).expect("chat end marker") + CHAT_END.len();
        page.replace_range(start..end, "");
    } else {
        page = page.replace(CHAT_START, "").replace(CHAT_END, "");
    }
    let script = if chat {
        format!("{DASHBOARD_JS}\n{CHAT_JS}\n{ROOMS_JS}")
    } else {
        DASHBOARD_JS.to_owned()
    };
    page.replace(MODE_MARK, if chat { "on" } else { "readonly" })
        .replace(STYLE_MARK, STYLE)
        .replace(SCRIPT_MARK, &script)
}

/// The response for `GET /`, rendered once per mode.
pub fn index_response(mode: Dashboard) -> Vec<u8> {
    static ON: OnceLock<Vec<u8>> = OnceLock::new();
    static READ_ONLY: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = match mode {
        Dashboard::On => &ON,
        Dashboard::ReadOnly => &READ_ONLY,
        Dashboard::Off => return json_error_response(404, "not_found", "no such endpoint"),
    };
    cell.get_or_init(|| {
        http_response_with(
            200,
            &[
                ("Content-Security-Policy", CSP),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),
            ],
            "text/html; charset=utf-8",
            render(mode).as_bytes(),
        )
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_all_replaced() {
        for mode in [Dashboard::On, Dashboard::ReadOnly] {
            let page = render(mode);
            for mark in [STYLE_MARK, SCRIPT_MARK, MODE_MARK, CHAT_START, CHAT_END] {
                assert!(!page.contains(mark), "{mark} left in {mode:?}");
            }
            assert!(page.contains("id=\"dashboard\""));
            assert!(page.contains("fetch('/stats'"));
            // Inlined code must not end its own <script> or <style> element.
            let lower = page.to_ascii_lowercase();
            assert_eq!(lower.matches("</script").count(), 1, "{mode:?}");
            assert_eq!(lower.matches("</style").count(), 1, "{mode:?}");
            // No external resources: everything is inline.
            for external in ["src=\"http", "href=\"http", "<link", "@import", "src=\"//"] {
                assert!(!lower.contains(external), "{external} in {mode:?}");
            }
        }
    }

    #[test]
    fn read_only_has_no_chat() {
        let on = render(Dashboard::On);
        assert!(on.contains("id=\"chat\"") && on.contains("from '/client.js'"));
        assert!(on.contains("data-mode=\"on\""));
        assert!(on.contains("id=\"rooms\"") && on.contains("function roomsDemo("));
        assert!(on.contains("id=\"rooms-unavailable\""));
        let ro = render(Dashboard::ReadOnly);
        assert!(!ro.contains("id=\"chat\""));
        assert!(!ro.contains("id=\"rooms\"") && !ro.contains("roomsDemo"));
        assert!(!ro.contains("WebSocket") && !ro.contains("client.js"));
        assert!(ro.contains("data-mode=\"readonly\""));
    }

    #[test]
    fn response_headers() {
        let r = String::from_utf8(index_response(Dashboard::On)).unwrap();
        let head = r.split("\r\n\r\n").next().unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Type: text/html; charset=utf-8"));
        assert!(head.contains("Content-Security-Policy: default-src 'none'"));
        assert!(String::from_utf8(index_response(Dashboard::Off))
            .unwrap()
            .starts_with("HTTP/1.1 404"));
    }
}
