//! ClientSession driven by a scripted server, one rule at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use core::{num::NonZeroU16, num::NonZeroU32, time::Duration};
use mqtt_codec::*;
use mqtt_session::*;

struct Harness {
    client: ClientSession,
    now: Instant,
}

fn options(v: ProtocolVersion) -> ClientOptions {
    ClientOptions::new(v, "client-1".try_into().unwrap())
}

fn topic(t: &str) -> TopicName {
    TopicName::try_from(t).unwrap()
}

fn msg(t: &str, qos: QoS) -> Publish {
    let mut p = Publish::new(topic(t), &b"payload"[..]);
    p.qos_pid = QosPid::new(qos, PacketId::MIN);
    p
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

impl Harness {
    fn new(options: ClientOptions) -> Harness {
        Harness {
            client: ClientSession::new(options),
            now: Instant::ZERO,
        }
    }

    /// Connects and answers with `connack`; returns what the client sent.
    fn connect_with(&mut self, connack: ConnAck) -> Vec<Packet> {
        self.client.connect(self.now);
        let sent = self.sent();
        assert!(matches!(sent.first(), Some(Packet::Connect(_))), "{sent:?}");
        self.client.handle_packet(self.now, connack.into()).unwrap();
        assert!(matches!(self.events().first(), Some(Event::Connected(_))));
        sent
    }

    /// A client asking to resume its session (Clean Start 0), connected.
    fn connected_persistent(version: ProtocolVersion) -> Harness {
        let mut o = options(version);
        o.clean_start = false;
        let mut h = Harness::new(o);
        h.connect();
        h
    }

    fn connect(&mut self) {
        self.connect_with(ConnAck::new(ConnectReason::Success));
    }

    fn sent(&mut self) -> Vec<Packet> {
        std::iter::from_fn(|| self.client.poll_transmit(self.now)).collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.client.poll_event()).collect()
    }

    fn recv(&mut self, p: impl Into<Packet>) -> Result<(), ConnectionError> {
        self.client.handle_packet(self.now, p.into())
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        self.client.handle_timeout(self.now);
    }
}

fn publishes(sent: &[Packet]) -> Vec<&Publish> {
    sent.iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn connect_carries_the_options_and_connack_limits_are_obeyed() {
    // [MQTT-3.1.2-21], [MQTT-3.2.2-21]: the Server Keep Alive replaces the client's.
    let mut o = options(ProtocolVersion::V5);
    o.keep_alive = 30;
    o.properties.receive_maximum = NonZeroU16::new(10);
    let mut h = Harness::new(o);
    let mut ack = ConnAck::new(ConnectReason::Success);
    ack.properties.maximum_qos = Some(QoS::AtLeastOnce);
    ack.properties.retain_available = Some(false);
    ack.properties.server_keep_alive = Some(5);
    ack.properties.maximum_packet_size = NonZeroU32::new(64);
    ack.properties.assigned_client_identifier = Some("assigned".try_into().unwrap());
    let sent = h.connect_with(ack);
    let Packet::Connect(c) = &sent[0] else {
        panic!()
    };
    assert_eq!((c.keep_alive, c.clean_start), (30, true));
    assert_eq!(c.properties.receive_maximum, NonZeroU16::new(10));

    let l = h.client.server_limits();
    assert_eq!(
        (l.maximum_qos, l.retain_available, l.keep_alive),
        (QoS::AtLeastOnce, false, 5)
    );
    assert_eq!(h.client.options().client_id, "assigned");
    // [MQTT-3.2.2-11] never above Maximum QoS; [MQTT-3.2.2-14] no RETAIN when unavailable;
    // [MQTT-3.2.2-15] never above the server's Maximum Packet Size.
    assert!(matches!(
        h.client.publish(msg("t", QoS::ExactlyOnce)),
        Err(PublishError::QoSNotSupported { .. })
    ));
    let mut retained = msg("t", QoS::AtMostOnce);
    retained.retain = true;
    assert_eq!(
        h.client.publish(retained),
        Err(PublishError::RetainNotSupported)
    );
    let mut big = msg("t", QoS::AtLeastOnce);
    big.set_payload(vec![0u8; 100]);
    assert!(matches!(
        h.client.publish(big),
        Err(PublishError::PacketTooLarge { .. })
    ));
    // Server Keep Alive replaces the client's: a PINGREQ after 5 s of silence.
    h.advance(Duration::from_secs(5));
    assert_eq!(h.sent(), [Packet::PingReq]);
}

#[test]
fn qos1_publish_gets_a_fresh_id_and_completes_on_puback() {
    // 3.1.1 [MQTT-4.3.2-1] (v5 [MQTT-4.3.2-1], [MQTT-4.3.2-2], [MQTT-4.3.2-3]): a new
    // unused id, QoS 1, DUP 0, kept until PUBACK; 3.1.1 [MQTT-2.3.1-2]: fresh ids.
    let mut h = Harness::new(options(ProtocolVersion::V3_1_1));
    h.connect();
    let r1 = h.client.publish(msg("a", QoS::AtLeastOnce)).unwrap();
    let r2 = h.client.publish(msg("b", QoS::AtLeastOnce)).unwrap();
    let sent = h.sent();
    let p = publishes(&sent);
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].packet_id(), p[0].dup), (Some(pid(1)), false));
    assert_eq!(p[1].packet_id(), Some(pid(2)));
    assert_eq!(h.client.in_flight(), 2);
    h.recv(PubAck::new(pid(2))).unwrap();
    h.recv(PubAck::new(pid(1))).unwrap();
    let done: Vec<_> = h
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Published { request, outcome } => (request, outcome),
            e => panic!("{e:?}"),
        })
        .collect();
    let ok = Outcome::Delivered(PubAckReason::Success);
    assert_eq!(done, [(r2, ok), (r1, ok)]);
    assert_eq!(h.client.in_flight(), 0);
}

#[test]
fn qos2_publish_runs_pubrec_pubrel_pubcomp() {
    // [MQTT-4.3.3-1..-5]
    let mut h = Harness::new(options(ProtocolVersion::V5));
    h.connect();
    let r = h.client.publish(msg("a", QoS::ExactlyOnce)).unwrap();
    let sent = h.sent();
    assert_eq!(publishes(&sent)[0].qos(), QoS::ExactlyOnce);
    h.recv(PubRec::new(pid(1))).unwrap();
    assert_eq!(h.sent(), [Packet::PubRel(PubRel::new(pid(1)))]);
    assert!(h.events().is_empty());
    h.recv(PubComp::new(pid(1))).unwrap();
    assert_eq!(
        h.events(),
        [Event::Published {
            request: r,
            outcome: Outcome::Delivered(PubAckReason::Success)
        }]
    );
}

/// PUBCOMP 0x92 "is not an error during recovery" (MQTT 5, 3.7.2.1): for a
/// PUBREL sent again after a reconnection the server had completed the
/// flow (its first PUBCOMP was lost), so the message counts as delivered;
/// outside recovery 0x92 is reported as such.
#[test]
fn pubcomp_not_found_is_delivered_in_recovery_only() {
    let mut h = Harness::connected_persistent(ProtocolVersion::V5);
    let recovered = h.client.publish(msg("a", QoS::ExactlyOnce)).unwrap();
    h.sent();
    h.recv(PubRec::new(pid(1))).unwrap();
    assert_eq!(h.sent(), [Packet::PubRel(PubRel::new(pid(1)))]);
    h.client.connection_lost(h.now);
    h.events();
    let mut ack = ConnAck::new(ConnectReason::Success);
    ack.session_present = true;
    h.connect_with(ack);
    assert_eq!(h.sent(), [Packet::PubRel(PubRel::new(pid(1)))]);
    let mut comp = PubComp::new(pid(1));
    comp.reason = PubRelReason::PacketIdentifierNotFound;
    h.recv(comp.clone()).unwrap();
    assert!(h.events().contains(&Event::Published {
        request: recovered,
        outcome: Outcome::Delivered(PubAckReason::Success)
    }));
    // A flow begun on this connection: 0x92 is a mismatch, reported.
    let later = h.client.publish(msg("b", QoS::ExactlyOnce)).unwrap();
    let id = publishes(&h.sent())[0].packet_id().unwrap();
    h.recv(PubRec::new(id)).unwrap();
    h.sent();
    comp.packet_id = id;
    h.recv(comp).unwrap();
    assert_eq!(
        h.events(),
        [Event::Published {
            request: later,
            outcome: Outcome::NotFound
        }]
    );
}

#[test]
fn a_failed_pubrec_ends_the_flow_without_pubrel() {
    // [MQTT-4.3.3-4], [MQTT-4.4.0-2]: PUBREL only after a successful PUBREC; a failure
    // completes the message (no retransmission) and frees the id.
    let mut h = Harness::new(options(ProtocolVersion::V5));
    h.connect();
    let r = h.client.publish(msg("a", QoS::ExactlyOnce)).unwrap();
    h.sent();
    let mut rec = PubRec::new(pid(1));
    rec.reason = PubAckReason::NotAuthorized;
    h.recv(rec).unwrap();
    assert!(h.sent().is_empty());
    assert_eq!(
        h.events(),
        [Event::Published {
            request: r,
            outcome: Outcome::Refused(PubAckReason::NotAuthorized)
        }]
    );
    assert_eq!(h.client.in_flight(), 0);
}

#[test]
fn server_receive_maximum_bounds_messages_in_flight() {
    // [MQTT-4.9.0-1]
    // [MQTT-4.9.0-2]: never more unacknowledged QoS 1/2 PUBLISHes than the Receive Maximum.
    let mut h = Harness::new(options(ProtocolVersion::V5));
    let mut ack = ConnAck::new(ConnectReason::Success);
    ack.properties.receive_maximum = NonZeroU16::new(2);
    h.connect_with(ack);
    for i in 0..5 {
        h.client
            .publish(msg(&format!("t/{i}"), QoS::AtLeastOnce))
            .unwrap();
    }
    let first = h.sent();
    assert_eq!(publishes(&first).len(), 2);
    assert_eq!((h.client.in_flight(), h.client.queued()), (2, 3));
    // [MQTT-3.3.4-8]: other packets still flow with the quota exhausted.
    h.client
        .subscribe(
            vec![Subscription::new(
                TopicFilter::try_from("x").unwrap(),
                QoS::AtMostOnce,
            )],
            Default::default(),
        )
        .unwrap();
    assert!(matches!(h.sent().as_slice(), [Packet::Subscribe(_)]));
    h.recv(PubAck::new(pid(1))).unwrap();
    let next = h.sent();
    let p = publishes(&next);
    assert_eq!(p.len(), 1);
    // Order is kept: t/2 follows t/0 and t/1.
    assert_eq!(p[0].topic(), "t/2");
}

#[test]
fn incoming_qos1_is_acknowledged_with_its_id() {
    // [MQTT-3.3.4-1], [MQTT-4.5.0-2]; 3.1.1 [MQTT-2.3.1-6], [MQTT-3.3.4-1], [MQTT-4.3.2-2], [MQTT-4.5.0-2]
    // [MQTT-4.3.2-4]
    let mut h = Harness::new(options(ProtocolVersion::V3_1_1));
    h.connect();
    let mut p = msg("in", QoS::AtLeastOnce);
    p.qos_pid = QosPid::AtLeastOnce(pid(77));
    h.recv(p.clone()).unwrap();
    assert_eq!(h.sent(), [Packet::PubAck(PubAck::new(pid(77)))]);
    assert_eq!(h.events(), [Event::Message(p)]);
}

#[test]
fn incoming_qos2_is_delivered_once_until_pubrel() {
    // [MQTT-2.2.1-5], [MQTT-3.3.4-1], [MQTT-4.3.3-12]
    // [MQTT-4.3.3-8] PUBREC with the id; [MQTT-4.3.3-10] a repeat before PUBREL is not
    // delivered again; [MQTT-4.3.3-11] PUBREL answered by PUBCOMP.
    let mut h = Harness::new(options(ProtocolVersion::V5));
    h.connect();
    let mut p = msg("in", QoS::ExactlyOnce);
    p.qos_pid = QosPid::ExactlyOnce(pid(9));
    h.recv(p.clone()).unwrap();
    let mut dup = p.clone();
    dup.dup = true;
    h.recv(dup).unwrap();
    assert_eq!(
        h.sent(),
        [
            Packet::PubRec(PubRec::new(pid(9))),
            Packet::PubRec(PubRec::new(pid(9)))
        ]
    );
    assert_eq!(h.events(), [Event::Message(p.clone())]);
    h.recv(PubRel::new(pid(9))).unwrap();
    assert_eq!(h.sent(), [Packet::PubComp(PubComp::new(pid(9)))]);
    // After PUBREL the same id starts a new message.
    h.recv(p.clone()).unwrap();
    assert_eq!(h.events(), [Event::Message(p)]);
    // PUBREL for an unknown id: PUBCOMP 0x92.
    h.recv(PubRel::new(pid(3))).unwrap();
    let sent = h.sent();
    let Some(Packet::PubComp(c)) = sent.last() else {
        panic!("{sent:?}")
    };
    assert_eq!(c.reason, PubRelReason::PacketIdentifierNotFound);
}

#[test]
fn reconnect_with_session_present_resends_in_order_with_dup() {
    // [MQTT-3.3.1-1], [MQTT-4.3.3-6], [MQTT-4.6.0-1]; 3.1.1 [MQTT-2.3.1-3], [MQTT-3.3.1-1], [MQTT-4.4.0-1], [MQTT-4.6.0-1]
    // [MQTT-4.4.0-1]: unacknowledged PUBLISH (DUP 1) and PUBREL, original ids, original order.
    let mut h = Harness::connected_persistent(ProtocolVersion::V3_1_1);
    h.client.publish(msg("a", QoS::AtLeastOnce)).unwrap();
    h.client.publish(msg("b", QoS::ExactlyOnce)).unwrap();
    h.client.publish(msg("c", QoS::ExactlyOnce)).unwrap();
    h.sent();
    h.recv(PubRec::new(pid(2))).unwrap(); // b reaches PUBREL
    h.sent();
    h.client.connection_lost(h.now);
    assert!(matches!(
        h.events().last(),
        Some(Event::Disconnected(ConnectionError::TransportClosed))
    ));

    let mut ack = ConnAck::new(ConnectReason::Success);
    ack.session_present = true;
    let sent = h.connect_with(ack);
    let Packet::Connect(c) = &sent[0] else {
        panic!()
    };
    assert!(!c.clean_start, "a reconnection resumes the session");
    let resent = h.sent();
    let summary: Vec<_> = resent
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.topic().to_string(), p.packet_id().unwrap().get(), p.dup),
            Packet::PubRel(r) => ("PUBREL".to_string(), r.packet_id.get(), false),
            p => panic!("{p:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a".into(), 1, true),
            ("PUBREL".into(), 2, false),
            ("c".into(), 3, true)
        ]
    );
}

#[test]
fn reconnect_without_session_resends_as_new_messages() {
    // [MQTT-3.2.2-5]: a session the server did not keep is not resumed.
    let mut h = Harness::connected_persistent(ProtocolVersion::V5);
    let r = h.client.publish(msg("a", QoS::AtLeastOnce)).unwrap();
    h.sent();
    h.client.connection_lost(h.now);
    h.events();
    h.connect_with(ConnAck::new(ConnectReason::Success)); // session not present
    let sent = h.sent();
    let p = publishes(&sent);
    assert_eq!((p.len(), p[0].dup), (1, false));
    h.recv(PubAck::new(p[0].packet_id().unwrap())).unwrap();
    assert!(matches!(h.events().as_slice(), [Event::Published { request, .. }] if *request == r));
}

#[test]
fn keep_alive_pings_when_idle_and_detects_a_silent_server() {
    // [MQTT-3.1.2-20] (3.1.1 [MQTT-3.1.2-23]): PINGREQ so the gap never exceeds Keep Alive.
    let mut o = options(ProtocolVersion::V3_1_1);
    o.keep_alive = 10;
    let mut h = Harness::new(o);
    h.connect();
    assert_eq!(h.client.poll_timeout(), Some(Instant::from_millis(10_000)));
    h.advance(Duration::from_secs(9));
    assert!(h.sent().is_empty());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.sent(), [Packet::PingReq]);
    // An answer resets the timer.
    h.recv(Packet::PingResp).unwrap();
    assert_eq!(h.client.poll_timeout(), Some(Instant::from_millis(20_000)));
    h.advance(Duration::from_secs(10));
    assert_eq!(h.sent(), [Packet::PingReq]);
    // Silence for another interval: the connection is lost.
    h.advance(Duration::from_secs(10));
    assert_eq!(
        h.events(),
        [Event::Disconnected(ConnectionError::KeepAliveTimeout)]
    );
    assert_eq!(h.client.state(), ConnectionState::Disconnected);
}

#[test]
fn topic_aliases_from_the_server_are_resolved_and_checked() {
    // [MQTT-3.3.2-10]
    let mut o = options(ProtocolVersion::V5);
    o.properties.topic_alias_maximum = Some(2);
    let mut h = Harness::new(o);
    h.connect();
    let mut p = msg("long/topic", QoS::AtMostOnce);
    p.properties_mut().topic_alias = NonZeroU16::new(2);
    h.recv(p).unwrap();
    let mut q = msg("long/topic", QoS::AtMostOnce);
    q.set_topic(TopicName::default());
    q.properties_mut().topic_alias = NonZeroU16::new(2);
    h.recv(q).unwrap();
    let topics: Vec<_> = h
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Message(m) => {
                assert!(
                    m.properties().topic_alias.is_none(),
                    "the alias is not passed on"
                );
                m.topic().to_string()
            }
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(topics, ["long/topic", "long/topic"]);
    // An alias above the announced maximum: DISCONNECT 0x94.
    let mut bad = msg("x", QoS::AtMostOnce);
    bad.properties_mut().topic_alias = NonZeroU16::new(3);
    let err = h.recv(bad).unwrap_err();
    assert!(matches!(
        err,
        ConnectionError::Protocol {
            reason: DisconnectReason::TopicAliasInvalid,
            ..
        }
    ));
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            DisconnectReason::TopicAliasInvalid
        ))]
    );
}

#[test]
fn outgoing_topic_aliases_stay_within_the_server_maximum() {
    // [MQTT-3.2.2-17], [MQTT-3.3.2-9]
    let mut o = options(ProtocolVersion::V5);
    o.outgoing_topic_aliases = true;
    let mut h = Harness::new(o);
    let mut ack = ConnAck::new(ConnectReason::Success);
    ack.properties.topic_alias_maximum = Some(1);
    h.connect_with(ack);
    for t in ["a/b", "a/b", "c/d"] {
        h.client.publish(msg(t, QoS::AtMostOnce)).unwrap();
    }
    let sent = h.sent();
    let p = publishes(&sent);
    let seen: Vec<_> = p
        .iter()
        .map(|p| {
            (
                p.topic().to_string(),
                p.properties().topic_alias.map(|a| a.get()),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("a/b".into(), Some(1)),
            (String::new(), Some(1)),
            ("c/d".into(), None)
        ]
    );
}

#[test]
fn subscribe_and_unsubscribe_complete_with_their_acks() {
    // [MQTT-2.2.1-3] fresh ids; SUBACK/UNSUBACK matched by id.
    let mut h = Harness::new(options(ProtocolVersion::V5));
    // Asked before connecting: sent once connected.
    let sub = h
        .client
        .subscribe(
            vec![Subscription::new(
                TopicFilter::try_from("a/#").unwrap(),
                QoS::AtLeastOnce,
            )],
            Default::default(),
        )
        .unwrap();
    h.connect();
    let sent = h.sent();
    let [Packet::Subscribe(s)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let suback = SubAck {
        packet_id: s.packet_id,
        reasons: vec![SubAckReason::GrantedQoS1],
        properties: Default::default(),
    };
    h.recv(suback.clone()).unwrap();
    assert_eq!(
        h.events(),
        [Event::Subscribed {
            request: sub,
            suback
        }]
    );
    let unsub = h
        .client
        .unsubscribe(
            vec![TopicFilter::try_from("a/#").unwrap()],
            Default::default(),
        )
        .unwrap();
    let sent = h.sent();
    let [Packet::Unsubscribe(u)] = sent.as_slice() else {
        panic!()
    };
    let unsuback = UnsubAck {
        packet_id: u.packet_id,
        reasons: vec![UnsubAckReason::Success],
        properties: Default::default(),
    };
    h.recv(unsuback.clone()).unwrap();
    assert_eq!(
        h.events(),
        [Event::Unsubscribed {
            request: unsub,
            unsuback
        }]
    );
}

#[test]
fn protocol_violations_close_with_the_right_reason() {
    // A packet other than CONNACK first.
    let mut h = Harness::new(options(ProtocolVersion::V5));
    h.client.connect(h.now);
    h.sent();
    assert!(matches!(
        h.recv(Packet::PingResp),
        Err(ConnectionError::Protocol {
            reason: DisconnectReason::ProtocolError,
            ..
        })
    ));
    // A PUBACK for nothing in flight: DISCONNECT 0x82.
    let mut h = Harness::new(options(ProtocolVersion::V5));
    h.connect();
    assert!(h.recv(PubAck::new(pid(5))).is_err());
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            DisconnectReason::ProtocolError
        ))]
    );
    assert_eq!(h.client.state(), ConnectionState::Disconnected);
    // Malformed bytes: DISCONNECT 0x81.
    let mut h = Harness::new(options(ProtocolVersion::V5));
    h.connect();
    let mut garbage = BytesMut::from(&[0x36u8, 0x02, 0x00, 0x00][..]);
    assert!(matches!(
        h.client.handle_bytes(h.now, &mut garbage),
        Err(ConnectionError::Decode(_))
    ));
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            DisconnectReason::MalformedPacket
        ))]
    );
}

#[test]
fn refused_connection_and_server_disconnect_are_reported() {
    // [MQTT-4.13.2-1]
    let mut h = Harness::new(options(ProtocolVersion::V3_1_1));
    h.client.connect(h.now);
    h.sent();
    let err = h
        .recv(ConnAck::new(ConnectReason::BadUserNameOrPassword))
        .unwrap_err();
    assert_eq!(
        err,
        ConnectionError::Refused(ConnectReason::BadUserNameOrPassword)
    );
    assert_eq!(h.client.state(), ConnectionState::Disconnected);

    let mut h = Harness::new(options(ProtocolVersion::V5));
    h.connect();
    h.recv(Disconnect::new(DisconnectReason::SessionTakenOver))
        .unwrap();
    assert_eq!(
        h.events(),
        [Event::Disconnected(ConnectionError::ClosedByPeer(
            DisconnectReason::SessionTakenOver
        ))]
    );
}

#[test]
fn queue_is_bounded() {
    let mut o = options(ProtocolVersion::V3_1_1);
    o.max_queued = 2;
    let mut h = Harness::new(o);
    h.client.publish(msg("a", QoS::AtLeastOnce)).unwrap();
    h.client.publish(msg("b", QoS::AtLeastOnce)).unwrap();
    assert!(
        matches!(h.client.publish(msg("c", QoS::AtLeastOnce)), Err(PublishError::QueueFull(p)) if p.topic() == "c")
    );
}

#[test]
fn bytes_in_and_out_round_trip_through_the_codec() {
    let mut h = Harness::new(options(ProtocolVersion::V5));
    h.client.connect(h.now);
    let mut wire = BytesMut::new();
    h.client.encode_transmits(h.now, &mut wire);
    let mut server = Decoder::server();
    assert!(matches!(
        server.decode(&mut wire).unwrap(),
        Some(Packet::Connect(_))
    ));
    let mut from_server = BytesMut::new();
    ConnAck::new(ConnectReason::Success)
        .encode(ProtocolVersion::V5, &mut from_server)
        .unwrap();
    h.client.handle_bytes(h.now, &mut from_server).unwrap();
    assert_eq!(h.client.state(), ConnectionState::Connected);
}

#[test]
fn a_normal_disconnect_is_reported_once_sent_and_the_session_resumes() {
    // [MQTT-3.14.4-2]
    let mut h = Harness::connected_persistent(ProtocolVersion::V5);
    h.client.publish(msg("a", QoS::AtLeastOnce)).unwrap();
    h.client
        .disconnect(Disconnect::new(DisconnectReason::NormalDisconnection));
    let sent = h.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::Publish(_), Packet::Disconnect(_)]),
        "{sent:?}"
    );
    assert_eq!(
        h.events(),
        [Event::Disconnected(ConnectionError::ClosedLocally(
            DisconnectReason::NormalDisconnection
        ))]
    );
    assert_eq!(h.client.state(), ConnectionState::Disconnected);
    // The unacknowledged message is resent on the next connection.
    let mut ack = ConnAck::new(ConnectReason::Success);
    ack.session_present = true;
    h.connect_with(ack);
    let resent = h.sent();
    assert!(matches!(resent.as_slice(), [Packet::Publish(p)] if p.dup && p.topic() == "a"));
}

mod arbitrary_input {
    use super::*;
    use mqtt_test_support::strategies;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Any sequence of valid packets of any type (including ones a server
        /// never sends, and acks for nothing) either is handled or ends the
        /// connection with an error; nothing panics and the session keeps
        /// answering.
        #[test]
        fn arbitrary_packets_never_panic(
            v in prop_oneof![Just(ProtocolVersion::V3_1_1), Just(ProtocolVersion::V5)],
            packets in proptest::collection::vec(strategies::packet(ProtocolVersion::V5), 0..20),
        ) {
            let mut h = Harness::new(options(v));
            h.connect();
            h.client.publish(msg("a", QoS::ExactlyOnce)).unwrap();
            h.sent();
            for p in packets {
                let _ = h.recv(p);
                h.sent();
                h.events();
                if h.client.state() == ConnectionState::Disconnected {
                    h.connect();
                }
            }
            h.advance(Duration::from_secs(3600));
            h.sent();
        }
    }
}

#[test]
fn without_problem_information_a_reason_string_on_an_ack_is_a_protocol_error() {
    // [MQTT-3.1.2-29]
    // Section 3.1.2.11.7: Request Problem Information 0 allows Reason String and
    // User Property only on PUBLISH, CONNACK and DISCONNECT; the client answers 0x82.
    let mut o = options(ProtocolVersion::V5);
    o.properties.request_problem_information = Some(false);
    let mut h = Harness::new(o);
    h.connect();
    h.client.publish(msg("a", QoS::AtLeastOnce)).unwrap();
    h.sent();
    let mut ack = PubAck::new(pid(1));
    ack.properties.reason_string = Some("details".try_into().unwrap());
    assert!(h.recv(ack).is_err());
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            DisconnectReason::ProtocolError
        ))]
    );
}

#[test]
fn subscriptions_the_server_does_not_support_are_refused_locally() {
    // CONNACK's Wildcard / Shared / Subscription Identifier Available = 0 are obeyed.
    let mut h = Harness::new(options(ProtocolVersion::V5));
    let mut ack = ConnAck::new(ConnectReason::Success);
    ack.properties.wildcard_subscription_available = Some(false);
    ack.properties.shared_subscription_available = Some(false);
    ack.properties.subscription_identifier_available = Some(false);
    h.connect_with(ack);
    let sub = |f: &str| {
        vec![Subscription::new(
            TopicFilter::try_from(f).unwrap(),
            QoS::AtMostOnce,
        )]
    };
    assert_eq!(
        h.client.subscribe(sub("a/+"), Default::default()),
        Err(SubscribeError::WildcardSubscriptionsNotSupported)
    );
    assert_eq!(
        h.client.subscribe(sub("$share/g/a"), Default::default()),
        Err(SubscribeError::SharedSubscriptionsNotSupported)
    );
    let props = SubscribeProperties {
        subscription_identifier: NonZeroU32::new(4),
        ..Default::default()
    };
    assert_eq!(
        h.client.subscribe(sub("a"), props),
        Err(SubscribeError::SubscriptionIdentifiersNotSupported)
    );
    assert_eq!(
        h.client.subscribe(Vec::new(), Default::default()),
        Err(SubscribeError::Empty)
    );
    assert!(h.client.subscribe(sub("a/b"), Default::default()).is_ok());
}

#[test]
fn a_silent_server_after_connect_times_out_and_empty_topics_are_refused() {
    let mut o = options(ProtocolVersion::V5);
    o.connect_timeout = Duration::from_secs(5);
    let mut h = Harness::new(o);
    h.client.connect(h.now);
    h.sent();
    assert_eq!(h.client.poll_timeout(), Some(Instant::from_millis(5_000)));
    h.advance(Duration::from_secs(5));
    assert_eq!(
        h.events(),
        [Event::Disconnected(ConnectionError::ConnectTimeout)]
    );
    let p = Publish::new(TopicName::default(), &b"x"[..]);
    assert_eq!(h.client.publish(p), Err(PublishError::EmptyTopic));
}

#[test]
fn granted_subscriptions_are_restored_when_the_server_lost_the_session() {
    let mut h = Harness::new(options(ProtocolVersion::V5));
    h.connect();
    let filters = ["a/#", "b/+", "c"];
    let props = SubscribeProperties {
        subscription_identifier: Some(NonZeroU32::new(7).unwrap()),
        ..Default::default()
    };
    for (i, f) in filters.iter().enumerate() {
        let p = if i == 1 {
            props.clone()
        } else {
            Default::default()
        };
        h.client
            .subscribe(
                vec![Subscription::new(
                    TopicFilter::try_from(*f).unwrap(),
                    QoS::AtLeastOnce,
                )],
                p,
            )
            .unwrap();
    }
    for p in h.sent() {
        let Packet::Subscribe(s) = p else { panic!() };
        // "c" is refused: it is not restored.
        let reason = if s.subscriptions[0].filter.as_str() == "c" {
            SubAckReason::NotAuthorized
        } else {
            SubAckReason::GrantedQoS1
        };
        h.recv(SubAck {
            packet_id: s.packet_id,
            reasons: vec![reason],
            properties: Default::default(),
        })
        .unwrap();
    }
    h.events();
    let kept: Vec<&str> = h
        .client
        .subscriptions()
        .map(|s| s.filter.as_str())
        .collect();
    assert_eq!(kept, ["a/#", "b/+"]);

    // The server kept the session: nothing is sent again.
    h.client.connection_lost(h.now);
    h.events();
    let mut ack = ConnAck::new(ConnectReason::Success);
    ack.session_present = true;
    h.connect_with(ack);
    assert!(h.sent().is_empty());

    // The server lost it: one SUBSCRIBE per Subscription Identifier.
    h.client.connection_lost(h.now);
    h.events();
    h.connect();
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for p in sent {
        let Packet::Subscribe(s) = p else { panic!() };
        assert_eq!(s.subscriptions.len(), 1);
        let with_id = s.subscriptions[0].filter.as_str() == "b/+";
        assert_eq!(s.properties.subscription_identifier.is_some(), with_id);
        h.recv(SubAck {
            packet_id: s.packet_id,
            reasons: vec![SubAckReason::GrantedQoS1],
            properties: Default::default(),
        })
        .unwrap();
    }
    let events = h.events();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| matches!(e, Event::Restored { .. })));

    // Unsubscribed filters are not restored.
    h.client
        .unsubscribe(
            vec![TopicFilter::try_from("a/#").unwrap()],
            Default::default(),
        )
        .unwrap();
    let sent = h.sent();
    let [Packet::Unsubscribe(u)] = sent.as_slice() else {
        panic!()
    };
    h.recv(UnsubAck {
        packet_id: u.packet_id,
        reasons: vec![UnsubAckReason::Success],
        properties: Default::default(),
    })
    .unwrap();
    let kept: Vec<&str> = h
        .client
        .subscriptions()
        .map(|s| s.filter.as_str())
        .collect();
    assert_eq!(kept, ["b/+"]);
}

#[test]
fn max_in_flight_caps_the_window_below_the_server_receive_maximum() {
    let mut o = options(ProtocolVersion::V3_1_1);
    o.max_in_flight = Some(2);
    let mut h = Harness::new(o);
    h.connect();
    for _ in 0..5 {
        h.client.publish(msg("t", QoS::AtLeastOnce)).unwrap();
    }
    let sent = h.sent();
    assert_eq!(publishes(&sent).len(), 2);
    let id = publishes(&sent)[0].packet_id().unwrap();
    h.recv(PubAck::new(id)).unwrap();
    assert_eq!(
        publishes(&h.sent()).len(),
        1,
        "one acknowledgement, one more"
    );
}
