//! Incoming QoS 1 and 2 flows, the same for clients and servers.

use alloc::collections::BTreeSet;
use mqtt_codec::{
    DisconnectReason, Packet, PacketId, PubAck, PubComp, PubRec, PubRelReason, Publish, QosPid,
};

/// What to do with a received PUBLISH.
#[derive(Debug)]
pub(crate) struct Received {
    /// Hand it to the application (false for a repeated QoS 2 message).
    pub(crate) deliver: bool,
    /// The acknowledgement to send.
    pub(crate) ack: Option<Packet>,
}

/// The incoming half of a session: QoS 2 messages received but not yet
/// released, which are never delivered twice.
#[derive(Clone, Debug, Default)]
pub(crate) struct Incoming {
    pub(crate) awaiting_rel: BTreeSet<u16>,
}

impl Incoming {
    /// Handles a PUBLISH (topic aliases already resolved). `receive_maximum`
    /// is this side's announced Receive Maximum: more QoS 2 messages awaiting
    /// PUBREL than that is 0x93 Receive Maximum exceeded.
    pub(crate) fn on_publish(
        &mut self,
        publish: &Publish,
        receive_maximum: u16,
    ) -> Result<Received, DisconnectReason> {
        Ok(match publish.qos_pid {
            QosPid::AtMostOnce => Received {
                deliver: true,
                ack: None,
            },
            // [MQTT-4.3.2-4]
            QosPid::AtLeastOnce(id) => Received {
                deliver: true,
                ack: Some(PubAck::new(id).into()),
            },
            QosPid::ExactlyOnce(id) => {
                // [MQTT-4.3.3-10] (3.1.1 [MQTT-4.3.3-2]): until PUBREL, a repeat is acknowledged, not delivered.
                let new = !self.awaiting_rel.contains(&id.get());
                if new {
                    if self.awaiting_rel.len() >= usize::from(receive_maximum) {
                        return Err(DisconnectReason::ReceiveMaximumExceeded);
                    }
                    self.awaiting_rel.insert(id.get());
                }
                Received {
                    deliver: new,
                    ack: Some(PubRec::new(id).into()),
                }
            }
        })
    }

    /// PUBREL: releases the identifier and answers PUBCOMP (0x92 when it was
    /// not waiting, which MQTT 3.1.1 cannot say and answers plainly).
    pub(crate) fn on_pubrel(&mut self, id: PacketId) -> PubComp {
        let mut comp = PubComp::new(id);
        if !self.awaiting_rel.remove(&id.get()) {
            comp.reason = PubRelReason::PacketIdentifierNotFound;
        }
        comp
    }
}
