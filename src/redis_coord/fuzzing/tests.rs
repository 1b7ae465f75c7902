//! The `redis_reply` checks on stable Rust: the fuzz target's seeds (valid
//! replies of each shape, and the inputs of crashes it found), malformed
//! RESP, and values of every type in the places the parsers look.

use redis::{PushKind, Value};

use super::{check_reply, check_resp};

/// The seeds, one RESP reply per file (also the fuzz target's corpus).
const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/redis_reply");

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn array(items: &[Value]) -> Value {
    Value::Array(items.to_vec())
}

#[test]
fn seeds_are_replies_and_pass_every_check() {
    let mut seen = 0;
    for entry in std::fs::read_dir(SEEDS).expect("fuzz/seeds/redis_reply is readable") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let value = redis::parse_redis_value(&bytes)
            .unwrap_or_else(|e| panic!("{} is no RESP reply: {e}", path.display()));
        check_reply(&value);
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} seeds in {SEEDS}");
}

#[test]
fn malformed_resp_is_refused_by_the_client_parser_or_checked() {
    for bytes in [
        &b""[..],
        b"*",
        b"*3\r\n:1\r\n",
        b"*-1\r\n",
        b"$5\r\nab\r\n",
        b"$-7\r\n",
        b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        b":99999999999999999999\r\n",
        b"*2\r\n:1\r\n$3\r\n\xff\xfe\xfd\r\n",
        b"|1\r\n+a\r\n:1\r\n*2\r\n:9\r\n$1\r\ne\r\n",
        b"=7\r\ntxt:e1\r\n",
        b"(123456789012345678901234567890\r\n",
        b",1.5\r\n",
        b"#t\r\n",
        b">1\r\n+pong\r\n",
    ] {
        check_resp(bytes);
    }
    let deep = "*1\r\n".repeat(200) + ":1\r\n";
    check_resp(deep.as_bytes());
}

#[test]
fn values_of_every_type_in_every_place_are_checked() {
    let odd = [
        Value::Nil,
        Value::Okay,
        Value::Int(-1),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::Int(1 << 32),
        bulk(""),
        bulk("+7"),
        bulk("-7"),
        bulk("18446744073709551616"),
        Value::BulkString(vec![0xff, 0xfe]),
        Value::SimpleString("1".into()),
        Value::Double(1.0),
        Value::Boolean(true),
        Value::Map(vec![(bulk("a"), Value::Int(1))]),
        Value::Set(vec![bulk("a")]),
        array(&[]),
        array(&[Value::Nil]),
        Value::Push {
            kind: PushKind::Message,
            data: vec![bulk("ch:{a}"), Value::Int(1)],
        },
    ];
    let good = [Value::Int(1), Value::Int(0), bulk("e1"), bulk("{}")];
    for v in odd.iter().chain(&good) {
        check_reply(v);
        // Each place of a four-item reply, and a long one.
        for place in 0..4 {
            let mut items = good.to_vec();
            items[place] = v.clone();
            check_reply(&array(&items));
            items.truncate(place + 1);
            check_reply(&array(&items));
        }
        check_reply(&array(&vec![v.clone(); 9]));
        check_reply(&array(&[array(&[Value::Int(0), Value::Int(1), v.clone()])]));
    }
}
