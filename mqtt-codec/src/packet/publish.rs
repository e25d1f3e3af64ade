//! PUBLISH.

use super::{Body, PacketType, Role, put_fixed_header, total_len};
use crate::{
    DecodeError, EncodeError, PacketId, ProtocolVersion, PublishProperties, QoS, StringError,
    TopicName,
    buf::{Reader, binary_len, put_binary},
};
use bytes::{BufMut, Bytes, BytesMut};

/// QoS of a PUBLISH together with its packet identifier: QoS 0 has none
/// ([MQTT-2.2.1-2]), QoS 1 and 2 always have one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QosPid {
    /// QoS 0.
    AtMostOnce,
    /// QoS 1 with its packet identifier.
    AtLeastOnce(PacketId),
    /// QoS 2 with its packet identifier.
    ExactlyOnce(PacketId),
}

impl QosPid {
    /// The QoS level.
    #[inline]
    pub const fn qos(self) -> QoS {
        match self {
            QosPid::AtMostOnce => QoS::AtMostOnce,
            QosPid::AtLeastOnce(_) => QoS::AtLeastOnce,
            QosPid::ExactlyOnce(_) => QoS::ExactlyOnce,
        }
    }

    /// The packet identifier, for QoS 1 and 2.
    #[inline]
    pub const fn packet_id(self) -> Option<PacketId> {
        match self {
            QosPid::AtMostOnce => None,
            QosPid::AtLeastOnce(id) | QosPid::ExactlyOnce(id) => Some(id),
        }
    }

    /// QoS `qos` with `id` (ignored for QoS 0).
    #[inline]
    pub const fn new(qos: QoS, id: PacketId) -> QosPid {
        match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(id),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(id),
        }
    }
}

/// PUBLISH: an application message.
///
/// The topic and payload are shared [`Bytes`]: cloning a `Publish` to send it
/// to many subscribers copies no payload, and [`Publish::encode_header`]
/// writes everything but the payload so the payload can go out in a vectored
/// write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// DUP: a re-delivery. Never set on the wire for QoS 0 ([MQTT-3.3.1-2]).
    pub dup: bool,
    /// QoS and packet identifier.
    pub qos_pid: QosPid,
    /// RETAIN.
    pub retain: bool,
    /// Topic name; empty only with a Topic Alias (MQTT 5).
    pub topic: TopicName,
    /// Application payload.
    pub payload: Bytes,
    /// MQTT 5 properties.
    pub properties: PublishProperties,
}

impl Publish {
    /// A QoS 0, non-retained PUBLISH with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Publish {
        Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic,
            payload: payload.into(),
            properties: PublishProperties::default(),
        }
    }

    /// The QoS level.
    #[inline]
    pub fn qos(&self) -> QoS {
        self.qos_pid.qos()
    }

    /// The packet identifier (QoS 1 and 2).
    #[inline]
    pub fn packet_id(&self) -> Option<PacketId> {
        self.qos_pid.packet_id()
    }

    pub(crate) fn decode(
        flags: u8,
        v: ProtocolVersion,
        role: Option<Role>,
        r: &mut Reader,
    ) -> Result<Publish, DecodeError> {
        let dup = flags & 0x08 != 0;
        let retain = flags & 0x01 != 0;
        // [MQTT-3.3.1-4]
        let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::InvalidQoS("PUBLISH"))?;
        if dup && qos == QoS::AtMostOnce {
            // [MQTT-3.3.1-2]
            return Err(DecodeError::DupOnQoS0);
        }
        // [MQTT-3.3.2-1], [MQTT-3.3.2-2]
        let topic = r.topic_name("topic name")?;
        let qos_pid = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            QoS::AtLeastOnce => QosPid::AtLeastOnce(r.packet_id()?),
            QoS::ExactlyOnce => QosPid::ExactlyOnce(r.packet_id()?),
        };
        let properties = if v.is_v5() {
            let p = PublishProperties::decode(r)?;
            if role == Some(Role::Server) && !p.subscription_identifiers.is_empty() {
                // [MQTT-3.3.4-6]
                return Err(DecodeError::SubscriptionIdentifierFromClient);
            }
            if topic.is_empty() && p.topic_alias.is_none() {
                return Err(DecodeError::EmptyTopic);
            }
            p
        } else {
            if topic.is_empty() {
                // [MQTT-4.7.3-1]
                return Err((StringError::EmptyTopic, "topic name").into());
            }
            PublishProperties::default()
        };
        Ok(Publish {
            dup,
            qos_pid,
            retain,
            topic,
            payload: r.rest(),
            properties,
        })
    }

    #[inline]
    fn first_byte(&self) -> u8 {
        let qos = self.qos() as u8;
        ((PacketType::Publish as u8) << 4)
            | (((self.dup && qos > 0) as u8) << 3)
            | (qos << 1)
            | self.retain as u8
    }

    /// Length of everything after the fixed header except the payload.
    #[inline]
    fn header_body_len(&self, v: ProtocolVersion) -> usize {
        binary_len(self.topic.as_bytes())
            + if self.packet_id().is_some() { 2 } else { 0 }
            + if v.is_v5() {
                self.properties.wire_len()
            } else {
                0
            }
    }

    #[inline]
    fn write_header_body(&self, v: ProtocolVersion, buf: &mut BytesMut) {
        put_binary(buf, self.topic.as_bytes());
        if let Some(id) = self.packet_id() {
            buf.put_u16(id.get());
        }
        if v.is_v5() {
            self.properties.encode(buf);
        }
    }

    /// Writes the fixed header, topic, packet identifier and properties, but
    /// not the payload, and returns the size of the whole packet.
    ///
    /// Send the bytes written followed by [`Publish::payload`] (e.g. with
    /// `Buf::chain` and a vectored write) to put the packet on the wire
    /// without copying the payload.
    pub fn encode_header(
        &self,
        v: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        self.check(v)?;
        let header_body = self.header_body_len(v);
        let body = header_body + self.payload.len();
        let start = buf.len();
        put_fixed_header(buf, self.first_byte(), body, header_body)?;
        self.write_header_body(v, buf);
        debug_assert_eq!(buf.len() - start, total_len(body) - self.payload.len());
        Ok(total_len(body))
    }
}

impl Body for Publish {
    const TYPE: PacketType = PacketType::Publish;

    fn flags(&self) -> u8 {
        self.first_byte() & 0x0F
    }

    #[inline]
    fn body_len(&self, v: ProtocolVersion) -> usize {
        self.header_body_len(v) + self.payload.len()
    }

    #[inline]
    fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
        if v.is_v5() {
            if self.topic.is_empty() && self.properties.topic_alias.is_none() {
                return Err(EncodeError::EmptyTopic);
            }
            if !self.properties.is_empty() {
                self.properties.check()?;
            }
        } else if self.topic.is_empty() {
            return Err(EncodeError::EmptyTopic);
        }
        Ok(())
    }

    #[inline]
    fn write_body(&self, v: ProtocolVersion, buf: &mut BytesMut) {
        self.write_header_body(v, buf);
        buf.put_slice(&self.payload);
    }
}
