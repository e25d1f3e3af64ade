//! Reading fields from a packet body and writing them into a buffer.

use crate::{
    DecodeError, EncodeError, MqttStr, StringError, TopicFilter, TopicName,
    varint::{VarInt, put_varint, read_varint, varint_len},
};
use bytes::{Buf, BufMut, Bytes};

/// A cursor over a packet body. Fields come out as slices of the body.
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    #[inline]
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    #[inline]
    fn need(&self, n: usize, field: &'static str) -> Result<(), DecodeError> {
        if self.buf.len() < n {
            Err(DecodeError::UnexpectedEnd(field))
        } else {
            Ok(())
        }
    }

    #[inline]
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.need(1, field)?;
        Ok(self.buf.get_u8())
    }

    #[inline]
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.need(2, field)?;
        Ok(self.buf.get_u16())
    }

    #[inline]
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.need(4, field)?;
        Ok(self.buf.get_u32())
    }

    #[inline]
    pub(crate) fn varint(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        match read_varint(&self.buf) {
            VarInt::Done(v, n) => {
                self.buf.advance(n);
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

    /// `n` bytes as a shared slice.
    #[inline]
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        self.need(n, field)?;
        Ok(self.buf.split_to(n))
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

    #[inline]
    pub(crate) fn topic_filter(&mut self) -> Result<TopicFilter, DecodeError> {
        let field = "topic filter";
        TopicFilter::from_bytes(self.binary(field)?)
            .map_err(|error| DecodeError::InvalidString { field, error })
    }

    /// Everything that is left (the PUBLISH payload), without a reference-count change.
    #[inline]
    pub(crate) fn rest(&mut self) -> Bytes {
        core::mem::take(&mut self.buf)
    }

    /// Fails unless the body has been read to its end.
    #[inline]
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
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
pub(crate) fn put_binary(buf: &mut impl BufMut, b: &[u8]) {
    buf.put_u16(b.len() as u16);
    buf.put_slice(b);
}

/// Length of a property block: its length prefix and body.
#[inline]
pub(crate) fn prop_block_len(body: usize) -> usize {
    varint_len(body) + body
}

#[inline]
pub(crate) fn put_var(buf: &mut impl BufMut, v: usize) {
    put_varint(buf, v)
}

impl From<(StringError, &'static str)> for DecodeError {
    fn from((error, field): (StringError, &'static str)) -> Self {
        DecodeError::InvalidString { field, error }
    }
}
