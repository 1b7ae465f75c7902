//! How deeply a JSON value nests, found by one scan of its bytes.
//!
//! Payloads are passed through as the raw text the client sent (never
//! parsed into a tree), and serde_json skips over them without a depth
//! limit. Receivers' parsers have one (Python's stops near 1,000 levels), so
//! a payload deeper than `MAX_JSON_DEPTH` is refused before anyone gets it.
//!
//! The text is already known to be valid JSON (it came out of the parser as
//! a `RawValue`), so counting brackets outside strings is exact: inside a
//! string only `"` and `\` matter, and an escaped byte is skipped. No second
//! parse, no allocation, and small values skip even the scan: a value of
//! `n` bytes cannot nest deeper than `n / 2` levels.

/// The default `MAX_JSON_DEPTH`.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// True when valid JSON `value` nests deeper than `max` levels (`[]` and
/// `{}` are one level, a scalar none). Stops at the first level too deep.
pub fn deeper_than(value: &[u8], max: usize) -> bool {
    if value.len() / 2 <= max {
        return false;
    }
    scan(value, max).is_none()
}

/// The nesting depth of valid JSON `value`, or `None` once it exceeds
/// `max`. On text that is not valid JSON the answer is meaningless but
/// still computed without panicking.
pub fn scan(value: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut bytes = value.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => skip_string(&mut bytes),
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return None;
                }
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Some(deepest)
}

/// Advances past the rest of a string whose opening quote was consumed.
fn skip_string(bytes: &mut std::slice::Iter<'_, u8>) {
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => return,
            b'\\' => {
                bytes.next();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The depth of a parsed value: the reference the scan must agree with.
    fn reference(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => 1 + a.iter().map(reference).max().unwrap_or(0),
            serde_json::Value::Object(o) => 1 + o.values().map(reference).max().unwrap_or(0),
            _ => 0,
        }
    }

    fn nested(n: usize) -> String {
        format!("{}{}", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn depth_of_simple_values() {
        for (text, depth) in [
            ("1", 0),
            (r#""[[[""#, 0),
            ("[]", 1),
            ("{}", 1),
            (r#"{"a":[1,{"b":[]}]}"#, 4),
            (r#"["]", "\"[", "\\", {"k\"{": "}"}]"#, 2),
            (r#"[["\\\"[[["]]"#, 2),
        ] {
            assert_eq!(scan(text.as_bytes(), 100), Some(depth), "{text}");
        }
    }

    #[test]
    fn the_limit_is_inclusive() {
        assert!(!deeper_than(nested(64).as_bytes(), 64));
        assert!(deeper_than(nested(65).as_bytes(), 64));
        assert!(!deeper_than(b"[[]]", 2));
        assert!(deeper_than(b"[[[]]]", 2));
        // Brackets inside a long string are not nesting.
        let in_string = format!("[\"{}\"]", "[".repeat(500));
        assert!(!deeper_than(in_string.as_bytes(), 1));
        assert_eq!(scan(nested(10_000).as_bytes(), 20_000), Some(10_000));
    }

    #[test]
    fn agrees_with_a_parser_on_generated_json() {
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for _ in 0..3_000 {
            let mut text = String::new();
            generate(&mut text, 0, &mut next);
            let parsed: serde_json::Value = serde_json::from_str(&text).expect(&text);
            let depth = reference(&parsed);
            assert_eq!(scan(text.as_bytes(), usize::MAX), Some(depth), "{text}");
            for max in depth.saturating_sub(1)..=depth + 1 {
                assert_eq!(deeper_than(text.as_bytes(), max), depth > max, "{text}");
            }
        }
    }

    /// Random JSON with strings full of brackets, quotes and escapes.
    fn generate(out: &mut String, level: usize, next: &mut impl FnMut(u64) -> u64) {
        let pick = if level > 40 { next(3) } else { next(6) };
        match pick {
            0 => out.push_str(["1", "-2.5e3", "true", "null"][next(4) as usize]),
            1 | 2 => {
                out.push('"');
                for _ in 0..next(6) {
                    out.push_str(
                        ["[", "{", "]", "}", "\\\"", "\\\\", "a", "é", "\\u005b"][next(9) as usize],
                    );
                }
                out.push('"');
            }
            3 | 4 => {
                out.push('[');
                for i in 0..next(4) {
                    if i > 0 {
                        out.push(',');
                    }
                    generate(out, level + 1, next);
                }
                out.push(']');
            }
            _ => {
                out.push('{');
                for i in 0..next(4) {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("\"k{i}[\\\"\":"));
                    generate(out, level + 1, next);
                }
                out.push('}');
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            &b"\"\\"[..],
            b"]]]]",
            b"\"",
            b"\\",
            b"[\"\\\"",
            &[0xff, b'[', 0xfe],
        ] {
            let _ = scan(text, 3);
            let _ = deeper_than(text, 0);
        }
    }
}
