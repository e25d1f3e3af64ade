//! What a client is built from: the broker address, the session options,
//! transport settings and the reconnection policy.

use crate::{Client, Error, Messages};
use bytes::Bytes;
use core::num::{NonZeroU16, NonZeroU32};
use mqtt_codec::{ConnectProperties, MqttStr, ProtocolVersion, UserProperty, Will};
use mqtt_session::ClientOptions;
use mqtt_transport_tcp::{ClientTls, ConnectOptions, ServerAddr};
use mqtt_transport_ws::WsConnectOptions;
use std::time::Duration;

/// When and how fast to reconnect after the connection is lost.
///
/// The delay before attempt `n` (counted from 0 since the last successful
/// connection) is `initial_delay * 2^n`, capped at `max_delay`, of which a
/// random part (`jitter`, 0 to 1) is taken off so that many clients cut off
/// at once do not come back at once.
#[derive(Clone, Debug)]
pub struct Reconnect {
    /// Whether to reconnect at all.
    pub enabled: bool,
    /// Delay before the first attempt after a loss.
    pub initial_delay: Duration,
    /// Largest delay.
    pub max_delay: Duration,
    /// Fraction of each delay chosen at random (0: none, 1: anywhere from 0
    /// to the full delay).
    pub jitter: f64,
}

impl Default for Reconnect {
    /// On, from 100 ms doubling up to 30 s, half of each delay random.
    fn default() -> Self {
        Reconnect {
            enabled: true,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

impl Reconnect {
    /// No reconnection: the client closes when the connection is lost.
    pub fn off() -> Reconnect {
        Reconnect {
            enabled: false,
            ..Reconnect::default()
        }
    }

    /// The delay before attempt `attempt`, given a random number in `0..1`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let base = self
            .initial_delay
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0);
        base.mul_f64(1.0 - jitter)
    }
}

/// Builds a [`Client`].
///
/// ```no_run
/// # async fn demo() -> Result<(), mqtt_client::Error> {
/// use mqtt_client::{ClientBuilder, ProtocolVersion};
/// use std::time::Duration;
///
/// let (client, messages) = ClientBuilder::new("mqtts://broker.example:8883")?
///     .version(ProtocolVersion::V5)
///     .client_id("sensor-17")
///     .clean_start(false)
///     .session_expiry(Duration::from_secs(3600))
///     .keep_alive(Duration::from_secs(30))
///     .credentials("user", "secret")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    pub(crate) addr: ServerAddr,
    pub(crate) session: ClientOptions,
    pub(crate) ws: WsConnectOptions,
    pub(crate) reconnect: Reconnect,
    pub(crate) queue_limit: usize,
    pub(crate) incoming_capacity: usize,
}

impl ClientBuilder {
    /// A builder for the broker at `url`: `mqtt://host[:port]`,
    /// `mqtts://host[:port]`, `ws://host[:port][/path]` or
    /// `wss://host[:port][/path]`.
    ///
    /// Defaults: MQTT 3.1.1, a random client id, clean start, 60 s keep
    /// alive, reconnection on ([`Reconnect::default`]), at most 1,000
    /// messages queued or in flight, 1,000 incoming messages buffered.
    pub fn new(url: &str) -> Result<ClientBuilder, Error> {
        Ok(ClientBuilder::from_addr(ServerAddr::parse(url)?))
    }

    /// A builder for an already parsed address.
    pub fn from_addr(addr: ServerAddr) -> ClientBuilder {
        let id = crate::backoff::random_client_id();
        ClientBuilder {
            addr,
            session: ClientOptions::new(ProtocolVersion::V3_1_1, id),
            ws: WsConnectOptions::default(),
            reconnect: Reconnect::default(),
            queue_limit: 1000,
            incoming_capacity: 1000,
        }
    }

    /// The broker address.
    pub fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    /// Protocol version (3.1.1 by default).
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.session.version = version;
        self
    }

    /// Client identifier. An empty one asks an MQTT 5 server to assign one
    /// (reported in [`ConnectionEvent::Connected`](crate::ConnectionEvent)).
    ///
    /// # Panics
    /// When `id` is not a valid MQTT string (contains U+0000 or is longer
    /// than 65,535 bytes): use [`try_client_id`](Self::try_client_id) for
    /// identifiers that come from outside the program.
    #[allow(clippy::expect_used)] // documented: the caller's own constant
    pub fn client_id(self, id: &str) -> Self {
        self.try_client_id(id).expect("invalid client id")
    }

    /// Client identifier, checked.
    pub fn try_client_id(mut self, id: &str) -> Result<Self, Error> {
        self.session.client_id = mqtt_str(id)?;
        Ok(self)
    }

    /// Clean Start (MQTT 5) / Clean Session (3.1.1) on the first
    /// connection. Reconnections always resume the session.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.session.clean_start = clean;
        self
    }

    /// MQTT 5 Session Expiry Interval: how long the server keeps the session
    /// after the connection closes (whole seconds; `Duration::MAX` for
    /// never). In 3.1.1, a session outlives the connection when
    /// `clean_start` is false.
    pub fn session_expiry(mut self, expiry: Duration) -> Self {
        self.session.properties.session_expiry_interval =
            Some(u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX));
        self
    }

    /// Keep Alive (whole seconds, at most 65,535; zero turns it off).
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.session.keep_alive = u16::try_from(keep_alive.as_secs()).unwrap_or(u16::MAX);
        self
    }

    /// How long to wait for an answer to PINGREQ before the connection
    /// counts as lost (the keep-alive interval by default).
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.session.ping_timeout = Some(timeout);
        self
    }

    /// The Will Message, with its MQTT 5 properties (Will Delay Interval, ...).
    pub fn will(mut self, will: Will) -> Self {
        self.session.will = Some(will);
        self
    }

    /// User name and password.
    ///
    /// # Panics
    /// When `username` is not a valid MQTT string.
    #[allow(clippy::expect_used)] // documented: the caller's own constant
    pub fn credentials(self, username: &str, password: impl Into<Bytes>) -> Self {
        self.try_credentials(username, password)
            .expect("invalid user name")
    }

    /// User name and password, checked.
    pub fn try_credentials(
        mut self,
        username: &str,
        password: impl Into<Bytes>,
    ) -> Result<Self, Error> {
        self.session.username = Some(mqtt_str(username)?);
        self.session.password = Some(password.into());
        Ok(self)
    }

    /// TLS settings for `mqtts://` and `wss://` (trusted roots, client
    /// certificate, server name, ALPN).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.ws.connect.tls = tls;
        self
    }

    /// Limit for opening the transport (DNS, TCP, TLS, WebSocket upgrade).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.ws.connect.timeout = timeout;
        self
    }

    /// How long to wait for CONNACK after sending CONNECT (30 s by default).
    pub fn connack_timeout(mut self, timeout: Duration) -> Self {
        self.session.connect_timeout = timeout;
        self
    }

    /// An extra header on the WebSocket upgrade request (e.g.
    /// `Authorization` or `Cookie`).
    pub fn ws_header(mut self, name: &str, value: &str) -> Self {
        self.ws.headers.push((name.into(), value.into()));
        self
    }

    /// Largest WebSocket message accepted from the server.
    pub fn ws_max_message_size(mut self, size: usize) -> Self {
        self.ws.max_message_size = size;
        self
    }

    /// Every MQTT 5 CONNECT property at once (Session Expiry Interval,
    /// Receive Maximum, Maximum Packet Size, Topic Alias Maximum, Request
    /// Response / Problem Information, User Properties, Authentication
    /// Method and Data). Limits given here are enforced on what the server
    /// sends.
    pub fn connect_properties(mut self, properties: ConnectProperties) -> Self {
        self.session.properties = properties;
        self
    }

    /// The MQTT 5 CONNECT properties, to change one.
    pub fn connect_properties_mut(&mut self) -> &mut ConnectProperties {
        &mut self.session.properties
    }

    /// MQTT 5 Receive Maximum: most QoS 1 and 2 messages the server may
    /// have unacknowledged towards this client.
    pub fn receive_maximum(mut self, max: NonZeroU16) -> Self {
        self.session.properties.receive_maximum = Some(max);
        self
    }

    /// MQTT 5 Maximum Packet Size this client accepts.
    pub fn maximum_packet_size(mut self, max: NonZeroU32) -> Self {
        self.session.properties.maximum_packet_size = Some(max);
        self
    }

    /// MQTT 5 Topic Alias Maximum: how many aliases the server may use
    /// towards this client.
    pub fn topic_alias_maximum(mut self, max: u16) -> Self {
        self.session.properties.topic_alias_maximum = Some(max);
        self
    }

    /// Most QoS 1 and 2 messages in flight at once (the server's Receive
    /// Maximum applies too). Set it for MQTT 3.1.1 servers, which announce
    /// no limit but may enforce one (mosquitto's `max_inflight_messages`,
    /// 20 by default).
    pub fn max_in_flight(mut self, max: u16) -> Self {
        self.session.max_in_flight = Some(max);
        self
    }

    /// Give outgoing messages topic aliases, within the server's Topic Alias
    /// Maximum (MQTT 5).
    pub fn outgoing_topic_aliases(mut self, on: bool) -> Self {
        self.session.outgoing_topic_aliases = on;
        self
    }

    /// Ask for Response Information in CONNACK (MQTT 5), a prefix for
    /// [`Client::requester`] response topics.
    pub fn request_response_information(mut self, on: bool) -> Self {
        self.session.properties.request_response_information = Some(on);
        self
    }

    /// Adds a User Property to CONNECT (MQTT 5).
    ///
    /// # Panics
    /// When `name` or `value` is not a valid MQTT string.
    #[allow(clippy::expect_used)] // documented: the caller's own constant
    pub fn user_property(mut self, name: &str, value: &str) -> Self {
        self.session.properties.user_properties.push(UserProperty {
            name: mqtt_str(name).expect("invalid user property name"),
            value: mqtt_str(value).expect("invalid user property value"),
        });
        self
    }

    /// MQTT 5 enhanced authentication: the method and initial data. The
    /// exchange continues with [`ConnectionEvent::Auth`](crate::ConnectionEvent)
    /// and [`Client::auth`].
    ///
    /// # Panics
    /// When `method` is not a valid MQTT string.
    #[allow(clippy::expect_used)] // documented: the caller's own constant
    pub fn authentication(mut self, method: &str, data: Option<Bytes>) -> Self {
        self.session.properties.authentication_method =
            Some(mqtt_str(method).expect("invalid authentication method"));
        self.session.properties.authentication_data = data;
        self
    }

    /// Reconnection policy.
    pub fn reconnect(mut self, reconnect: Reconnect) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// Most messages queued or in flight at once (at least 1). Past it,
    /// [`Client::publish`] and [`Client::enqueue`] wait for room, and
    /// [`Client::try_enqueue`] fails with [`Error::QueueFull`].
    pub fn queue_limit(mut self, limit: usize) -> Self {
        self.queue_limit = limit.max(1);
        self
    }

    /// Most incoming messages buffered for the application (at least 1).
    /// When [`Messages`] (and every per-subscription stream) is not read
    /// fast enough, the client stops reading from the network: the
    /// broker's flow control, not this process's memory, absorbs the rest.
    pub fn incoming_capacity(mut self, capacity: usize) -> Self {
        self.incoming_capacity = capacity.max(1);
        self
    }

    /// The session options underneath, for anything not covered above.
    pub fn session_options_mut(&mut self) -> &mut ClientOptions {
        &mut self.session
    }

    /// Starts the client without waiting: it connects in the background and
    /// queues what it is given until then. Needs a tokio runtime.
    pub fn start(self) -> (Client, Messages) {
        crate::driver::spawn(self, None)
    }

    /// Starts the client and waits for the first connection. An error means
    /// the first attempt failed (the client is then closed), whatever the
    /// reconnection policy.
    pub async fn connect(self) -> Result<(Client, Messages), Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (client, messages) = crate::driver::spawn(self, Some(tx));
        rx.await.unwrap_or(Err(Error::Closed))?;
        Ok((client, messages))
    }

    pub(crate) fn transport(&self) -> (ServerAddr, WsConnectOptions) {
        (self.addr.clone(), self.ws.clone())
    }

    pub(crate) fn tcp_options(ws: &WsConnectOptions) -> &ConnectOptions {
        &ws.connect
    }
}

fn mqtt_str(s: &str) -> Result<MqttStr, Error> {
    MqttStr::try_from(s).map_err(|e| Error::InvalidArgument(format!("{s:?}: {e}")))
}
