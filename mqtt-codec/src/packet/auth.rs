//! DISCONNECT and AUTH.

use super::{Body, PacketType};
use crate::{
    AuthProperties, AuthReason, DecodeError, DisconnectProperties, DisconnectReason, EncodeError,
    ProtocolVersion,
    buf::{Out, Reader},
    property::check_auth_pair,
};

/// DISCONNECT: the last packet of a connection, from either side (MQTT 5) or
/// from the client (3.1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Disconnect {
    /// Reason code (always normal disconnection in MQTT 3.1.1).
    pub reason: DisconnectReason,
    /// MQTT 5 properties.
    pub properties: DisconnectProperties,
}

impl Disconnect {
    /// A DISCONNECT with `reason` and no properties.
    pub fn new(reason: DisconnectReason) -> Disconnect {
        Disconnect {
            reason,
            properties: DisconnectProperties::default(),
        }
    }

    pub(crate) fn decode(v: ProtocolVersion, r: &mut Reader) -> Result<Disconnect, DecodeError> {
        let mut d = Disconnect::default();
        // [MQTT-3.14.2-1]: Remaining Length 0 means 0x00 and no properties.
        if v.is_v5() && r.remaining() > 0 {
            let code = r.u8("reason code")?;
            d.reason = DisconnectReason::from_u8(code).ok_or(DecodeError::InvalidReasonCode {
                packet: PacketType::Disconnect,
                code,
            })?;
            if r.remaining() > 0 {
                d.properties = DisconnectProperties::decode(r)?;
            }
        }
        Ok(d)
    }

    fn short(&self, v: ProtocolVersion) -> bool {
        !v.is_v5()
            || (self.reason == DisconnectReason::NormalDisconnection && self.properties.is_empty())
    }
}

impl Body for Disconnect {
    const TYPE: PacketType = PacketType::Disconnect;

    fn body_len(&self, v: ProtocolVersion) -> usize {
        if self.short(v) {
            0
        } else {
            1 + self.properties.wire_len()
        }
    }

    fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
        if v.is_v5() {
            self.properties.check()
        } else {
            Ok(())
        }
    }

    fn write_body(&self, v: ProtocolVersion, buf: &mut Out<'_>) {
        if !self.short(v) {
            buf.put_u8(self.reason.code());
            self.properties.encode(buf);
        }
    }
}

/// AUTH: a step of MQTT 5 enhanced authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// Reason code.
    pub reason: AuthReason,
    /// Properties; the Authentication Method is required unless the packet is
    /// an empty success.
    pub properties: AuthProperties,
}

impl Auth {
    pub(crate) fn decode(r: &mut Reader) -> Result<Auth, DecodeError> {
        let mut a = Auth::default();
        // [MQTT-3.15.2-1]: Remaining Length 0 means success with no properties.
        if r.remaining() > 0 {
            let code = r.u8("reason code")?;
            a.reason = AuthReason::from_u8(code).ok_or(DecodeError::InvalidReasonCode {
                packet: PacketType::Auth,
                code,
            })?;
            if r.remaining() > 0 {
                a.properties = AuthProperties::decode(r)?;
            }
            // Section 3.15.2.2.2: omitting the Authentication Method is a Protocol Error.
            if a.properties.authentication_method.is_none() {
                return Err(DecodeError::MissingAuthenticationMethod);
            }
        }
        check_auth_pair(
            &a.properties.authentication_method,
            &a.properties.authentication_data,
        )?;
        Ok(a)
    }

    fn short(&self) -> bool {
        self.reason == AuthReason::Success && self.properties.is_empty()
    }
}

impl Body for Auth {
    const TYPE: PacketType = PacketType::Auth;

    fn body_len(&self, _: ProtocolVersion) -> usize {
        if self.short() {
            0
        } else {
            1 + self.properties.wire_len()
        }
    }

    fn check(&self, v: ProtocolVersion) -> Result<(), EncodeError> {
        if !v.is_v5() {
            return Err(EncodeError::NotInVersion {
                packet: PacketType::Auth,
                version: v,
            });
        }
        if !self.short() && self.properties.authentication_method.is_none() {
            return Err(EncodeError::ValueOutOfRange(
                "AUTH without authentication method",
            ));
        }
        self.properties.check()
    }

    fn write_body(&self, _: ProtocolVersion, buf: &mut Out<'_>) {
        if !self.short() {
            buf.put_u8(self.reason.code());
            self.properties.encode(buf);
        }
    }
}
