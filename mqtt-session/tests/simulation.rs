//! A ClientSession and a ServerSession joined by a simulated link that
//! proptest drives: messages both ways at QoS 1 and 2, partial delivery,
//! connection cuts, and silent stretches long enough for keep-alive to fire.
//! The test plays the broker: it keeps the server's session state across
//! connections and queues messages for the client while it is away.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use core::{num::NonZeroU16, time::Duration};
use mqtt_codec::*;
use mqtt_session::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Debug)]
enum Op {
    /// The client publishes a message to the server.
    Up(QoS),
    /// The broker delivers a message to the client.
    Down(QoS),
    /// Up to n packets cross from client to server.
    C2S(usize),
    /// Up to n packets cross from server to client.
    S2C(usize),
    /// The connection drops; everything on the wire is lost.
    Cut,
    /// The connection drops and the broker also discards the session
    /// (used only where the test allows it).
    CutAndForget,
    /// Time passes with the link silent.
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let qos = prop_oneof![Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)];
    prop_oneof![
        3 => qos.clone().prop_map(Op::Up),
        3 => qos.prop_map(Op::Down),
        4 => (1usize..6).prop_map(Op::C2S),
        4 => (1usize..6).prop_map(Op::S2C),
        1 => Just(Op::Cut),
        1 => (1u64..40).prop_map(Op::Wait),
    ]
}

const KEEP_ALIVE: u16 = 10;

struct Sim {
    version: ProtocolVersion,
    client: ClientSession,
    server: ServerSession,
    server_options: ServerOptions,
    client_receive_max: u16,
    stored: Option<SessionState>,
    c2s: VecDeque<Packet>,
    s2c: VecDeque<Packet>,
    now: Instant,
    next: u64,
    up: BTreeMap<Vec<u8>, (QoS, usize)>,
    down: BTreeMap<Vec<u8>, (QoS, usize)>,
    /// Order of first arrivals, each way.
    up_order: Vec<u64>,
    down_order: Vec<u64>,
    /// Whether the broker ever discarded the session.
    forgot: bool,
}

fn payload(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

fn seq(payload: &[u8]) -> u64 {
    u64::from_be_bytes(payload.try_into().expect("8-byte payload"))
}

fn publish(qos: QoS, payload: Vec<u8>) -> Publish {
    let mut p = Publish::new(TopicName::from_static("sim").unwrap(), payload);
    p.qos_pid = QosPid::new(qos, PacketId::MIN);
    p
}

impl Sim {
    fn new(version: ProtocolVersion, client_receive_max: u16, server_receive_max: u16) -> Sim {
        let mut o = ClientOptions::new(version, "sim".try_into().unwrap());
        o.clean_start = false;
        o.keep_alive = KEEP_ALIVE;
        o.max_queued = 100_000;
        o.properties.receive_maximum = NonZeroU16::new(client_receive_max);
        o.properties.session_expiry_interval = Some(u32::MAX);
        let server_options = ServerOptions {
            receive_maximum: server_receive_max,
            max_queued: 100_000,
            ..Default::default()
        };
        let mut sim = Sim {
            version,
            client: ClientSession::new(o),
            server: ServerSession::new(server_options.clone(), Instant::ZERO),
            server_options,
            client_receive_max: if version.is_v5() {
                client_receive_max
            } else {
                u16::MAX
            },
            stored: None,
            c2s: VecDeque::new(),
            s2c: VecDeque::new(),
            now: Instant::ZERO,
            next: 0,
            up: BTreeMap::new(),
            down: BTreeMap::new(),
            up_order: Vec::new(),
            down_order: Vec::new(),
            forgot: false,
        };
        sim.client.connect(sim.now);
        sim.pump();
        sim
    }

    fn server_receive_max(&self) -> u16 {
        if self.version.is_v5() {
            self.server_options.receive_maximum
        } else {
            u16::MAX
        }
    }

    /// Moves everything both sessions want to send onto the wire and
    /// handles their events, checking the invariants.
    fn pump(&mut self) {
        loop {
            let mut progress = false;
            while let Some(p) = self.client.poll_transmit(self.now) {
                self.c2s.push_back(p);
                progress = true;
            }
            while let Some(p) = self.server.poll_transmit(self.now) {
                self.s2c.push_back(p);
                progress = true;
            }
            while let Some(e) = self.client.poll_event() {
                progress = true;
                match e {
                    Event::Message(m) => {
                        let entry = self.down.get_mut(m.payload()).expect("known message");
                        entry.1 += 1;
                        if entry.1 == 1 {
                            self.down_order.push(seq(m.payload()));
                        }
                    }
                    Event::Disconnected(
                        ConnectionError::Protocol { .. }
                        | ConnectionError::Decode(_)
                        | ConnectionError::Refused(_),
                    ) => panic!("client saw a protocol failure: {e:?}"),
                    _ => {}
                }
            }
            while let Some(e) = self.server.poll_event() {
                progress = true;
                match e {
                    ServerEvent::Connect(_) => {
                        let resume = self.stored.take();
                        self.server.accept(self.now, ConnAck::default(), resume);
                    }
                    ServerEvent::Message(m) => {
                        let entry = self.up.get_mut(m.payload()).expect("known message");
                        entry.1 += 1;
                        if entry.1 == 1 {
                            self.up_order.push(seq(m.payload()));
                        }
                    }
                    ServerEvent::Disconnected(
                        ConnectionError::Protocol { .. }
                        | ConnectionError::Decode(_)
                        | ConnectionError::Refused(_),
                    ) => panic!("server saw a protocol failure: {e:?}"),
                    _ => {}
                }
            }
            if !progress {
                break;
            }
        }
        // [MQTT-4.9.0-2] both ways.
        assert!(self.client.in_flight() <= usize::from(self.server_receive_max()));
        assert!(self.server.in_flight() <= usize::from(self.client_receive_max));
        // A side whose connection ended: the transport closes, the client reconnects.
        if self.server.is_closed() || self.client.state() == ConnectionState::Disconnected {
            self.cut();
        }
    }

    fn cut(&mut self) {
        self.c2s.clear();
        self.s2c.clear();
        self.client.connection_lost(self.now);
        self.server.connection_lost();
        while self.server.poll_event().is_some() {}
        // The broker keeps the session; a restarted server session picks it up.
        let mut state = self.server.session_state();
        if let Some(old) = self.stored.take() {
            // Never accepted since the last cut: keep what was stored.
            if !self.server.connect_received() {
                state = old;
            }
        }
        self.stored = Some(state);
        self.server = ServerSession::new(self.server_options.clone(), self.now);
        while self.client.poll_event().is_some() {}
        self.client.connect(self.now);
        self.pump();
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Up(qos) => {
                self.next += 1;
                let p = payload(self.next);
                self.up.insert(p.clone(), (qos, 0));
                self.client.publish(publish(qos, p)).unwrap();
            }
            Op::Down(qos) => {
                self.next += 1;
                let p = payload(self.next);
                self.down.insert(p.clone(), (qos, 0));
                if self.server.connect_received() && !self.server.is_closed() {
                    self.server.deliver(publish(qos, p)).unwrap();
                } else {
                    // The client is away: the broker queues it in the stored session.
                    self.stored
                        .get_or_insert_with(SessionState::default)
                        .queued
                        .push((RequestId::from_raw(1 << 40 | self.next), publish(qos, p)));
                }
            }
            Op::C2S(n) => {
                for _ in 0..n {
                    let Some(p) = self.c2s.pop_front() else { break };
                    let _ = self.server.handle_packet(self.now, p);
                }
            }
            Op::S2C(n) => {
                for _ in 0..n {
                    let Some(p) = self.s2c.pop_front() else { break };
                    let _ = self.client.handle_packet(self.now, p);
                }
            }
            Op::Cut => self.cut(),
            Op::CutAndForget => {
                self.forgot = true;
                self.cut();
                // The broker discards the session before the client's next CONNECT.
                self.stored = None;
            }
            Op::Wait(secs) => {
                self.now = self.now + Duration::from_secs(secs);
                self.client.handle_timeout(self.now);
                self.server.handle_timeout(self.now);
            }
        }
        self.pump();
    }

    /// A reliable, timely link until nothing moves.
    fn settle(&mut self) {
        for _ in 0..100_000 {
            if self.c2s.is_empty() && self.s2c.is_empty() {
                return;
            }
            self.step(Op::C2S(usize::MAX));
            self.step(Op::S2C(usize::MAX));
        }
        panic!("the link never settled");
    }

    fn check(&self) {
        for (dir, log, order) in [
            ("client to server", &self.up, &self.up_order),
            ("server to client", &self.down, &self.down_order),
        ] {
            for (payload, (qos, n)) in log {
                match qos {
                    QoS::AtLeastOnce => assert!(
                        *n >= 1,
                        "{dir}: QoS 1 message {payload:?} arrived {n} times"
                    ),
                    // Exactly once needs the session; without it, at least once.
                    _ if self.forgot => assert!(
                        *n >= 1,
                        "{dir}: QoS 2 message {payload:?} arrived {n} times"
                    ),
                    _ => assert_eq!(*n, 1, "{dir}: QoS 2 message {payload:?} arrived {n} times"),
                }
            }
            // Section 4.6: messages on a topic arrive in the order they were sent.
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "{dir}: out of order {order:?}"
            );
        }
        assert_eq!(self.client.in_flight() + self.client.queued(), 0);
        assert_eq!(self.server.in_flight(), 0);
    }
}

fn run(version: ProtocolVersion, client_rm: u16, server_rm: u16, ops: Vec<Op>) {
    let mut sim = Sim::new(version, client_rm, server_rm);
    for op in ops {
        sim.step(op);
    }
    // Make sure the client is connected, then let everything settle.
    sim.settle();
    sim.check();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Every QoS 1 message arrives at least once and every QoS 2 message
    /// exactly once, both ways, whatever the cuts; in flight never exceeds
    /// either Receive Maximum; no packet id is reused in flight (the sessions
    /// would report the peer's acks as protocol errors, which fail the test).
    #[test]
    fn qos_guarantees_hold_both_ways_v5(
        client_rm in 1u16..5,
        server_rm in 1u16..5,
        ops in proptest::collection::vec(op(), 0..150),
    ) {
        run(ProtocolVersion::V5, client_rm, server_rm, ops);
    }

    #[test]
    fn qos_guarantees_hold_both_ways_v311(ops in proptest::collection::vec(op(), 0..150)) {
    // 3.1.1 [MQTT-4.3.3-1], [MQTT-4.3.3-2]
        run(ProtocolVersion::V3_1_1, 0, 0, ops);
    }

    /// Reconnecting without session present: in-flight messages are sent
    /// again as new ones, so nothing is lost (at least once) and order holds.
    #[test]
    fn nothing_is_lost_when_the_server_forgets_the_session(
        ops in proptest::collection::vec(
            prop_oneof![
                3 => prop_oneof![Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)].prop_map(Op::Up),
                4 => (1usize..6).prop_map(Op::C2S),
                4 => (1usize..6).prop_map(Op::S2C),
                1 => Just(Op::Cut),
                1 => Just(Op::CutAndForget),
            ],
            0..150,
        ),
    ) {
        run(ProtocolVersion::V5, 3, 3, ops);
    }

    /// A silent link is always noticed: the client within its keep-alive plus
    /// the PINGREQ timeout, the server within 1.5 times the keep-alive.
    #[test]
    fn keep_alive_always_detects_a_silent_peer(keep_alive in 1u16..600, ping_timeout_ms in proptest::option::of(1u64..600_000)) {
        let mut o = ClientOptions::new(ProtocolVersion::V5, "ka".try_into().unwrap());
        o.keep_alive = keep_alive;
        o.ping_timeout = ping_timeout_ms.map(Duration::from_millis);
        let mut client = ClientSession::new(o);
        let mut server = ServerSession::new(ServerOptions::default(), Instant::ZERO);
        let mut now = Instant::ZERO;
        client.connect(now);
        while let Some(p) = client.poll_transmit(now) {
            server.handle_packet(now, p).unwrap();
        }
        if let Some(ServerEvent::Connect(_)) = server.poll_event() {
            server.accept(now, ConnAck::default(), None);
        }
        while let Some(p) = server.poll_transmit(now) {
            client.handle_packet(now, p).unwrap();
        }
        // From here the link drops everything. Drive both by their own deadlines.
        let k = Duration::from_secs(u64::from(keep_alive));
        let (mut client_lost, mut server_lost) = (None, None);
        for _ in 0..100 {
            let next = [client.poll_timeout(), server.poll_timeout()].into_iter().flatten().min();
            let Some(t) = next else { break };
            now = now.max(t);
            client.handle_timeout(now);
            server.handle_timeout(now);
            while client.poll_transmit(now).is_some() {}
            while server.poll_transmit(now).is_some() {}
            if client_lost.is_none() && client.state() == ConnectionState::Disconnected {
                client_lost = Some(now);
            }
            if server_lost.is_none() && server.is_closed() {
                server_lost = Some(now);
            }
        }
        let client_lost = client_lost.expect("the client notices");
        let server_lost = server_lost.expect("the server notices");
        let start = Instant::ZERO;
        let ping_timeout = ping_timeout_ms.map_or(k, Duration::from_millis);
        prop_assert!(client_lost.saturating_duration_since(start) <= k + ping_timeout);
        prop_assert!(server_lost.saturating_duration_since(start) <= k + k / 2);
    }
}
