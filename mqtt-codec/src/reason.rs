//! Reason codes, one type per packet (MQTT 5 Table 2-6), with the MQTT 3.1.1
//! return codes mapped onto them.

macro_rules! reason_codes {
    ($(#[$m:meta])* $name:ident { $( $(#[$vm:meta])* $variant:ident = $code:literal, )* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vm])* $variant = $code, )*
        }

        impl $name {
            /// All values, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The reason code for a byte, if the byte is one of this packet's codes.
            #[inline]
            pub const fn from_u8(code: u8) -> Option<$name> {
                match code {
                    $( $code => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// The byte on the wire.
            #[inline]
            pub const fn code(self) -> u8 {
                self as u8
            }

            /// Whether the code reports a failure (0x80 and above).
            #[inline]
            pub const fn is_error(self) -> bool {
                (self as u8) >= 0x80
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::from_u8(0).unwrap_or(Self::ALL[0])
            }
        }

        impl From<$name> for u8 {
            fn from(r: $name) -> u8 {
                r as u8
            }
        }

        impl TryFrom<u8> for $name {
            type Error = u8;
            fn try_from(code: u8) -> Result<Self, u8> {
                $name::from_u8(code).ok_or(code)
            }
        }
    };
}

reason_codes!(
    /// CONNACK reason codes (Table 3-1). MQTT 3.1.1 return codes 1-5 map to
    /// 0x84, 0x85, 0x88, 0x86 and 0x87.
    ConnectReason {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x81 Malformed Packet.
        MalformedPacket = 0x81,
        /// 0x82 Protocol Error.
        ProtocolError = 0x82,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x84 Unsupported Protocol Version (3.1.1: 1).
        UnsupportedProtocolVersion = 0x84,
        /// 0x85 Client Identifier not valid (3.1.1: 2).
        ClientIdentifierNotValid = 0x85,
        /// 0x86 Bad User Name or Password (3.1.1: 4).
        BadUserNameOrPassword = 0x86,
        /// 0x87 Not authorized (3.1.1: 5).
        NotAuthorized = 0x87,
        /// 0x88 Server unavailable (3.1.1: 3).
        ServerUnavailable = 0x88,
        /// 0x89 Server busy.
        ServerBusy = 0x89,
        /// 0x8A Banned.
        Banned = 0x8A,
        /// 0x8C Bad authentication method.
        BadAuthenticationMethod = 0x8C,
        /// 0x90 Topic Name invalid.
        TopicNameInvalid = 0x90,
        /// 0x95 Packet too large.
        PacketTooLarge = 0x95,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x99 Payload format invalid.
        PayloadFormatInvalid = 0x99,
        /// 0x9A Retain not supported.
        RetainNotSupported = 0x9A,
        /// 0x9B QoS not supported.
        QoSNotSupported = 0x9B,
        /// 0x9C Use another server.
        UseAnotherServer = 0x9C,
        /// 0x9D Server moved.
        ServerMoved = 0x9D,
        /// 0x9F Connection rate exceeded.
        ConnectionRateExceeded = 0x9F,
    }
);

impl ConnectReason {
    /// The MQTT 3.1 / 3.1.1 CONNACK return code for this reason.
    ///
    /// Codes 3.1.1 has no equivalent for map to the nearest one: failures of
    /// credentials or authorization to 4 or 5, everything else to 3 (server
    /// unavailable).
    pub const fn v3_return_code(self) -> u8 {
        match self {
            ConnectReason::Success => 0,
            ConnectReason::UnsupportedProtocolVersion => 1,
            ConnectReason::ClientIdentifierNotValid => 2,
            ConnectReason::BadUserNameOrPassword | ConnectReason::BadAuthenticationMethod => 4,
            ConnectReason::NotAuthorized | ConnectReason::Banned => 5,
            _ => 3,
        }
    }

    /// The reason for an MQTT 3.1 / 3.1.1 CONNACK return code (0-5).
    pub const fn from_v3_return_code(code: u8) -> Option<ConnectReason> {
        Some(match code {
            0 => ConnectReason::Success,
            1 => ConnectReason::UnsupportedProtocolVersion,
            2 => ConnectReason::ClientIdentifierNotValid,
            3 => ConnectReason::ServerUnavailable,
            4 => ConnectReason::BadUserNameOrPassword,
            5 => ConnectReason::NotAuthorized,
            _ => return None,
        })
    }
}

reason_codes!(
    /// PUBACK and PUBREC reason codes (Tables 3-4 and 3-5).
    PubAckReason {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x10 No matching subscribers.
        NoMatchingSubscribers = 0x10,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x90 Topic Name invalid.
        TopicNameInvalid = 0x90,
        /// 0x91 Packet Identifier in use.
        PacketIdentifierInUse = 0x91,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x99 Payload format invalid.
        PayloadFormatInvalid = 0x99,
    }
);

reason_codes!(
    /// PUBREL and PUBCOMP reason codes (Tables 3-6 and 3-7).
    PubRelReason {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x92 Packet Identifier not found.
        PacketIdentifierNotFound = 0x92,
    }
);

reason_codes!(
    /// SUBACK reason codes (Table 3-8). MQTT 3.1.1 knows 0, 1, 2 and 0x80.
    SubAckReason {
        /// 0x00 Granted QoS 0.
        GrantedQoS0 = 0x00,
        /// 0x01 Granted QoS 1.
        GrantedQoS1 = 0x01,
        /// 0x02 Granted QoS 2.
        GrantedQoS2 = 0x02,
        /// 0x80 Unspecified error (3.1.1: Failure).
        UnspecifiedError = 0x80,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x8F Topic Filter invalid.
        TopicFilterInvalid = 0x8F,
        /// 0x91 Packet Identifier in use.
        PacketIdentifierInUse = 0x91,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x9E Shared Subscriptions not supported.
        SharedSubscriptionsNotSupported = 0x9E,
        /// 0xA1 Subscription Identifiers not supported.
        SubscriptionIdentifiersNotSupported = 0xA1,
        /// 0xA2 Wildcard Subscriptions not supported.
        WildcardSubscriptionsNotSupported = 0xA2,
    }
);

impl SubAckReason {
    /// The success code granting `qos`.
    pub const fn granted(qos: crate::QoS) -> SubAckReason {
        match qos {
            crate::QoS::AtMostOnce => SubAckReason::GrantedQoS0,
            crate::QoS::AtLeastOnce => SubAckReason::GrantedQoS1,
            crate::QoS::ExactlyOnce => SubAckReason::GrantedQoS2,
        }
    }

    /// The granted QoS, or `None` for a failure.
    pub const fn granted_qos(self) -> Option<crate::QoS> {
        match self {
            SubAckReason::GrantedQoS0 => Some(crate::QoS::AtMostOnce),
            SubAckReason::GrantedQoS1 => Some(crate::QoS::AtLeastOnce),
            SubAckReason::GrantedQoS2 => Some(crate::QoS::ExactlyOnce),
            _ => None,
        }
    }
}

reason_codes!(
    /// UNSUBACK reason codes (Table 3-9). MQTT 3.1.1 UNSUBACK carries none.
    UnsubAckReason {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x11 No subscription existed.
        NoSubscriptionExisted = 0x11,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x8F Topic Filter invalid.
        TopicFilterInvalid = 0x8F,
        /// 0x91 Packet Identifier in use.
        PacketIdentifierInUse = 0x91,
    }
);

reason_codes!(
    /// DISCONNECT reason codes (Table 3-10, plus 0x8C from Table 2-6).
    DisconnectReason {
        /// 0x00 Normal disconnection.
        NormalDisconnection = 0x00,
        /// 0x04 Disconnect with Will Message (client only).
        DisconnectWithWillMessage = 0x04,
        /// 0x80 Unspecified error.
        UnspecifiedError = 0x80,
        /// 0x81 Malformed Packet.
        MalformedPacket = 0x81,
        /// 0x82 Protocol Error.
        ProtocolError = 0x82,
        /// 0x83 Implementation specific error.
        ImplementationSpecificError = 0x83,
        /// 0x87 Not authorized.
        NotAuthorized = 0x87,
        /// 0x89 Server busy.
        ServerBusy = 0x89,
        /// 0x8B Server shutting down.
        ServerShuttingDown = 0x8B,
        /// 0x8C Bad authentication method (listed in Table 2-6 only).
        BadAuthenticationMethod = 0x8C,
        /// 0x8D Keep Alive timeout.
        KeepAliveTimeout = 0x8D,
        /// 0x8E Session taken over.
        SessionTakenOver = 0x8E,
        /// 0x8F Topic Filter invalid.
        TopicFilterInvalid = 0x8F,
        /// 0x90 Topic Name invalid.
        TopicNameInvalid = 0x90,
        /// 0x93 Receive Maximum exceeded.
        ReceiveMaximumExceeded = 0x93,
        /// 0x94 Topic Alias invalid.
        TopicAliasInvalid = 0x94,
        /// 0x95 Packet too large.
        PacketTooLarge = 0x95,
        /// 0x96 Message rate too high.
        MessageRateTooHigh = 0x96,
        /// 0x97 Quota exceeded.
        QuotaExceeded = 0x97,
        /// 0x98 Administrative action.
        AdministrativeAction = 0x98,
        /// 0x99 Payload format invalid.
        PayloadFormatInvalid = 0x99,
        /// 0x9A Retain not supported.
        RetainNotSupported = 0x9A,
        /// 0x9B QoS not supported.
        QoSNotSupported = 0x9B,
        /// 0x9C Use another server.
        UseAnotherServer = 0x9C,
        /// 0x9D Server moved.
        ServerMoved = 0x9D,
        /// 0x9E Shared Subscriptions not supported.
        SharedSubscriptionsNotSupported = 0x9E,
        /// 0x9F Connection rate exceeded.
        ConnectionRateExceeded = 0x9F,
        /// 0xA0 Maximum connect time.
        MaximumConnectTime = 0xA0,
        /// 0xA1 Subscription Identifiers not supported.
        SubscriptionIdentifiersNotSupported = 0xA1,
        /// 0xA2 Wildcard Subscriptions not supported.
        WildcardSubscriptionsNotSupported = 0xA2,
    }
);

reason_codes!(
    /// AUTH reason codes (Table 3-11).
    AuthReason {
        /// 0x00 Success.
        Success = 0x00,
        /// 0x18 Continue authentication.
        ContinueAuthentication = 0x18,
        /// 0x19 Re-authenticate.
        ReAuthenticate = 0x19,
    }
);
