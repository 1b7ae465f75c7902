//! The grammar of `Sec-WebSocket-Extensions` (RFC 6455 §9.1), read from the
//! raw header bytes without allocating:
//!
//! ```text
//! extension-list  = 1#extension                      ; comma-separated
//! extension       = token *( ";" extension-param )
//! extension-param = token [ "=" ( token / quoted-string ) ]
//! ```
//!
//! Optional whitespace is allowed around every separator and empty list
//! elements are skipped (RFC 7230 §7). A malformed element is reported on
//! its own: the next one still parses, so that one bad offer never hides a
//! good one after it. An unterminated quote swallows the rest of the header.

/// An element of the list that is not well-formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed extension offer")]
pub struct Malformed;

/// One extension offer: its name and (lazily parsed) parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: &'a [u8],
    /// What follows the name: `; param[=value]`, not yet checked.
    rest: &'a [u8],
}

/// One parameter of an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter token.
    pub name: &'a [u8],
    /// Its value, if it has one.
    pub value: Option<Value<'a>>,
}

/// A parameter value as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A bare token.
    Token(&'a [u8]),
    /// The inside of a quoted-string, escapes (`\x`) still in place.
    Quoted(&'a [u8]),
}

impl Value<'_> {
    /// The value's bytes, quoted-pair escapes undone.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        let (raw, quoted) = match *self {
            Value::Token(t) => (t, false),
            Value::Quoted(q) => (q, true),
        };
        let mut escaped = false;
        raw.iter().copied().filter(move |&b| {
            let keep = !(quoted && b == b'\\' && !escaped);
            escaped = !keep;
            keep
        })
    }
}

/// The offers of one header value, in order; each is an [`Extension`] or,
/// when that element is not well-formed, [`Malformed`].
pub fn extensions(value: &[u8]) -> impl Iterator<Item = Result<Extension<'_>, Malformed>> {
    let mut rest = value;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (element, after) = split_element(rest);
        rest = after;
        let element = element.trim_ascii();
        if !element.is_empty() {
            return Some(parse_extension(element));
        }
    })
}

impl<'a> Extension<'a> {
    /// The parameters in order; an error ends the sequence (the whole offer
    /// is then malformed).
    pub fn params(&self) -> impl Iterator<Item = Result<Param<'a>, Malformed>> {
        let mut rest = self.rest;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let parsed = parse_param(rest);
            rest = match parsed {
                Ok((_, after)) => after,
                Err(_) => &[],
            };
            Some(parsed.map(|(param, _)| param))
        })
    }
}

/// Splits at the first comma outside a quoted-string: (element, after it).
fn split_element(s: &[u8]) -> (&[u8], &[u8]) {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in s.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => return (&s[..i], &s[i + 1..]),
            _ => {}
        }
    }
    (s, &[])
}

/// `token *( ";" param )`, surrounding whitespace already trimmed.
fn parse_extension(element: &[u8]) -> Result<Extension<'_>, Malformed> {
    let (name, rest) = token(element)?;
    let rest = rest.trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(Malformed);
    }
    Ok(Extension { name, rest })
}

/// `";" OWS token [ OWS "=" OWS ( token / quoted-string ) ] OWS`, then what follows.
fn parse_param(s: &[u8]) -> Result<(Param<'_>, &[u8]), Malformed> {
    let s = s.strip_prefix(b";").ok_or(Malformed)?.trim_ascii_start();
    let (name, rest) = token(s)?;
    let rest = rest.trim_ascii_start();
    let (value, rest) = match rest.strip_prefix(b"=") {
        None => (None, rest),
        Some(v) => {
            let v = v.trim_ascii_start();
            let (value, after) = if v.first() == Some(&b'"') {
                quoted_string(v)?
            } else {
                let (t, after) = token(v)?;
                (Value::Token(t), after)
            };
            (Some(value), after.trim_ascii_start())
        }
    };
    if !rest.is_empty() && rest[0] != b';' {
        return Err(Malformed);
    }
    Ok((Param { name, value }, rest))
}

/// A non-empty run of `tchar` at the start of `s`, and what follows.
fn token(s: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    let len = s.iter().take_while(|&&b| is_tchar(b)).count();
    if len == 0 {
        return Err(Malformed);
    }
    Ok(s.split_at(len))
}

/// A quoted-string at the start of `s` (which begins with `"`): its inside,
/// escapes kept, and what follows the closing quote.
fn quoted_string(s: &[u8]) -> Result<(Value<'_>, &[u8]), Malformed> {
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate().skip(1) {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Ok((Value::Quoted(&s[1..i]), &s[i + 1..])),
            // qdtext excludes controls other than tab.
            0..=8 | 10..=31 | 127 => return Err(Malformed),
            _ => {}
        }
    }
    Err(Malformed)
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
