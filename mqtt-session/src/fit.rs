//! Keeping packets within the peer's Maximum Packet Size.

use alloc::vec::Vec;
use mqtt_codec::{Encode, MqttStr, Packet, ProtocolVersion, UserProperty};

/// The Reason String and User Properties of a packet that may carry them
/// and may be shortened (not PUBLISH: its properties belong to the message).
fn diagnostics(p: &mut Packet) -> Option<(&mut Option<MqttStr>, &mut Vec<UserProperty>)> {
    Some(match p {
        Packet::ConnAck(c) => (
            &mut c.properties.reason_string,
            &mut c.properties.user_properties,
        ),
        Packet::PubAck(a) => (
            &mut a.properties.reason_string,
            &mut a.properties.user_properties,
        ),
        Packet::PubRec(a) => (
            &mut a.properties.reason_string,
            &mut a.properties.user_properties,
        ),
        Packet::PubRel(a) => (
            &mut a.properties.reason_string,
            &mut a.properties.user_properties,
        ),
        Packet::PubComp(a) => (
            &mut a.properties.reason_string,
            &mut a.properties.user_properties,
        ),
        Packet::SubAck(a) => (
            &mut a.properties.reason_string,
            &mut a.properties.user_properties,
        ),
        Packet::UnsubAck(a) => (
            &mut a.properties.reason_string,
            &mut a.properties.user_properties,
        ),
        Packet::Disconnect(d) => (
            &mut d.properties.reason_string,
            &mut d.properties.user_properties,
        ),
        Packet::Auth(a) => (
            &mut a.properties.reason_string,
            &mut a.properties.user_properties,
        ),
        _ => return None,
    })
}

/// Drops the Reason String, then the User Properties, of a packet that
/// would otherwise exceed `max` bytes ([MQTT-3.2.2-19], [MQTT-3.2.2-20],
/// [MQTT-3.4.2-2], [MQTT-3.4.2-3], [MQTT-3.5.2-2], [MQTT-3.5.2-3],
/// [MQTT-3.6.2-2], [MQTT-3.6.2-3], [MQTT-3.7.2-2], [MQTT-3.7.2-3],
/// [MQTT-3.9.2-1], [MQTT-3.9.2-2], [MQTT-3.11.2-1], [MQTT-3.11.2-2],
/// [MQTT-3.14.2-3], [MQTT-3.14.2-4], [MQTT-3.15.2-2], [MQTT-3.15.2-3]).
pub(crate) fn fit(packet: &mut Packet, version: ProtocolVersion, max: Option<u32>) {
    let Some(max) = max.map(|m| m as usize) else {
        return;
    };
    if !version.is_v5() || packet.encoded_len(version) <= max {
        return;
    }
    if let Some((reason, _)) = diagnostics(packet) {
        *reason = None;
    }
    if packet.encoded_len(version) <= max {
        return;
    }
    if let Some((_, user)) = diagnostics(packet) {
        user.clear();
    }
}
