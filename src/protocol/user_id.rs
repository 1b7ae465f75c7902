//! A user id: 1 to 128 bytes of `A-Z a-z 0-9 . _ : @ -`, validated once and
//! then shared cheaply (an `Arc<str>`) between shards and maps.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Longest accepted user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 128;

/// Whether `s` is a valid user id: 1 to 128 bytes of `A-Z a-z 0-9 . _ : @ -`.
pub fn is_valid_user_id(s: &str) -> bool {
    (1..=MAX_USER_ID_BYTES).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'))
}

/// A validated user id; cheap to clone and share between shards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Arc<str>);

impl UserId {
    /// The user id `s`, if valid (see [`is_valid_user_id`]).
    pub fn parse(s: &str) -> Option<UserId> {
        is_valid_user_id(s).then(|| UserId(Arc::from(s)))
    }
}

impl Deref for UserId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by `UserId` be looked up with a `&str`.
impl Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
