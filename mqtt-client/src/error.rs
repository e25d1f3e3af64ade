//! Errors.

use mqtt_codec::{ConnectReason, PubAckReason, Publish};
use mqtt_session::{ConnectionError, PublishError, SubscribeError};
use mqtt_transport_tcp::TransportError;
use mqtt_transport_ws::WsError;

/// Why an operation of the client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address, or the TCP or TLS connection, failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The WebSocket connection failed.
    #[error(transparent)]
    WebSocket(#[from] WsError),
    /// The MQTT connection failed or ended (refused in CONNACK, protocol
    /// violation, keep-alive timeout, ...).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The message cannot be published to this server (QoS, RETAIN or size
    /// beyond what it announced).
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The subscription asks for what the server does not support, or is empty.
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// The queue of messages to send is full; the message is given back.
    #[error("the outgoing queue is full")]
    QueueFull(Box<Publish>),
    /// The server answered PUBACK or PUBREC with a failure code.
    #[error("the server refused the message: {0:?}")]
    Refused(PubAckReason),
    /// The server answered PUBREL with "packet identifier not found": it
    /// had lost the message's state.
    #[error("the server lost track of the message (packet identifier not found)")]
    NotFound,
    /// The message was not sent: the server's limits changed on a
    /// reconnection (Maximum QoS, Retain Available, Maximum Packet Size).
    #[error("the message no longer fits the server's limits and was not sent")]
    Dropped,
    /// A request got no response in time.
    #[error("no response in time")]
    Timeout,
    /// A topic, filter or string is not valid MQTT.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The client is closed: [`Client::disconnect`](crate::Client::disconnect)
    /// was called, the connection was lost with reconnection off, or the
    /// server refused the credentials.
    #[error("the client is closed")]
    Closed,
}

impl Error {
    /// Whether the server refused the connection, and why.
    pub fn connect_reason(&self) -> Option<ConnectReason> {
        match self {
            Error::Connection(ConnectionError::Refused(r)) => Some(*r),
            _ => None,
        }
    }
}

impl From<mqtt_codec::StringError> for Error {
    fn from(e: mqtt_codec::StringError) -> Error {
        Error::InvalidArgument(e.to_string())
    }
}
