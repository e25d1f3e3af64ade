//! Packets: one model for MQTT 3.1, 3.1.1 and 5.0.
//!
//! MQTT 5 is a superset, so each packet type has one struct. Fields that only
//! MQTT 5 carries (properties, most reason codes, subscription options beyond
//! QoS) are left out when encoding for an older version and take their
//! defaults when decoding one.

mod ack;
mod auth;
mod connect;
mod publish;
mod subscribe;

pub use ack::{PubAck, PubComp, PubRec, PubRel};
pub use auth::{Auth, Disconnect};
pub use connect::{ConnAck, Connect, Will};
pub use publish::{Publish, QosPid};
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};

use crate::{
    DecodeError, EncodeError, ProtocolVersion,
    buf::{Out, Reader, put_var, write_exact},
    varint::{MAX_VARINT, varint_len},
};
use alloc::boxed::Box;
use bytes::{BufMut, Bytes, BytesMut};

/// Control packet types (Table 2-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// 1: client request to connect.
    Connect = 1,
    /// 2: connect acknowledgement.
    ConnAck = 2,
    /// 3: publish message.
    Publish = 3,
    /// 4: QoS 1 publish acknowledgement.
    PubAck = 4,
    /// 5: QoS 2 publish received.
    PubRec = 5,
    /// 6: QoS 2 publish release.
    PubRel = 6,
    /// 7: QoS 2 publish complete.
    PubComp = 7,
    /// 8: subscribe request.
    Subscribe = 8,
    /// 9: subscribe acknowledgement.
    SubAck = 9,
    /// 10: unsubscribe request.
    Unsubscribe = 10,
    /// 11: unsubscribe acknowledgement.
    UnsubAck = 11,
    /// 12: ping request.
    PingReq = 12,
    /// 13: ping response.
    PingResp = 13,
    /// 14: disconnect notification.
    Disconnect = 14,
    /// 15: authentication exchange (MQTT 5 only).
    Auth = 15,
}

impl PacketType {
    /// The type for the high nibble of the first byte.
    pub const fn from_u8(v: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match v {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The fixed-header flags Table 2-2 prescribes (PUBLISH's vary).
    pub const fn fixed_flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }

    /// Whether a client sends this packet type (AUTH, PUBLISH, the acks and
    /// DISCONNECT go both ways).
    pub const fn sent_by_client(self) -> bool {
        !matches!(
            self,
            PacketType::ConnAck | PacketType::SubAck | PacketType::UnsubAck | PacketType::PingResp
        )
    }

    /// Whether a server sends this packet type.
    pub const fn sent_by_server(self) -> bool {
        !matches!(
            self,
            PacketType::Connect
                | PacketType::Subscribe
                | PacketType::Unsubscribe
                | PacketType::PingReq
        )
    }
}

/// Which end of the connection is decoding: it decides which packets may
/// arrive and direction-specific rules (e.g. [MQTT-3.3.4-6]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A client, decoding what a server sends.
    Client,
    /// A server, decoding what a client sends.
    Server,
}

/// Any MQTT control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(Box<ConnAck>),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK.
    PubAck(PubAck),
    /// PUBREC.
    PubRec(PubRec),
    /// PUBREL.
    PubRel(PubRel),
    /// PUBCOMP.
    PubComp(PubComp),
    /// SUBSCRIBE.
    Subscribe(Subscribe),
    /// SUBACK.
    SubAck(SubAck),
    /// UNSUBSCRIBE.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK.
    UnsubAck(UnsubAck),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT.
    Disconnect(Disconnect),
    /// AUTH (MQTT 5 only).
    Auth(Auth),
}

macro_rules! for_each_body {
    ($self:expr, $p:ident => $e:expr, ping($t:ident) => $ping:expr) => {
        match $self {
            Packet::Connect($p) => $e,
            Packet::ConnAck($p) => $e,
            Packet::Publish($p) => $e,
            Packet::PubAck($p) => $e,
            Packet::PubRec($p) => $e,
            Packet::PubRel($p) => $e,
            Packet::PubComp($p) => $e,
            Packet::Subscribe($p) => $e,
            Packet::SubAck($p) => $e,
            Packet::Unsubscribe($p) => $e,
            Packet::UnsubAck($p) => $e,
            Packet::Disconnect($p) => $e,
            Packet::Auth($p) => $e,
            Packet::PingReq => {
                let $t = PacketType::PingReq;
                $ping
            }
            Packet::PingResp => {
                let $t = PacketType::PingResp;
                $ping
            }
        }
    };
}

impl Packet {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        for_each_body!(self, p => p.packet_type(), ping(t) => t)
    }

    /// Decodes one whole packet from its first byte and its body (the bytes
    /// after the Remaining Length). Decoded fields share `body`'s memory.
    ///
    /// `version` is the connection's protocol version; it may be `None` only
    /// for a CONNECT, which carries its own.
    #[inline]
    pub fn decode_body(
        first_byte: u8,
        body: Bytes,
        version: Option<ProtocolVersion>,
        role: Option<Role>,
    ) -> Result<Packet, DecodeError> {
        let raw_type = first_byte >> 4;
        let flags = first_byte & 0x0F;
        let packet_type =
            PacketType::from_u8(raw_type).ok_or(DecodeError::InvalidPacketType(raw_type))?;
        match role {
            Some(Role::Server) if !packet_type.sent_by_client() => {
                return Err(DecodeError::UnexpectedPacket(packet_type));
            }
            Some(Role::Client) if !packet_type.sent_by_server() => {
                return Err(DecodeError::UnexpectedPacket(packet_type));
            }
            _ => {}
        }
        // [MQTT-2.1.3-1] / 3.1.1 [MQTT-2.2.2-1]: fixed flags for every type but PUBLISH.
        if packet_type != PacketType::Publish && flags != packet_type.fixed_flags() {
            return Err(DecodeError::InvalidHeaderFlags {
                packet: packet_type,
                flags,
            });
        }
        let mut r = Reader::new(body);
        let packet = match (packet_type, version) {
            // CONNECT carries its own version.
            (PacketType::Connect, _) => Packet::Connect(Box::new(Connect::decode(&mut r)?)),
            (_, None) => return Err(DecodeError::VersionUnknown(packet_type)),
            (PacketType::Publish, Some(v)) => {
                Packet::Publish(Publish::decode(flags, v, role, &mut r)?)
            }
            (PacketType::ConnAck, Some(v)) => {
                Packet::ConnAck(Box::new(ConnAck::decode(v, &mut r)?))
            }
            (PacketType::PubAck, Some(v)) => Packet::PubAck(PubAck::decode(v, &mut r)?),
            (PacketType::PubRec, Some(v)) => Packet::PubRec(PubRec::decode(v, &mut r)?),
            (PacketType::PubRel, Some(v)) => Packet::PubRel(PubRel::decode(v, &mut r)?),
            (PacketType::PubComp, Some(v)) => Packet::PubComp(PubComp::decode(v, &mut r)?),
            (PacketType::Subscribe, Some(v)) => Packet::Subscribe(Subscribe::decode(v, &mut r)?),
            (PacketType::SubAck, Some(v)) => Packet::SubAck(SubAck::decode(v, &mut r)?),
            (PacketType::Unsubscribe, Some(v)) => {
                Packet::Unsubscribe(Unsubscribe::decode(v, &mut r)?)
            }
            (PacketType::UnsubAck, Some(v)) => Packet::UnsubAck(UnsubAck::decode(v, &mut r)?),
            (PacketType::PingReq, Some(_)) => Packet::PingReq,
            (PacketType::PingResp, Some(_)) => Packet::PingResp,
            (PacketType::Disconnect, Some(v)) => Packet::Disconnect(Disconnect::decode(v, &mut r)?),
            (PacketType::Auth, Some(v)) if v.is_v5() => Packet::Auth(Auth::decode(&mut r)?),
            (PacketType::Auth, Some(_)) => return Err(DecodeError::InvalidPacketType(raw_type)),
        };
        r.finish()?;
        Ok(packet)
    }
}

/// Encoding of a packet or packet body for a protocol version.
pub trait Encode {
    /// The packet's type.
    fn packet_type(&self) -> PacketType;

    /// Size of the whole encoded packet, fixed header included.
    fn encoded_len(&self, version: ProtocolVersion) -> usize;

    /// Appends the encoded packet to `buf`, reserving its exact size first,
    /// and returns the number of bytes written.
    fn encode(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<usize, EncodeError>;
}

/// What each packet struct provides to encode itself.
pub(crate) trait Body {
    const TYPE: PacketType;
    fn flags(&self) -> u8 {
        Self::TYPE.fixed_flags()
    }
    fn body_len(&self, v: ProtocolVersion) -> usize;
    fn check(&self, _v: ProtocolVersion) -> Result<(), EncodeError> {
        Ok(())
    }
    fn write_body(&self, v: ProtocolVersion, buf: &mut Out<'_>);
}

/// Size of a packet whose body is `body` bytes long.
#[inline]
pub(crate) fn total_len(body: usize) -> usize {
    1 + varint_len(body) + body
}

/// Checks a body length against the protocol's limit.
#[inline]
pub(crate) fn check_body_len(body: usize) -> Result<(), EncodeError> {
    if body > MAX_VARINT as usize {
        return Err(EncodeError::PacketTooLarge {
            size: body.saturating_add(5),
            max: MAX_VARINT as usize + 5,
        });
    }
    Ok(())
}

/// Writes the fixed header for a body of `body` bytes.
#[inline]
pub(crate) fn put_fixed_header(buf: &mut Out<'_>, first: u8, body: usize) {
    buf.put_u8(first);
    put_var(buf, body);
}

impl<T: Body> Encode for T {
    #[inline]
    fn packet_type(&self) -> PacketType {
        T::TYPE
    }

    #[inline]
    fn encoded_len(&self, version: ProtocolVersion) -> usize {
        total_len(self.body_len(version))
    }

    #[inline]
    fn encode(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<usize, EncodeError> {
        self.check(version)?;
        let body = self.body_len(version);
        check_body_len(body)?;
        let total = total_len(body);
        write_exact(buf, total, |out| {
            put_fixed_header(out, ((T::TYPE as u8) << 4) | self.flags(), body);
            self.write_body(version, out);
        });
        Ok(total)
    }
}

impl Encode for Packet {
    fn packet_type(&self) -> PacketType {
        Packet::packet_type(self)
    }

    fn encoded_len(&self, version: ProtocolVersion) -> usize {
        for_each_body!(self, p => p.encoded_len(version), ping(_t) => 2)
    }

    fn encode(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<usize, EncodeError> {
        for_each_body!(self, p => p.encode(version, buf), ping(t) => {
            buf.reserve(2);
            buf.put_u8((t as u8) << 4);
            buf.put_u8(0);
            Ok(2)
        })
    }
}

macro_rules! from_body {
    ($($variant:ident($ty:ty) $(boxed $b:tt)?),*) => {$(
        impl From<$ty> for Packet {
            fn from(p: $ty) -> Packet {
                Packet::$variant(from_body!(@wrap p $($b)?))
            }
        }
    )*};
    (@wrap $p:ident) => { $p };
    (@wrap $p:ident $b:tt) => { Box::new($p) };
}

from_body!(
    Connect(Connect) boxed !, ConnAck(ConnAck) boxed !, Publish(Publish), PubAck(PubAck),
    PubRec(PubRec), PubRel(PubRel), PubComp(PubComp), Subscribe(Subscribe), SubAck(SubAck),
    Unsubscribe(Unsubscribe), UnsubAck(UnsubAck), Disconnect(Disconnect), Auth(Auth)
);
