//! An async MQTT 3.1.1 and 5.0 client for tokio, over TCP, TLS, WebSocket
//! and secure WebSocket.
//!
//! The protocol lives in [`mqtt_session::ClientSession`]; this crate runs it
//! in a background task over a transport from `mqtt-transport-tcp` or
//! `mqtt-transport-ws`, reconnects with backoff, and hands out a cloneable
//! [`Client`] handle and a [`Messages`] stream.
//!
//! - Every message is kept until its flow completes: QoS 1 and 2 messages
//!   in flight are resent after a reconnection and QoS 2 ones are never
//!   delivered twice; subscriptions are made again when the server lost the
//!   session.
//! - Memory is bounded: at most [`ClientBuilder::queue_limit`] messages are
//!   queued or in flight (publishers wait, or fail at once with
//!   [`Client::try_enqueue`]), and a slow reader of [`Messages`] stops the
//!   client from reading the network rather than filling memory.
//! - Everything the server announces in CONNACK (Maximum QoS, Receive
//!   Maximum, Maximum Packet Size, Topic Alias Maximum, Server Keep Alive,
//!   ...) is obeyed.
//!
//! ```no_run
//! use mqtt_client::{ClientBuilder, Message, QoS};
//!
//! # async fn demo() -> Result<(), mqtt_client::Error> {
//! let (client, mut messages) = ClientBuilder::new("mqtt://127.0.0.1:1883")?
//!     .client_id("example")
//!     .connect()
//!     .await?;
//! client.subscribe("greetings/#", QoS::AtLeastOnce).await?;
//! client
//!     .publish(Message::new("greetings/world", "hello")?.qos(QoS::ExactlyOnce))
//!     .await?;
//! if let Some(m) = messages.recv().await {
//!     println!("{}: {:?}", m.topic(), m.payload());
//! }
//! client.disconnect().await?;
//! # Ok(()) }
//! ```

mod backoff;
mod client;
mod driver;
mod error;
mod message;
mod options;
mod request;

pub use client::{Client, ConnectionEvent, ConnectionEvents, ConnectionState, Delivery, Messages};
pub use error::Error;
pub use message::Message;
pub use options::{ClientBuilder, Reconnect};
pub use request::Requester;

pub use mqtt_codec::{
    self as codec, ConnAck, Disconnect, DisconnectReason, PayloadFormat, ProtocolVersion,
    PubAckReason, Publish, QoS, RetainHandling, SubAck, SubAckReason, Subscription,
    SubscriptionOptions, TopicFilter, TopicName, UnsubAck, Will,
};
pub use mqtt_transport_tcp::{ClientTls, Roots, ServerAddr};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
