//! Policy hooks: authentication, authorization and message interception.

use mqtt_codec::{Auth, Connect, ConnectReason, ProtocolVersion, Publish, TopicFilter};
use mqtt_transport_tcp::ConnectionInfo;
use std::sync::Arc;

/// Who a connected client is, as the hooks see it.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// Its client identifier (the assigned one, if the server assigned it).
    pub client_id: Arc<str>,
    /// The user it authenticated as ([`AuthState::identity`]), else the
    /// User Name it connected with, if any.
    pub username: Option<Arc<str>>,
    /// The protocol version it speaks.
    pub version: ProtocolVersion,
    /// Its transport, addresses and (for WebSocket) upgrade headers.
    pub connection: Arc<ConnectionInfo>,
}

/// What authentication knows about one connection while it runs: the
/// identity it settled on and whatever a multi-step mechanism (e.g. SCRAM)
/// keeps between rounds. One per connection, given to every
/// authentication call of that connection.
#[derive(Default)]
pub struct AuthState {
    /// The user the client proved to be, if not the CONNECT's User Name:
    /// e.g. from a client certificate, a WebSocket bearer token or a SCRAM
    /// exchange. Authorization then sees this as [`ClientInfo::username`].
    pub identity: Option<Arc<str>>,
    /// Authentication Data for the CONNACK that ends an MQTT 5 enhanced
    /// authentication (e.g. SCRAM's server-final message, by which the
    /// client checks the server).
    pub connack_data: Option<bytes::Bytes>,
    data: Option<Box<dyn std::any::Any + Send>>,
}

impl AuthState {
    /// Keeps a mechanism's data for the next round (replacing any).
    pub fn set<T: Send + 'static>(&mut self, data: T) {
        self.data = Some(Box::new(data));
    }

    /// Takes the mechanism's data back, if it is a `T`.
    pub fn take<T: Send + 'static>(&mut self) -> Option<T> {
        match self.data.take()?.downcast::<T>() {
            Ok(t) => Some(*t),
            Err(other) => {
                self.data = Some(other);
                None
            }
        }
    }
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("identity", &self.identity)
            .field("connack_data", &self.connack_data.is_some())
            .field("data", &self.data.is_some())
            .finish()
    }
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
    /// Decides on a CONNECT, seeing the connection (addresses, TLS client
    /// certificate, WebSocket upgrade headers). The default accepts any
    /// client without an Authentication Method and refuses one with a
    /// method it does not know (0x8C, [MQTT-4.12.0-1]).
    fn authenticate(
        &self,
        connect: &Connect,
        connection: &ConnectionInfo,
        state: &mut AuthState,
    ) -> AuthStep {
        let _ = (connection, state);
        if connect.properties.authentication_method.is_some() {
            AuthStep::Refuse(ConnectReason::BadAuthenticationMethod)
        } else {
            AuthStep::Accept
        }
    }

    /// Whether [`authenticate`](Self::authenticate) and
    /// [`authenticate_continue`](Self::authenticate_continue) do slow work
    /// (e.g. password hashing): the broker then calls them on blocking
    /// threads, a few at a time, instead of on the connection's task.
    fn slow_authentication(&self) -> bool {
        false
    }

    /// Decides on an AUTH packet during enhanced authentication, after
    /// [`authenticate`](Self::authenticate) answered `Continue`; `state`
    /// is what the earlier rounds left.
    fn authenticate_continue(
        &self,
        connect: &Connect,
        auth: &Auth,
        state: &mut AuthState,
    ) -> AuthStep {
        let _ = (connect, auth, state);
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
