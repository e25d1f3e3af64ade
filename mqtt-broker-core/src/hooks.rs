//! Policy hooks: authentication, authorization and message interception.

use mqtt_codec::{Auth, Connect, ConnectReason, ProtocolVersion, Publish, TopicFilter};
use mqtt_transport_tcp::ConnectionInfo;
use std::sync::Arc;

/// Who a connected client is, as the hooks see it.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// Its client identifier (the assigned one, if the server assigned it).
    pub client_id: Arc<str>,
    /// The user name it connected with, if any.
    pub username: Option<Arc<str>>,
    /// The protocol version it speaks.
    pub version: ProtocolVersion,
    /// Its transport, addresses and (for WebSocket) upgrade headers.
    pub connection: Arc<ConnectionInfo>,
}

/// The answer to a CONNECT or an AUTH packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthStep {
    /// Let the client in.
    Accept,
    /// Another round of MQTT 5 enhanced authentication: send this AUTH
    /// (reason 0x18 Continue authentication, [MQTT-4.12.0-2]).
    Continue(Auth),
    /// Refuse with this CONNACK reason and close ([MQTT-3.1.4-2]).
    Refuse(ConnectReason),
}

/// The broker's policy. Every method has a default that allows, so an
/// implementation overrides only what it decides. Calls happen on the
/// connection's task and must not block for long.
pub trait Hooks: Send + Sync + 'static {
    /// Decides on a CONNECT. The default accepts any client without an
    /// Authentication Method and refuses one with a method it does not
    /// know (0x8C, [MQTT-4.12.0-1]).
    fn authenticate(&self, connect: &Connect, connection: &ConnectionInfo) -> AuthStep {
        let _ = connection;
        if connect.properties.authentication_method.is_some() {
            AuthStep::Refuse(ConnectReason::BadAuthenticationMethod)
        } else {
            AuthStep::Accept
        }
    }

    /// Decides on an AUTH packet during enhanced authentication, after
    /// [`authenticate`](Self::authenticate) answered `Continue`.
    fn authenticate_continue(&self, connect: &Connect, auth: &Auth) -> AuthStep {
        let _ = (connect, auth);
        AuthStep::Refuse(ConnectReason::BadAuthenticationMethod)
    }

    /// Whether `client` may publish `publish`. A refused message is
    /// acknowledged and dropped.
    fn authorize_publish(&self, client: &ClientInfo, publish: &Publish) -> bool {
        let _ = (client, publish);
        true
    }

    /// Whether `client` may subscribe to `filter` (refused: SUBACK 0x87 in
    /// MQTT 5, 0x80 in 3.1.1). Also asked for each retained message sent
    /// on subscribing, with the message's topic as the filter.
    fn authorize_subscribe(&self, client: &ClientInfo, filter: &TopicFilter) -> bool {
        let _ = (client, filter);
        true
    }

    /// Sees each accepted message before routing: return it (changed or
    /// not) to route it, `None` to drop it.
    fn on_message(&self, client: &ClientInfo, publish: Publish) -> Option<Publish> {
        let _ = client;
        Some(publish)
    }
}

/// Allows everything (MQTT 5 enhanced authentication excepted).
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Hooks for AllowAll {}
