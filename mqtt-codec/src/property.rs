//! MQTT 5 properties (section 2.2.2): one typed struct per packet, holding
//! exactly the properties that packet may carry (Table 2-4).
//!
//! Decoding refuses a property the packet may not carry (Malformed Packet),
//! a second copy of a single-use property (Protocol Error) and values outside
//! their range (Protocol Error). Encoding writes properties in ascending
//! identifier order; User Properties keep their order.

use crate::{
    DecodeError, EncodeError, MqttStr, QoS, TopicName,
    buf::{Out, Reader, binary_len, check_binary, prop_block_len, put_binary, put_var},
    varint::{MAX_VARINT, varint_len},
};
use alloc::vec::Vec;
use bytes::Bytes;
use core::num::{NonZeroU16, NonZeroU32};

/// Property identifiers (Table 2-4).
pub mod id {
    /// Payload Format Indicator.
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    /// Message Expiry Interval.
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    /// Content Type.
    pub const CONTENT_TYPE: u8 = 0x03;
    /// Response Topic.
    pub const RESPONSE_TOPIC: u8 = 0x08;
    /// Correlation Data.
    pub const CORRELATION_DATA: u8 = 0x09;
    /// Subscription Identifier.
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    /// Session Expiry Interval.
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    /// Assigned Client Identifier.
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    /// Server Keep Alive.
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    /// Authentication Method.
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    /// Authentication Data.
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    /// Request Problem Information.
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    /// Will Delay Interval.
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    /// Request Response Information.
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    /// Response Information.
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    /// Server Reference.
    pub const SERVER_REFERENCE: u8 = 0x1C;
    /// Reason String.
    pub const REASON_STRING: u8 = 0x1F;
    /// Receive Maximum.
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    /// Topic Alias Maximum.
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    /// Topic Alias.
    pub const TOPIC_ALIAS: u8 = 0x23;
    /// Maximum QoS.
    pub const MAXIMUM_QOS: u8 = 0x24;
    /// Retain Available.
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    /// User Property.
    pub const USER_PROPERTY: u8 = 0x26;
    /// Maximum Packet Size.
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    /// Wildcard Subscription Available.
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    /// Subscription Identifier Available.
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    /// Shared Subscription Available.
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// A User Property: a name and value pair. Names may repeat; order is kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserProperty {
    /// The name.
    pub name: MqttStr,
    /// The value.
    pub value: MqttStr,
}

impl UserProperty {
    /// A user property from a name and a value.
    pub fn new(name: MqttStr, value: MqttStr) -> Self {
        UserProperty { name, value }
    }
}

/// The Payload Format Indicator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// 0: unspecified bytes.
    #[default]
    Unspecified,
    /// 1: UTF-8 encoded character data.
    Utf8,
}

/// How one property type is read, sized and written.
pub(crate) trait Wire {
    type Value;
    fn read(r: &mut Reader, id: u8) -> Result<Self::Value, DecodeError>;
    fn len(v: &Self::Value) -> usize;
    fn write(v: &Self::Value, buf: &mut Out<'_>);
    fn check(_v: &Self::Value) -> Result<(), EncodeError> {
        Ok(())
    }
}

/// The empty value of a property field, usable in constants.
pub(crate) trait ConstEmpty {
    const EMPTY: Self;
}

impl<T> ConstEmpty for Option<T> {
    const EMPTY: Self = None;
}

impl<T> ConstEmpty for Vec<T> {
    const EMPTY: Self = Vec::new();
}

/// Where a decoded property goes: an `Option` takes one, a `Vec` many.
pub(crate) trait Slot<T> {
    fn put(&mut self, v: T, id: u8) -> Result<(), DecodeError>;
}

impl<T> Slot<T> for Option<T> {
    #[inline]
    fn put(&mut self, v: T, id: u8) -> Result<(), DecodeError> {
        if self.is_some() {
            return Err(DecodeError::DuplicateProperty(id));
        }
        *self = Some(v);
        Ok(())
    }
}

impl<T> Slot<T> for Vec<T> {
    #[inline]
    fn put(&mut self, v: T, _id: u8) -> Result<(), DecodeError> {
        self.push(v);
        Ok(())
    }
}

pub(crate) mod kind {
    use super::*;

    pub(crate) struct Bool;
    impl Wire for Bool {
        type Value = bool;
        fn read(r: &mut Reader, id: u8) -> Result<bool, DecodeError> {
            match r.u8("property")? {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(DecodeError::InvalidPropertyValue(id)),
            }
        }
        fn len(_: &bool) -> usize {
            1
        }
        fn write(v: &bool, buf: &mut Out<'_>) {
            buf.put_u8(*v as u8)
        }
    }

    pub(crate) struct Format;
    impl Wire for Format {
        type Value = PayloadFormat;
        fn read(r: &mut Reader, id: u8) -> Result<PayloadFormat, DecodeError> {
            match r.u8("property")? {
                0 => Ok(PayloadFormat::Unspecified),
                1 => Ok(PayloadFormat::Utf8),
                _ => Err(DecodeError::InvalidPropertyValue(id)),
            }
        }
        fn len(_: &PayloadFormat) -> usize {
            1
        }
        fn write(v: &PayloadFormat, buf: &mut Out<'_>) {
            buf.put_u8(matches!(v, PayloadFormat::Utf8) as u8)
        }
    }

    /// Maximum QoS: 0 or 1 only.
    pub(crate) struct MaxQos;
    impl Wire for MaxQos {
        type Value = QoS;
        fn read(r: &mut Reader, id: u8) -> Result<QoS, DecodeError> {
            match r.u8("property")? {
                0 => Ok(QoS::AtMostOnce),
                1 => Ok(QoS::AtLeastOnce),
                _ => Err(DecodeError::InvalidPropertyValue(id)),
            }
        }
        fn len(_: &QoS) -> usize {
            1
        }
        fn write(v: &QoS, buf: &mut Out<'_>) {
            buf.put_u8(*v as u8)
        }
        fn check(v: &QoS) -> Result<(), EncodeError> {
            if *v == QoS::ExactlyOnce {
                Err(EncodeError::ValueOutOfRange("maximum QoS"))
            } else {
                Ok(())
            }
        }
    }

    pub(crate) struct U16;
    impl Wire for U16 {
        type Value = u16;
        fn read(r: &mut Reader, _: u8) -> Result<u16, DecodeError> {
            r.u16("property")
        }
        fn len(_: &u16) -> usize {
            2
        }
        fn write(v: &u16, buf: &mut Out<'_>) {
            buf.put_u16(*v)
        }
    }

    pub(crate) struct NzU16;
    impl Wire for NzU16 {
        type Value = NonZeroU16;
        fn read(r: &mut Reader, id: u8) -> Result<NonZeroU16, DecodeError> {
            NonZeroU16::new(r.u16("property")?).ok_or(DecodeError::InvalidPropertyValue(id))
        }
        fn len(_: &NonZeroU16) -> usize {
            2
        }
        fn write(v: &NonZeroU16, buf: &mut Out<'_>) {
            buf.put_u16(v.get())
        }
    }

    /// Topic Alias: zero is Topic Alias invalid (0x94), not a generic error.
    pub(crate) struct Alias;
    impl Wire for Alias {
        type Value = NonZeroU16;
        fn read(r: &mut Reader, _: u8) -> Result<NonZeroU16, DecodeError> {
            NonZeroU16::new(r.u16("property")?).ok_or(DecodeError::ZeroTopicAlias)
        }
        fn len(_: &NonZeroU16) -> usize {
            2
        }
        fn write(v: &NonZeroU16, buf: &mut Out<'_>) {
            buf.put_u16(v.get())
        }
    }

    pub(crate) struct U32;
    impl Wire for U32 {
        type Value = u32;
        fn read(r: &mut Reader, _: u8) -> Result<u32, DecodeError> {
            r.u32("property")
        }
        fn len(_: &u32) -> usize {
            4
        }
        fn write(v: &u32, buf: &mut Out<'_>) {
            buf.put_u32(*v)
        }
    }

    pub(crate) struct NzU32;
    impl Wire for NzU32 {
        type Value = NonZeroU32;
        fn read(r: &mut Reader, id: u8) -> Result<NonZeroU32, DecodeError> {
            NonZeroU32::new(r.u32("property")?).ok_or(DecodeError::InvalidPropertyValue(id))
        }
        fn len(_: &NonZeroU32) -> usize {
            4
        }
        fn write(v: &NonZeroU32, buf: &mut Out<'_>) {
            buf.put_u32(v.get())
        }
    }

    /// Subscription Identifier: a Variable Byte Integer from 1 to 268,435,455.
    pub(crate) struct SubId;
    impl Wire for SubId {
        type Value = NonZeroU32;
        fn read(r: &mut Reader, id: u8) -> Result<NonZeroU32, DecodeError> {
            NonZeroU32::new(r.varint("property")?).ok_or(DecodeError::InvalidPropertyValue(id))
        }
        fn len(v: &NonZeroU32) -> usize {
            varint_len(v.get() as usize)
        }
        fn write(v: &NonZeroU32, buf: &mut Out<'_>) {
            put_var(buf, v.get() as usize)
        }
        fn check(v: &NonZeroU32) -> Result<(), EncodeError> {
            if v.get() > MAX_VARINT {
                Err(EncodeError::ValueOutOfRange("subscription identifier"))
            } else {
                Ok(())
            }
        }
    }

    pub(crate) struct Str;
    impl Wire for Str {
        type Value = MqttStr;
        fn read(r: &mut Reader, _: u8) -> Result<MqttStr, DecodeError> {
            r.string("string property")
        }
        fn len(v: &MqttStr) -> usize {
            binary_len(v.as_bytes())
        }
        fn write(v: &MqttStr, buf: &mut Out<'_>) {
            put_binary(buf, v.as_bytes())
        }
    }

    /// Response Topic: a non-empty topic name.
    pub(crate) struct Topic;
    impl Wire for Topic {
        type Value = TopicName;
        fn read(r: &mut Reader, _: u8) -> Result<TopicName, DecodeError> {
            let field = "response topic";
            let t = r.topic_name(field)?;
            if t.is_empty() {
                return Err(DecodeError::InvalidString {
                    field,
                    error: crate::StringError::EmptyTopic,
                });
            }
            Ok(t)
        }
        fn len(v: &TopicName) -> usize {
            binary_len(v.as_bytes())
        }
        fn write(v: &TopicName, buf: &mut Out<'_>) {
            put_binary(buf, v.as_bytes())
        }
        fn check(v: &TopicName) -> Result<(), EncodeError> {
            if v.is_empty() {
                Err(EncodeError::EmptyTopic)
            } else {
                Ok(())
            }
        }
    }

    pub(crate) struct Bin;
    impl Wire for Bin {
        type Value = Bytes;
        fn read(r: &mut Reader, _: u8) -> Result<Bytes, DecodeError> {
            r.binary("binary property")
        }
        fn len(v: &Bytes) -> usize {
            binary_len(v)
        }
        fn write(v: &Bytes, buf: &mut Out<'_>) {
            put_binary(buf, v)
        }
        fn check(v: &Bytes) -> Result<(), EncodeError> {
            check_binary(v, "binary property")
        }
    }

    pub(crate) struct Pair;
    impl Wire for Pair {
        type Value = UserProperty;
        fn read(r: &mut Reader, _: u8) -> Result<UserProperty, DecodeError> {
            let name = r.string("user property name")?;
            let value = r.string("user property value")?;
            Ok(UserProperty { name, value })
        }
        fn len(v: &UserProperty) -> usize {
            binary_len(v.name.as_bytes()) + binary_len(v.value.as_bytes())
        }
        fn write(v: &UserProperty, buf: &mut Out<'_>) {
            put_binary(buf, v.name.as_bytes());
            put_binary(buf, v.value.as_bytes());
        }
    }
}

macro_rules! properties {
    (
        $(#[$m:meta])*
        $name:ident ($label:literal) {
            $( $(#[$fm:meta])* $id:ident => $field:ident : $fty:ty as $kind:ident, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $field: $fty, )*
        }

        impl $name {
            /// No properties.
            pub const EMPTY: $name = $name { $( $field: <$fty as ConstEmpty>::EMPTY, )* };

            /// Whether no property is set.
            pub fn is_empty(&self) -> bool {
                true $( && self.$field.iter().next().is_none() )*
            }

            /// Reads a property block: its length, then the properties.
            pub(crate) fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
                let len = r.varint("property length")? as usize;
                let mut props = Self::default();
                if len == 0 {
                    return Ok(props);
                }
                let Some(end) = r.remaining().checked_sub(len) else {
                    return Err(DecodeError::UnexpectedEnd("properties"));
                };
                while r.remaining() > end {
                    let id = r.varint("property identifier")?;
                    match u8::try_from(id).unwrap_or(0) {
                        $( id::$id => Slot::put(&mut props.$field, kind::$kind::read(r, id::$id)?, id::$id)?, )*
                        _ => return Err(DecodeError::InvalidProperty { packet: $label, id }),
                    }
                }
                if r.remaining() != end {
                    return Err(DecodeError::UnexpectedEnd("properties"));
                }
                Ok(props)
            }

            /// Length of the properties, without the length prefix.
            pub(crate) fn body_len(&self) -> usize {
                0 $( + self.$field.iter().map(|v| 1 + kind::$kind::len(v)).sum::<usize>() )*
            }

            /// Length with the length prefix.
            #[inline]
            pub(crate) fn wire_len(&self) -> usize {
                prop_block_len(self.body_len())
            }

            /// Length on the wire in version `v`: nothing before MQTT 5.
            #[inline]
            #[allow(dead_code)] // generated for every property set; not every packet needs it
            pub(crate) fn wire_len_in(&self, v: crate::ProtocolVersion) -> usize {
                if v.is_v5() { self.wire_len() } else { 0 }
            }

            /// Reads the property block in MQTT 5; empty before it.
            #[inline]
            #[allow(dead_code)] // generated for every property set; not every packet needs it
            pub(crate) fn decode_in(v: crate::ProtocolVersion, r: &mut Reader) -> Result<Self, DecodeError> {
                if v.is_v5() { Self::decode(r) } else { Ok(Self::default()) }
            }

            /// Checks values that the types alone do not bound.
            pub(crate) fn check(&self) -> Result<(), EncodeError> {
                $( for v in self.$field.iter() { kind::$kind::check(v)?; } )*
                Ok(())
            }

            /// Writes the length prefix and the properties.
            pub(crate) fn encode(&self, buf: &mut Out<'_>) {
                put_var(buf, self.body_len());
                $( for v in self.$field.iter() {
                    buf.put_u8(id::$id);
                    kind::$kind::write(v, buf);
                } )*
            }
        }
    };
}

properties!(
    /// CONNECT properties (section 3.1.2.11).
    ConnectProperties("CONNECT") {
        /// Session Expiry Interval in seconds; absent means 0, `u32::MAX` never.
        SESSION_EXPIRY_INTERVAL => session_expiry_interval: Option<u32> as U32,
        /// Authentication Method, which turns on enhanced authentication.
        AUTHENTICATION_METHOD => authentication_method: Option<MqttStr> as Str,
        /// Authentication Data.
        AUTHENTICATION_DATA => authentication_data: Option<Bytes> as Bin,
        /// Request Problem Information (default true).
        REQUEST_PROBLEM_INFORMATION => request_problem_information: Option<bool> as Bool,
        /// Request Response Information (default false).
        REQUEST_RESPONSE_INFORMATION => request_response_information: Option<bool> as Bool,
        /// Receive Maximum (default 65,535).
        RECEIVE_MAXIMUM => receive_maximum: Option<NonZeroU16> as NzU16,
        /// Topic Alias Maximum (default 0).
        TOPIC_ALIAS_MAXIMUM => topic_alias_maximum: Option<u16> as U16,
        /// User Properties.
        USER_PROPERTY => user_properties: Vec<UserProperty> as Pair,
        /// Maximum Packet Size the client accepts.
        MAXIMUM_PACKET_SIZE => maximum_packet_size: Option<NonZeroU32> as NzU32,
    }
);

properties!(
    /// Will Properties in the CONNECT payload (section 3.1.3.2).
    WillProperties("Will Properties") {
        /// Payload Format Indicator.
        PAYLOAD_FORMAT_INDICATOR => payload_format_indicator: Option<PayloadFormat> as Format,
        /// Message Expiry Interval in seconds.
        MESSAGE_EXPIRY_INTERVAL => message_expiry_interval: Option<u32> as U32,
        /// Content Type.
        CONTENT_TYPE => content_type: Option<MqttStr> as Str,
        /// Response Topic.
        RESPONSE_TOPIC => response_topic: Option<TopicName> as Topic,
        /// Correlation Data.
        CORRELATION_DATA => correlation_data: Option<Bytes> as Bin,
        /// Will Delay Interval in seconds.
        WILL_DELAY_INTERVAL => will_delay_interval: Option<u32> as U32,
        /// User Properties.
        USER_PROPERTY => user_properties: Vec<UserProperty> as Pair,
    }
);

properties!(
    /// CONNACK properties (section 3.2.2.3).
    ConnAckProperties("CONNACK") {
        /// Session Expiry Interval the server uses.
        SESSION_EXPIRY_INTERVAL => session_expiry_interval: Option<u32> as U32,
        /// Client identifier the server assigned.
        ASSIGNED_CLIENT_IDENTIFIER => assigned_client_identifier: Option<MqttStr> as Str,
        /// Keep Alive the server requires.
        SERVER_KEEP_ALIVE => server_keep_alive: Option<u16> as U16,
        /// Authentication Method.
        AUTHENTICATION_METHOD => authentication_method: Option<MqttStr> as Str,
        /// Authentication Data.
        AUTHENTICATION_DATA => authentication_data: Option<Bytes> as Bin,
        /// Response Information.
        RESPONSE_INFORMATION => response_information: Option<MqttStr> as Str,
        /// Server Reference.
        SERVER_REFERENCE => server_reference: Option<MqttStr> as Str,
        /// Reason String.
        REASON_STRING => reason_string: Option<MqttStr> as Str,
        /// Receive Maximum of the server (default 65,535).
        RECEIVE_MAXIMUM => receive_maximum: Option<NonZeroU16> as NzU16,
        /// Topic Alias Maximum of the server (default 0).
        TOPIC_ALIAS_MAXIMUM => topic_alias_maximum: Option<u16> as U16,
        /// Maximum QoS: 0 or 1; absent means 2.
        MAXIMUM_QOS => maximum_qos: Option<QoS> as MaxQos,
        /// Retain Available (default true).
        RETAIN_AVAILABLE => retain_available: Option<bool> as Bool,
        /// User Properties.
        USER_PROPERTY => user_properties: Vec<UserProperty> as Pair,
        /// Maximum Packet Size the server accepts.
        MAXIMUM_PACKET_SIZE => maximum_packet_size: Option<NonZeroU32> as NzU32,
        /// Wildcard Subscription Available (default true).
        WILDCARD_SUBSCRIPTION_AVAILABLE => wildcard_subscription_available: Option<bool> as Bool,
        /// Subscription Identifier Available (default true).
        SUBSCRIPTION_IDENTIFIER_AVAILABLE => subscription_identifier_available: Option<bool> as Bool,
        /// Shared Subscription Available (default true).
        SHARED_SUBSCRIPTION_AVAILABLE => shared_subscription_available: Option<bool> as Bool,
    }
);

properties!(
    /// PUBLISH properties (section 3.3.2.3).
    PublishProperties("PUBLISH") {
        /// Payload Format Indicator.
        PAYLOAD_FORMAT_INDICATOR => payload_format_indicator: Option<PayloadFormat> as Format,
        /// Message Expiry Interval in seconds.
        MESSAGE_EXPIRY_INTERVAL => message_expiry_interval: Option<u32> as U32,
        /// Content Type.
        CONTENT_TYPE => content_type: Option<MqttStr> as Str,
        /// Response Topic.
        RESPONSE_TOPIC => response_topic: Option<TopicName> as Topic,
        /// Correlation Data.
        CORRELATION_DATA => correlation_data: Option<Bytes> as Bin,
        /// Subscription Identifiers (server to client only; may repeat).
        SUBSCRIPTION_IDENTIFIER => subscription_identifiers: Vec<NonZeroU32> as SubId,
        /// Topic Alias.
        TOPIC_ALIAS => topic_alias: Option<NonZeroU16> as Alias,
        /// User Properties.
        USER_PROPERTY => user_properties: Vec<UserProperty> as Pair,
    }
);

properties!(
    /// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK:
    /// a Reason String and User Properties.
    AckProperties("acknowledgement") {
        /// Reason String.
        REASON_STRING => reason_string: Option<MqttStr> as Str,
        /// User Properties.
        USER_PROPERTY => user_properties: Vec<UserProperty> as Pair,
    }
);

properties!(
    /// SUBSCRIBE properties (section 3.8.2.1).
    SubscribeProperties("SUBSCRIBE") {
        /// Subscription Identifier (1 to 268,435,455).
        SUBSCRIPTION_IDENTIFIER => subscription_identifier: Option<NonZeroU32> as SubId,
        /// User Properties.
        USER_PROPERTY => user_properties: Vec<UserProperty> as Pair,
    }
);

properties!(
    /// UNSUBSCRIBE properties (section 3.10.2.1).
    UnsubscribeProperties("UNSUBSCRIBE") {
        /// User Properties.
        USER_PROPERTY => user_properties: Vec<UserProperty> as Pair,
    }
);

properties!(
    /// DISCONNECT properties (section 3.14.2.2).
    DisconnectProperties("DISCONNECT") {
        /// Session Expiry Interval (client only).
        SESSION_EXPIRY_INTERVAL => session_expiry_interval: Option<u32> as U32,
        /// Server Reference.
        SERVER_REFERENCE => server_reference: Option<MqttStr> as Str,
        /// Reason String.
        REASON_STRING => reason_string: Option<MqttStr> as Str,
        /// User Properties.
        USER_PROPERTY => user_properties: Vec<UserProperty> as Pair,
    }
);

properties!(
    /// AUTH properties (section 3.15.2.2).
    AuthProperties("AUTH") {
        /// Authentication Method (required unless the AUTH is empty).
        AUTHENTICATION_METHOD => authentication_method: Option<MqttStr> as Str,
        /// Authentication Data.
        AUTHENTICATION_DATA => authentication_data: Option<Bytes> as Bin,
        /// Reason String.
        REASON_STRING => reason_string: Option<MqttStr> as Str,
        /// User Properties.
        USER_PROPERTY => user_properties: Vec<UserProperty> as Pair,
    }
);

/// Authentication Data without Authentication Method is a Protocol Error.
pub(crate) fn check_auth_pair(
    method: &Option<MqttStr>,
    data: &Option<Bytes>,
) -> Result<(), DecodeError> {
    if data.is_some() && method.is_none() {
        Err(DecodeError::MissingAuthenticationMethod)
    } else {
        Ok(())
    }
}
