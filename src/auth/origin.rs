//! Web origins compared as RFC 6454 says: by their serialization.
//!
//! An origin is a scheme, a host and a port. Its ASCII serialization
//! (RFC 6454 §6.2) has the scheme and the host in lower case and leaves out
//! the scheme's default port, so `HTTPS://App.Example:443` and
//! `https://app.example` are the same origin, while `https://app.example:8443`
//! and `http://app.example` are not. Both `ALLOWED_ORIGINS` (at start) and
//! each request's `Origin` header go through [`serialize`], and the results
//! are compared byte for byte.
//!
//! Hosts are compared as ASCII: browsers send internationalized names in
//! their `xn--` (punycode) form, so the allow-list must use that form too
//! (a non-ASCII entry is refused at start with that hint).

/// Why a text is not an origin (for the configuration's error message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadOrigin {
    /// No `scheme://`, or a scheme with characters RFC 3986 does not allow.
    Scheme,
    /// A path, query, fragment, user info or space after the host.
    Extra,
    /// No host, or a host with non-ASCII characters.
    Host,
    /// A port that is not a number in 1..=65535.
    Port,
}

impl std::fmt::Display for BadOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadOrigin::Scheme => "it has no valid scheme:// part",
            BadOrigin::Extra => "an origin has no path, query, user info or trailing slash",
            BadOrigin::Host => "it has no host, or a non-ASCII one (use the xn-- form)",
            BadOrigin::Port => "its port is not a number in 1..=65535",
        })
    }
}

/// The ASCII serialization of the origin `text` (`scheme://host[:port]`,
/// lower-cased, default port left out), or why it is not one. The opaque
/// origin `null` is not an origin here: it never matches an allow-list.
pub fn serialize(text: &str) -> Result<String, BadOrigin> {
    let (scheme, rest) = text.trim().split_once("://").ok_or(BadOrigin::Scheme)?;
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(BadOrigin::Scheme);
    }
    if rest.contains(['/', '?', '#', '@', '\\']) || rest.bytes().any(|b| b <= b' ') {
        return Err(BadOrigin::Extra);
    }
    let (host, port) = split_host_port(rest)?;
    let bracketed = host.starts_with('[');
    if host.is_empty()
        || !host.is_ascii()
        || (bracketed && !host.ends_with(']'))
        || (!bracketed && host.contains(':'))
    {
        return Err(BadOrigin::Host);
    }
    let scheme = scheme.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p)?),
    };
    Ok(match port {
        Some(p) if Some(p) != default_port(&scheme) => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Splits `host[:port]`, where the host may be a bracketed IPv6 literal.
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), BadOrigin> {
    if rest.starts_with('[') {
        let close = rest.find(']').ok_or(BadOrigin::Host)?;
        let (host, after) = rest.split_at(close + 1);
        return match after {
            "" => Ok((host, None)),
            _ => Ok((host, Some(after.strip_prefix(':').ok_or(BadOrigin::Port)?))),
        };
    }
    Ok(match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    })
}

fn parse_port(port: &str) -> Result<u16, BadOrigin> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadOrigin::Port);
    }
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or(BadOrigin::Port)
}

/// The port a scheme implies when none is written.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_and_host_are_case_insensitive_and_default_ports_vanish() {
        for same in [
            "https://app.example",
            "HTTPS://APP.EXAMPLE",
            "https://App.Example:443",
            " https://app.example:0443 ",
        ] {
            assert_eq!(serialize(same).unwrap(), "https://app.example", "{same}");
        }
        assert_eq!(serialize("http://h:80").unwrap(), "http://h");
        assert_eq!(serialize("WS://h:80").unwrap(), "ws://h");
        assert_eq!(serialize("wss://h:443").unwrap(), "wss://h");
        assert_eq!(serialize("http://h:443").unwrap(), "http://h:443");
        assert_eq!(
            serialize("http://LOCALHOST:3000").unwrap(),
            "http://localhost:3000"
        );
        assert_eq!(serialize("app://x:1").unwrap(), "app://x:1");
        assert_eq!(serialize("http://[::1]:8080").unwrap(), "http://[::1]:8080");
        assert_eq!(serialize("http://[::1]").unwrap(), "http://[::1]");
    }

    #[test]
    fn what_is_not_an_origin() {
        let cases = [
            ("null", BadOrigin::Scheme),
            ("app.example", BadOrigin::Scheme),
            ("://h", BadOrigin::Scheme),
            ("1http://h", BadOrigin::Scheme),
            ("https://app.example/", BadOrigin::Extra),
            ("https://app.example/path", BadOrigin::Extra),
            ("https://u@app.example", BadOrigin::Extra),
            ("https://app.example?x", BadOrigin::Extra),
            ("https://a b", BadOrigin::Extra),
            ("https://", BadOrigin::Host),
            ("https://:80", BadOrigin::Host),
            ("https://bücher.example", BadOrigin::Host),
            ("https://[::1", BadOrigin::Host),
            ("https://h:", BadOrigin::Port),
            ("https://h:0", BadOrigin::Port),
            ("https://h:65536", BadOrigin::Port),
            ("https://h:+1", BadOrigin::Port),
            ("https://[::1]x", BadOrigin::Port),
            ("https://a:b:80", BadOrigin::Host),
        ];
        for (text, why) in cases {
            assert_eq!(serialize(text), Err(why), "{text:?}");
        }
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let alphabet = ["h", ":", "/", "[", "]", "@", "é", "8", "s", " ", "\0"];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = serialize(&format!("http://{text}"));
            let _ = serialize(&text);
        }
    }
}
