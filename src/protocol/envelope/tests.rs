//! Tests of the envelope: every parsing rule, every writer, the timestamp.

mod parse {
    use std::borrow::Cow;

    use crate::protocol::envelope::*;

    fn reject(text: &str) -> Rejection {
        match parse_client_message(text) {
            Ok(msg) => panic!("accepted {text}: {msg:?}"),
            Err(rej) => rej,
        }
    }

    #[test]
    fn rejections_have_the_right_code_and_id() {
        use ErrorCode::*;
        let long = "x".repeat(65);
        let cases: Vec<(String, ErrorCode, Option<&str>)> = vec![
            ("not json".into(), BadJson, None),
            ("[\"chat_message\"]".into(), BadJson, None),
            ("42".into(), BadJson, None),
            ("{\"type\":\"heartbeat\"".into(), BadJson, None),
            ("{\"type\":\"heartbeat\"} x".into(), BadJson, None),
            ("{}".into(), MissingField, None),
            (r#"{"id":"m1"}"#.into(), MissingField, Some("m1")),
            (r#"{"type":7,"id":"m1"}"#.into(), BadJson, Some("m1")),
            (
                r#"{"type":"nope","id":"m1"}"#.into(),
                UnknownType,
                Some("m1"),
            ),
            (
                r#"{"type":"chat_message","payload":1,"id":"m"}"#.into(),
                MissingField,
                Some("m"),
            ),
            (
                r#"{"type":"chat_message","receiverID":"bob","id":"m"}"#.into(),
                MissingField,
                Some("m"),
            ),
            (
                r#"{"type":"chat_message","receiverID":"b b","payload":1,"id":"m"}"#.into(),
                BadUserId,
                Some("m"),
            ),
            (
                r#"{"type":"chat_message","receiverID":"","payload":1}"#.into(),
                BadUserId,
                None,
            ),
            (
                r#"{"type":"chat_message","receiverID":null,"payload":1}"#.into(),
                BadUserId,
                None,
            ),
            (
                r#"{"type":"chat_message","receiverID":5,"payload":1}"#.into(),
                BadUserId,
                None,
            ),
            (
                r#"{"type":"chat_message","receiverID":"a","receiverId":"b","payload":1}"#.into(),
                BadJson,
                None,
            ),
            (
                r#"{"type":"broadcast","id":"m"}"#.into(),
                MissingField,
                Some("m"),
            ),
            (
                r#"{"type":"broadcast","payload":1,"id":7}"#.into(),
                BadJson,
                None,
            ),
            (
                r#"{"type":"broadcast","payload":1,"id":null}"#.into(),
                BadJson,
                None,
            ),
            (
                format!(r#"{{"type":"broadcast","payload":1,"id":"{long}"}}"#),
                TooLarge,
                None,
            ),
            (
                r#"{"type":"heartbeat","type":"heartbeat"}"#.into(),
                BadJson,
                None,
            ),
            (
                r#"{"type":"latency_report","id":"m"}"#.into(),
                BadLatency,
                Some("m"),
            ),
            (
                r#"{"type":"latency_report","payload":"12"}"#.into(),
                BadLatency,
                None,
            ),
            (
                r#"{"type":"latency_report","payload":-1}"#.into(),
                BadLatency,
                None,
            ),
            (
                r#"{"type":"latency_report","payload":3600000.5}"#.into(),
                BadLatency,
                None,
            ),
            (
                r#"{"type":"latency_report","payload":1e400}"#.into(),
                BadLatency,
                None,
            ),
            (
                r#"{"type":"latency_report","payload":null}"#.into(),
                BadLatency,
                None,
            ),
            (
                r#"{"type":"latency_report","payload":[1]}"#.into(),
                BadLatency,
                None,
            ),
        ];
        for (text, code, id) in cases {
            let rej = reject(&text);
            assert_eq!(
                (rej.code, rej.id.as_deref()),
                (code, id),
                "{text}: {}",
                rej.message
            );
        }
    }

    #[test]
    fn messages_name_the_field_and_type() {
        let rej = reject(r#"{"type":"chat_message","receiverID":"bob"}"#);
        assert!(rej.message.contains("payload"), "{}", rej.message);
        let rej = reject(r#"{"type":"chat_message","payload":{}}"#);
        assert!(rej.message.contains("receiverID"), "{}", rej.message);
        let rej = reject(r#"{"type":"dance"}"#);
        assert_eq!(rej.message, "unknown type: dance");
        let long = format!(r#"{{"type":"{}é"}}"#, "t".repeat(63));
        let rej = reject(&long);
        assert_eq!(rej.message, format!("unknown type: {}", "t".repeat(63)));
        assert_eq!(ErrorCode::BadUserId.as_str(), "bad_user_id");
        assert_eq!(rej.to_string(), format!("UnknownType: {}", rej.message));
    }

    #[test]
    fn chat_borrows_and_keeps_the_payload_byte_exact() {
        let text = r#"{"type":"chat_message","receiverID":"bob","senderId":"eve","timestamp":"x","payload":{"a":[1, 2.50, {"b":null}],"c":"\u00e9"},"id":"m1","extra":[1]}"#;
        let Ok(ClientMessage::Chat {
            receiver,
            payload,
            id,
        }) = parse_client_message(text)
        else {
            panic!("not a chat");
        };
        assert!(matches!(receiver, Cow::Borrowed("bob")));
        assert!(matches!(id, Some(Cow::Borrowed("m1"))));
        assert_eq!(payload.get(), r#"{"a":[1, 2.50, {"b":null}],"c":"\u00e9"}"#);
    }

    #[test]
    fn receiver_id_alias_and_escapes_are_owned() {
        let text =
            r#"{"type":"chat_message","receiverId":"al\u0069ce","payload":1.50,"id":"m\"1"}"#;
        let Ok(ClientMessage::Chat {
            receiver,
            payload,
            id,
        }) = parse_client_message(text)
        else {
            panic!("not a chat");
        };
        assert!(matches!(receiver, Cow::Owned(ref r) if r == "alice"));
        assert!(matches!(id, Some(Cow::Owned(ref i)) if i == "m\"1"));
        assert_eq!(payload.get(), "1.50");
        let both =
            r#"{"type":"chat_message","receiverID":"bob","receiverId":"b\u006fb","payload":0}"#;
        assert!(matches!(
            parse_client_message(both),
            Ok(ClientMessage::Chat { .. })
        ));
    }

    #[test]
    fn other_types_parse() {
        let text = r#" {"type":"broadcast","payload":null} "#;
        let Ok(ClientMessage::Broadcast { payload, id: None }) = parse_client_message(text) else {
            panic!("not a broadcast");
        };
        assert_eq!(payload.get(), "null");
        let text = r#"{"type":"broadcast","payload":"hi","id":""}"#;
        assert!(matches!(
            parse_client_message(text),
            Ok(ClientMessage::Broadcast { .. })
        ));
        let text = r#"{"type":"heart\u0062eat","payload":[1,1]}"#;
        assert!(matches!(
            parse_client_message(text),
            Ok(ClientMessage::Heartbeat)
        ));
        for (raw, want) in [
            ("12.5", 12.5),
            ("0", 0.0),
            ("3600000", 3_600_000.0),
            ("1e3", 1e3),
        ] {
            let text = format!(r#"{{"type":"latency_report","payload":{raw}}}"#);
            let Ok(ClientMessage::LatencyReport { millis }) = parse_client_message(&text) else {
                panic!("{text}");
            };
            assert_eq!(millis, want);
        }
        let id = "i".repeat(MAX_ID_BYTES);
        let text = format!(r#"{{"type":"broadcast","payload":1,"id":"{id}"}}"#);
        assert!(parse_client_message(&text).is_ok());
    }

    #[test]
    fn payloads_deeper_than_the_limit_are_bad_json() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let chat = |n: usize| {
            format!(
                r#"{{"type":"chat_message","receiverID":"bob","payload":{},"id":"d"}}"#,
                nested(n)
            )
        };
        assert!(
            parse_client_message(&chat(64)).is_ok(),
            "64 levels by default"
        );
        let rej = reject(&chat(65));
        assert_eq!(
            (rej.code, rej.id.as_deref()),
            (ErrorCode::BadJson, Some("d"))
        );
        assert!(rej.message.contains("deeper than 64"), "{}", rej.message);
        let broadcast = format!(r#"{{"type":"broadcast","payload":{}}}"#, nested(3));
        assert!(parse_client_message_limited(&broadcast, 3).is_ok());
        let rej = parse_client_message_limited(&broadcast, 2).unwrap_err();
        assert_eq!(rej.code, ErrorCode::BadJson);
        // Deep brackets inside a string are text, not nesting.
        let text = format!(r#"{{"type":"broadcast","payload":"{}"}}"#, "[".repeat(500));
        assert!(parse_client_message_limited(&text, 1).is_ok());
        // Far deeper than serde_json's own recursion limit: still one clear error.
        let very = chat(20_000);
        assert_eq!(reject(&very).code, ErrorCode::BadJson);
    }
}

mod encode {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::value::RawValue;
    use serde_json::{json, Value};

    use crate::protocol::envelope::encode::MAX_SECS;
    use crate::protocol::envelope::*;

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> Value {
        let mut out = b"prefix".to_vec();
        write(&mut out);
        assert_eq!(&out[..6], b"prefix", "appends, never clears");
        serde_json::from_slice(&out[6..]).expect("valid JSON")
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("valid JSON")
    }

    #[test]
    fn welcome_fields() {
        let w = Welcome {
            connection_id: "srv-1-0-7",
            user_id: "alice",
            server_id: "srv-1",
            heartbeat_interval_ms: 30_000,
            max_message_bytes: 65_536,
            subscriptions: &[],
            inbox: None,
            expires_at: None,
        };
        let want = json!({"type":"welcome","connectionId":"srv-1-0-7","userId":"alice",
            "serverId":"srv-1","heartbeatIntervalMs":30000,"maxMessageBytes":65536});
        assert_eq!(written(|out| write_welcome(out, &w)), want);
    }

    #[test]
    fn chat_and_broadcast_carry_the_payload_raw() {
        let payload = raw(r#"{"n":[1, 2.50],"s":"\u00e9"}"#);
        let ts = "2026-11-28T16:08:37.123456Z";
        let mut out = Vec::new();
        write_chat(&mut out, "m\"1", "alice", "bob", &payload, ts);
        let text = std::str::from_utf8(&out).expect("utf-8");
        assert!(
            text.contains(r#""payload":{"n":[1, 2.50],"s":"\u00e9"}"#),
            "{text}"
        );
        let want = json!({"type":"chat_message","id":"m\"1","senderId":"alice",
            "receiverID":"bob","payload":{"n":[1,2.5],"s":"é"},"timestamp":ts});
        assert_eq!(serde_json::from_slice::<Value>(&out).expect("json"), want);
        let want =
            json!({"type":"broadcast","id":"b1","senderId":"alice","payload":7,"timestamp":ts});
        assert_eq!(
            written(|o| write_broadcast(o, "b1", "alice", &raw("7"), ts)),
            want
        );
    }

    #[test]
    fn written_chat_parses_back() {
        let payload = raw(r#"[{"deep":{"er":[null,true]}}]"#);
        let mut out = Vec::new();
        write_chat(&mut out, "id-1", "alice", "bob", &payload, "t");
        let text = std::str::from_utf8(&out).expect("utf-8");
        let Ok(ClientMessage::Chat {
            receiver,
            payload: back,
            id,
        }) = parse_client_message(text)
        else {
            panic!("{text}");
        };
        assert_eq!((receiver.as_ref(), id.as_deref()), ("bob", Some("id-1")));
        assert_eq!(back.get(), payload.get());
    }

    #[test]
    fn acks_heartbeats_and_errors() {
        let ts = "2026-11-28T16:08:37.123456Z";
        let got = written(|o| write_heartbeat_ack(o, ts));
        assert_eq!(got, json!({"type":"heartbeat_ack","timestamp":ts}));
        let delivered = AckStatus::Delivered { connections: 2 };
        let got = written(|o| write_ack(o, "m1", delivered, None));
        assert_eq!(
            got,
            json!({"type":"ack","id":"m1","status":"delivered","connections":2})
        );
        for (status, name) in [
            (AckStatus::Offline, "offline"),
            (AckStatus::Failed, "failed"),
            (AckStatus::RateLimited, "rate_limited"),
        ] {
            let got = written(|o| write_ack(o, "m1", status, None));
            assert_eq!(got, json!({"type":"ack","id":"m1","status":name}));
        }
        let got = written(|o| write_error(o, ErrorCode::BadJson, "bad \"quote\"\n", Some("m1")));
        let want = json!({"type":"error","code":"bad_json","message":"bad \"quote\"\n","id":"m1"});
        assert_eq!(got, want);
        let got = written(|o| write_error(o, ErrorCode::TooLarge, "big", None));
        assert_eq!(
            got,
            json!({"type":"error","code":"too_large","message":"big"})
        );
    }

    #[test]
    fn timestamp_shape() {
        let t = timestamp(UNIX_EPOCH + Duration::from_micros(1_795_882_117_123_456));
        assert_eq!(t.as_str(), "2026-11-28T16:08:37.123456Z");
        assert_eq!(t.to_string(), t.as_ref());
        let b = t.as_str().as_bytes();
        assert_eq!(b.len(), 27);
        for (i, &c) in b.iter().enumerate() {
            let want_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 26);
            assert_eq!(c.is_ascii_digit(), want_digit, "{i}");
        }
        assert_eq!((b[10], b[19], b[26]), (b'T', b'.', b'Z'));
        let early = timestamp(UNIX_EPOCH - Duration::from_secs(1));
        assert_eq!(early.as_str(), "1970-01-01T00:00:00.000000Z");
        let late = timestamp(UNIX_EPOCH + Duration::from_secs(MAX_SECS + 86_400));
        assert_eq!(late.as_str(), "9999-12-31T23:59:59.999999Z");
    }

    #[test]
    fn timestamp_matches_humantime() {
        let mut micros: u64 = 1;
        for _ in 0..20_000 {
            // Spread over 1970..=9999, leap days and century years included.
            micros = micros
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let at = UNIX_EPOCH + Duration::from_micros(micros % ((MAX_SECS + 1) * 1_000_000));
            let want = humantime::format_rfc3339_micros(at).to_string();
            assert_eq!(timestamp(at).as_str(), want);
        }
    }
}
