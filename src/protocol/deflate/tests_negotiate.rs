//! The extensions header grammar and the choice of offer.

use super::*;

/// Accepts the single element of `offer`.
fn verdict(offer: &str) -> Result<Agreement, Decline> {
    let mut all = extensions(offer.as_bytes());
    let first = all.next().expect("one element");
    assert!(all.next().is_none(), "{offer:?} holds one element");
    accept(&first.map_err(|_| Decline::Malformed)?)
}

fn window(offer: &str) -> Option<u8> {
    negotiate(offer.as_bytes()).map(|a| a.server_window().get())
}

#[test]
fn the_list_grammar() {
    let value = br#" , permessage-deflate ;client_max_window_bits ; x = "a\"b,c" ,, foo, bar;"#;
    let items: Vec<_> = extensions(value).collect();
    assert_eq!(items.len(), 3, "{items:?}");
    let first = items[0].expect("well-formed");
    assert_eq!(first.name, b"permessage-deflate");
    let params: Vec<_> = first.params().map(Result::unwrap).collect();
    assert_eq!(params.len(), 2);
    assert_eq!(params[0].name, b"client_max_window_bits");
    assert_eq!(params[0].value, None);
    assert_eq!(params[1].name, b"x");
    let v = params[1].value.expect("a value");
    assert_eq!(v, Value::Quoted(br#"a\"b,c"#));
    assert_eq!(v.bytes().collect::<Vec<_>>(), br#"a"b,c"#);
    assert_eq!(items[1].map(|e| e.name), Ok(&b"foo"[..]));
    // "bar;" ends with a parameter that has no name.
    let bar = items[2].expect("the name parses");
    assert_eq!(bar.params().collect::<Vec<_>>(), vec![Err(Malformed)]);
}

#[test]
fn malformed_elements_do_not_hide_the_next() {
    for bad in [
        "permessage-deflate x",
        "=permessage-deflate",
        "permessage-deflate; a=",
        "permessage-deflate; a=b c",
        "permessage-deflate; a=\"x\"y",
        "permessage-deflate;;",
        "permessage-deflate; a=\"\x01\"",
        "perm\u{e9}ssage-deflate",
    ] {
        assert_eq!(verdict(bad), Err(Decline::Malformed), "{bad:?}");
        assert_eq!(
            window(&format!("{bad}, permessage-deflate")),
            Some(15),
            "{bad:?}"
        );
    }
    // An unterminated quote runs to the end: nothing after it can be read.
    assert_eq!(
        window("permessage-deflate; a=\"x, permessage-deflate"),
        None
    );
}

#[test]
fn what_browsers_and_autobahn_offer_is_accepted() {
    for offer in [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_no_context_takeover; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits=8",
        "permessage-deflate; client_max_window_bits=\"15\"",
        "Permessage-Deflate; Client_Max_Window_Bits",
        "permessage-deflate;server_no_context_takeover;client_no_context_takeover",
    ] {
        let agreed = verdict(offer).unwrap_or_else(|e| panic!("{offer:?}: {e}"));
        assert_eq!(agreed.server_window(), WindowBits::MAX, "{offer:?}");
    }
}

#[test]
fn server_window_is_honoured_down_to_nine() {
    for bits in 9..=15u8 {
        let offer = format!("permessage-deflate; server_max_window_bits={bits}");
        assert_eq!(verdict(&offer).map(|a| a.server_window().get()), Ok(bits));
        let quoted = format!("permessage-deflate; server_max_window_bits=\"{bits}\"");
        assert_eq!(verdict(&quoted).map(|a| a.server_window().get()), Ok(bits));
    }
    assert_eq!(
        verdict("permessage-deflate; server_max_window_bits=8"),
        Err(Decline::UnsupportedWindow)
    );
}

#[test]
fn bad_values_unknown_and_duplicate_parameters_decline() {
    use Decline::*;
    let cases = [
        ("server_max_window_bits", InvalidValue),
        ("server_max_window_bits=7", InvalidValue),
        ("server_max_window_bits=16", InvalidValue),
        ("server_max_window_bits=09", InvalidValue),
        ("server_max_window_bits=010", InvalidValue),
        ("server_max_window_bits=1a", InvalidValue),
        ("server_max_window_bits=\"\"", InvalidValue),
        ("client_max_window_bits=0", InvalidValue),
        ("client_max_window_bits=255", InvalidValue),
        ("server_no_context_takeover=1", InvalidValue),
        ("client_no_context_takeover=\"\"", InvalidValue),
        ("mux", UnknownParameter),
        (
            "server_max_window_bits=10; server_max_window_bits=10",
            DuplicateParameter,
        ),
        (
            "client_max_window_bits; client_max_window_bits=9",
            DuplicateParameter,
        ),
        (
            "server_no_context_takeover; server_no_context_takeover",
            DuplicateParameter,
        ),
    ];
    for (params, why) in cases {
        let offer = format!("permessage-deflate; {params}");
        assert_eq!(verdict(&offer), Err(why), "{offer:?}");
    }
    assert_eq!(verdict("x-webkit-deflate-frame"), Err(OtherExtension));
    // An escaped digit is still a digit: "1\0" unescapes to 10.
    let escaped = verdict(r#"permessage-deflate; server_max_window_bits="1\0""#);
    assert_eq!(escaped.map(|a| a.server_window().get()), Ok(10));
}

#[test]
fn the_first_acceptable_offer_wins() {
    let offers = "x-webkit-deflate-frame; no_context_takeover, \
                  permessage-deflate; server_max_window_bits=8, \
                  permessage-deflate; unknown, \
                  permessage-deflate; server_max_window_bits=11, \
                  permessage-deflate";
    assert_eq!(window(offers), Some(11));
    assert_eq!(window("x-webkit-deflate-frame"), None);
    assert_eq!(window(""), None);
    assert_eq!(window(" , ,"), None);
}

#[test]
fn the_answer_requires_no_context_takeover_both_ways() {
    let default = verdict("permessage-deflate").unwrap();
    assert_eq!(
        default.response_value(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    );
    let nine = verdict("permessage-deflate; server_max_window_bits=9").unwrap();
    assert_eq!(
        nine.response_value(),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=9"
    );
    // What the answer says parses back into the same agreement.
    assert_eq!(
        verdict(
            &nine
                .response_value()
                .replace("client_no_context_takeover; ", "")
        ),
        Ok(nine)
    );
}

#[test]
fn the_connection_keeps_one_byte() {
    assert_eq!(std::mem::size_of::<Option<Agreement>>(), 1);
    assert_eq!(WindowBits::new(8), None);
    assert_eq!(WindowBits::new(16), None);
    assert_eq!(WindowBits::new(12).map(WindowBits::get), Some(12));
}
