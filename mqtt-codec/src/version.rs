//! Protocol versions.

/// The MQTT protocol version of a connection.
///
/// The version is part of the decoding state: a server learns it from the
/// client's CONNECT, a client knows it from the CONNECT it sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// MQTT 3.1 (protocol name `MQIsdp`, level 3), spoken by older devices.
    V3_1,
    /// MQTT 3.1.1 (protocol name `MQTT`, level 4).
    V3_1_1,
    /// MQTT 5.0 (protocol name `MQTT`, level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte carried in CONNECT.
    pub const fn level(self) -> u8 {
        match self {
            ProtocolVersion::V3_1 => 3,
            ProtocolVersion::V3_1_1 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// The protocol name carried in CONNECT (`MQIsdp` for 3.1, `MQTT` otherwise).
    pub const fn name(self) -> &'static str {
        match self {
            ProtocolVersion::V3_1 => "MQIsdp",
            _ => "MQTT",
        }
    }

    /// Whether packets carry MQTT 5 properties and reason codes.
    #[inline]
    pub const fn is_v5(self) -> bool {
        matches!(self, ProtocolVersion::V5)
    }

    /// The version for a protocol name and level, if the pair is a known one.
    pub fn from_name_and_level(name: &[u8], level: u8) -> Option<Self> {
        match (name, level) {
            (b"MQTT", 4) => Some(ProtocolVersion::V3_1_1),
            (b"MQTT", 5) => Some(ProtocolVersion::V5),
            (b"MQIsdp", 3) => Some(ProtocolVersion::V3_1),
            _ => None,
        }
    }
}

impl core::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ProtocolVersion::V3_1 => "MQTT 3.1",
            ProtocolVersion::V3_1_1 => "MQTT 3.1.1",
            ProtocolVersion::V5 => "MQTT 5.0",
        })
    }
}
