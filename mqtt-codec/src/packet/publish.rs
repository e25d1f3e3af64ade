//! PUBLISH.

use super::{Body, PacketType, Role, check_body_len, put_fixed_header, total_len};
use crate::{
    DecodeError, EncodeError, PacketId, ProtocolVersion, PublishProperties, QoS, StringError,
    TopicName,
    buf::{Out, Reader, binary_len, put_binary, write_exact},
};
use alloc::boxed::Box;
use bytes::{Buf, Bytes, BytesMut};

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

/// Where a PUBLISH keeps its topic and payload.
#[derive(Clone)]
enum Content {
    /// Built by the application: two independent buffers.
    Parts { topic: TopicName, payload: Bytes },
    /// Decoded: one slice of the received buffer holding the topic, then
    /// (after the packet id and properties) the payload. One reference
    /// count serves both.
    Frame {
        buf: Bytes,
        topic_len: u16,
        payload_start: u32,
    },
}

/// PUBLISH: an application message.
///
/// The topic and payload live in shared [`Bytes`]. A decoded PUBLISH keeps
/// both in the one slice of the received buffer they arrived in, so decoding
/// takes a single reference count, and cloning a `Publish` to deliver it to
/// many subscribers copies no payload. [`Publish::encode_header`] writes
/// everything but the payload so it can go out in a vectored write.
#[derive(Clone)]
pub struct Publish {
    /// DUP: a re-delivery. Never set on the wire for QoS 0 ([MQTT-3.3.1-2]).
    pub dup: bool,
    /// QoS and packet identifier.
    pub qos_pid: QosPid,
    /// RETAIN.
    pub retain: bool,
    content: Content,
    /// MQTT 5 properties; allocated only when there are any.
    properties: Option<Box<PublishProperties>>,
}

/// The properties of a PUBLISH that has none.
static NO_PROPERTIES: PublishProperties = PublishProperties::EMPTY;

impl PartialEq for Publish {
    fn eq(&self, other: &Publish) -> bool {
        self.dup == other.dup
            && self.qos_pid == other.qos_pid
            && self.retain == other.retain
            && self.topic_bytes() == other.topic_bytes()
            && self.payload() == other.payload()
            && self.properties() == other.properties()
    }
}

impl Eq for Publish {}

impl core::fmt::Debug for Publish {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Publish")
            .field("dup", &self.dup)
            .field("qos_pid", &self.qos_pid)
            .field("retain", &self.retain)
            .field("topic", &self.topic())
            .field("payload", &Bytes::copy_from_slice(self.payload()))
            .field("properties", self.properties())
            .finish()
    }
}

impl Publish {
    /// A QoS 0, non-retained PUBLISH with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Publish {
        Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            content: Content::Parts {
                topic,
                payload: payload.into(),
            },
            properties: None,
        }
    }

    /// The MQTT 5 properties.
    #[inline]
    pub fn properties(&self) -> &PublishProperties {
        self.properties.as_deref().unwrap_or(&NO_PROPERTIES)
    }

    /// The MQTT 5 properties, for changing them.
    pub fn properties_mut(&mut self) -> &mut PublishProperties {
        self.properties.get_or_insert_with(Default::default)
    }

    /// Replaces the MQTT 5 properties.
    pub fn set_properties(&mut self, properties: PublishProperties) {
        self.properties = if properties.is_empty() {
            None
        } else {
            Some(Box::new(properties))
        };
    }

    /// Removes and returns the MQTT 5 properties.
    pub fn take_properties(&mut self) -> PublishProperties {
        self.properties.take().map(|b| *b).unwrap_or_default()
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

    #[inline]
    fn topic_bytes(&self) -> &[u8] {
        match &self.content {
            Content::Parts { topic, .. } => topic.as_bytes(),
            Content::Frame { buf, topic_len, .. } => &buf[..*topic_len as usize],
        }
    }

    /// The topic name; empty only when a Topic Alias stands for it (MQTT 5).
    #[inline]
    pub fn topic(&self) -> &str {
        match &self.content {
            Content::Parts { topic, .. } => topic.as_str(),
            // SAFETY: the first `topic_len` bytes of `buf` were validated as a
            // topic name (hence UTF-8) when the packet was decoded, and
            // `Bytes` is immutable.
            Content::Frame { buf, topic_len, .. } => unsafe {
                core::str::from_utf8_unchecked(&buf[..*topic_len as usize])
            },
        }
    }

    /// The topic name as an owned value sharing this packet's memory.
    pub fn topic_name(&self) -> TopicName {
        match &self.content {
            Content::Parts { topic, .. } => topic.clone(),
            // SAFETY: validated as a topic name when decoded (see `topic`).
            Content::Frame { buf, topic_len, .. } => unsafe {
                TopicName::from_bytes_unchecked(buf.slice(..*topic_len as usize))
            },
        }
    }

    /// Replaces the topic name.
    pub fn set_topic(&mut self, topic: TopicName) {
        let payload = self.payload_bytes();
        self.content = Content::Parts { topic, payload };
    }

    /// The application payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        match &self.content {
            Content::Parts { payload, .. } => payload,
            Content::Frame {
                buf, payload_start, ..
            } => &buf[*payload_start as usize..],
        }
    }

    /// The payload as an owned value sharing this packet's memory (for a
    /// vectored write after [`Publish::encode_header`]).
    pub fn payload_bytes(&self) -> Bytes {
        match &self.content {
            Content::Parts { payload, .. } => payload.clone(),
            Content::Frame {
                buf, payload_start, ..
            } => buf.slice(*payload_start as usize..),
        }
    }

    /// The payload, taken out of the packet: as
    /// [`payload_bytes`](Publish::payload_bytes) without touching the
    /// shared buffer's reference count (for the last use of a packet).
    ///
    /// ```
    /// # use mqtt_codec::{Publish, TopicName};
    /// let p = Publish::new(TopicName::try_from("a/b").unwrap(), &b"hello"[..]);
    /// assert_eq!(&p.into_payload_bytes()[..], b"hello");
    /// ```
    pub fn into_payload_bytes(self) -> Bytes {
        match self.content {
            Content::Parts { payload, .. } => payload,
            Content::Frame {
                mut buf,
                payload_start,
                ..
            } => {
                buf.advance(payload_start as usize);
                buf
            }
        }
    }

    /// Replaces the payload.
    pub fn set_payload(&mut self, payload: impl Into<Bytes>) {
        let topic = self.topic_name();
        self.content = Content::Parts {
            topic,
            payload: payload.into(),
        };
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
        let topic_len = r.skip_topic_name("topic name")?;
        let topic_start = r.position() - topic_len as usize;
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
            if topic_len == 0 && p.topic_alias.is_none() {
                return Err(DecodeError::EmptyTopic);
            }
            if p.is_empty() {
                None
            } else {
                Some(Box::new(p))
            }
        } else {
            if topic_len == 0 {
                // [MQTT-4.7.3-1]
                return Err((StringError::EmptyTopic, "topic name").into());
            }
            None
        };
        let payload_start = (r.position() - topic_start) as u32;
        let buf = core::mem::replace(r, Reader::new(Bytes::new())).into_tail(topic_start);
        Ok(Publish {
            dup,
            qos_pid,
            retain,
            content: Content::Frame {
                buf,
                topic_len,
                payload_start,
            },
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
        binary_len(self.topic_bytes())
            + if self.packet_id().is_some() { 2 } else { 0 }
            + if v.is_v5() {
                self.properties().wire_len()
            } else {
                0
            }
    }

    #[inline]
    fn write_header_body(&self, v: ProtocolVersion, buf: &mut Out<'_>) {
        put_binary(buf, self.topic_bytes());
        if let Some(id) = self.packet_id() {
            buf.put_u16(id.get());
        }
        if v.is_v5() {
            self.properties().encode(buf);
        }
    }

    /// Writes the fixed header, topic, packet identifier and properties, but
    /// not the payload, and returns the size of the whole packet.
    ///
    /// Send the bytes written followed by [`Publish::payload_bytes`] (e.g. with
    /// `Buf::chain` and a vectored write) to put the packet on the wire
    /// without copying the payload.
    pub fn encode_header(
        &self,
        v: ProtocolVersion,
        buf: &mut BytesMut,
    ) -> Result<usize, EncodeError> {
        self.check(v)?;
        let header_body = self.header_body_len(v);
        let body = header_body + self.payload().len();
        check_body_len(body)?;
        let total = total_len(body);
        write_exact(buf, total - self.payload().len(), |out| {
            put_fixed_header(out, self.first_byte(), body);
            self.write_header_body(v, out);
        });
        Ok(total)
    }
}

impl Body for Publish {
    const TYPE: PacketType = PacketType::Publish;

    #[inline]
    fn flags(&self) -> u8 {
        self.first_byte() & 0x0F
    }

    #[inline]
    fn body_len(&self, v: ProtocolVersion) -> usize {
        self.header_body_len(v) + self.payload().len()
    }

    #[inline]
    fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
        if v.is_v5() {
            if self.topic_bytes().is_empty() && self.properties().topic_alias.is_none() {
                return Err(EncodeError::EmptyTopic);
            }
            if let Some(p) = &self.properties {
                p.check()?;
            }
        } else if self.topic_bytes().is_empty() {
            return Err(EncodeError::EmptyTopic);
        }
        Ok(())
    }

    #[inline]
    fn write_body(&self, v: ProtocolVersion, buf: &mut Out<'_>) {
        self.write_header_body(v, buf);
        buf.put_slice(self.payload());
    }
}
