//! Variable Byte Integers (section 1.5.5).

/// The largest value a Variable Byte Integer holds: 268,435,455.
pub const MAX_VARINT: u32 = 268_435_455;

/// Number of bytes `v` takes as a Variable Byte Integer (1 to 4).
#[inline]
pub const fn varint_len(v: usize) -> usize {
    if v < 128 {
        1
    } else if v < 16_384 {
        2
    } else if v < 2_097_152 {
        3
    } else {
        4
    }
}

/// Result of reading a Variable Byte Integer from a prefix of a slice.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VarInt {
    /// The value and how many bytes it used.
    Done(u32, usize),
    /// The slice ends before the last byte of the integer.
    Incomplete,
    /// A fifth byte would be needed, or the encoding is not minimal.
    Malformed,
}

/// Reads a Variable Byte Integer from the start of `buf`.
///
/// Rejects a continuation bit on the fourth byte and non-minimal encodings
/// (a trailing zero group), [MQTT-1.5.5-1].
#[inline]
pub(crate) fn read_varint(buf: &[u8]) -> VarInt {
    let mut value: u32 = 0;
    for i in 0..4 {
        let Some(&byte) = buf.get(i) else {
            return VarInt::Incomplete;
        };
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return VarInt::Malformed;
            }
            return VarInt::Done(value, i + 1);
        }
    }
    VarInt::Malformed
}
