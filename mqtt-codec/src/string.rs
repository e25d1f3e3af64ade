//! Validated strings over shared [`Bytes`]: [`MqttStr`], [`TopicName`], [`TopicFilter`].
//!
//! Each type checks its rules once, when it is made, and then hands out `&str`
//! without checking again. Decoded values are slices of the received buffer.

use alloc::string::String;
use bytes::Bytes;
use core::{fmt, ops::Deref};

/// Why a string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StringError {
    /// Longer than 65,535 bytes ([MQTT-1.5.4-1], [MQTT-4.7.3-3]).
    #[error("string longer than 65535 bytes")]
    TooLong,
    /// Not well-formed UTF-8 ([MQTT-1.5.4-1]).
    #[error("string is not well-formed UTF-8")]
    InvalidUtf8,
    /// Contains U+0000 ([MQTT-1.5.4-2]).
    #[error("string contains U+0000")]
    NullCharacter,
    /// A topic name containing `+` or `#` ([MQTT-3.3.2-2], [MQTT-4.7.0-1]).
    #[error("topic name contains a wildcard character")]
    WildcardInTopicName,
    /// A topic filter or name that is empty ([MQTT-4.7.3-1]).
    #[error("topic is empty")]
    EmptyTopic,
    /// A topic filter whose wildcards or shared-subscription prefix are misplaced
    /// ([MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.8.2-1], [MQTT-4.8.2-2]).
    #[error("invalid topic filter")]
    InvalidTopicFilter,
}

/// Checks the UTF-8 Encoded String rules of section 1.5.4.
#[inline]
pub(crate) fn check_utf8(b: &[u8]) -> Result<(), StringError> {
    if b.len() > u16::MAX as usize {
        return Err(StringError::TooLong);
    }
    if !b.is_ascii() && core::str::from_utf8(b).is_err() {
        return Err(StringError::InvalidUtf8);
    }
    if b.contains(&0) {
        return Err(StringError::NullCharacter);
    }
    Ok(())
}

#[inline]
fn check_topic_name(b: &[u8]) -> Result<(), StringError> {
    check_utf8(b)?;
    if b.iter().any(|&c| c == b'+' || c == b'#') {
        return Err(StringError::WildcardInTopicName);
    }
    Ok(())
}

fn check_filter_levels(filter: &str) -> Result<(), StringError> {
    if filter.is_empty() {
        return Err(StringError::InvalidTopicFilter);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "#" if levels.peek().is_none() => {}
            "+" => {}
            _ if level.contains(['+', '#']) => return Err(StringError::InvalidTopicFilter),
            "#" => return Err(StringError::InvalidTopicFilter),
            _ => {}
        }
    }
    Ok(())
}

fn check_topic_filter(b: &[u8]) -> Result<(), StringError> {
    check_utf8(b)?;
    // Safe to view as str: check_utf8 succeeded.
    let s = core::str::from_utf8(b).map_err(|_| StringError::InvalidUtf8)?;
    if s.is_empty() {
        return Err(StringError::EmptyTopic);
    }
    match split_shared(s) {
        Some((group, filter)) => {
            if group.is_empty() || group.contains(['+', '#']) {
                return Err(StringError::InvalidTopicFilter);
            }
            check_filter_levels(filter)
        }
        None if s.starts_with("$share/") => Err(StringError::InvalidTopicFilter),
        None => check_filter_levels(s),
    }
}

/// Splits `$share/{group}/{filter}` into group and filter.
fn split_shared(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix("$share/")?;
    let slash = rest.find('/')?;
    Some((&rest[..slash], &rest[slash + 1..]))
}

macro_rules! string_type {
    ($(#[$m:meta])* $name:ident, $check:path) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Bytes);

        impl $name {
            /// Validates `bytes` and wraps them without copying.
            #[inline]
            pub fn from_bytes(bytes: Bytes) -> Result<Self, StringError> {
                $check(&bytes)?;
                Ok(Self(bytes))
            }

            /// Validates a static string; usable for constants known to be valid.
            pub fn from_static(s: &'static str) -> Result<Self, StringError> {
                Self::from_bytes(Bytes::from_static(s.as_bytes()))
            }

            /// The string.
            #[inline]
            pub fn as_str(&self) -> &str {
                // SAFETY: every constructor ran the check above, which proves
                // the bytes are well-formed UTF-8 (either `is_ascii` or
                // `core::str::from_utf8` succeeded), and `Bytes` is immutable.
                unsafe { core::str::from_utf8_unchecked(&self.0) }
            }

            /// The underlying bytes (a cheap, reference-counted clone).
            #[inline]
            pub fn as_bytes(&self) -> &Bytes {
                &self.0
            }

            /// Unwraps into the underlying bytes.
            #[inline]
            pub fn into_bytes(self) -> Bytes {
                self.0
            }

            /// Length in bytes.
            #[inline]
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether the string is empty.
            #[inline]
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl Deref for $name {
            type Target = str;
            #[inline]
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<&str> for $name {
            type Error = StringError;
            fn try_from(s: &str) -> Result<Self, StringError> {
                Self::from_bytes(Bytes::copy_from_slice(s.as_bytes()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = StringError;
            fn try_from(s: String) -> Result<Self, StringError> {
                Self::from_bytes(Bytes::from(s))
            }
        }

        impl TryFrom<Bytes> for $name {
            type Error = StringError;
            fn try_from(b: Bytes) -> Result<Self, StringError> {
                Self::from_bytes(b)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

string_type!(
    /// A UTF-8 Encoded String (section 1.5.4): well-formed UTF-8, no U+0000,
    /// at most 65,535 bytes. U+FEFF is kept as ordinary content ([MQTT-1.5.4-3]).
    MqttStr,
    check_utf8
);

string_type!(
    /// A topic name for PUBLISH, a Will or a Response Topic: an [`MqttStr`]
    /// without `+` or `#`.
    ///
    /// It may be empty: MQTT 5 allows an empty topic name together with a
    /// Topic Alias, and the packet-level checks refuse it otherwise.
    TopicName,
    check_topic_name
);

string_type!(
    /// A topic filter for SUBSCRIBE and UNSUBSCRIBE: non-empty, `#` only as
    /// the whole last level, `+` only as a whole level, and shared
    /// subscriptions as `$share/{group}/{filter}` with a non-empty group free
    /// of wildcards.
    TopicFilter,
    check_topic_filter
);

impl Default for MqttStr {
    fn default() -> Self {
        MqttStr(Bytes::new())
    }
}

impl Default for TopicName {
    fn default() -> Self {
        TopicName(Bytes::new())
    }
}

impl TopicFilter {
    /// For `$share/{group}/{filter}`, the group name and the inner filter.
    pub fn shared(&self) -> Option<(&str, &str)> {
        split_shared(self.as_str())
    }

    /// Whether this is a shared subscription filter (`$share/...`).
    pub fn is_shared(&self) -> bool {
        self.as_str().starts_with("$share/")
    }

    /// Whether the filter (without any `$share/{group}/` prefix) has a wildcard.
    pub fn has_wildcards(&self) -> bool {
        let f = self.shared().map_or(self.as_str(), |(_, f)| f);
        f.contains(['+', '#'])
    }
}

impl MqttStr {
    /// Wraps bytes without checking them.
    ///
    /// # Safety
    /// `bytes` must be well-formed UTF-8 (the other rules are not needed for
    /// soundness, only for conformance).
    #[inline]
    pub(crate) unsafe fn from_bytes_unchecked(bytes: Bytes) -> MqttStr {
        MqttStr(bytes)
    }
}

impl From<TopicName> for MqttStr {
    fn from(t: TopicName) -> MqttStr {
        // SAFETY: a TopicName satisfies a superset of MqttStr's rules.
        unsafe { MqttStr::from_bytes_unchecked(t.0) }
    }
}

impl From<TopicFilter> for MqttStr {
    fn from(t: TopicFilter) -> MqttStr {
        // SAFETY: a TopicFilter satisfies a superset of MqttStr's rules.
        unsafe { MqttStr::from_bytes_unchecked(t.0) }
    }
}

impl TryFrom<MqttStr> for TopicName {
    type Error = StringError;
    fn try_from(s: MqttStr) -> Result<Self, StringError> {
        TopicName::from_bytes(s.0)
    }
}

impl TryFrom<MqttStr> for TopicFilter {
    type Error = StringError;
    fn try_from(s: MqttStr) -> Result<Self, StringError> {
        TopicFilter::from_bytes(s.0)
    }
}
