//! Incremental decoding from a [`BytesMut`] that a socket read fills.

use crate::{
    DecodeError, Packet, ProtocolVersion, Role,
    varint::{VarInt, read_varint},
};
use bytes::{Buf, BytesMut};

/// Default limit on the size of a received packet: 1 MiB.
pub const DEFAULT_MAX_PACKET_SIZE: u32 = 1024 * 1024;

/// The largest packet the protocol allows: 1 + 4 + 268,435,455 bytes.
pub const PROTOCOL_MAX_PACKET_SIZE: u32 = 268_435_460;

/// The fixed header of a packet: its first byte and the length of its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    /// Packet type (high nibble) and flags (low nibble).
    pub first_byte: u8,
    /// Bytes taken by the fixed header itself (2 to 5).
    pub header_len: usize,
    /// The Remaining Length: bytes in the body.
    pub remaining_len: usize,
}

impl FixedHeader {
    /// Size of the whole packet.
    #[inline]
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_len
    }

    /// Parses the fixed header at the start of `buf`; `Ok(None)` when more
    /// bytes are needed to know the length.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
        let Some(&first_byte) = buf.first() else {
            return Ok(None);
        };
        if first_byte >> 4 == 0 {
            return Err(DecodeError::InvalidPacketType(0));
        }
        match read_varint(&buf[1..]) {
            VarInt::Done(len, n) => Ok(Some(FixedHeader {
                first_byte,
                header_len: 1 + n,
                remaining_len: len as usize,
            })),
            VarInt::Incomplete => Ok(None),
            VarInt::Malformed => Err(DecodeError::MalformedVarInt),
        }
    }
}

/// Incremental packet decoder for one connection.
///
/// It holds the protocol version (learned from a CONNECT, or set by the
/// caller), the decoding side's [`Role`] and the maximum packet size. A packet
/// larger than the maximum is refused as soon as its fixed header is read,
/// before its body is buffered.
///
/// ```
/// use bytes::BytesMut;
/// use mqtt_codec::{Decoder, Packet};
///
/// let mut decoder = Decoder::server();
/// // CONNECT (MQTT 3.1.1, client id "a") arriving in two reads.
/// let wire = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01a";
/// let mut buf = BytesMut::from(&wire[..5]);
/// assert!(decoder.decode(&mut buf)?.is_none());
/// buf.extend_from_slice(&wire[5..]);
/// let Some(Packet::Connect(connect)) = decoder.decode(&mut buf)? else { panic!() };
/// assert_eq!(connect.client_id, "a");
/// assert_eq!(decoder.version(), Some(mqtt_codec::ProtocolVersion::V3_1_1));
/// # Ok::<(), mqtt_codec::DecodeError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Decoder {
    version: Option<ProtocolVersion>,
    role: Option<Role>,
    max_packet_size: u32,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder that accepts packets in either direction; the version is
    /// learned from a CONNECT or set with [`Decoder::set_version`].
    pub fn new() -> Decoder {
        Decoder {
            version: None,
            role: None,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
        }
    }

    /// A decoder for a server: it accepts only packets a client sends and
    /// learns the version from the client's CONNECT.
    pub fn server() -> Decoder {
        Decoder {
            role: Some(Role::Server),
            ..Decoder::new()
        }
    }

    /// A decoder for a client that connects with `version`: it accepts only
    /// packets a server sends.
    pub fn client(version: ProtocolVersion) -> Decoder {
        Decoder {
            version: Some(version),
            role: Some(Role::Client),
            ..Decoder::new()
        }
    }

    /// The protocol version, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Sets the protocol version.
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = Some(version);
    }

    /// The decoding side, if direction checks are on.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// The maximum size of a received packet, fixed header included.
    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Sets the maximum size of a received packet (what an MQTT 5 endpoint
    /// announces as its Maximum Packet Size).
    pub fn set_max_packet_size(&mut self, max: u32) {
        self.max_packet_size = max;
    }

    /// Builder form of [`Decoder::set_max_packet_size`].
    pub fn with_max_packet_size(mut self, max: u32) -> Decoder {
        self.max_packet_size = max;
        self
    }

    /// Decodes the next packet from the front of `src`.
    ///
    /// Returns `Ok(None)` while the packet is incomplete (after reserving
    /// room for the rest of it), and on success removes exactly the packet's
    /// bytes from `src`. Topics, strings and payloads of the packet are
    /// slices of `src`'s memory.
    #[inline]
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let Some(header) = FixedHeader::parse(src)? else {
            return Ok(None);
        };
        let total = header.packet_len();
        if total > self.max_packet_size as usize {
            return Err(DecodeError::PacketTooLarge {
                size: total,
                max: self.max_packet_size,
            });
        }
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(total);
        frame.advance(header.header_len);
        let packet =
            Packet::decode_body(header.first_byte, frame.freeze(), self.version, self.role)?;
        if let Packet::Connect(c) = &packet {
            self.version = Some(c.version);
        }
        Ok(Some(packet))
    }
}
