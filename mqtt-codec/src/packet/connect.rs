//! CONNECT and CONNACK.

use super::{Body, PacketType};
use crate::{
    ConnAckProperties, ConnectProperties, ConnectReason, DecodeError, EncodeError, MqttStr,
    ProtocolVersion, QoS, StringError, TopicName, WillProperties,
    buf::{Out, Reader, binary_len, check_binary, put_binary},
    error::PASSWORD_WITHOUT_USERNAME,
    property::check_auth_pair,
};
use bytes::Bytes;

/// A Will Message: published by the server when the connection ends without
/// a normal DISCONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// Topic to publish to (non-empty, no wildcards).
    pub topic: TopicName,
    /// Payload.
    pub payload: Bytes,
    /// QoS of the publication.
    pub qos: QoS,
    /// Whether the Will is retained.
    pub retain: bool,
    /// MQTT 5 Will Properties.
    pub properties: WillProperties,
}

impl Will {
    /// A QoS 0, non-retained Will with no properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Will {
        Will {
            topic,
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: WillProperties::default(),
        }
    }
}

/// CONNECT: the first packet a client sends.
///
/// A CONNECT is always encoded in its own [`Connect::version`], whatever
/// version the caller passes to [`Encode::encode`](crate::Encode::encode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version, which decides the protocol name and level on the wire.
    pub version: ProtocolVersion,
    /// Clean Start (MQTT 5) / Clean Session (3.1.1).
    pub clean_start: bool,
    /// Keep Alive in seconds; 0 turns keep-alive off.
    pub keep_alive: u16,
    /// Client Identifier; may be empty (the server then assigns one).
    pub client_id: MqttStr,
    /// Will Message.
    pub will: Option<Will>,
    /// User Name.
    pub username: Option<MqttStr>,
    /// Password (binary data).
    pub password: Option<Bytes>,
    /// MQTT 5 properties.
    pub properties: ConnectProperties,
}

impl Connect {
    /// A clean-start CONNECT with a 60 s keep-alive and nothing else set.
    pub fn new(version: ProtocolVersion, client_id: MqttStr) -> Connect {
        Connect {
            version,
            clean_start: true,
            keep_alive: 60,
            client_id,
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<Connect, DecodeError> {
        let name = r.binary("protocol name")?;
        let level = r.u8("protocol level")?;
        let version = ProtocolVersion::from_name_and_level(&name, level)
            .ok_or(DecodeError::UnsupportedProtocol { level })?;
        let flags = r.u8("connect flags")?;
        // [MQTT-3.1.2-3]
        if flags & 0x01 != 0 {
            return Err(DecodeError::InvalidConnectFlags("reserved bit set"));
        }
        let clean_start = flags & 0x02 != 0;
        let will_flag = flags & 0x04 != 0;
        let will_qos = (flags >> 3) & 0x03;
        let will_retain = flags & 0x20 != 0;
        let has_password = flags & 0x40 != 0;
        let has_username = flags & 0x80 != 0;
        if !will_flag && (will_qos != 0 || will_retain) {
            // [MQTT-3.1.2-11], [MQTT-3.1.2-13]
            return Err(DecodeError::InvalidConnectFlags(
                "will QoS or retain without will",
            ));
        }
        // [MQTT-3.1.2-12]
        let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidQoS("will"))?;
        if has_password && !has_username && !version.is_v5() {
            // 3.1.1 [MQTT-3.1.2-22]
            return Err(DecodeError::InvalidConnectFlags(PASSWORD_WITHOUT_USERNAME));
        }
        let keep_alive = r.u16("keep alive")?;
        let properties = if version.is_v5() {
            let p = ConnectProperties::decode(r)?;
            check_auth_pair(&p.authentication_method, &p.authentication_data)?;
            p
        } else {
            ConnectProperties::default()
        };
        // [MQTT-3.1.3-3], [MQTT-3.1.3-4]
        let client_id = r.string(crate::error::CLIENT_IDENTIFIER)?;
        let will = if will_flag {
            let properties = if version.is_v5() {
                WillProperties::decode(r)?
            } else {
                WillProperties::default()
            };
            let topic = r.topic_name("will topic")?;
            if topic.is_empty() {
                return Err((StringError::EmptyTopic, "will topic").into());
            }
            let payload = r.binary("will payload")?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        // [MQTT-3.1.2-16..19]
        let username = if has_username {
            Some(r.string("user name")?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary("password")?)
        } else {
            None
        };
        Ok(Connect {
            version,
            clean_start,
            keep_alive,
            client_id,
            will,
            username,
            password,
            properties,
        })
    }

    fn flags(&self) -> u8 {
        let mut f = 0u8;
        if self.clean_start {
            f |= 0x02;
        }
        if let Some(w) = &self.will {
            f |= 0x04 | ((w.qos as u8) << 3);
            if w.retain {
                f |= 0x20;
            }
        }
        if self.password.is_some() {
            f |= 0x40;
        }
        if self.username.is_some() {
            f |= 0x80;
        }
        f
    }
}

impl Body for Connect {
    const TYPE: PacketType = PacketType::Connect;

    fn body_len(&self, _: ProtocolVersion) -> usize {
        let v = self.version;
        let mut n = binary_len(v.name().as_bytes()) + 1 + 1 + 2;
        n += self.properties.wire_len_in(v);
        n += binary_len(self.client_id.as_bytes());
        if let Some(w) = &self.will {
            n += w.properties.wire_len_in(v);
            n += binary_len(w.topic.as_bytes()) + binary_len(&w.payload);
        }
        n += self
            .username
            .as_ref()
            .map_or(0, |u| binary_len(u.as_bytes()));
        n += self.password.as_ref().map_or(0, |p| binary_len(p));
        n
    }

    fn check(&self, _: ProtocolVersion) -> Result<(), EncodeError> {
        if self.password.is_some() && self.username.is_none() && !self.version.is_v5() {
            return Err(EncodeError::PasswordWithoutUsername);
        }
        if let Some(w) = &self.will {
            check_binary(&w.payload, "will payload")?;
            if w.topic.is_empty() {
                return Err(EncodeError::EmptyTopic);
            }
            if self.version.is_v5() {
                w.properties.check()?;
            }
        }
        if let Some(p) = &self.password {
            check_binary(p, "password")?;
        }
        if self.version.is_v5() {
            self.properties.check()?;
        }
        Ok(())
    }

    fn write_body(&self, _: ProtocolVersion, buf: &mut Out<'_>) {
        let v = self.version;
        put_binary(buf, v.name().as_bytes());
        buf.put_u8(v.level());
        buf.put_u8(self.flags());
        buf.put_u16(self.keep_alive);
        if v.is_v5() {
            self.properties.encode(buf);
        }
        put_binary(buf, self.client_id.as_bytes());
        if let Some(w) = &self.will {
            if v.is_v5() {
                w.properties.encode(buf);
            }
            put_binary(buf, w.topic.as_bytes());
            put_binary(buf, &w.payload);
        }
        if let Some(u) = &self.username {
            put_binary(buf, u.as_bytes());
        }
        if let Some(p) = &self.password {
            put_binary(buf, p);
        }
    }
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present: the server resumed a stored session.
    pub session_present: bool,
    /// Reason code (MQTT 3.1.1 return codes are mapped onto these).
    pub reason: ConnectReason,
    /// MQTT 5 properties.
    pub properties: ConnAckProperties,
}

impl ConnAck {
    /// A CONNACK with `reason`, no session, no properties.
    pub fn new(reason: ConnectReason) -> ConnAck {
        ConnAck {
            session_present: false,
            reason,
            properties: ConnAckProperties::default(),
        }
    }

    pub(crate) fn decode(v: ProtocolVersion, r: &mut Reader) -> Result<ConnAck, DecodeError> {
        let flags = r.u8("acknowledge flags")?;
        // [MQTT-3.2.2-1]: bits 7-1 reserved. In 3.1 the whole byte is reserved.
        let reserved = if v == ProtocolVersion::V3_1 {
            0xFF
        } else {
            0xFE
        };
        if flags & reserved != 0 {
            return Err(DecodeError::InvalidConnAckFlags(flags));
        }
        let code = r.u8("reason code")?;
        let reason = if v.is_v5() {
            ConnectReason::from_u8(code)
        } else {
            ConnectReason::from_v3_return_code(code)
        }
        .ok_or(DecodeError::InvalidReasonCode {
            packet: PacketType::ConnAck,
            code,
        })?;
        let session_present = flags & 0x01 != 0;
        // [MQTT-3.2.2-6] (3.1.1 [MQTT-3.2.2-4])
        if session_present && reason != ConnectReason::Success {
            return Err(DecodeError::InvalidConnAckFlags(flags));
        }
        let properties = if v.is_v5() {
            let p = ConnAckProperties::decode(r)?;
            check_auth_pair(&p.authentication_method, &p.authentication_data)?;
            p
        } else {
            ConnAckProperties::default()
        };
        Ok(ConnAck {
            session_present,
            reason,
            properties,
        })
    }
}

impl Body for ConnAck {
    const TYPE: PacketType = PacketType::ConnAck;

    fn body_len(&self, v: ProtocolVersion) -> usize {
        2 + self.properties.wire_len_in(v)
    }

    fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
        if v.is_v5() {
            self.properties.check()?;
        }
        Ok(())
    }

    fn write_body(&self, v: ProtocolVersion, buf: &mut Out<'_>) {
        let present = self.session_present
            && self.reason == ConnectReason::Success
            && v != ProtocolVersion::V3_1;
        buf.put_u8(present as u8);
        if v.is_v5() {
            buf.put_u8(self.reason.code());
            self.properties.encode(buf);
        } else {
            buf.put_u8(self.reason.v3_return_code());
        }
    }
}
