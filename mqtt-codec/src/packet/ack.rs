//! PUBACK, PUBREC, PUBREL and PUBCOMP.

use super::{Body, PacketType};
use crate::{
    AckProperties, DecodeError, EncodeError, PacketId, ProtocolVersion, PubAckReason, PubRelReason,
    buf::{Out, Reader},
};

macro_rules! ack_packet {
    ($(#[$m:meta])* $name:ident, $reason:ident, $ptype:expr) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// Packet identifier of the PUBLISH this belongs to.
            pub packet_id: PacketId,
            /// Reason code (always success in MQTT 3.1.1).
            pub reason: $reason,
            /// MQTT 5 properties.
            pub properties: AckProperties,
        }

        impl $name {
            /// A successful acknowledgement with no properties.
            pub fn new(packet_id: PacketId) -> Self {
                $name { packet_id, reason: $reason::Success, properties: AckProperties::default() }
            }

            pub(crate) fn decode(v: ProtocolVersion, r: &mut Reader) -> Result<Self, DecodeError> {
                let packet_id = r.packet_id()?;
                let mut ack = $name::new(packet_id);
                // Remaining Length 2 means success and no properties; below 4
                // there is no property length.
                if v.is_v5() && r.remaining() > 0 {
                    let code = r.u8("reason code")?;
                    ack.reason = $reason::from_u8(code)
                        .ok_or(DecodeError::InvalidReasonCode { packet: $ptype, code })?;
                    if r.remaining() > 0 {
                        ack.properties = AckProperties::decode(r)?;
                    }
                }
                Ok(ack)
            }

            fn short(&self, v: ProtocolVersion) -> bool {
                !v.is_v5() || (self.reason == $reason::Success && self.properties.is_empty())
            }
        }

        impl Body for $name {
            const TYPE: PacketType = $ptype;

            #[inline]
            fn body_len(&self, v: ProtocolVersion) -> usize {
                if self.short(v) { 2 } else { 3 + self.properties.wire_len() }
            }

            fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
                if v.is_v5() { self.properties.check() } else { Ok(()) }
            }

            #[inline]
            fn write_body(&self, v: ProtocolVersion, buf: &mut Out<'_>) {
                buf.put_u16(self.packet_id.get());
                if !self.short(v) {
                    buf.put_u8(self.reason.code());
                    self.properties.encode(buf);
                }
            }
        }
    };
}

ack_packet!(
    /// PUBACK: acknowledges a QoS 1 PUBLISH.
    PubAck, PubAckReason, PacketType::PubAck
);
ack_packet!(
    /// PUBREC: first answer to a QoS 2 PUBLISH.
    PubRec, PubAckReason, PacketType::PubRec
);
ack_packet!(
    /// PUBREL: releases a QoS 2 message after PUBREC.
    PubRel, PubRelReason, PacketType::PubRel
);
ack_packet!(
    /// PUBCOMP: completes a QoS 2 exchange.
    PubComp, PubRelReason, PacketType::PubComp
);
