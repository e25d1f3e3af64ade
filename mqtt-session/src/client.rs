//! The client side of a session.

use crate::flow::Flow;
use crate::{
    ConnectionError, Event, InboundAliases, Instant, OutboundAliases, PublishError, RequestId,
    SubscribeError,
    incoming::Incoming,
    keepalive::{ClientKeepAlive, KeepAliveAction},
    outgoing::{Fill, Outcome, Outgoing},
};
use alloc::{collections::BTreeMap, collections::VecDeque, string::String, vec::Vec};
use core::time::Duration;
use mqtt_codec::{
    Auth, BytesMut, ConnAck, Connect, ConnectProperties, DecodeError, Decoder, Disconnect,
    DisconnectReason, Encode, MqttStr, Packet, PacketId, ProtocolVersion, Publish, QoS, SubAck,
    Subscribe, SubscribeProperties, Subscription, TopicFilter, UnsubAck, Unsubscribe,
    UnsubscribeProperties, Will,
};

/// What a client asks for when it connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Client identifier; empty asks an MQTT 5 server to assign one.
    pub client_id: MqttStr,
    /// Clean Start (MQTT 5) / Clean Session (3.1.1) on the first connection.
    /// Reconnections of this session always ask to resume it.
    pub clean_start: bool,
    /// Keep Alive in seconds; 0 turns it off.
    pub keep_alive: u16,
    /// How long to wait for any packet after a PINGREQ before the connection
    /// counts as lost; defaults to the keep-alive interval.
    pub ping_timeout: Option<Duration>,
    /// Will Message.
    pub will: Option<Will>,
    /// User Name.
    pub username: Option<MqttStr>,
    /// Password.
    pub password: Option<mqtt_codec::Bytes>,
    /// MQTT 5 CONNECT properties: Receive Maximum, Maximum Packet Size and
    /// Topic Alias Maximum given here are enforced on what the server sends.
    pub properties: ConnectProperties,
    /// Most messages waiting to be sent (offline, or beyond the server's
    /// Receive Maximum); [`ClientSession::publish`] refuses more.
    pub max_queued: usize,
    /// Give outgoing PUBLISHes topic aliases within the server's Topic Alias
    /// Maximum.
    pub outgoing_topic_aliases: bool,
    /// How long to wait for CONNACK after CONNECT.
    pub connect_timeout: Duration,
    /// When a reconnection finds that the server kept no session, subscribe
    /// again to every filter the server had granted ([`Event::Restored`]
    /// reports the answer).
    pub restore_subscriptions: bool,
    /// Most QoS 1 and 2 messages in flight at once, below the server's
    /// Receive Maximum: the only limit with a 3.1.1 server, which announces
    /// none (mosquitto, for one, refuses a 3.1.1 client past its own
    /// `max_inflight_messages` by closing the connection).
    pub max_in_flight: Option<u16>,
}

impl ClientOptions {
    /// Options for `client_id` with a 60 s keep-alive, clean start and a
    /// queue of 1,000 messages.
    pub fn new(version: ProtocolVersion, client_id: MqttStr) -> ClientOptions {
        ClientOptions {
            version,
            client_id,
            clean_start: true,
            keep_alive: 60,
            ping_timeout: None,
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
            max_queued: 1000,
            outgoing_topic_aliases: false,
            connect_timeout: Duration::from_secs(30),
            restore_subscriptions: true,
            max_in_flight: None,
        }
    }
}

/// What the server announced in CONNACK, and so what the client obeys.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// Highest QoS the server accepts (Maximum QoS; 2 when absent).
    pub maximum_qos: QoS,
    /// Whether retained messages are accepted.
    pub retain_available: bool,
    /// Largest packet the server accepts.
    pub maximum_packet_size: Option<u32>,
    /// The server's Receive Maximum.
    pub receive_maximum: u16,
    /// The server's Topic Alias Maximum.
    pub topic_alias_maximum: u16,
    /// Keep alive in force (the Server Keep Alive if given).
    pub keep_alive: u16,
    /// Whether topic filters with wildcards are accepted.
    pub wildcard_subscriptions: bool,
    /// Whether shared subscriptions (`$share/...`) are accepted.
    pub shared_subscriptions: bool,
    /// Whether Subscription Identifiers are accepted.
    pub subscription_identifiers: bool,
}

impl ServerLimits {
    fn unlimited(keep_alive: u16) -> ServerLimits {
        ServerLimits {
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            maximum_packet_size: None,
            receive_maximum: u16::MAX,
            topic_alias_maximum: 0,
            keep_alive,
            wildcard_subscriptions: true,
            shared_subscriptions: true,
            subscription_identifiers: true,
        }
    }

    fn from_connack(c: &ConnAck, keep_alive: u16) -> ServerLimits {
        let p = &c.properties;
        ServerLimits {
            maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available.unwrap_or(true),
            maximum_packet_size: p.maximum_packet_size.map(|v| v.get()),
            receive_maximum: p.receive_maximum.map_or(u16::MAX, |v| v.get()),
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            keep_alive: p.server_keep_alive.unwrap_or(keep_alive),
            wildcard_subscriptions: p.wildcard_subscription_available.unwrap_or(true),
            shared_subscriptions: p.shared_subscription_available.unwrap_or(true),
            subscription_identifiers: p.subscription_identifier_available.unwrap_or(true),
        }
    }
}

/// Where the client's network connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// No network connection: call [`ClientSession::connect`] once one is open.
    Disconnected,
    /// CONNECT queued or sent; waiting for CONNACK.
    Connecting,
    /// CONNACK accepted the connection.
    Connected,
    /// DISCONNECT queued; close the network connection once it is sent.
    Disconnecting,
}

#[derive(Clone, Debug)]
enum Request {
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    /// Subscriptions renewed after the server lost the session.
    Restore(Subscribe),
}

/// The client side of an MQTT session, without IO.
///
/// Feed it what arrives ([`handle_bytes`](Self::handle_bytes) or
/// [`handle_packet`](Self::handle_packet)) and the time
/// ([`handle_timeout`](Self::handle_timeout)), give it commands
/// ([`publish`](Self::publish), [`subscribe`](Self::subscribe), ...), and
/// drain what it produces: packets to send ([`poll_transmit`](Self::poll_transmit)),
/// events for the application ([`poll_event`](Self::poll_event)) and the next
/// time it needs to be woken ([`poll_timeout`](Self::poll_timeout)).
///
/// The session outlives network connections: after the transport closes,
/// call [`connection_lost`](Self::connection_lost), open a new one and call
/// [`connect`](Self::connect) again; messages in flight are resent.
#[derive(Debug)]
pub struct ClientSession {
    options: ClientOptions,
    state: ConnectionState,
    decoder: Decoder,
    outgoing: Outgoing,
    incoming: Incoming,
    requests: BTreeMap<u16, (RequestId, Request)>,
    queued_requests: VecDeque<(RequestId, Request)>,
    next_request: u64,
    transmit: VecDeque<Packet>,
    events: VecDeque<Event>,
    keep_alive: ClientKeepAlive,
    inbound_aliases: InboundAliases,
    outbound_aliases: OutboundAliases,
    limits: ServerLimits,
    connected_once: bool,
    /// While disconnecting: whether the reason was already reported.
    close_reported: bool,
    /// When the current CONNECT was queued.
    connect_started: Instant,
    /// Filters the server granted, by filter: what a lost session restores.
    granted: BTreeMap<String, (Subscription, SubscribeProperties)>,
}

impl ClientSession {
    /// A session that has not connected yet.
    pub fn new(options: ClientOptions) -> ClientSession {
        let keep_alive = options.keep_alive;
        ClientSession {
            decoder: Decoder::client(options.version),
            outgoing: Outgoing::new(options.max_queued),
            incoming: Incoming::default(),
            requests: BTreeMap::new(),
            queued_requests: VecDeque::new(),
            next_request: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            keep_alive: ClientKeepAlive::new(None, Duration::ZERO, Instant::ZERO),
            inbound_aliases: InboundAliases::new(0),
            outbound_aliases: OutboundAliases::new(0),
            limits: ServerLimits::unlimited(keep_alive),
            connected_once: false,
            close_reported: false,
            connect_started: Instant::ZERO,
            granted: BTreeMap::new(),
            state: ConnectionState::Disconnected,
            options,
        }
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The connection state.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// What the server announced in its last CONNACK.
    pub fn server_limits(&self) -> &ServerLimits {
        &self.limits
    }

    /// Messages in flight (sent, not yet fully acknowledged).
    pub fn in_flight(&self) -> usize {
        self.outgoing.in_flight()
    }

    /// Messages queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.outgoing.pending_len()
    }

    fn next_request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Starts a connection on a freshly opened transport: queues CONNECT.
    /// Does nothing unless the session is disconnected.
    pub fn connect(&mut self, now: Instant) {
        if self.state != ConnectionState::Disconnected {
            return;
        }
        let o = &self.options;
        let connect = Connect {
            version: o.version,
            clean_start: o.clean_start && !self.connected_once,
            keep_alive: o.keep_alive,
            client_id: o.client_id.clone(),
            will: o.will.clone(),
            username: o.username.clone(),
            password: o.password.clone(),
            properties: if o.version.is_v5() {
                o.properties.clone()
            } else {
                ConnectProperties::default()
            },
        };
        // Only a limit this client announced is enforced on what it receives.
        self.decoder =
            Decoder::client(o.version).with_max_packet_size(mqtt_codec::PROTOCOL_MAX_PACKET_SIZE);
        if let Some(max) = o
            .properties
            .maximum_packet_size
            .filter(|_| o.version.is_v5())
        {
            self.decoder.set_max_packet_size(max.get());
        }
        self.inbound_aliases = InboundAliases::new(if o.version.is_v5() {
            o.properties.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        });
        self.outbound_aliases = OutboundAliases::new(0);
        self.transmit.clear();
        self.keep_alive = ClientKeepAlive::new(None, Duration::ZERO, now);
        self.transmit.push_back(connect.into());
        self.state = ConnectionState::Connecting;
        self.connect_started = now;
    }

    /// The transport closed (or failed). Messages in flight stay in the
    /// session and are resent after the next [`connect`](Self::connect).
    pub fn connection_lost(&mut self, _now: Instant) {
        if self.state == ConnectionState::Disconnecting && self.close_reported {
            // The reason was reported when the connection was closed.
            self.state = ConnectionState::Disconnected;
            self.transmit.clear();
            return;
        }
        if self.state == ConnectionState::Disconnected {
            return;
        }
        self.close(ConnectionError::TransportClosed);
    }

    fn close(&mut self, error: ConnectionError) {
        self.state = ConnectionState::Disconnected;
        self.transmit.clear();
        // SUBSCRIBE and UNSUBSCRIBE are not resent by the protocol: ask again.
        let requests = core::mem::take(&mut self.requests);
        for (id, (request, packet)) in requests.into_iter().rev() {
            if let Some(pid) = PacketId::new(id) {
                self.outgoing.ids().release(pid);
            }
            self.queued_requests.push_front((request, packet));
        }
        self.events.push_back(Event::Disconnected(error));
    }

    /// A protocol violation by the server: queue DISCONNECT (MQTT 5) and close.
    fn violation(&mut self, reason: DisconnectReason, detail: &'static str) -> ConnectionError {
        let error = ConnectionError::Protocol { reason, detail };
        let disconnect = (self.options.version.is_v5() && self.state == ConnectionState::Connected)
            .then(|| Packet::from(Disconnect::new(reason)));
        self.close(error.clone());
        if let Some(d) = disconnect {
            self.transmit.push_back(d);
            self.state = ConnectionState::Disconnecting;
            self.close_reported = true;
        }
        error
    }

    /// Decodes and handles every complete packet at the front of `buf`.
    ///
    /// An error means the connection is over: send what
    /// [`poll_transmit`](Self::poll_transmit) still has (a DISCONNECT with
    /// the reason, in MQTT 5), then close the transport.
    pub fn handle_bytes(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
    ) -> Result<(), ConnectionError> {
        loop {
            match self.decoder.decode(buf) {
                Ok(Some(packet)) => self.handle_packet(now, packet)?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.decode_error(e)),
            }
        }
    }

    fn decode_error(&mut self, e: DecodeError) -> ConnectionError {
        let reason = e.disconnect_reason();
        let disconnect = (self.options.version.is_v5() && self.state == ConnectionState::Connected)
            .then(|| Disconnect::new(reason));
        self.close(ConnectionError::Decode(e.clone()));
        if let Some(d) = disconnect {
            self.transmit.push_back(d.into());
            self.state = ConnectionState::Disconnecting;
            self.close_reported = true;
        }
        ConnectionError::Decode(e)
    }

    /// Handles one packet from the server.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) -> Result<(), ConnectionError> {
        let _ = now;
        match self.state {
            ConnectionState::Disconnected | ConnectionState::Disconnecting => return Ok(()),
            ConnectionState::Connecting => {
                return match packet {
                    Packet::ConnAck(c) => self.on_connack(now, *c),
                    Packet::Auth(a) => {
                        self.events.push_back(Event::Auth(a));
                        Ok(())
                    }
                    // [MQTT-3.2.0-1]: CONNACK comes first.
                    _ => {
                        Err(self
                            .violation(DisconnectReason::ProtocolError, "packet before CONNACK"))
                    }
                };
            }
            ConnectionState::Connected => {}
        }
        self.keep_alive.on_received();
        if self.problem_information_refused(&packet) {
            // Section 3.1.2.11.7: with Request Problem Information 0, a
            // Reason String or User Property is allowed only on PUBLISH,
            // CONNACK and DISCONNECT.
            return Err(self.violation(
                DisconnectReason::ProtocolError,
                "reason string or user property not requested",
            ));
        }
        let receive_maximum = self.receive_maximum();
        let packet = match crate::flow::on_packet(
            &mut self.outgoing,
            &mut self.incoming,
            &mut self.inbound_aliases,
            receive_maximum,
            packet,
        ) {
            Flow::Handled {
                send,
                deliver,
                completed,
                ..
            } => {
                self.transmit.extend(send);
                self.events.extend(deliver.map(Event::Message));
                if let Some((request, outcome)) = completed {
                    self.events.push_back(Event::Published { request, outcome });
                }
                return Ok(());
            }
            Flow::Violation(reason, detail) => return Err(self.violation(reason, detail)),
            Flow::Other(packet) => packet,
        };
        match packet {
            Packet::SubAck(s) => self.on_suback(s),
            Packet::UnsubAck(u) => self.on_unsuback(u),
            Packet::PingResp => Ok(()),
            Packet::Disconnect(d) => {
                self.close(ConnectionError::ClosedByPeer(d.reason));
                Ok(())
            }
            Packet::Auth(a) => {
                self.events.push_back(Event::Auth(a));
                Ok(())
            }
            // A second CONNACK, or a packet only clients send (the decoder
            // refuses those already).
            _ => Err(self.violation(DisconnectReason::ProtocolError, "unexpected packet")),
        }
    }

    fn problem_information_refused(&self, packet: &Packet) -> bool {
        if !self.options.version.is_v5()
            || self.options.properties.request_problem_information != Some(false)
        {
            return false;
        }
        let ack = |p: &mqtt_codec::AckProperties| {
            p.reason_string.is_some() || !p.user_properties.is_empty()
        };
        match packet {
            Packet::PubAck(a) => ack(&a.properties),
            Packet::PubRec(a) => ack(&a.properties),
            Packet::PubRel(a) => ack(&a.properties),
            Packet::PubComp(a) => ack(&a.properties),
            Packet::SubAck(a) => ack(&a.properties),
            Packet::UnsubAck(a) => ack(&a.properties),
            Packet::Auth(a) => {
                a.properties.reason_string.is_some() || !a.properties.user_properties.is_empty()
            }
            _ => false,
        }
    }

    fn on_connack(&mut self, now: Instant, c: ConnAck) -> Result<(), ConnectionError> {
        if c.reason.is_error() {
            self.close(ConnectionError::Refused(c.reason));
            return Err(ConnectionError::Refused(c.reason));
        }
        let asked_clean = self.options.clean_start && !self.connected_once;
        if c.session_present && asked_clean {
            // [MQTT-3.2.2-4]: a clean session cannot be present.
            return Err(self.violation(
                DisconnectReason::ProtocolError,
                "session present after clean start",
            ));
        }
        self.limits = if self.options.version.is_v5() {
            ServerLimits::from_connack(&c, self.options.keep_alive)
        } else {
            ServerLimits::unlimited(self.options.keep_alive)
        };
        if let Some(id) = &c.properties.assigned_client_identifier {
            self.options.client_id = id.clone();
        }
        if self.options.outgoing_topic_aliases {
            self.outbound_aliases = OutboundAliases::new(self.limits.topic_alias_maximum);
        }
        let interval = (self.limits.keep_alive > 0)
            .then(|| Duration::from_secs(u64::from(self.limits.keep_alive)));
        let timeout = self
            .options
            .ping_timeout
            .or(interval)
            .unwrap_or(Duration::from_secs(30));
        self.keep_alive =
            ClientKeepAlive::new(interval, timeout, self.keep_alive.last_sent.min(now));
        let window = self
            .limits
            .receive_maximum
            .min(self.options.max_in_flight.unwrap_or(u16::MAX));
        if c.session_present {
            self.outgoing.resume(window);
        } else {
            // The server kept nothing: resend in-flight messages as new ones
            // and forget QoS 2 messages it would release.
            for request in self.outgoing.restart(window) {
                self.events.push_back(Event::Published {
                    request,
                    outcome: Outcome::Delivered(mqtt_codec::PubAckReason::Success),
                });
            }
            self.incoming = Incoming::default();
            if self.connected_once && self.options.restore_subscriptions {
                self.restore_subscriptions();
            }
        }
        self.connected_once = true;
        self.state = ConnectionState::Connected;
        self.events.push_back(Event::Connected(c));
        Ok(())
    }

    /// Bytes a Topic Alias property may add to a PUBLISH when this client
    /// assigns aliases (counted in size checks made before it is added).
    fn alias_slack(&self) -> usize {
        if self.options.outgoing_topic_aliases {
            4
        } else {
            0
        }
    }

    /// The Receive Maximum this client announced (65,535 before MQTT 5).
    fn receive_maximum(&self) -> u16 {
        if self.options.version.is_v5() {
            self.options
                .properties
                .receive_maximum
                .map_or(u16::MAX, |v| v.get())
        } else {
            u16::MAX
        }
    }

    fn on_suback(&mut self, s: SubAck) -> Result<(), ConnectionError> {
        match self.requests.get(&s.packet_id.get()) {
            Some((_, Request::Subscribe(sub) | Request::Restore(sub)))
                if sub.subscriptions.len() == s.reasons.len() => {}
            _ => {
                return Err(self.violation(
                    DisconnectReason::ProtocolError,
                    "SUBACK matching no SUBSCRIBE",
                ));
            }
        }
        if let Some((request, r)) = self.requests.remove(&s.packet_id.get()) {
            self.outgoing.ids().release(s.packet_id);
            let (Request::Subscribe(sub) | Request::Restore(sub)) = &r else {
                return Ok(());
            };
            for (subscription, reason) in sub.subscriptions.iter().zip(&s.reasons) {
                let key = String::from(subscription.filter.as_str());
                if reason.granted_qos().is_some() {
                    self.granted
                        .insert(key, (subscription.clone(), sub.properties.clone()));
                } else {
                    self.granted.remove(&key);
                }
            }
            self.events.push_back(match r {
                Request::Restore(_) => Event::Restored { suback: s },
                _ => Event::Subscribed { request, suback: s },
            });
        }
        Ok(())
    }

    fn on_unsuback(&mut self, u: UnsubAck) -> Result<(), ConnectionError> {
        match self.requests.get(&u.packet_id.get()) {
            Some((_, Request::Unsubscribe(unsub)))
                if !self.options.version.is_v5() || unsub.filters.len() == u.reasons.len() => {}
            _ => {
                return Err(self.violation(
                    DisconnectReason::ProtocolError,
                    "UNSUBACK matching no UNSUBSCRIBE",
                ));
            }
        }
        if let Some((request, r)) = self.requests.remove(&u.packet_id.get()) {
            self.outgoing.ids().release(u.packet_id);
            if let Request::Unsubscribe(unsub) = &r {
                for f in &unsub.filters {
                    self.granted.remove(f.as_str());
                }
            }
            self.events.push_back(Event::Unsubscribed {
                request,
                unsuback: u,
            });
        }
        Ok(())
    }

    /// Queues a message. QoS 1 and 2 messages are sent as the server's
    /// Receive Maximum allows, and resent across reconnections until
    /// acknowledged; [`Event::Published`] reports how each ended.
    ///
    /// Refused at once when the queue is full, or (once connected) when the
    /// server does not accept its QoS, its RETAIN flag or its size.
    pub fn publish(&mut self, publish: Publish) -> Result<RequestId, PublishError> {
        if publish.topic().is_empty()
            && (!self.options.version.is_v5() || publish.properties().topic_alias.is_none())
        {
            return Err(PublishError::EmptyTopic);
        }
        if self.state == ConnectionState::Connected || self.connected_once {
            self.check_publish(&publish)?;
        }
        let request = self.next_request();
        self.outgoing
            .enqueue(request, publish)
            .map_err(PublishError::QueueFull)?;
        Ok(request)
    }

    fn check_publish(&self, p: &Publish) -> Result<(), PublishError> {
        let l = &self.limits;
        if p.topic().is_empty()
            && (!self.options.version.is_v5() || p.properties().topic_alias.is_none())
        {
            return Err(PublishError::EmptyTopic);
        }
        if p.qos() > l.maximum_qos {
            return Err(PublishError::QoSNotSupported {
                maximum: l.maximum_qos,
            });
        }
        if p.retain && !l.retain_available {
            return Err(PublishError::RetainNotSupported);
        }
        if let Some(max) = l.maximum_packet_size {
            let size = p.encoded_len(self.options.version) + self.alias_slack();
            if size > max as usize {
                return Err(PublishError::PacketTooLarge { size, maximum: max });
            }
        }
        Ok(())
    }

    /// Queues a SUBSCRIBE; [`Event::Subscribed`] carries the SUBACK.
    ///
    /// Refused at once when it is empty, or (once connected) when it asks
    /// for what the server said it does not support: wildcards, shared
    /// subscriptions or a Subscription Identifier.
    pub fn subscribe(
        &mut self,
        subscriptions: Vec<Subscription>,
        properties: SubscribeProperties,
    ) -> Result<RequestId, SubscribeError> {
        if subscriptions.is_empty() {
            return Err(SubscribeError::Empty);
        }
        let l = &self.limits;
        if !l.subscription_identifiers && properties.subscription_identifier.is_some() {
            return Err(SubscribeError::SubscriptionIdentifiersNotSupported);
        }
        for s in &subscriptions {
            if !l.shared_subscriptions && s.filter.is_shared() {
                return Err(SubscribeError::SharedSubscriptionsNotSupported);
            }
            if !l.wildcard_subscriptions && s.filter.has_wildcards() {
                return Err(SubscribeError::WildcardSubscriptionsNotSupported);
            }
        }
        let request = self.next_request();
        let sub = Subscribe {
            packet_id: PacketId::MIN,
            subscriptions,
            properties,
        };
        self.queued_requests
            .push_back((request, Request::Subscribe(sub)));
        Ok(request)
    }

    /// Queues an UNSUBSCRIBE; [`Event::Unsubscribed`] carries the UNSUBACK.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<TopicFilter>,
        properties: UnsubscribeProperties,
    ) -> Result<RequestId, SubscribeError> {
        if filters.is_empty() {
            return Err(SubscribeError::Empty);
        }
        let request = self.next_request();
        let unsub = Unsubscribe {
            packet_id: PacketId::MIN,
            filters,
            properties,
        };
        self.queued_requests
            .push_back((request, Request::Unsubscribe(unsub)));
        Ok(request)
    }

    /// Queues an AUTH packet (MQTT 5 enhanced authentication).
    pub fn auth(&mut self, auth: Auth) {
        if !matches!(
            self.state,
            ConnectionState::Connecting | ConnectionState::Connected
        ) {
            return;
        }
        self.transmit.push_back(auth.into());
    }

    /// Ends the connection normally: queues DISCONNECT; close the transport
    /// once [`poll_transmit`](Self::poll_transmit) has returned it. The
    /// session itself stays, to be resumed by a later [`connect`](Self::connect).
    pub fn disconnect(&mut self, disconnect: Disconnect) {
        if self.state != ConnectionState::Connected {
            return;
        }
        // What was published before goes out first.
        self.fill(usize::MAX);
        self.transmit.push_back(disconnect.into());
        self.state = ConnectionState::Disconnecting;
        self.close_reported = false;
    }

    /// Queues SUBSCRIBEs for every granted filter, one per distinct set of
    /// properties (Subscription Identifier), ahead of requests not yet sent.
    fn restore_subscriptions(&mut self) {
        let mut groups: Vec<Subscribe> = Vec::new();
        for (subscription, properties) in self.granted.values() {
            match groups.iter_mut().find(|g| g.properties == *properties) {
                Some(g) => g.subscriptions.push(subscription.clone()),
                None => groups.push(Subscribe {
                    packet_id: PacketId::MIN,
                    subscriptions: alloc::vec![subscription.clone()],
                    properties: properties.clone(),
                }),
            }
        }
        for sub in groups.into_iter().rev() {
            let request = self.next_request();
            self.queued_requests
                .push_front((request, Request::Restore(sub)));
        }
    }

    /// The filters the server granted and has not been asked to remove: what
    /// [`ClientOptions::restore_subscriptions`] subscribes to again.
    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.granted.values().map(|(s, _)| s)
    }

    /// Bytes arrived that are not handled yet (the application paused
    /// reading them): the server is alive, so the keep-alive check does not
    /// declare the connection lost.
    pub fn note_bytes_received(&mut self) {
        if self.state == ConnectionState::Connected {
            self.keep_alive.on_received();
        }
    }

    fn fill(&mut self, max_sends: usize) {
        if self.state != ConnectionState::Connected {
            return;
        }
        while let Some((request, mut r)) = self.queued_requests.pop_front() {
            let Some(id) = self.outgoing.ids().allocate() else {
                self.queued_requests.push_front((request, r));
                break;
            };
            let packet: Packet = match &mut r {
                Request::Subscribe(s) | Request::Restore(s) => {
                    s.packet_id = id;
                    s.clone().into()
                }
                Request::Unsubscribe(u) => {
                    u.packet_id = id;
                    u.clone().into()
                }
            };
            self.requests.insert(id.get(), (request, r));
            self.transmit.push_back(packet);
        }
        let version = self.options.version;
        let slack = self.alias_slack();
        let limits = &self.limits;
        let mut refused = Vec::new();
        let transmit = &mut self.transmit;
        let events = &mut self.events;
        self.outgoing.fill(
            max_sends,
            |f| match f {
                Fill::Send(p) => transmit.push_back(p),
                Fill::Assigned(..) => {}
                Fill::Refused(r) => refused.push(r),
                Fill::SentAtMostOnce(request) => events.push_back(Event::Published {
                    request,
                    outcome: Outcome::Delivered(mqtt_codec::PubAckReason::Success),
                }),
            },
            |p| {
                p.qos() <= limits.maximum_qos
                    && (!p.retain || limits.retain_available)
                    && limits
                        .maximum_packet_size
                        .is_none_or(|max| p.encoded_len(version) + slack <= max as usize)
            },
        );
        for request in refused {
            self.events.push_back(Event::Published {
                request,
                outcome: Outcome::Dropped,
            });
        }
    }

    /// The next packet to send, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Packet> {
        if self.transmit.is_empty() {
            self.fill(1);
        }
        let mut packet = self.transmit.pop_front()?;
        if let Packet::Publish(p) = &mut packet {
            self.outbound_aliases.apply(p);
        }
        crate::fit::fit(
            &mut packet,
            self.options.version,
            self.limits.maximum_packet_size,
        );
        self.keep_alive
            .on_sent(now, matches!(packet, Packet::PingReq));
        if self.state == ConnectionState::Disconnecting && self.transmit.is_empty() {
            match (&packet, self.close_reported) {
                (Packet::Disconnect(d), false) => {
                    self.close(ConnectionError::ClosedLocally(d.reason))
                }
                _ => self.state = ConnectionState::Disconnected,
            }
        }
        Some(packet)
    }

    /// Encodes every packet ready to send into `buf`; returns how many bytes.
    pub fn encode_transmits(&mut self, now: Instant, buf: &mut BytesMut) -> usize {
        let start = buf.len();
        self.encode_transmits_up_to(now, buf, usize::MAX);
        buf.len() - start
    }

    /// Like [`encode_transmits`](Self::encode_transmits), at most `max`
    /// packets; returns how many were encoded (fewer than `max`: nothing
    /// else is ready).
    pub fn encode_transmits_up_to(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        max: usize,
    ) -> usize {
        let mut n = 0;
        while n < max {
            let Some(p) = self.poll_transmit(now) else {
                break;
            };
            // Packets built by the session always encode.
            let _ = p.encode(self.options.version, buf);
            n += 1;
        }
        n
    }

    /// The next event for the application, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ConnectionState::Connecting => {
                Some(self.connect_started + self.options.connect_timeout)
            }
            ConnectionState::Connected => self.keep_alive.next_deadline(),
            _ => None,
        }
    }

    /// Lets time pass: sends PINGREQ when due, and declares the connection
    /// lost when the server stays silent after one.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == ConnectionState::Connecting
            && now >= self.connect_started + self.options.connect_timeout
        {
            self.close(ConnectionError::ConnectTimeout);
            return;
        }
        if self.state != ConnectionState::Connected {
            return;
        }
        match self.keep_alive.on_timeout(now) {
            KeepAliveAction::SendPing => {
                // Counted from now, so a PINGREQ not yet polled is not queued twice.
                self.keep_alive.on_sent(now, true);
                self.transmit.push_back(Packet::PingReq);
            }
            KeepAliveAction::Lost => self.close(ConnectionError::KeepAliveTimeout),
            KeepAliveAction::Nothing => {}
        }
    }
}
