//! Reading fields from a packet body and writing them into a buffer.

use crate::{
    DecodeError, EncodeError, MqttStr, StringError, TopicFilter, TopicName,
    varint::{VarInt, read_varint, varint_len},
};
use bytes::{Buf, BufMut, Bytes, BytesMut, buf::UninitSlice};

/// A cursor over a packet body. Fields come out as slices of the body.
///
/// Reading advances a position; only fields handed out as `Bytes` take a
/// reference count, and [`Reader::into_tail`] hands over the body itself.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    #[inline]
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf, pos: 0 }
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Current position from the start of the body.
    #[inline]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    fn need(&self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        if self.remaining() < n {
            Err(DecodeError::UnexpectedEnd(field))
        } else {
            Ok(())
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        self.need(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(a)
    }

    #[inline]
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    #[inline]
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    #[inline]
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    #[inline]
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        match read_varint(&self.buf[self.pos..]) {
            VarInt::Done(v, n) => {
                self.pos += n;
                Ok(v)
            }
            VarInt::Incomplete => Err(DecodeError::UnexpectedEnd(field)),
            VarInt::Malformed => Err(DecodeError::MalformedVarInt),
        }
    }

    #[inline]
    pub(crate) fn packet_id(&mut self) -> Result<crate::PacketId, DecodeError> {
        crate::PacketId::new(self.u16("packet identifier")?).ok_or(DecodeError::ZeroPacketId)
    }

    /// Skips `n` bytes and returns them as a borrowed slice.
    #[inline]
    fn skip(&mut self, n: usize, field: &'static str) -> Result<&[u8], DecodeError> {
        self.need(n, field)?;
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..self.pos])
    }

    /// `n` bytes as a shared slice.
    #[inline]
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, field)?;
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// Binary Data: a two-byte length and that many bytes.
    #[inline]
    pub(crate) fn binary(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u16(field)? as usize;
        self.take(len, field)
    }

    #[inline]
    pub(crate) fn string(&mut self, field: &'static str) -> Result<MqttStr, DecodeError> {
        MqttStr::from_bytes(self.binary(field)?)
            .map_err(|error| DecodeError::InvalidString { field, error })
    }

    #[inline]
    pub(crate) fn topic_name(&mut self, field: &'static str) -> Result<TopicName, DecodeError> {
        TopicName::from_bytes(self.binary(field)?)
            .map_err(|error| DecodeError::InvalidString { field, error })
    }

    /// Validates a topic name and skips it without taking a reference
    /// count; returns its length. The topic starts at `position() - len`.
    #[inline]
    pub(crate) fn skip_topic_name(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        let len = self.u16(field)?;
        let bytes = self.skip(len as usize, field)?;
        crate::string::check_topic_name(bytes)
            .map_err(|error| DecodeError::InvalidString { field, error })?;
        Ok(len)
    }

    #[inline]
    pub(crate) fn topic_filter(&mut self) -> Result<TopicFilter, DecodeError> {
        let field = crate::error::TOPIC_FILTER;
        TopicFilter::from_bytes(self.binary(field)?)
            .map_err(|error| DecodeError::InvalidString { field, error })
    }

    /// How many `(length-prefixed field, trailer bytes)` entries fill the
    /// rest of the body, counted without reading them (a sizing hint: a
    /// malformed tail just ends the count).
    #[inline]
    pub(crate) fn count_entries(&self, trailer: usize) -> usize {
        let b = &self.buf[self.pos..];
        let (mut i, mut n) = (0, 0);
        while i + 2 <= b.len() {
            i += 2 + u16::from_be_bytes([b[i], b[i + 1]]) as usize + trailer;
            n += 1;
        }
        n
    }

    /// The body from `from` to its end, consuming the reader, without a
    /// reference-count change.
    #[inline]
    pub(crate) fn into_tail(self, from: usize) -> Bytes {
        let mut b = self.buf;
        b.advance(from);
        b
    }

    /// Fails unless the body has been read to its end.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Length of a string or binary field on the wire.
#[inline]
pub(crate) fn binary_len(b: &[u8]) -> usize {
    2 + b.len()
}

/// Checks that binary data fits its two-byte length.
#[inline]
pub(crate) fn check_binary(b: &[u8], field: &'static str) -> Result<(), EncodeError> {
    if b.len() > u16::MAX as usize {
        Err(EncodeError::FieldTooLong(field))
    } else {
        Ok(())
    }
}

/// Writes a two-byte length and the bytes (length already checked).
#[inline]
pub(crate) fn put_binary(buf: &mut Out<'_>, b: &[u8]) {
    buf.put_u16(b.len() as u16);
    buf.put_slice(b);
}

/// A cursor writing an encoded packet into capacity reserved for exactly its
/// size; see [`write_exact`].
pub(crate) struct Out<'a> {
    dst: &'a mut UninitSlice,
    pos: usize,
}

impl Out<'_> {
    #[inline]
    pub(crate) fn put_u8(&mut self, v: u8) {
        self.dst.write_byte(self.pos, v);
        self.pos += 1;
    }

    #[inline]
    pub(crate) fn put_u16(&mut self, v: u16) {
        self.put_slice(&v.to_be_bytes());
    }

    #[inline]
    pub(crate) fn put_u32(&mut self, v: u32) {
        self.put_slice(&v.to_be_bytes());
    }

    #[inline]
    pub(crate) fn put_slice(&mut self, s: &[u8]) {
        self.dst[self.pos..self.pos + s.len()].copy_from_slice(s);
        self.pos += s.len();
    }

    /// A Variable Byte Integer (at most [`MAX_VARINT`](crate::MAX_VARINT)).
    #[inline]
    pub(crate) fn put_var(&mut self, mut v: usize) {
        loop {
            let byte = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.put_u8(byte);
                return;
            }
            self.put_u8(byte | 0x80);
        }
    }
}

/// Appends exactly `len` bytes to `buf`, written by `write` through an
/// [`Out`], with a single reservation and no per-field capacity checks.
///
/// Panics if `write` does not write exactly `len` bytes (an encoder bug:
/// every encoder's length function is tested against its output).
#[inline]
pub(crate) fn write_exact(buf: &mut BytesMut, len: usize, write: impl FnOnce(&mut Out<'_>)) {
    buf.reserve(len);
    let mut out = Out {
        dst: &mut buf.chunk_mut()[..len],
        pos: 0,
    };
    write(&mut out);
    assert_eq!(
        out.pos, len,
        "encoder wrote a different length than it computed"
    );
    // SAFETY: `out` starts at position 0 of `buf`'s spare capacity and every
    // `put_*` writes the bytes at `pos..pos + n` before advancing `pos` by
    // `n`, so bytes `0..out.pos` are all initialized; `out.pos == len` was
    // just asserted, and `reserve(len)` made `len` bytes of capacity available.
    unsafe { buf.advance_mut(len) };
}

/// Length of a property block: its length prefix and body.
#[inline]
pub(crate) fn prop_block_len(body: usize) -> usize {
    varint_len(body) + body
}

#[inline]
pub(crate) fn put_var(buf: &mut Out<'_>, v: usize) {
    buf.put_var(v)
}

impl From<(StringError, &'static str)> for DecodeError {
    fn from((error, field): (StringError, &'static str)) -> Self {
        DecodeError::InvalidString { field, error }
    }
}
