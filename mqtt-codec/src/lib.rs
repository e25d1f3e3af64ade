//! A zero-copy MQTT packet codec for MQTT 3.1, 3.1.1 and 5.0.
//!
//! The crate README (with a second example) is included below as a doc test.
//!
//! - **One packet model** for every version: MQTT 5 is a superset, so each
//!   packet type is one struct and the version is a parameter of encoding
//!   and part of the [`Decoder`]'s state.
//! - **Zero-copy decoding**: [`Decoder::decode`] takes a `&mut BytesMut` a
//!   socket read filled, returns `Ok(None)` while a packet is incomplete, and
//!   hands out topics, strings, payloads and binary properties as [`Bytes`]
//!   slices of that buffer. Strings are validated once ([`MqttStr`],
//!   [`TopicName`], [`TopicFilter`]).
//! - **Exact-size encoding** into a `BytesMut`, and [`Publish::encode_header`]
//!   for vectored writes that send one shared payload to many subscribers.
//! - **Strict validation**: every malformed input is a [`DecodeError`] that
//!   names the MQTT 5 reason code to disconnect with. A maximum packet size
//!   is enforced from the fixed header, before the body is buffered.
//! - `no_std` + `alloc` without the default `std` feature; a
//!   `tokio_util::codec` implementation with the `tokio` feature.
//!
//! ```
//! use bytes::BytesMut;
//! use mqtt_codec::{Decoder, Encode, Packet, ProtocolVersion, Publish, QoS, QosPid, PacketId, TopicName};
//!
//! // Encode a QoS 1 PUBLISH for an MQTT 5 connection...
//! let mut publish = Publish::new(TopicName::from_static("sensors/t1")?, &b"21.5"[..]);
//! publish.qos_pid = QosPid::AtLeastOnce(PacketId::new(7).unwrap());
//! let mut wire = BytesMut::new();
//! publish.encode(ProtocolVersion::V5, &mut wire)?;
//!
//! // ...and decode it as the client side of that connection.
//! let mut decoder = Decoder::client(ProtocolVersion::V5);
//! let Some(Packet::Publish(received)) = decoder.decode(&mut wire)? else { unreachable!() };
//! assert_eq!(received.topic(), "sensors/t1");
//! assert_eq!(received.qos(), QoS::AtLeastOnce);
//! assert_eq!(received.payload(), b"21.5");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod buf;
#[cfg(feature = "tokio")]
mod codec;
mod decoder;
mod error;
mod packet;
pub mod property;
mod qos;
mod reason;
mod string;
mod varint;
mod version;

pub use bytes::{Bytes, BytesMut};
#[cfg(feature = "tokio")]
pub use codec::{CodecError, MqttCodec};
pub use decoder::{DEFAULT_MAX_PACKET_SIZE, Decoder, FixedHeader, PROTOCOL_MAX_PACKET_SIZE};
pub use error::{DecodeError, EncodeError};
pub use packet::{
    Auth, ConnAck, Connect, Disconnect, Encode, Packet, PacketType, PubAck, PubComp, PubRec,
    PubRel, Publish, QosPid, RetainHandling, Role, SubAck, Subscribe, Subscription,
    SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};
pub use property::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PayloadFormat, PublishProperties, SubscribeProperties, UnsubscribeProperties, UserProperty,
    WillProperties,
};
pub use qos::{PacketId, QoS};
pub use reason::{
    AuthReason, ConnectReason, DisconnectReason, PubAckReason, PubRelReason, SubAckReason,
    UnsubAckReason,
};
pub use string::{MqttStr, StringError, TopicFilter, TopicName, topic_matches};
pub use varint::{MAX_VARINT, varint_len};
pub use version::ProtocolVersion;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
