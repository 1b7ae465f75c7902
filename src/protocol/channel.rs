//! A channel name: 1 to 255 bytes of `A-Z a-z 0-9 . _ : @ - / = ,`,
//! validated once and then shared cheaply (an `Arc<str>`). Its namespace is
//! the part before the first `:`; a name without `:` is in the default
//! namespace.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Longest accepted channel name, in bytes.
pub const MAX_CHANNEL_BYTES: usize = 255;

/// Whether `s` is a valid channel name.
pub fn is_valid_channel(s: &str) -> bool {
    (1..=MAX_CHANNEL_BYTES).contains(&s.len())
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b':' | b'@' | b'-' | b'/' | b'=' | b',')
        })
}

/// A validated channel name; cheap to clone and share between shards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(pub Arc<str>);

impl ChannelName {
    /// The channel `s`, if valid (see [`is_valid_channel`]).
    pub fn parse(s: &str) -> Option<ChannelName> {
        is_valid_channel(s).then(|| ChannelName(Arc::from(s)))
    }

    /// The namespace: the part before the first `:`, or `None` for the
    /// default namespace.
    pub fn namespace(&self) -> Option<&str> {
        namespace_of(&self.0)
    }
}

/// The namespace of a channel name (`chat:42` → `chat`); `None` without `:`.
pub fn namespace_of(channel: &str) -> Option<&str> {
    channel.split_once(':').map(|(ns, _)| ns)
}

impl Deref for ChannelName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by `ChannelName` be looked up with a `&str`.
impl Borrow<str> for ChannelName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        assert!(is_valid_channel("chat:42"));
        assert!(is_valid_channel("a/b=c,d@e.f_g-h:i"));
        assert!(is_valid_channel(&"x".repeat(255)));
        for bad in ["", "a b", "é", "a{b}", "a*", "a#", &"x".repeat(256)] {
            assert!(!is_valid_channel(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_namespace_is_before_the_first_colon() {
        let c = ChannelName::parse("chat:room:1").unwrap();
        assert_eq!(c.namespace(), Some("chat"));
        assert_eq!(ChannelName::parse("lobby").unwrap().namespace(), None);
        assert_eq!(namespace_of(":x"), Some(""));
    }
}
