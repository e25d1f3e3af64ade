//! Sans-IO MQTT protocol state machines.
//!
//! The session layer sits between the [`mqtt_codec`] packets and any IO. It
//! owns the protocol rules that depend on state: packet identifiers, QoS 1
//! and 2 flows, the peer's Receive Maximum, keep-alive, topic aliases, and
//! the session state that outlives a network connection. It never reads a
//! clock, spawns or blocks: the caller passes the current [`Instant`] in and
//! polls packets, events and deadlines out, in the style of quinn-proto.
//!
//! ```
//! use mqtt_codec::{ConnAck, ConnectReason, Packet, ProtocolVersion, Publish, QoS, QosPid, PacketId, PubAck, TopicName};
//! use mqtt_session::{ClientOptions, ClientSession, Event, Instant};
//!
//! let mut client = ClientSession::new(ClientOptions::new(ProtocolVersion::V5, "sensor-1".try_into()?));
//! let now = Instant::ZERO;
//! client.connect(now);
//! assert!(matches!(client.poll_transmit(now), Some(Packet::Connect(_))));
//!
//! client.handle_packet(now, ConnAck::new(ConnectReason::Success).into())?;
//! assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
//!
//! let mut msg = Publish::new(TopicName::from_static("t/1")?, &b"21.5"[..]);
//! msg.qos_pid = QosPid::new(QoS::AtLeastOnce, PacketId::MIN); // the session assigns the id
//! let request = client.publish(msg)?;
//! let Some(Packet::Publish(sent)) = client.poll_transmit(now) else { unreachable!() };
//!
//! client.handle_packet(now, PubAck::new(sent.packet_id().unwrap()).into())?;
//! assert!(matches!(client.poll_event(), Some(Event::Published { request: r, .. }) if r == request));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod alias;
mod client;
mod fit;
mod flow;
mod ids;
mod incoming;
mod keepalive;
mod outgoing;
mod quota;
mod server;
mod time;

pub use alias::{AliasError, InboundAliases, OutboundAliases};
pub use client::{ClientOptions, ClientSession, ConnectionState, ServerLimits};
pub use ids::PacketIds;
pub use outgoing::{FlightState, Outcome, UnexpectedAck};
pub use quota::SendQuota;
pub use server::{DeliverError, ServerEvent, ServerOptions, ServerSession, SessionState};
pub use time::Instant;

use mqtt_codec::{
    Auth, ConnAck, ConnectReason, DecodeError, DisconnectReason, Publish, QoS, SubAck, UnsubAck,
};

/// The handle a command returns; the event that completes it carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The handle of messages whose end the caller does not follow: the
    /// session reports no [`ServerEvent::Assigned`], [`ServerEvent::Received`]
    /// or [`ServerEvent::Delivered`] about them (a broker delivering a
    /// message it does not store saves an event per message).
    pub const UNTRACKED: RequestId = RequestId(u64::MAX);

    /// A handle of the caller's numbering, for
    /// [`ServerSession::deliver_as`](crate::ServerSession::deliver_as) and
    /// stored [`SessionState`](crate::SessionState)s: a broker that stores
    /// messages uses its storage keys, so that the events about a message
    /// name the stored record.
    pub const fn from_raw(raw: u64) -> RequestId {
        RequestId(raw)
    }

    /// The number behind the handle.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

/// What a session reports to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The server accepted the connection. `session_present` tells whether it
    /// resumed the session; messages in flight are being resent either way.
    Connected(ConnAck),
    /// An application message arrived (topic alias resolved, each QoS 2
    /// message once).
    Message(Publish),
    /// A [`publish`](ClientSession::publish) ended.
    Published {
        /// The handle `publish` returned.
        request: RequestId,
        /// How it ended.
        outcome: Outcome,
    },
    /// A SUBSCRIBE was answered.
    Subscribed {
        /// The handle `subscribe` returned.
        request: RequestId,
        /// The answer: one reason code per filter.
        suback: SubAck,
    },
    /// An UNSUBSCRIBE was answered.
    Unsubscribed {
        /// The handle `unsubscribe` returned.
        request: RequestId,
        /// The answer.
        unsuback: UnsubAck,
    },
    /// Subscriptions were renewed after a reconnection found that the server
    /// kept no session ([`ClientOptions::restore_subscriptions`]).
    Restored {
        /// The answer: one reason code per filter.
        suback: SubAck,
    },
    /// An AUTH packet arrived (MQTT 5 enhanced authentication).
    Auth(Auth),
    /// The network connection is over; the session remains.
    Disconnected(ConnectionError),
}

/// Why a network connection ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The peer sent bytes that are not a valid packet.
    #[error("malformed packet from the peer: {0}")]
    Decode(#[from] DecodeError),
    /// The peer broke a protocol rule.
    #[error("protocol violation ({reason:?}): {detail}")]
    Protocol {
        /// The DISCONNECT reason code sent (MQTT 5).
        reason: DisconnectReason,
        /// What happened.
        detail: &'static str,
    },
    /// The server refused the connection in CONNACK.
    #[error("connection refused: {0:?}")]
    Refused(ConnectReason),
    /// The peer stayed silent too long: no answer to a PINGREQ (client), or
    /// nothing for 1.5 times the Keep Alive (server).
    #[error("keep alive timeout")]
    KeepAliveTimeout,
    /// No CONNECT arrived within the server's connect timeout.
    #[error("no CONNECT in time")]
    ConnectTimeout,
    /// The peer sent DISCONNECT.
    #[error("disconnected by the peer: {0:?}")]
    ClosedByPeer(DisconnectReason),
    /// This side sent DISCONNECT.
    #[error("disconnected: {0:?}")]
    ClosedLocally(DisconnectReason),
    /// The transport closed.
    #[error("transport closed")]
    TransportClosed,
}

/// Why [`ClientSession::subscribe`] or [`ClientSession::unsubscribe`]
/// refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// No topic filter ([MQTT-3.8.3-2], [MQTT-3.10.3-2]).
    #[error("no topic filter")]
    Empty,
    /// The server announced Wildcard Subscription Available = 0.
    #[error("the server does not support wildcard subscriptions")]
    WildcardSubscriptionsNotSupported,
    /// The server announced Shared Subscription Available = 0.
    #[error("the server does not support shared subscriptions")]
    SharedSubscriptionsNotSupported,
    /// The server announced Subscription Identifier Available = 0.
    #[error("the server does not support subscription identifiers")]
    SubscriptionIdentifiersNotSupported,
}

/// Why [`ClientSession::publish`] refused a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The server's Maximum QoS is lower.
    #[error("the server accepts at most {maximum:?}")]
    QoSNotSupported {
        /// The server's Maximum QoS.
        maximum: QoS,
    },
    /// The server does not accept retained messages.
    #[error("the server does not accept retained messages")]
    RetainNotSupported,
    /// Larger than the server's Maximum Packet Size.
    #[error("packet of {size} bytes exceeds the server's maximum of {maximum}")]
    PacketTooLarge {
        /// Size of the PUBLISH.
        size: usize,
        /// The server's Maximum Packet Size.
        maximum: u32,
    },
    /// An empty topic name without a Topic Alias.
    #[error("empty topic name without a topic alias")]
    EmptyTopic,
    /// The queue of messages waiting to be sent is full; the message is given back.
    #[error("queue full")]
    QueueFull(Publish),
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
