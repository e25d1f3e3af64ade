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

/// What one pass over a string found.
#[derive(Clone, Copy)]
struct Scan {
    non_ascii: bool,
    nul: bool,
    wildcard: bool,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero iff some byte of `x` equals `b` (exact for existence).
#[inline(always)]
fn has_byte(x: u64, b: u8) -> u64 {
    let y = x ^ (LO * b as u64);
    y.wrapping_sub(LO) & !y & HI
}

/// One pass, eight bytes at a time, looking for non-ASCII bytes, U+0000 and
/// the wildcards `+` and `#` (all three are ASCII, so they never occur inside
/// a multi-byte UTF-8 sequence and the answers hold for any UTF-8 string).
#[inline]
fn scan(b: &[u8]) -> Scan {
    let mut high = 0u64;
    let mut nul = 0u64;
    let mut wild = 0u64;
    let mut step = |x: u64| {
        high |= x & HI;
        nul |= has_byte(x, 0);
        wild |= has_byte(x, b'+') | has_byte(x, b'#');
    };
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        step(u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // Pad with a byte that is none of the ones looked for.
        let mut w = [b'a'; 8];
        w[..rest.len()].copy_from_slice(rest);
        step(u64::from_le_bytes(w));
    }
    Scan {
        non_ascii: high != 0,
        nul: nul != 0,
        wildcard: wild != 0,
    }
}

#[inline]
fn check_scanned(b: &[u8]) -> Result<Scan, StringError> {
    if b.len() > u16::MAX as usize {
        return Err(StringError::TooLong);
    }
    let s = scan(b);
    if s.non_ascii && core::str::from_utf8(b).is_err() {
        return Err(StringError::InvalidUtf8);
    }
    if s.nul {
        return Err(StringError::NullCharacter);
    }
    Ok(s)
}

/// Checks the UTF-8 Encoded String rules of section 1.5.4.
#[inline]
pub(crate) fn check_utf8(b: &[u8]) -> Result<(), StringError> {
    check_scanned(b).map(|_| ())
}

#[inline]
pub(crate) fn check_topic_name(b: &[u8]) -> Result<(), StringError> {
    if check_scanned(b)?.wildcard {
        return Err(StringError::WildcardInTopicName);
    }
    Ok(())
}

/// High bit set in exactly the bytes of `x` equal to `b`.
#[inline(always)]
fn eq_mask(x: u64, b: u8) -> u64 {
    let y = x ^ (LO * b as u64);
    !(((y & !HI).wrapping_add(!HI)) | y) & HI
}

/// Wildcard placement: `+` fills a whole level, `#` is the whole last level.
/// Finds the wildcards eight bytes at a time and checks only their neighbours.
fn check_filter_levels(f: &[u8]) -> Result<(), StringError> {
    if f.is_empty() {
        return Err(StringError::InvalidTopicFilter);
    }
    let last = f.len() - 1;
    let check = |i: usize| {
        let starts_level = i == 0 || f[i - 1] == b'/';
        match f[i] {
            b'+' => starts_level && (i == last || f[i + 1] == b'/'),
            _ => starts_level && i == last,
        }
    };
    let check_word = |base: usize, x: u64| {
        let mut wild = eq_mask(x, b'+') | eq_mask(x, b'#');
        while wild != 0 {
            if !check(base + (wild.trailing_zeros() / 8) as usize) {
                return Err(StringError::InvalidTopicFilter);
            }
            wild &= wild - 1;
        }
        Ok(())
    };
    let mut chunks = f.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        check_word(base, u64::from_le_bytes(word))?;
        base += 8;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [b'a'; 8];
        for (d, s) in word.iter_mut().zip(rest) {
            *d = *s;
        }
        check_word(base, u64::from_le_bytes(word))?;
    }
    Ok(())
}

fn check_topic_filter(b: &[u8]) -> Result<(), StringError> {
    let scan = check_scanned(b)?;
    if b.is_empty() {
        return Err(StringError::EmptyTopic);
    }
    let shared = b.starts_with(b"$share/");
    if !scan.wildcard && !shared {
        return Ok(());
    }
    if !shared {
        return check_filter_levels(b);
    }
    // `$share/{group}/{filter}`: a non-empty group without wildcards, then a filter.
    let rest = &b[7..];
    let Some(slash) = rest.iter().position(|&c| c == b'/') else {
        return Err(StringError::InvalidTopicFilter);
    };
    let (group, filter) = (&rest[..slash], &rest[slash + 1..]);
    if group.is_empty() || group.iter().any(|&c| c == b'+' || c == b'#') {
        return Err(StringError::InvalidTopicFilter);
    }
    check_filter_levels(filter)
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

    /// Whether `topic` matches this filter (for `$share/{group}/{filter}`,
    /// the inner filter). `+` matches one level, `#` the parent level and
    /// any below it, and topics starting with `$` are not matched by a
    /// filter starting with a wildcard ([MQTT-4.7.2-1]).
    ///
    /// ```
    /// use mqtt_codec::TopicFilter;
    /// let f = TopicFilter::from_static("sport/+/player1/#").unwrap();
    /// assert!(f.matches("sport/tennis/player1"));
    /// assert!(f.matches("sport/tennis/player1/ranking/x"));
    /// assert!(!f.matches("sport/tennis/player2"));
    /// assert!(!TopicFilter::from_static("#").unwrap().matches("$SYS/uptime"));
    /// ```
    pub fn matches(&self, topic: &str) -> bool {
        let filter = self.shared().map_or(self.as_str(), |(_, f)| f);
        topic_matches(filter, topic)
    }
}

/// Whether `topic` matches the (non-shared, valid) topic filter `filter`.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl TopicName {
    /// Wraps bytes without checking them.
    ///
    /// # Safety
    /// `bytes` must be well-formed UTF-8 (the other rules are not needed for
    /// soundness, only for conformance).
    #[inline]
    pub(crate) unsafe fn from_bytes_unchecked(bytes: Bytes) -> TopicName {
        TopicName(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, string::String, vec::Vec};

    /// The rules of section 4.7.1 stated level by level.
    fn reference_levels(f: &str) -> bool {
        let levels: Vec<&str> = f.split('/').collect();
        levels.iter().enumerate().all(|(i, l)| match *l {
            "#" => i + 1 == levels.len(),
            "+" => true,
            l => !l.contains(['+', '#']),
        })
    }

    fn reference(f: &str) -> bool {
        match f.strip_prefix("$share/") {
            Some(rest) => match rest.split_once('/') {
                Some((g, inner)) => {
                    !g.is_empty()
                        && !g.contains(['+', '#'])
                        && !inner.is_empty()
                        && reference_levels(inner)
                }
                None => false,
            },
            None => !f.is_empty() && reference_levels(f),
        }
    }

    /// Every string of up to seven characters over `a / + #`, bare and
    /// behind `$share/g/` and `$share/`, is judged as the reference does.
    /// [MQTT-4.7.1-1] [MQTT-4.7.1-2] [MQTT-4.8.2-1] [MQTT-4.8.2-2]
    #[test]
    fn topic_filter_rules_match_reference_exhaustively() {
        let alphabet = ['a', '/', '+', '#'];
        let mut strings = alloc::vec![String::new()];
        for len in 1..=7u32 {
            for mut k in 0..4usize.pow(len) {
                let mut s = String::new();
                for _ in 0..len {
                    s.push(alphabet[k % 4]);
                    k /= 4;
                }
                strings.push(s);
            }
        }
        for s in &strings {
            for f in [s.clone(), format!("$share/g/{s}"), format!("$share/{s}")] {
                let ours = check_topic_filter(f.as_bytes()).is_ok();
                assert_eq!(ours, reference(&f), "{f:?}");
            }
        }
    }

    /// The eight-bytes-at-a-time scan agrees with a byte-by-byte one for
    /// every position of every interesting byte, in strings of every length
    /// up to three words.
    #[test]
    fn scan_matches_bytewise_reference() {
        for len in 0..24 {
            for pos in 0..len {
                for special in [0u8, b'+', b'#', 0x80, 0xC3, b'a', 0x7F, 0x2A, 0x24] {
                    let mut b = alloc::vec![b'x'; len];
                    b[pos] = special;
                    let s = scan(&b);
                    assert_eq!(s.nul, b.contains(&0), "{b:?}");
                    assert_eq!(
                        s.wildcard,
                        b.iter().any(|&c| c == b'+' || c == b'#'),
                        "{b:?}"
                    );
                    assert_eq!(s.non_ascii, !b.is_ascii(), "{b:?}");
                }
            }
        }
    }
}
