//! ClientSession against a model server over a lossy link, driven by
//! proptest: random publishes, partial delivery each way and connection cuts,
//! then a quiet period. Invariants are checked at every step and at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_codec::*;
use mqtt_session::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Clone, Debug)]
enum Op {
    Publish(QoS),
    /// The server reads up to n packets the client sent.
    ToServer(usize),
    /// The client reads up to n packets the server sent.
    ToClient(usize),
    /// The connection drops; packets on the wire are lost; the client reconnects.
    Cut,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop_oneof![Just(QoS::AtLeastOnce), Just(QoS::ExactlyOnce)].prop_map(Op::Publish),
        3 => (1usize..6).prop_map(Op::ToServer),
        3 => (1usize..6).prop_map(Op::ToClient),
        1 => Just(Op::Cut),
    ]
}

/// A server that keeps the session across connections: QoS 2 ids awaiting
/// PUBREL survive a cut, and every message it takes ownership of is counted.
struct Server {
    version: ProtocolVersion,
    receive_maximum: u16,
    awaiting_rel: BTreeSet<u16>,
    delivered: BTreeMap<Vec<u8>, usize>,
}

impl Server {
    fn handle(&mut self, p: Packet, out: &mut VecDeque<Packet>) {
        match p {
            Packet::Connect(_) => {
                let mut ack = ConnAck::new(ConnectReason::Success);
                ack.session_present = true;
                if self.version.is_v5() {
                    ack.properties.receive_maximum =
                        std::num::NonZeroU16::new(self.receive_maximum);
                }
                out.push_back(ack.into());
            }
            Packet::Publish(p) => match p.qos_pid {
                QosPid::AtLeastOnce(id) => {
                    *self.delivered.entry(p.payload().to_vec()).or_default() += 1;
                    out.push_back(PubAck::new(id).into());
                }
                QosPid::ExactlyOnce(id) => {
                    if self.awaiting_rel.insert(id.get()) {
                        *self.delivered.entry(p.payload().to_vec()).or_default() += 1;
                    }
                    assert!(
                        self.awaiting_rel.len() <= usize::from(self.receive_maximum),
                        "[MQTT-4.9.0-2] more QoS 2 messages in flight than the Receive Maximum"
                    );
                    out.push_back(PubRec::new(id).into());
                }
                QosPid::AtMostOnce => {}
            },
            Packet::PubRel(r) => {
                let mut comp = PubComp::new(r.packet_id);
                if !self.awaiting_rel.remove(&r.packet_id.get()) && self.version.is_v5() {
                    comp.reason = PubRelReason::PacketIdentifierNotFound;
                }
                out.push_back(comp.into());
            }
            Packet::Disconnect(_) | Packet::PingReq => {}
            p => panic!("unexpected packet from the client: {p:?}"),
        }
    }
}

struct World {
    client: ClientSession,
    server: Server,
    to_server: VecDeque<Packet>,
    to_client: VecDeque<Packet>,
    now: Instant,
    /// Packet ids of PUBLISHes the client sent that are not yet completed.
    outstanding: BTreeSet<u16>,
    requests: BTreeMap<RequestId, (QoS, Vec<u8>)>,
    completed: BTreeMap<RequestId, usize>,
    next_payload: u64,
}

impl World {
    fn pump_client_output(&mut self) {
        while let Some(p) = self.client.poll_transmit(self.now) {
            if let Packet::Publish(p) = &p {
                let id = p.packet_id().expect("QoS > 0").get();
                if p.dup {
                    assert!(
                        self.outstanding.contains(&id),
                        "a resend is for a message in flight"
                    );
                } else {
                    // [MQTT-2.2.1-3] / [MQTT-4.3.2-1]: a new message never takes an id in use.
                    assert!(
                        self.outstanding.insert(id),
                        "packet id {id} reused while in flight"
                    );
                }
            }
            self.to_server.push_back(p);
        }
        let max = self.server.receive_maximum as usize;
        assert!(
            self.client.in_flight() <= max,
            "{} in flight with a Receive Maximum of {max}",
            self.client.in_flight()
        );
        while let Some(e) = self.client.poll_event() {
            if let Event::Published { request, .. } = e {
                *self.completed.entry(request).or_default() += 1;
            }
        }
    }

    fn client_reads(&mut self, n: usize) {
        for _ in 0..n {
            let Some(p) = self.to_client.pop_front() else {
                break;
            };
            match &p {
                Packet::PubAck(a) => {
                    self.outstanding.remove(&a.packet_id.get());
                }
                Packet::PubComp(c) => {
                    self.outstanding.remove(&c.packet_id.get());
                }
                _ => {}
            }
            self.client
                .handle_packet(self.now, p)
                .expect("the model server follows the protocol");
            self.pump_client_output();
        }
    }

    fn server_reads(&mut self, n: usize) {
        for _ in 0..n {
            let Some(p) = self.to_server.pop_front() else {
                break;
            };
            self.server.handle(p, &mut self.to_client);
        }
    }

    fn cut(&mut self) {
        self.to_server.clear();
        self.to_client.clear();
        self.client.connection_lost(self.now);
        self.client.connect(self.now);
        self.pump_client_output();
    }
}

fn run(version: ProtocolVersion, receive_maximum: u16, ops: Vec<Op>) {
    let mut options = ClientOptions::new(version, "model".try_into().unwrap());
    options.clean_start = false;
    options.max_queued = 10_000;
    let mut w = World {
        client: ClientSession::new(options),
        server: Server {
            version,
            // Before MQTT 5 there is no Receive Maximum: the client may use 65,535.
            receive_maximum: if version.is_v5() {
                receive_maximum
            } else {
                u16::MAX
            },
            awaiting_rel: BTreeSet::new(),
            delivered: BTreeMap::new(),
        },
        to_server: VecDeque::new(),
        to_client: VecDeque::new(),
        now: Instant::ZERO,
        outstanding: BTreeSet::new(),
        requests: BTreeMap::new(),
        completed: BTreeMap::new(),
        next_payload: 0,
    };
    w.client.connect(w.now);
    w.pump_client_output();
    for op in ops {
        w.now = w.now + core::time::Duration::from_millis(10);
        match op {
            Op::Publish(qos) => {
                w.next_payload += 1;
                let payload = w.next_payload.to_be_bytes().to_vec();
                let mut p = Publish::new(TopicName::from_static("t").unwrap(), payload.clone());
                p.qos_pid = QosPid::new(qos, PacketId::MIN);
                let request = w.client.publish(p).unwrap();
                w.requests.insert(request, (qos, payload));
                w.pump_client_output();
            }
            Op::ToServer(n) => w.server_reads(n),
            Op::ToClient(n) => w.client_reads(n),
            Op::Cut => w.cut(),
        }
    }
    // A quiet, reliable period: everything settles.
    for _ in 0..10_000 {
        if w.to_server.is_empty() && w.to_client.is_empty() {
            break;
        }
        w.server_reads(usize::MAX);
        w.client_reads(usize::MAX);
    }
    assert!(
        w.to_server.is_empty() && w.to_client.is_empty(),
        "the link settles"
    );
    assert_eq!(
        w.client.in_flight() + w.client.queued(),
        0,
        "nothing is left in flight"
    );
    for (request, (qos, payload)) in &w.requests {
        let n = w.server.delivered.get(payload).copied().unwrap_or(0);
        match qos {
            QoS::AtLeastOnce => assert!(n >= 1, "QoS 1 message {payload:?} arrived {n} times"),
            _ => assert_eq!(n, 1, "QoS 2 message {payload:?} arrived {n} times"),
        }
        assert_eq!(
            w.completed.get(request),
            Some(&1),
            "request {request:?} completes once"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn qos_guarantees_hold_across_cuts_v5(receive_maximum in 1u16..6, ops in proptest::collection::vec(op(), 0..120)) {
        run(ProtocolVersion::V5, receive_maximum, ops);
    }

    #[test]
    fn qos_guarantees_hold_across_cuts_v311(ops in proptest::collection::vec(op(), 0..120)) {
    // 3.1.1 [MQTT-2.3.1-2], [MQTT-4.3.3-1]
        run(ProtocolVersion::V3_1_1, 0, ops);
    }
}
