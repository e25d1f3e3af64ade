//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.

use super::{Body, PacketType};
use crate::{
    AckProperties, DecodeError, EncodeError, PacketId, ProtocolVersion, QoS, SubAckReason,
    SubscribeProperties, TopicFilter, UnsubAckReason, UnsubscribeProperties,
    buf::{Out, Reader, binary_len, put_binary},
    error::RESERVED_OPTION_BITS,
};
use alloc::vec::Vec;

/// Retain Handling subscription option (MQTT 5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RetainHandling {
    /// 0: send retained messages when subscribing.
    #[default]
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription is new.
    SendAtSubscribeIfNew = 1,
    /// 2: do not send them.
    DoNotSend = 2,
}

/// Subscription Options (section 3.8.3.1). MQTT 3.1.1 carries only the QoS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local: do not receive one's own publications.
    pub no_local: bool,
    /// Retain As Published: keep the RETAIN flag when forwarding.
    pub retain_as_published: bool,
    /// Retain Handling.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with `qos` and defaults for the rest.
    pub fn qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..Default::default()
        }
    }

    fn to_byte(self, v: ProtocolVersion) -> u8 {
        let mut b = self.qos as u8;
        if v.is_v5() {
            b |= (self.no_local as u8) << 2;
            b |= (self.retain_as_published as u8) << 3;
            b |= (self.retain_handling as u8) << 4;
        }
        b
    }

    fn from_byte(b: u8, v: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
        // [MQTT-3.8.3-5] (3.1.1 [MQTT-3.8.3-4]: the upper six bits)
        let reserved = if v.is_v5() { 0xC0 } else { 0xFC };
        if b & reserved != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions(
                RESERVED_OPTION_BITS,
            ));
        }
        let qos = match QoS::from_u8(b & 0x03) {
            Some(q) => q,
            // MQTT 5: a Protocol Error; 3.1.1 [MQTT-3.8.3-4]: malformed.
            None if v.is_v5() => return Err(DecodeError::InvalidSubscriptionOptions("QoS 3")),
            None => return Err(DecodeError::InvalidQoS("subscription options")),
        };
        let retain_handling = match (b >> 4) & 0x03 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::InvalidSubscriptionOptions("retain handling 3")),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: b & 0x04 != 0,
            retain_as_published: b & 0x08 != 0,
            retain_handling,
        })
    }
}

/// One topic filter of a SUBSCRIBE and its options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subscription {
    /// The filter.
    pub filter: TopicFilter,
    /// Its options.
    pub options: SubscriptionOptions,
}

impl Subscription {
    /// A subscription to `filter` at `qos` with default options.
    pub fn new(filter: TopicFilter, qos: QoS) -> Subscription {
        Subscription {
            filter,
            options: SubscriptionOptions::qos(qos),
        }
    }
}

/// SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// At least one filter with its options ([MQTT-3.8.3-2]).
    pub subscriptions: Vec<Subscription>,
    /// MQTT 5 properties.
    pub properties: SubscribeProperties,
}

impl Subscribe {
    pub(crate) fn decode(v: ProtocolVersion, r: &mut Reader) -> Result<Subscribe, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = SubscribeProperties::decode_in(v, r)?;
        let mut subscriptions = Vec::with_capacity(r.count_entries(1));
        while r.remaining() > 0 {
            // [MQTT-3.8.3-1]
            let filter = r.topic_filter()?;
            let options = SubscriptionOptions::from_byte(r.u8("subscription options")?, v)?;
            if options.no_local && filter.is_shared() {
                // [MQTT-3.8.3-4]
                return Err(DecodeError::InvalidSubscriptionOptions(
                    "no local on a shared subscription",
                ));
            }
            subscriptions.push(Subscription { filter, options });
        }
        if subscriptions.is_empty() {
            // [MQTT-3.8.3-2] (3.1.1 [MQTT-3.8.3-3])
            return Err(DecodeError::EmptyPayload(PacketType::Subscribe));
        }
        Ok(Subscribe {
            packet_id,
            subscriptions,
            properties,
        })
    }
}

impl Body for Subscribe {
    const TYPE: PacketType = PacketType::Subscribe;

    fn body_len(&self, v: ProtocolVersion) -> usize {
        2 + self.properties.wire_len_in(v)
            + self
                .subscriptions
                .iter()
                .map(|s| binary_len(s.filter.as_bytes()) + 1)
                .sum::<usize>()
    }

    fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
        if self.subscriptions.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::Subscribe));
        }
        if v.is_v5() {
            self.properties.check()
        } else {
            Ok(())
        }
    }

    fn write_body(&self, v: ProtocolVersion, buf: &mut Out<'_>) {
        buf.put_u16(self.packet_id.get());
        if v.is_v5() {
            self.properties.encode(buf);
        }
        for s in &self.subscriptions {
            put_binary(buf, s.filter.as_bytes());
            buf.put_u8(s.options.to_byte(v));
        }
    }
}

/// SUBACK: one reason code per filter of the SUBSCRIBE, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: PacketId,
    /// One code per filter. In MQTT 3.1.1 every failure is sent as 0x80.
    pub reasons: Vec<SubAckReason>,
    /// MQTT 5 properties.
    pub properties: AckProperties,
}

impl SubAck {
    pub(crate) fn decode(v: ProtocolVersion, r: &mut Reader) -> Result<SubAck, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = AckProperties::decode_in(v, r)?;
        let mut reasons = Vec::with_capacity(r.remaining());
        while r.remaining() > 0 {
            let code = r.u8("reason code")?;
            let reason = SubAckReason::from_u8(code)
                .filter(|c| {
                    v.is_v5() || c.granted_qos().is_some() || *c == SubAckReason::UnspecifiedError
                })
                .ok_or(DecodeError::InvalidReasonCode {
                    packet: PacketType::SubAck,
                    code,
                })?;
            reasons.push(reason);
        }
        if reasons.is_empty() {
            return Err(DecodeError::EmptyPayload(PacketType::SubAck));
        }
        Ok(SubAck {
            packet_id,
            reasons,
            properties,
        })
    }
}

impl Body for SubAck {
    const TYPE: PacketType = PacketType::SubAck;

    fn body_len(&self, v: ProtocolVersion) -> usize {
        2 + self.properties.wire_len_in(v) + self.reasons.len()
    }

    fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
        if self.reasons.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::SubAck));
        }
        if v.is_v5() {
            self.properties.check()
        } else {
            Ok(())
        }
    }

    fn write_body(&self, v: ProtocolVersion, buf: &mut Out<'_>) {
        buf.put_u16(self.packet_id.get());
        if v.is_v5() {
            self.properties.encode(buf);
            for r in &self.reasons {
                buf.put_u8(r.code());
            }
        } else {
            for r in &self.reasons {
                buf.put_u8(if r.is_error() { 0x80 } else { r.code() });
            }
        }
    }
}

/// UNSUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// At least one filter ([MQTT-3.10.3-2]).
    pub filters: Vec<TopicFilter>,
    /// MQTT 5 properties.
    pub properties: UnsubscribeProperties,
}

impl Unsubscribe {
    pub(crate) fn decode(v: ProtocolVersion, r: &mut Reader) -> Result<Unsubscribe, DecodeError> {
        let packet_id = r.packet_id()?;
        let properties = UnsubscribeProperties::decode_in(v, r)?;
        let mut filters = Vec::with_capacity(r.count_entries(0));
        while r.remaining() > 0 {
            // [MQTT-3.10.3-1]
            filters.push(r.topic_filter()?);
        }
        if filters.is_empty() {
            // [MQTT-3.10.3-2]
            return Err(DecodeError::EmptyPayload(PacketType::Unsubscribe));
        }
        Ok(Unsubscribe {
            packet_id,
            filters,
            properties,
        })
    }
}

impl Body for Unsubscribe {
    const TYPE: PacketType = PacketType::Unsubscribe;

    fn body_len(&self, v: ProtocolVersion) -> usize {
        2 + self.properties.wire_len_in(v)
            + self
                .filters
                .iter()
                .map(|f| binary_len(f.as_bytes()))
                .sum::<usize>()
    }

    fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
        if self.filters.is_empty() {
            return Err(EncodeError::EmptyPayload(PacketType::Unsubscribe));
        }
        if v.is_v5() {
            self.properties.check()
        } else {
            Ok(())
        }
    }

    fn write_body(&self, v: ProtocolVersion, buf: &mut Out<'_>) {
        buf.put_u16(self.packet_id.get());
        if v.is_v5() {
            self.properties.encode(buf);
        }
        for f in &self.filters {
            put_binary(buf, f.as_bytes());
        }
    }
}

/// UNSUBACK. MQTT 3.1.1 carries no reason codes: `reasons` is then empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: PacketId,
    /// One code per filter (MQTT 5 only).
    pub reasons: Vec<UnsubAckReason>,
    /// MQTT 5 properties.
    pub properties: AckProperties,
}

impl UnsubAck {
    pub(crate) fn decode(v: ProtocolVersion, r: &mut Reader) -> Result<UnsubAck, DecodeError> {
        let packet_id = r.packet_id()?;
        let mut ack = UnsubAck {
            packet_id,
            reasons: Vec::new(),
            properties: AckProperties::default(),
        };
        if v.is_v5() {
            ack.properties = AckProperties::decode(r)?;
            ack.reasons.reserve(r.remaining());
            while r.remaining() > 0 {
                let code = r.u8("reason code")?;
                ack.reasons.push(UnsubAckReason::from_u8(code).ok_or(
                    DecodeError::InvalidReasonCode {
                        packet: PacketType::UnsubAck,
                        code,
                    },
                )?);
            }
            if ack.reasons.is_empty() {
                return Err(DecodeError::EmptyPayload(PacketType::UnsubAck));
            }
        }
        Ok(ack)
    }
}

impl Body for UnsubAck {
    const TYPE: PacketType = PacketType::UnsubAck;

    fn body_len(&self, v: ProtocolVersion) -> usize {
        2 + if v.is_v5() {
            self.properties.wire_len() + self.reasons.len()
        } else {
            0
        }
    }

    fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
        if v.is_v5() {
            if self.reasons.is_empty() {
                return Err(EncodeError::EmptyPayload(PacketType::UnsubAck));
            }
            self.properties.check()?;
        }
        Ok(())
    }

    fn write_body(&self, v: ProtocolVersion, buf: &mut Out<'_>) {
        buf.put_u16(self.packet_id.get());
        if v.is_v5() {
            self.properties.encode(buf);
            for r in &self.reasons {
                buf.put_u8(r.code());
            }
        }
    }
}
