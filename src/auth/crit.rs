//! RFC 7515 §4.1.11: a JWS whose protected header has a `crit` parameter
//! lists extensions the recipient must understand, or reject the token.
//! This server understands none, so any token with `crit` is refused.
//!
//! `jsonwebtoken` ignores header parameters it does not know (`crit`
//! included), so the header is read here a second time: base64url (without
//! padding, as JWS compact serialization requires) then JSON. That costs a
//! few hundred bytes of work per connect, only after the signature checked.

use serde_json::{Map, Value};

/// True when the protected header of compact JWS `token` has a `crit`
/// parameter (whatever its value: even `null` or an empty list is not a
/// header we can honour). A header that cannot be read returns false: the
/// signature check has already refused such a token.
pub fn has_crit(token: &str) -> bool {
    let Some(header) = token.split('.').next().and_then(base64url_decode) else {
        return false;
    };
    serde_json::from_slice::<Map<String, Value>>(&header).is_ok_and(|h| h.contains_key("crit"))
}

/// Decodes unpadded base64url (RFC 4648 §5); `None` on any other byte or an
/// impossible length.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_known_vectors() {
        // RFC 4648 §10, in the URL alphabet without padding.
        for (text, plain) in [
            ("", ""),
            ("Zg", "f"),
            ("Zm8", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg", "foob"),
            ("Zm9vYmE", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ] {
            assert_eq!(base64url_decode(text).unwrap(), plain.as_bytes(), "{text}");
        }
        assert_eq!(base64url_decode("-_8").unwrap(), [0xfb, 0xff]);
        for bad in ["Z", "Zm9v=", "Zm+v", "Zm/v", "Zm9vY"] {
            assert_eq!(base64url_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn crit_is_found_in_the_header_only() {
        // {"alg":"HS256","crit":["exp"]} and {"alg":"HS256","typ":"JWT"}.
        let with = "eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiZXhwIl19";
        let without = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        assert!(has_crit(&format!("{with}.e30.sig")));
        assert!(!has_crit(&format!("{without}.e30.sig")));
        // {"crit":1} in the claims is not the header's business.
        assert!(!has_crit(&format!("{without}.eyJjcml0IjoxfQ.sig")));
        assert!(!has_crit("not base64!.x.y"));
        assert!(!has_crit(""));
    }
}
