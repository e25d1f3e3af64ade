//! The server side of a session: one per client connection in a broker.

use crate::{
    ConnectionError, InboundAliases, Instant, OutboundAliases, RequestId,
    flow::Flow,
    incoming::Incoming,
    outgoing::{Fill, FlightState, Outcome, Outgoing},
};
use alloc::{boxed::Box, collections::VecDeque, sync::Arc, vec::Vec};
use core::{num::NonZeroU16, num::NonZeroU32, time::Duration};
use mqtt_codec::{
    Auth, BytesMut, ConnAck, Connect, ConnectReason, DecodeError, Decoder, Disconnect,
    DisconnectReason, Encode, Packet, PacketId, ProtocolVersion, PubAckReason, Publish, QoS,
    SubAck, Subscribe, UnsubAck, Unsubscribe,
};

/// What a server announces and enforces on each connection.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Receive Maximum announced (MQTT 5): more QoS 2 messages from the
    /// client awaiting PUBREL is 0x93 Receive Maximum exceeded.
    pub receive_maximum: u16,
    /// Maximum Packet Size announced and enforced (0x95).
    pub maximum_packet_size: u32,
    /// Topic Alias Maximum announced (MQTT 5).
    pub topic_alias_maximum: u16,
    /// Highest QoS accepted; a higher PUBLISH is 0x9B QoS not supported.
    pub maximum_qos: QoS,
    /// Whether retained messages are accepted; otherwise 0x9A.
    pub retain_available: bool,
    /// Keep Alive the server imposes (Server Keep Alive, MQTT 5), if any.
    pub server_keep_alive: Option<u16>,
    /// How long a new connection may take to send CONNECT.
    pub connect_timeout: Option<Duration>,
    /// Most messages queued for the client beyond its Receive Maximum.
    pub max_queued: usize,
    /// Give outgoing PUBLISHes topic aliases within the client's maximum.
    pub outgoing_topic_aliases: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            receive_maximum: 1024,
            maximum_packet_size: mqtt_codec::DEFAULT_MAX_PACKET_SIZE,
            topic_alias_maximum: 64,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            server_keep_alive: None,
            connect_timeout: Some(Duration::from_secs(10)),
            max_queued: 1000,
            outgoing_topic_aliases: false,
        }
    }
}

/// The state of a session that outlives its connections: what a broker
/// stores when a client with a persistent session goes away, and hands back
/// to [`ServerSession::accept`] when it returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    /// Messages sent to the client and not yet acknowledged, in send
    /// order, with their requests.
    pub inflight: Vec<(PacketId, RequestId, FlightState)>,
    /// Messages waiting to be sent to the client, with their requests.
    pub queued: Vec<(RequestId, Publish)>,
    /// QoS 2 messages received from the client and not yet released.
    pub awaiting_release: Vec<PacketId>,
}

/// What a server session reports to the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// A valid CONNECT arrived: answer with [`ServerSession::accept`] or
    /// [`ServerSession::refuse`].
    Connect(Box<Connect>),
    /// An application message from the client (alias resolved, each QoS 2
    /// message once) for the broker to route.
    Message(Publish),
    /// A SUBSCRIBE to answer with [`ServerSession::suback`].
    Subscribe(Subscribe),
    /// An UNSUBSCRIBE to answer with [`ServerSession::unsuback`].
    Unsubscribe(Unsubscribe),
    /// A QoS 2 message given to [`ServerSession::deliver`] got its packet
    /// identifier and is about to be sent for the first time. A broker
    /// that stores messages records the identifier before writing the
    /// packet, so that after a restart it resends the message under the
    /// same one, by which a QoS 2 receiver recognises a message it has.
    Assigned {
        /// The handle `deliver` returned.
        request: RequestId,
        /// Its packet identifier.
        packet_id: PacketId,
    },
    /// The client acknowledged receipt of a QoS 2 message (PUBREC with
    /// success); the PUBREL is queued. A broker that stores messages
    /// records this before writing the PUBREL, so that after a restart it
    /// resends the PUBREL, not the message.
    Received {
        /// The handle `deliver` returned.
        request: RequestId,
        /// Its packet identifier.
        packet_id: PacketId,
    },
    /// The client released a QoS 2 message it had sent (PUBREL); the
    /// PUBCOMP is queued. A broker that stores the identifiers awaiting
    /// release forgets this one before writing the PUBCOMP.
    Released {
        /// The message's packet identifier.
        packet_id: PacketId,
    },
    /// A message given to [`ServerSession::deliver`] ended.
    Delivered {
        /// The handle `deliver` returned.
        request: RequestId,
        /// How it ended.
        outcome: Outcome,
    },
    /// An AUTH packet arrived (MQTT 5 enhanced authentication).
    Auth(Auth),
    /// The connection is over. A DISCONNECT with reason 0x00 from the client
    /// means its Will must not be published.
    Disconnected(ConnectionError),
}

/// Why [`ServerSession::deliver`] did not take a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    /// Larger than the client's Maximum Packet Size: the spec says to drop
    /// it for this client ([MQTT-3.1.2-25]).
    #[error("larger than the client's maximum packet size")]
    TooLarge,
    /// The client's queue is full.
    #[error("queue full")]
    QueueFull(Publish),
    /// An empty topic name without a Topic Alias cannot be sent.
    #[error("empty topic name without a topic alias")]
    EmptyTopic,
}

/// The limits a server enforces on a connection: those its CONNACK announced.
#[derive(Clone, Copy, Debug)]
struct Enforced {
    receive_maximum: u16,
    maximum_qos: QoS,
    retain_available: bool,
}

impl Default for Enforced {
    fn default() -> Self {
        Enforced {
            receive_maximum: u16::MAX,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitingConnect,
    AwaitingDecision,
    Connected,
    Closing,
    Closed,
}

/// The server side of an MQTT session for one network connection, without IO.
///
/// Same shape as [`ClientSession`](crate::ClientSession): feed bytes or
/// packets and time in, poll packets, [`ServerEvent`]s and deadlines out.
#[derive(Debug)]
pub struct ServerSession {
    /// Shared by every session made from the same options.
    options: Arc<ServerOptions>,
    state: State,
    version: ProtocolVersion,
    decoder: Decoder,
    /// What the session needs of the CONNECT (the packet itself goes to
    /// the application in [`ServerEvent::Connect`]).
    connect: Option<ConnectTerms>,
    /// What the client sent before CONNACK (rare; boxed when any).
    #[allow(clippy::box_collection)] // (a pointer when empty)
    early: Option<Box<VecDeque<Packet>>>,
    outgoing: Outgoing,
    incoming: Incoming,
    transmit: VecDeque<Packet>,
    events: VecDeque<ServerEvent>,
    inbound_aliases: InboundAliases,
    outbound_aliases: OutboundAliases,
    client_max_packet: Option<u32>,
    /// What the final CONNACK announced, and so what is enforced.
    enforced: Enforced,
    /// The Keep Alive in force, in seconds (0: none).
    keep_alive: u16,
    last_received: Instant,
    created: Instant,
    next_request: u64,
    /// Session Expiry Interval the client's DISCONNECT set (MQTT 5).
    disconnect_expiry: Option<u32>,
}

/// Queues an event, unless it is about a [`RequestId::UNTRACKED`] message.
fn report(events: &mut VecDeque<ServerEvent>, event: ServerEvent) {
    let untracked = matches!(
        event,
        ServerEvent::Assigned { request, .. }
            | ServerEvent::Received { request, .. }
            | ServerEvent::Delivered { request, .. }
            if request == RequestId::UNTRACKED
    );
    if !untracked {
        events.push_back(event);
    }
}

/// What a [`ServerSession`] keeps of the CONNECT.
#[derive(Clone, Copy, Debug)]
struct ConnectTerms {
    clean_start: bool,
    keep_alive: u16,
    /// A non-zero Session Expiry Interval was asked for.
    session_expiry: bool,
    topic_alias_maximum: Option<u16>,
    maximum_packet_size: Option<NonZeroU32>,
    receive_maximum: Option<NonZeroU16>,
}

impl ConnectTerms {
    fn of(c: &Connect) -> ConnectTerms {
        let p = &c.properties;
        ConnectTerms {
            clean_start: c.clean_start,
            keep_alive: c.keep_alive,
            session_expiry: p.session_expiry_interval.unwrap_or(0) != 0,
            topic_alias_maximum: p.topic_alias_maximum,
            maximum_packet_size: p.maximum_packet_size,
            receive_maximum: p.receive_maximum,
        }
    }
}

impl ServerSession {
    /// A session for a connection accepted at `now`. A server makes every
    /// session from one `Arc<ServerOptions>` (a `ServerOptions` is taken
    /// too): each keeps a pointer, not a copy.
    pub fn new(options: impl Into<Arc<ServerOptions>>, now: Instant) -> ServerSession {
        let options = options.into();
        ServerSession {
            decoder: Decoder::server().with_max_packet_size(options.maximum_packet_size),
            outgoing: Outgoing::new(options.max_queued),
            options,
            state: State::AwaitingConnect,
            version: ProtocolVersion::V3_1_1,
            connect: None,
            early: None,
            incoming: Incoming::default(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            inbound_aliases: InboundAliases::new(0),
            outbound_aliases: OutboundAliases::new(0),
            client_max_packet: None,
            enforced: Enforced::default(),
            keep_alive: 0,
            last_received: now,
            created: now,
            next_request: 0,
            disconnect_expiry: None,
        }
    }

    /// The protocol version (known once CONNECT arrived).
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Whether the client's CONNECT arrived.
    pub fn connect_received(&self) -> bool {
        self.connect.is_some()
    }

    /// Whether the connection is over (close the transport once
    /// [`poll_transmit`](Self::poll_transmit) returns `None`).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Gives back the memory of internal queues that are empty (a busy
    /// connection's high-water marks): for a connection gone idle, so that
    /// many idle connections cost little.
    pub fn shrink_buffers(&mut self) {
        fn shrink<T>(q: &mut VecDeque<T>) {
            if q.is_empty() {
                q.shrink_to_fit();
            }
        }
        shrink(&mut self.transmit);
        shrink(&mut self.events);
        self.outgoing.shrink_buffers();
    }

    /// Messages sent to the client and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.outgoing.in_flight()
    }

    /// How many more messages [`deliver`](Self::deliver) takes before its
    /// queue is full ([`DeliverError::QueueFull`]).
    pub fn queue_space(&self) -> usize {
        self.outgoing.space()
    }

    fn next_request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn close(
        &mut self,
        error: ConnectionError,
        disconnect: Option<DisconnectReason>,
    ) -> ConnectionError {
        // MQTT 5: a DISCONNECT only after a successful CONNACK ([MQTT-3.14.0-1]).
        let send = self.version.is_v5() && self.state == State::Connected;
        // Keep a CONNACK not yet sent: it must precede the DISCONNECT
        // ([MQTT-3.2.0-1], [MQTT-3.14.0-1]).
        self.transmit.retain(|p| matches!(p, Packet::ConnAck(_)));
        match disconnect {
            Some(reason) if send => {
                self.transmit.push_back(Disconnect::new(reason).into());
                self.state = State::Closing;
            }
            _ => self.state = State::Closed,
        }
        self.events
            .push_back(ServerEvent::Disconnected(error.clone()));
        error
    }

    fn violation(&mut self, reason: DisconnectReason, detail: &'static str) -> ConnectionError {
        self.close(ConnectionError::Protocol { reason, detail }, Some(reason))
    }

    /// Decodes and handles every complete packet at the front of `buf`. An
    /// error ends the connection (send what `poll_transmit` still has, then close).
    pub fn handle_bytes(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
    ) -> Result<(), ConnectionError> {
        while self.handle_one(now, buf)? {}
        Ok(())
    }

    /// Decodes and handles the first complete packet at the front of `buf`,
    /// if there is one; returns whether it handled one. A broker that must
    /// react between packets (e.g. to pause a publisher whose subscribers
    /// are behind) feeds its input this way and polls events in between.
    pub fn handle_one(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
    ) -> Result<bool, ConnectionError> {
        if matches!(self.state, State::Closing | State::Closed) {
            return Ok(false);
        }
        // [MQTT-3.1.0-1]: judge the first packet by its first byte, so
        // that a peer speaking something else is closed at once rather
        // than waited for until the connect timeout.
        if self.state == State::AwaitingConnect && buf.first().is_some_and(|&b| b != 0x10) {
            return Err(self.close(
                ConnectionError::Protocol {
                    reason: DisconnectReason::ProtocolError,
                    detail: "first packet is not CONNECT",
                },
                None,
            ));
        }
        match self.decoder.decode(buf) {
            Ok(Some(p)) => self.handle_packet(now, p).map(|()| true),
            Ok(None) => Ok(false),
            Err(e) => Err(self.decode_error(e)),
        }
    }

    fn decode_error(&mut self, e: DecodeError) -> ConnectionError {
        if self.state == State::AwaitingConnect {
            // [MQTT-3.1.4-1], [MQTT-3.1.2-2]: refuse a bad CONNECT, with
            // CONNACK when the version is known.
            if let DecodeError::UnsupportedProtocol { .. } = e {
                self.transmit
                    .push_back(ConnAck::new(ConnectReason::UnsupportedProtocolVersion).into());
                self.state = State::Closing;
                self.events
                    .push_back(ServerEvent::Disconnected(ConnectionError::Decode(
                        e.clone(),
                    )));
                return ConnectionError::Decode(e);
            }
        }
        let reason = e.disconnect_reason();
        self.close(ConnectionError::Decode(e), Some(reason))
    }

    /// Handles one packet from the client.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet) -> Result<(), ConnectionError> {
        self.last_received = now;
        match self.state {
            State::Closing | State::Closed => Ok(()),
            State::AwaitingConnect => match packet {
                Packet::Connect(c) => {
                    self.version = c.version;
                    // Also when the CONNECT came as a packet rather than bytes.
                    self.decoder.set_version(c.version);
                    self.connect = Some(ConnectTerms::of(&c));
                    self.state = State::AwaitingDecision;
                    self.events.push_back(ServerEvent::Connect(c));
                    Ok(())
                }
                // [MQTT-3.1.0-1]
                _ => Err(self.close(
                    ConnectionError::Protocol {
                        reason: DisconnectReason::ProtocolError,
                        detail: "first packet is not CONNECT",
                    },
                    None,
                )),
            },
            State::AwaitingDecision => {
                // Enhanced authentication happens before CONNACK (section 4.12).
                if let Packet::Auth(a) = packet {
                    self.events.push_back(ServerEvent::Auth(a));
                    return Ok(());
                }
                // A client may send before CONNACK; keep it (bounded) until then.
                if matches!(packet, Packet::Connect(_))
                    || self.early.as_ref().map_or(0, |e| e.len()) >= self.options.max_queued
                {
                    return Err(
                        self.violation(DisconnectReason::ProtocolError, "packets before CONNACK")
                    );
                }
                self.early.get_or_insert_default().push_back(packet);
                Ok(())
            }
            State::Connected => self.on_packet(packet),
        }
    }

    fn on_packet(&mut self, packet: Packet) -> Result<(), ConnectionError> {
        if let Packet::Publish(p) = &packet {
            if p.qos() > self.enforced.maximum_qos {
                // [MQTT-3.2.2-11]: above the Maximum QoS announced.
                return Err(
                    self.violation(DisconnectReason::QoSNotSupported, "QoS above the maximum")
                );
            }
            if p.retain && !self.enforced.retain_available {
                // [MQTT-3.2.2-14]: RETAIN while Retain Available is 0.
                return Err(
                    self.violation(DisconnectReason::RetainNotSupported, "retain not available")
                );
            }
        }
        let receive_maximum = self.enforced.receive_maximum;
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
                received,
                released,
            } => {
                self.transmit.extend(send);
                self.events.extend(deliver.map(ServerEvent::Message));
                if let Some((request, packet_id)) = received {
                    report(
                        &mut self.events,
                        ServerEvent::Received { request, packet_id },
                    );
                }
                if let Some(packet_id) = released {
                    self.events.push_back(ServerEvent::Released { packet_id });
                }
                if let Some((request, outcome)) = completed {
                    report(
                        &mut self.events,
                        ServerEvent::Delivered { request, outcome },
                    );
                }
                return Ok(());
            }
            Flow::Violation(reason, detail) => return Err(self.violation(reason, detail)),
            Flow::Other(packet) => packet,
        };
        match packet {
            Packet::Subscribe(s) => {
                self.events.push_back(ServerEvent::Subscribe(s));
                Ok(())
            }
            Packet::Unsubscribe(u) => {
                self.events.push_back(ServerEvent::Unsubscribe(u));
                Ok(())
            }
            // [MQTT-3.12.4-1]
            Packet::PingReq => {
                self.transmit.push_back(Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(d) => {
                let asked_zero = self.connect.as_ref().is_none_or(|c| !c.session_expiry);
                if asked_zero && d.properties.session_expiry_interval.is_some_and(|v| v != 0) {
                    // Section 3.14.2.2.2: a Session Expiry of 0 at CONNECT cannot become non-zero.
                    return Err(self.violation(
                        DisconnectReason::ProtocolError,
                        "session expiry raised at DISCONNECT",
                    ));
                }
                self.disconnect_expiry = d.properties.session_expiry_interval;
                self.state = State::Closed;
                self.events
                    .push_back(ServerEvent::Disconnected(ConnectionError::ClosedByPeer(
                        d.reason,
                    )));
                Ok(())
            }
            Packet::Auth(a) => {
                self.events.push_back(ServerEvent::Auth(a));
                Ok(())
            }
            // [MQTT-3.1.0-2]: a second CONNECT.
            _ => Err(self.violation(DisconnectReason::ProtocolError, "unexpected packet")),
        }
    }

    /// Accepts the connection: sends CONNACK carrying what
    /// [`ServerOptions`] announces (fields the caller set in `connack` win),
    /// and, when `resume` holds stored session state, Session Present and
    /// the resending of what was in flight.
    pub fn accept(&mut self, now: Instant, mut connack: ConnAck, resume: Option<SessionState>) {
        if self.state != State::AwaitingDecision {
            return;
        }
        let Some(connect) = self.connect else {
            return;
        };
        let v5 = self.version.is_v5();
        let o = &self.options;
        connack.reason = ConnectReason::Success;
        // [MQTT-3.1.2-4]: Clean Start discards any stored session
        // ([MQTT-3.2.2-2]: and Session Present is then 0).
        let resume = if connect.clean_start { None } else { resume };
        connack.session_present = resume.is_some();
        if v5 {
            let p = &mut connack.properties;
            p.receive_maximum = p
                .receive_maximum
                .or(NonZeroU16::new(o.receive_maximum.max(1)));
            p.maximum_packet_size = p
                .maximum_packet_size
                .or(NonZeroU32::new(o.maximum_packet_size));
            p.topic_alias_maximum = p.topic_alias_maximum.or(Some(o.topic_alias_maximum));
            if o.maximum_qos < QoS::ExactlyOnce {
                p.maximum_qos = p.maximum_qos.or(Some(o.maximum_qos));
            }
            if !o.retain_available {
                p.retain_available = Some(false);
            }
            p.server_keep_alive = p.server_keep_alive.or(o.server_keep_alive);
        }
        let keep_alive = connack
            .properties
            .server_keep_alive
            .filter(|_| v5)
            .unwrap_or(connect.keep_alive);
        self.keep_alive = keep_alive;
        self.last_received = now;
        // Enforce exactly what the CONNACK announces.
        let ap = &connack.properties;
        self.enforced = if v5 {
            Enforced {
                receive_maximum: ap.receive_maximum.map_or(u16::MAX, NonZeroU16::get),
                maximum_qos: ap.maximum_qos.unwrap_or(QoS::ExactlyOnce),
                retain_available: ap.retain_available.unwrap_or(true),
            }
        } else {
            Enforced {
                maximum_qos: o.maximum_qos,
                retain_available: o.retain_available,
                ..Enforced::default()
            }
        };
        if let Some(max) = ap.maximum_packet_size.filter(|_| v5) {
            self.decoder.set_max_packet_size(max.get());
        }
        let alias_max = if v5 {
            ap.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        };
        self.inbound_aliases = InboundAliases::new(alias_max);
        self.outbound_aliases = OutboundAliases::new(if v5 && o.outgoing_topic_aliases {
            connect.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        });
        self.client_max_packet = connect
            .maximum_packet_size
            .filter(|_| v5)
            .map(NonZeroU32::get);
        let receive_maximum = connect
            .receive_maximum
            .filter(|_| v5)
            .map_or(u16::MAX, NonZeroU16::get);
        self.transmit.push_back(connack.into());
        self.state = State::Connected;
        if let Some(state) = resume {
            self.incoming.awaiting_rel = state.awaiting_release.iter().map(|id| id.get()).collect();
            // Requests numbered after the restored ones.
            let highest = state
                .inflight
                .iter()
                .map(|(_, r, _)| *r)
                .chain(state.queued.iter().map(|(r, _)| *r))
                .filter(|&r| r != RequestId::UNTRACKED)
                .map(|r| r.0)
                .max()
                .unwrap_or(0);
            self.next_request = self.next_request.max(highest);
            self.outgoing.restore(state.inflight, state.queued);
        }
        // [MQTT-4.4.0-1]: resend what was in flight, in order.
        self.outgoing.resume(receive_maximum);
        for p in self.early.take().into_iter().flat_map(|e| *e) {
            if self.on_packet(p).is_err() {
                break;
            }
        }
    }

    /// Refuses the connection with `reason` (mapped to a 3.1.1 return code
    /// when needed) and closes it ([MQTT-3.2.2-7]).
    pub fn refuse(&mut self, reason: ConnectReason) {
        if self.state != State::AwaitingDecision {
            return;
        }
        let reason = if reason.is_error() {
            reason
        } else {
            ConnectReason::UnspecifiedError
        };
        self.transmit.push_back(ConnAck::new(reason).into());
        self.state = State::Closing;
        self.events
            .push_back(ServerEvent::Disconnected(ConnectionError::Refused(reason)));
    }

    /// Queues a message for the client; the session gives it a packet id,
    /// keeps to the client's Receive Maximum and resends it on a resumed
    /// session. [`ServerEvent::Delivered`] reports the end of QoS 1 and 2 flows.
    pub fn deliver(&mut self, publish: Publish) -> Result<RequestId, DeliverError> {
        let request = self.next_request();
        self.deliver_as(publish, request)?;
        Ok(request)
    }

    /// [`deliver`](Self::deliver) under the caller's own request handle
    /// (e.g. a storage key, see [`RequestId::from_raw`]); the caller keeps
    /// its handles unique and does not mix them with `deliver`'s.
    pub fn deliver_as(&mut self, publish: Publish, request: RequestId) -> Result<(), DeliverError> {
        if publish.topic().is_empty()
            && (!self.version.is_v5() || publish.properties().topic_alias.is_none())
        {
            return Err(DeliverError::EmptyTopic);
        }
        if self
            .client_max_packet
            .is_some_and(|max| publish.encoded_len(self.version) > max as usize)
        {
            return Err(DeliverError::TooLarge);
        }
        self.outgoing
            .enqueue(request, publish)
            .map_err(DeliverError::QueueFull)
    }

    /// Refuses a message just received, as reported by
    /// [`ServerEvent::Message`] and before the next
    /// [`poll_transmit`](Self::poll_transmit): its PUBACK or PUBREC, still
    /// queued, carries `reason` (an error code, e.g. 0x87 Not authorized)
    /// instead of success, and a refused QoS 2 message's flow ends with
    /// that PUBREC. MQTT 3.1.1 has no reason codes: there the message stays
    /// acknowledged (and the broker drops it). Returns whether an
    /// acknowledgement was changed.
    pub fn refuse_message(&mut self, packet_id: PacketId, reason: PubAckReason) -> bool {
        if !self.version.is_v5() || !reason.is_error() {
            return false;
        }
        for packet in self.transmit.iter_mut().rev() {
            match packet {
                Packet::PubAck(a) if a.packet_id == packet_id => {
                    a.reason = reason;
                    return true;
                }
                Packet::PubRec(r) if r.packet_id == packet_id => {
                    r.reason = reason;
                    self.incoming.awaiting_rel.remove(&packet_id.get());
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Answers a SUBSCRIBE.
    pub fn suback(&mut self, suback: SubAck) {
        if self.state != State::Connected {
            return;
        }
        self.transmit.push_back(suback.into());
    }

    /// Answers an UNSUBSCRIBE.
    pub fn unsuback(&mut self, unsuback: UnsubAck) {
        if self.state != State::Connected {
            return;
        }
        self.transmit.push_back(unsuback.into());
    }

    /// Sends an AUTH packet (MQTT 5 enhanced authentication).
    pub fn auth(&mut self, auth: Auth) {
        if !matches!(self.state, State::Connected | State::AwaitingDecision) {
            return;
        }
        self.transmit.push_back(auth.into());
    }

    /// Ends the connection from the server's side (e.g. 0x8B Server
    /// shutting down, 0x8E Session taken over): DISCONNECT in MQTT 5, a
    /// plain close in 3.1.1.
    pub fn disconnect(&mut self, reason: DisconnectReason) {
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        self.close(ConnectionError::ClosedLocally(reason), Some(reason));
    }

    /// The transport closed.
    pub fn connection_lost(&mut self) {
        // After Closing the reason was reported already.
        if !matches!(self.state, State::Closed | State::Closing) {
            self.events
                .push_back(ServerEvent::Disconnected(ConnectionError::TransportClosed));
        }
        self.state = State::Closed;
    }

    /// What to store for this client's session: messages in flight and
    /// queued, and QoS 2 messages awaiting release.
    pub fn session_state(&self) -> SessionState {
        let (inflight, queued) = self.outgoing.snapshot();
        SessionState {
            inflight,
            queued,
            awaiting_release: self
                .incoming
                .awaiting_rel
                .iter()
                .filter_map(|&id| PacketId::new(id))
                .collect(),
        }
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Packet> {
        if self.transmit.is_empty() && self.state == State::Connected {
            let version = self.version;
            let max = self.client_max_packet;
            let transmit = &mut self.transmit;
            let events = &mut self.events;
            self.outgoing.fill(
                1,
                |f| match f {
                    Fill::Send(p) => transmit.push_back(p),
                    Fill::Refused(request) => report(
                        events,
                        ServerEvent::Delivered {
                            request,
                            outcome: Outcome::Dropped,
                        },
                    ),
                    Fill::SentAtMostOnce(request) => report(
                        events,
                        ServerEvent::Delivered {
                            request,
                            outcome: Outcome::Delivered(mqtt_codec::PubAckReason::Success),
                        },
                    ),
                    Fill::Assigned(request, packet_id) => {
                        report(events, ServerEvent::Assigned { request, packet_id })
                    }
                },
                |p| max.is_none_or(|m| p.encoded_len(version) <= m as usize),
            );
        }
        let mut packet = self.transmit.pop_front()?;
        if let Packet::Publish(p) = &mut packet {
            self.outbound_aliases.apply(p);
        }
        crate::fit::fit(&mut packet, self.version, self.client_max_packet);
        if self.state == State::Closing && self.transmit.is_empty() {
            self.state = State::Closed;
        }
        Some(packet)
    }

    /// Encodes every packet ready to send into `buf`; returns how many bytes.
    pub fn encode_transmits(&mut self, now: Instant, buf: &mut BytesMut) -> usize {
        let start = buf.len();
        while let Some(p) = self.poll_transmit(now) {
            let _ = p.encode(self.version, buf);
        }
        buf.len() - start
    }

    /// The Session Expiry Interval the client's DISCONNECT carried, which
    /// replaces the one from CONNECT (section 3.14.2.2.2).
    pub fn disconnect_session_expiry(&self) -> Option<u32> {
        self.disconnect_expiry
    }

    /// The next event for the broker.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitingConnect => self.options.connect_timeout.map(|t| self.created + t),
            // [MQTT-3.1.2-22] (3.1.1 [MQTT-3.1.2-24]): one and a half times the Keep Alive.
            State::Connected => (self.keep_alive > 0).then(|| {
                let k = Duration::from_secs(u64::from(self.keep_alive));
                self.last_received + k + k / 2
            }),
            _ => None,
        }
    }

    /// Lets time pass: closes connections that never sent CONNECT or went silent.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            State::AwaitingConnect => {
                self.close(ConnectionError::ConnectTimeout, None);
            }
            State::Connected => {
                self.close(
                    ConnectionError::KeepAliveTimeout,
                    Some(DisconnectReason::KeepAliveTimeout),
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A server keeps a session per connection, most of them idle: the
    /// queues, alias maps and options it needs only sometimes are boxed or
    /// shared.
    #[test]
    fn an_idle_session_stays_small() {
        let size = core::mem::size_of::<ServerSession>();
        assert!(size <= 256, "ServerSession grew to {size} B");
    }
}
