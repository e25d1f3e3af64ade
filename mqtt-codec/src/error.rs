//! Decoding and encoding errors, each mapped to its MQTT 5 reason code.

use crate::{ConnectReason, DisconnectReason, PacketType, StringError};

/// Why received bytes are not a valid packet.
///
/// Every variant maps to the MQTT 5 reason code a receiver sends before it
/// closes the connection ([`DecodeError::disconnect_reason`] for DISCONNECT,
/// [`DecodeError::connect_reason`] for a CONNACK refusing a CONNECT). In MQTT
/// 3.1.1 the connection is closed without a reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Packet type 0, or 15 (AUTH) outside MQTT 5.
    #[error("invalid packet type {0}")]
    InvalidPacketType(u8),
    /// Fixed-header flags other than the ones Table 2-2 prescribes ([MQTT-2.1.3-1]).
    #[error("invalid fixed header flags {flags:#06b} for {packet:?}")]
    InvalidHeaderFlags {
        /// The packet type.
        packet: PacketType,
        /// The low four bits of the first byte.
        flags: u8,
    },
    /// A Variable Byte Integer longer than four bytes or not minimally encoded.
    #[error("malformed variable byte integer")]
    MalformedVarInt,
    /// The packet is larger than the configured maximum packet size.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Size of the whole packet, fixed header included.
        size: usize,
        /// The limit.
        max: u32,
    },
    /// The Remaining Length ends before a field does.
    #[error("packet ends before its {0} field")]
    UnexpectedEnd(&'static str),
    /// Bytes left over after the last field.
    #[error("{0} trailing bytes after the last field")]
    TrailingBytes(usize),
    /// A string, topic name or topic filter breaks its rules.
    #[error("invalid {field}: {error}")]
    InvalidString {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        error: StringError,
    },
    /// QoS bits set to 3 in PUBLISH, Will QoS or Subscription Options.
    #[error("invalid QoS 3 in {0}")]
    InvalidQoS(&'static str),
    /// DUP set on a QoS 0 PUBLISH ([MQTT-3.3.1-2]).
    #[error("DUP flag set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    /// A packet identifier of 0 ([MQTT-2.3.1-1]).
    #[error("packet identifier 0")]
    ZeroPacketId,
    /// Unknown protocol name or level in CONNECT.
    #[error("unsupported protocol (name or level {level})")]
    UnsupportedProtocol {
        /// The protocol level byte.
        level: u8,
    },
    /// CONNECT flags that contradict each other or set the reserved bit.
    #[error("invalid CONNECT flags: {0}")]
    InvalidConnectFlags(&'static str),
    /// CONNACK acknowledge flags with a reserved bit set, or Session Present
    /// together with a failure code.
    #[error("invalid CONNACK flags {0:#04x}")]
    InvalidConnAckFlags(u8),
    /// A reason code not allowed in this packet.
    #[error("reason code {code:#04x} is not valid in {packet:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet: PacketType,
        /// The code.
        code: u8,
    },
    /// A property identifier not allowed in this packet.
    #[error("property {id:#04x} is not valid in {packet}")]
    InvalidProperty {
        /// Where the property was found.
        packet: &'static str,
        /// The property identifier.
        id: u32,
    },
    /// A property that may appear once appeared twice.
    #[error("property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    /// A property value outside its allowed range (e.g. Receive Maximum 0).
    #[error("property {0:#04x} has a value outside its allowed range")]
    InvalidPropertyValue(u8),
    /// Authentication Data without Authentication Method, or AUTH without a method.
    #[error("authentication data without authentication method")]
    MissingAuthenticationMethod,
    /// A Topic Alias of 0.
    #[error("topic alias 0")]
    ZeroTopicAlias,
    /// An empty topic name without a Topic Alias, or in a version without aliases.
    #[error("empty topic name without topic alias")]
    EmptyTopic,
    /// A client-to-server PUBLISH carrying a Subscription Identifier ([MQTT-3.3.4-6]).
    #[error("subscription identifier in a client-to-server PUBLISH")]
    SubscriptionIdentifierFromClient,
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter, SUBACK or UNSUBACK without a reason code.
    #[error("{0:?} carries no topic filter or reason code")]
    EmptyPayload(PacketType),
    /// Subscription Options with reserved bits, QoS 3, Retain Handling 3, or
    /// No Local on a shared subscription.
    #[error("invalid subscription options: {0}")]
    InvalidSubscriptionOptions(&'static str),
    /// A packet that the decoding side never receives (e.g. CONNECT at a client).
    #[error("{0:?} is not sent in this direction")]
    UnexpectedPacket(PacketType),
    /// A packet other than CONNECT before the protocol version is known.
    #[error("{0:?} received before the protocol version is known (expected CONNECT)")]
    VersionUnknown(PacketType),
}

impl DecodeError {
    /// The MQTT 5 DISCONNECT reason code to close the connection with.
    pub fn disconnect_reason(&self) -> DisconnectReason {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => DisconnectReason::PacketTooLarge,
            InvalidString {
                error: StringError::InvalidTopicFilter,
                ..
            } => DisconnectReason::TopicFilterInvalid,
            InvalidString {
                field: TOPIC_FILTER,
                error: StringError::EmptyTopic,
            } => DisconnectReason::TopicFilterInvalid,
            InvalidString {
                error: StringError::WildcardInTopicName,
                ..
            } => DisconnectReason::TopicNameInvalid,
            ZeroTopicAlias => DisconnectReason::TopicAliasInvalid,
            DuplicateProperty(_)
            | InvalidPropertyValue(_)
            | MissingAuthenticationMethod
            | EmptyTopic
            | SubscriptionIdentifierFromClient
            | EmptyPayload(_)
            | UnexpectedPacket(_)
            | VersionUnknown(_) => DisconnectReason::ProtocolError,
            InvalidSubscriptionOptions(why) if *why != RESERVED_OPTION_BITS => {
                DisconnectReason::ProtocolError
            }
            InvalidConnectFlags(why) if *why == PASSWORD_WITHOUT_USERNAME => {
                DisconnectReason::ProtocolError
            }
            _ => DisconnectReason::MalformedPacket,
        }
    }

    /// The MQTT 5 CONNACK reason code to refuse a CONNECT with.
    pub fn connect_reason(&self) -> ConnectReason {
        match self {
            DecodeError::UnsupportedProtocol { .. } => ConnectReason::UnsupportedProtocolVersion,
            DecodeError::InvalidString {
                field: CLIENT_IDENTIFIER,
                ..
            } => ConnectReason::ClientIdentifierNotValid,
            _ => match self.disconnect_reason() {
                DisconnectReason::PacketTooLarge => ConnectReason::PacketTooLarge,
                DisconnectReason::TopicNameInvalid => ConnectReason::TopicNameInvalid,
                DisconnectReason::ProtocolError => ConnectReason::ProtocolError,
                _ => ConnectReason::MalformedPacket,
            },
        }
    }
}

pub(crate) const RESERVED_OPTION_BITS: &str = "reserved bits set";
/// Field names that decide a reason code (see `disconnect_reason`).
pub(crate) const TOPIC_FILTER: &str = "topic filter";
pub(crate) const CLIENT_IDENTIFIER: &str = "client identifier";
pub(crate) const PASSWORD_WITHOUT_USERNAME: &str = "password without user name";

/// Why a packet cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The packet would exceed the protocol's limit of 268,435,455 bytes of
    /// Remaining Length, or a configured maximum packet size.
    #[error("packet of {size} bytes exceeds the maximum of {max} bytes")]
    PacketTooLarge {
        /// Size of the whole packet.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Binary data (password, will payload, correlation or authentication
    /// data) longer than 65,535 bytes.
    #[error("{0} longer than 65535 bytes")]
    FieldTooLong(&'static str),
    /// The packet does not exist in this protocol version (AUTH before MQTT 5).
    #[error("{packet:?} does not exist in {version}")]
    NotInVersion {
        /// The packet type.
        packet: PacketType,
        /// The version.
        version: crate::ProtocolVersion,
    },
    /// MQTT 3.1 / 3.1.1 forbid a password without a user name ([MQTT-3.1.2-22]).
    #[error("password without user name is not allowed before MQTT 5")]
    PasswordWithoutUsername,
    /// An empty topic name without a Topic Alias.
    #[error("empty topic name without topic alias")]
    EmptyTopic,
    /// SUBSCRIBE or UNSUBSCRIBE without topic filters, or SUBACK / UNSUBACK
    /// without reason codes.
    #[error("{0:?} needs at least one entry")]
    EmptyPayload(PacketType),
    /// A packet other than CONNECT encoded before the protocol version is known.
    #[error("{0:?} encoded before the protocol version is known")]
    VersionUnknown(PacketType),
    /// A value outside the range its field allows (e.g. Maximum QoS 2).
    #[error("{0} is out of range")]
    ValueOutOfRange(&'static str),
}
