//! Tests of the HTTP handshake: parsing, routes, upgrade checks, responses.

use super::*;

const UPGRADE: &str = "GET /ws?userId=alice HTTP/1.1\r\nHost: example.com\r\n\
    Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
    Origin: https://example.com\r\n\r\n";

fn parse(s: &str) -> Request {
    parse_request(s.as_bytes()).unwrap().unwrap()
}

fn get(path: &str) -> Request {
    parse(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn parses_a_complete_upgrade() {
    let req = parse(UPGRADE);
    assert!(req.method_is_get && req.upgrade_websocket && req.ws_version_ok);
    assert_eq!(req.path, "/ws");
    assert_eq!(req.query.as_deref(), Some("userId=alice"));
    assert_eq!(req.ws_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
    assert_eq!(req.origin.as_deref(), Some("https://example.com"));
    assert_eq!(req.bearer, None);
    assert_eq!(req.head_len, UPGRADE.len());
    assert_eq!(check_upgrade(&req), Ok(()));
}

#[test]
fn every_split_is_partial_until_complete() {
    let bytes = UPGRADE.as_bytes();
    for cut in 0..bytes.len() {
        assert!(
            parse_request(&bytes[..cut]).unwrap().is_none(),
            "cut at {cut}"
        );
    }
    assert!(parse_request(bytes).unwrap().is_some());
}

#[test]
fn trailing_frame_bytes_are_left_after_head_len() {
    let mut bytes = UPGRADE.as_bytes().to_vec();
    bytes.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
    let req = parse_request(&bytes).unwrap().unwrap();
    assert_eq!(req.head_len, UPGRADE.len());
}

#[test]
fn too_large_head_is_refused() {
    let mut s = String::from("GET / HTTP/1.1\r\nX-Big: ");
    s.push_str(&"a".repeat(MAX_REQUEST_HEAD_BYTES));
    let err = parse_request(s.as_bytes()).unwrap_err();
    assert!(matches!(err, HandshakeError::TooLarge));
    assert_eq!(err.refusal().status, 431);
    // A complete head just under the limit, followed by more bytes, is fine.
    let pad = MAX_REQUEST_HEAD_BYTES - "GET / HTTP/1.1\r\nX: \r\n\r\n".len();
    let mut ok = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(pad)).into_bytes();
    assert_eq!(ok.len(), MAX_REQUEST_HEAD_BYTES);
    ok.extend_from_slice(b"extra");
    assert!(parse_request(&ok).unwrap().is_some());
}

#[test]
fn too_many_headers_is_too_large() {
    let mut s = String::from("GET / HTTP/1.1\r\n");
    for i in 0..(MAX_HEADERS + 1) {
        s.push_str(&format!("X-{i}: v\r\n"));
    }
    s.push_str("\r\n");
    assert!(matches!(
        parse_request(s.as_bytes()),
        Err(HandshakeError::TooLarge)
    ));
}

#[test]
fn malformed_requests_are_refused() {
    for bad in [
        "GET\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "\x00\x01\x02 / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    ] {
        let err = parse_request(bad.as_bytes()).unwrap_err();
        assert!(matches!(err, HandshakeError::Malformed(_)), "{bad:?}");
        assert_eq!(err.refusal().status, 400);
    }
}

#[test]
fn duplicate_single_valued_headers_are_malformed() {
    for name in [
        "Sec-WebSocket-Key",
        "Origin",
        "Authorization",
        "Sec-WebSocket-Version",
    ] {
        let s = format!("GET /ws HTTP/1.1\r\n{name}: a\r\n{name}: b\r\n\r\n");
        assert!(
            matches!(
                parse_request(s.as_bytes()),
                Err(HandshakeError::Malformed(_))
            ),
            "{name}"
        );
    }
}

#[test]
fn header_names_and_tokens_are_case_insensitive() {
    let req = parse(
        "GET /ws HTTP/1.1\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n\
         sec-websocket-key:  dGhlIHNhbXBsZSBub25jZQ==  \r\nSEC-WEBSOCKET-VERSION: 13\r\n\
         authorization: bearer abc.def.ghi\r\n\r\n",
    );
    assert!(req.upgrade_websocket && req.ws_version_ok);
    assert_eq!(req.ws_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
    assert_eq!(req.bearer.as_deref(), Some("abc.def.ghi"));
}

#[test]
fn connection_keep_alive_alone_is_not_an_upgrade() {
    let req = parse("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\n");
    assert!(!req.upgrade_websocket);
    let req = parse("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\n\r\n");
    assert!(!req.upgrade_websocket);
    // Connection split over two header lines still counts.
    let req = parse("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nConnection: upgrade\r\n\r\n");
    assert!(req.upgrade_websocket);
}

#[test]
fn non_bearer_authorization_is_ignored() {
    assert_eq!(
        parse("GET / HTTP/1.1\r\nAuthorization: Basic YTpi\r\n\r\n").bearer,
        None
    );
    assert_eq!(
        parse("GET / HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n").bearer,
        None
    );
}

#[test]
fn routes() {
    let cases = [
        ("/ws", Route::WebSocket),
        ("/ws?token=x", Route::WebSocket),
        ("/echo", Route::Echo),
        ("/health", Route::Health),
        ("/ready", Route::Ready),
        ("/metrics", Route::Metrics),
        ("/stats", Route::Stats),
        ("/", Route::Index),
        ("/client.js", Route::ClientLibrary),
        ("/client.d.ts", Route::ClientLibrary),
        ("/client.js/", Route::NotFound),
        ("/nope", Route::NotFound),
        ("/ws/", Route::NotFound),
        ("/WS", Route::NotFound),
    ];
    for (path, route) in cases {
        assert_eq!(get(path).route(Some("/echo")), route, "{path}");
    }
    assert_eq!(get("/echo").route(None), Route::NotFound);
}

#[test]
fn query_params_are_percent_decoded() {
    let req = get("/ws?a=1&userId=al%40ice%3A1&token=&x+y=a+b%2B&flag&userId=second");
    assert_eq!(req.query_param("userId").as_deref(), Some("al@ice:1"));
    assert_eq!(req.query_param("token").as_deref(), Some(""));
    assert_eq!(req.query_param("x y").as_deref(), Some("a b+"));
    assert_eq!(req.query_param("flag").as_deref(), Some(""));
    assert_eq!(req.query_param("missing"), None);
    assert_eq!(get("/ws").query_param("userId"), None);
    assert_eq!(
        get("/ws?userId=%ZZ%").query_param("userId").as_deref(),
        Some("%ZZ%")
    );
}

#[test]
fn a_repeated_parameter_is_told_apart_from_a_single_one() {
    let req = get("/ws?userId=a&token=t&%75serId=b&x=1&&");
    assert_eq!(req.unique_query_param("userId"), Err(RepeatedParam));
    assert_eq!(req.unique_query_param("token"), Ok(Some("t".to_owned())));
    assert_eq!(req.unique_query_param("missing"), Ok(None));
    assert_eq!(
        get("/ws?token=&token=").unique_query_param("token"),
        Err(RepeatedParam),
        "even empty and equal values"
    );
    assert_eq!(get("/ws").unique_query_param("token"), Ok(None));
}

#[test]
fn upgrade_checks() {
    let ok = parse(UPGRADE);
    let post = Request {
        method_is_get: false,
        ..ok.clone()
    };
    assert_eq!(check_upgrade(&post).unwrap_err().status, 400);
    let plain = Request {
        upgrade_websocket: false,
        ..ok.clone()
    };
    assert_eq!(check_upgrade(&plain).unwrap_err().code, "bad_request");
    for key in [
        None,
        Some(""),
        Some("short=="),
        Some("dGhlIHNhbXBsZSBub25jZQ=!"),
        Some("dGhlIHNhbXBsZSBub25jZ\u{e9}=="),
    ] {
        let req = Request {
            ws_key: key.map(str::to_owned),
            ..ok.clone()
        };
        assert_eq!(check_upgrade(&req).unwrap_err().status, 400, "{key:?}");
    }
    let old = Request {
        ws_version_ok: false,
        ..ok
    };
    let refusal = check_upgrade(&old).unwrap_err();
    assert_eq!(refusal.status, 426);
    assert!(text(&refusal.to_response()).contains("\r\nSec-WebSocket-Version: 13\r\n"));
}

#[test]
fn wrong_version_value_is_not_ok() {
    let req = parse("GET /ws HTTP/1.1\r\nSec-WebSocket-Version: 8\r\n\r\n");
    assert!(!req.ws_version_ok);
}

#[test]
fn upgrade_response_uses_rfc_accept_key() {
    let resp = text(&upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", None));
    assert!(resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    assert!(resp.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(
        resp.contains("\r\nUpgrade: websocket\r\n") && resp.contains("\r\nConnection: Upgrade\r\n")
    );
    assert!(resp.ends_with("\r\n\r\n"));
    assert!(!resp.contains("Sec-WebSocket-Extensions") && !resp.contains("Sec-WebSocket-Protocol"));
}

#[test]
fn http_response_has_length_and_close() {
    let resp = text(&http_response(
        200,
        "application/json",
        br#"{"status":"ok"}"#,
    ));
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        resp.contains("\r\nContent-Length: 15\r\n") && resp.contains("\r\nConnection: close\r\n")
    );
    assert!(resp.ends_with("\r\n\r\n{\"status\":\"ok\"}"));
}

#[test]
fn json_error_body_is_escaped() {
    let resp = json_error_response(401, "unauthorized", "bad \"quote\"\n\\");
    let resp = text(&resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"], "unauthorized");
    assert_eq!(v["message"], "bad \"quote\"\n\\");
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
}

/// `UPGRADE` with extra header lines before the blank line.
fn upgrade_with(extra: &str) -> Request {
    parse(&UPGRADE.replace("\r\n\r\n", &format!("\r\n{extra}\r\n\r\n")))
}

#[test]
fn a_browser_deflate_offer_is_found() {
    assert_eq!(parse(UPGRADE).deflate, None, "no offer");
    let req = upgrade_with("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits");
    let agreed = req.deflate.expect("the browser offer is acceptable");
    assert_eq!(agreed.server_window().get(), 15);
}

#[test]
fn extension_lines_form_one_list_in_order() {
    // The first line holds only offers we decline; the second decides.
    let req = upgrade_with(
        "Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8\r\n\
         sec-websocket-extensions: permessage-deflate; server_max_window_bits=10\r\n\
         Sec-WebSocket-Extensions: permessage-deflate",
    );
    assert_eq!(req.deflate.map(|a| a.server_window().get()), Some(10));
    let req = upgrade_with("Sec-WebSocket-Extensions: permessage-deflate; bogus");
    assert_eq!(req.deflate, None, "declined, and the request is still fine");
    assert!(check_upgrade(&req).is_ok());
}

#[test]
fn upgrade_response_confirms_an_agreement() {
    let agreed =
        upgrade_with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12")
            .deflate;
    let resp = text(&upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", agreed));
    assert!(resp.contains(
        "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
         client_no_context_takeover; server_max_window_bits=12\r\n"
    ));
    assert!(resp.ends_with("\r\n\r\n") && resp.matches("\r\n\r\n").count() == 1);
}
