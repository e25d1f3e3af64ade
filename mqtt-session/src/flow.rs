//! The packets whose handling is the same for clients and servers: PUBLISH
//! and the QoS 1 / QoS 2 acknowledgements.

use crate::{
    InboundAliases, RequestId,
    incoming::Incoming,
    outgoing::{Outcome, Outgoing},
};
use mqtt_codec::{DisconnectReason, Packet, PacketId, Publish};

/// What the shared flow code made of a received packet.
pub(crate) enum Flow {
    /// Handled: a packet to send back, a message to deliver, a request completed.
    Handled {
        send: Option<Packet>,
        deliver: Option<Publish>,
        completed: Option<(RequestId, Outcome)>,
        /// A QoS 2 message we sent was received (PUBREC with success).
        received: Option<(RequestId, PacketId)>,
        /// A QoS 2 message the peer sent was released (PUBREL).
        released: Option<PacketId>,
    },
    /// The peer broke a rule: close with this reason.
    Violation(DisconnectReason, &'static str),
    /// Not a flow packet: the session handles it by its role.
    Other(Packet),
}

impl Flow {
    fn completed(request: RequestId, outcome: Outcome) -> Flow {
        Flow::Handled {
            send: None,
            deliver: None,
            completed: Some((request, outcome)),
            received: None,
            released: None,
        }
    }
}

/// Handles PUBLISH (alias resolution, QoS 2 de-duplication, Receive
/// Maximum), PUBACK, PUBREC, PUBCOMP and PUBREL. `receive_maximum` is the
/// one this side announced.
pub(crate) fn on_packet(
    outgoing: &mut Outgoing,
    incoming: &mut Incoming,
    aliases: &mut InboundAliases,
    receive_maximum: u16,
    packet: Packet,
) -> Flow {
    match packet {
        Packet::Publish(mut publish) => {
            if let Err(e) = aliases.resolve(&mut publish) {
                return Flow::Violation(e.disconnect_reason(), "invalid topic alias");
            }
            match incoming.on_publish(&publish, receive_maximum) {
                Ok(received) => Flow::Handled {
                    send: received.ack,
                    deliver: received.deliver.then_some(publish),
                    completed: None,
                    received: None,
                    released: None,
                },
                // [MQTT-3.3.4-7]
                Err(reason) => {
                    Flow::Violation(reason, "more QoS 2 messages than the Receive Maximum")
                }
            }
        }
        Packet::PubAck(a) => match outgoing.on_puback(a.packet_id, a.reason) {
            Ok((request, outcome)) => Flow::completed(request, outcome),
            Err(_) => Flow::Violation(
                DisconnectReason::ProtocolError,
                "PUBACK for no QoS 1 message in flight",
            ),
        },
        Packet::PubRec(r) => match outgoing.on_pubrec(r.packet_id, r.reason) {
            Ok(Ok((request, rel))) => Flow::Handled {
                send: Some(rel.into()),
                deliver: None,
                completed: None,
                received: Some((request, r.packet_id)),
                released: None,
            },
            Ok(Err((request, outcome))) => Flow::completed(request, outcome),
            Err(_) => Flow::Violation(
                DisconnectReason::ProtocolError,
                "PUBREC for no QoS 2 message in flight",
            ),
        },
        Packet::PubComp(c) => match outgoing.on_pubcomp(c.packet_id, c.reason) {
            Ok((request, outcome)) => Flow::completed(request, outcome),
            Err(_) => Flow::Violation(
                DisconnectReason::ProtocolError,
                "PUBCOMP for no PUBREL in flight",
            ),
        },
        Packet::PubRel(r) => Flow::Handled {
            send: Some(incoming.on_pubrel(r.packet_id).into()),
            deliver: None,
            completed: None,
            received: None,
            released: Some(r.packet_id),
        },
        other => Flow::Other(other),
    }
}
