//! The JavaScript client library, served at `GET /client.js` with its
//! TypeScript declarations at `GET /client.d.ts`, compiled into the binary.
//!
//! Apps load it from the server they talk to, so it is served in every
//! `DASHBOARD` mode, and with `Access-Control-Allow-Origin: *`: a page on
//! another origin may `import` it (module scripts are fetched with CORS). It
//! is public code; nothing about the server is in it.

use std::sync::OnceLock;

use crate::protocol::handshake::{http_response_with, json_error_response};

/// The library: one dependency-free ES module.
pub const CLIENT_JS: &str = include_str!("client.js");
/// Its TypeScript declarations.
pub const CLIENT_DTS: &str = include_str!("client.d.ts");

const HEADERS: &[(&str, &str)] = &[
    ("Access-Control-Allow-Origin", "*"),
    ("X-Content-Type-Options", "nosniff"),
];

/// The response for `path` (`/client.js` or `/client.d.ts`), built once each.
pub fn client_library_response(path: &str) -> Vec<u8> {
    static JS: OnceLock<Vec<u8>> = OnceLock::new();
    static DTS: OnceLock<Vec<u8>> = OnceLock::new();
    let (cell, content_type, body) = match path {
        "/client.js" => (&JS, "application/javascript; charset=utf-8", CLIENT_JS),
        "/client.d.ts" => (&DTS, "application/typescript; charset=utf-8", CLIENT_DTS),
        _ => return json_error_response(404, "not_found", "no such endpoint"),
    };
    cell.get_or_init(|| http_response_with(200, HEADERS, content_type, body.as_bytes()))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_and_body(path: &str) -> (String, String) {
        let r = String::from_utf8(client_library_response(path)).unwrap();
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        (head.to_owned(), body.to_owned())
    }

    #[test]
    fn serves_the_module_and_its_types() {
        let (head, body) = head_and_body("/client.js");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("Content-Type: application/javascript; charset=utf-8"));
        assert!(head.contains("Access-Control-Allow-Origin: *"));
        assert!(head.contains("X-Content-Type-Options: nosniff"));
        assert_eq!(body, CLIENT_JS);
        assert!(body.contains("export function connect("));
        let (head, body) = head_and_body("/client.d.ts");
        assert!(
            head.contains("Content-Type: application/typescript"),
            "{head}"
        );
        assert!(body.contains("export declare function connect("));
    }

    #[test]
    fn other_paths_are_not_found() {
        assert!(String::from_utf8(client_library_response("/client.mjs"))
            .unwrap()
            .starts_with("HTTP/1.1 404"));
    }
}
