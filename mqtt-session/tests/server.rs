//! ServerSession driven by a scripted client, one rule at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use core::{num::NonZeroU16, num::NonZeroU32, time::Duration};
use mqtt_codec::*;
use mqtt_session::*;

struct Harness {
    server: ServerSession,
    now: Instant,
    version: ProtocolVersion,
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

fn msg(t: &str, qos: QoS, id: u16) -> Publish {
    let mut p = Publish::new(TopicName::try_from(t).unwrap(), &b"payload"[..]);
    p.qos_pid = QosPid::new(qos, pid(id));
    p
}

impl Harness {
    fn new(options: ServerOptions) -> Harness {
        Harness {
            server: ServerSession::new(options, Instant::ZERO),
            now: Instant::ZERO,
            version: ProtocolVersion::V5,
        }
    }

    /// CONNECT with `connect`, then accept (resuming `state`).
    fn connect(&mut self, connect: Connect, state: Option<SessionState>) -> ConnAck {
        self.version = connect.version;
        self.recv(connect).unwrap();
        assert!(matches!(
            self.events().as_slice(),
            [ServerEvent::Connect(_)]
        ));
        self.server.accept(self.now, ConnAck::default(), state);
        // Only the CONNACK: what follows it is the test's to look at.
        let first = self.server.poll_transmit(self.now);
        let Some(Packet::ConnAck(ack)) = first else {
            panic!("{first:?}")
        };
        *ack
    }

    fn connect_v(&mut self, v: ProtocolVersion) -> ConnAck {
        self.connect(Connect::new(v, "c".try_into().unwrap()), None)
    }

    fn recv(&mut self, p: impl Into<Packet>) -> Result<(), ConnectionError> {
        self.server.handle_packet(self.now, p.into())
    }

    fn sent(&mut self) -> Vec<Packet> {
        std::iter::from_fn(|| self.server.poll_transmit(self.now)).collect()
    }

    fn events(&mut self) -> Vec<ServerEvent> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        self.server.handle_timeout(self.now);
    }
}

#[test]
fn the_first_packet_must_be_connect() {
    // 3.1.1 [MQTT-3.1.0-1]
    // [MQTT-3.1.0-1]: closed without CONNACK.
    let mut h = Harness::new(ServerOptions::default());
    assert!(h.recv(Packet::PingReq).is_err());
    assert!(h.sent().is_empty());
    assert!(h.server.is_closed());
    // Through the decoder too: bytes of a PINGREQ before CONNECT.
    let mut h = Harness::new(ServerOptions::default());
    let mut wire = BytesMut::from(&[0xC0u8, 0][..]);
    assert!(h.server.handle_bytes(h.now, &mut wire).is_err());
    assert!(h.sent().is_empty());
}

#[test]
fn accept_announces_the_options_in_connack() {
    let options = ServerOptions {
        receive_maximum: 7,
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        server_keep_alive: Some(20),
        maximum_packet_size: 4096,
        topic_alias_maximum: 3,
        ..Default::default()
    };
    let mut h = Harness::new(options);
    let ack = h.connect_v(ProtocolVersion::V5);
    let p = &ack.properties;
    assert_eq!(p.receive_maximum, NonZeroU16::new(7));
    assert_eq!(p.maximum_qos, Some(QoS::AtLeastOnce));
    assert_eq!(p.retain_available, Some(false));
    assert_eq!(p.server_keep_alive, Some(20));
    assert_eq!(p.maximum_packet_size, NonZeroU32::new(4096));
    assert_eq!(p.topic_alias_maximum, Some(3));
    assert!(!ack.session_present);
}

#[test]
fn refusing_sends_connack_and_closes() {
    // [MQTT-4.13.2-1]; 3.1.1 [MQTT-3.2.2-5]
    // [MQTT-3.2.2-7]: a failure CONNACK, then close.
    let mut h = Harness::new(ServerOptions::default());
    h.recv(Connect::new(
        ProtocolVersion::V3_1_1,
        "c".try_into().unwrap(),
    ))
    .unwrap();
    h.events();
    h.server.refuse(ConnectReason::NotAuthorized);
    let sent = h.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::ConnAck(a)] if a.reason == ConnectReason::NotAuthorized)
    );
    assert!(h.server.is_closed());
    // On the wire in 3.1.1 that is return code 5.
    let mut wire = BytesMut::new();
    sent[0].encode(ProtocolVersion::V3_1_1, &mut wire).unwrap();
    assert_eq!(&wire[..], &[0x20, 2, 0, 5]);
}

#[test]
fn an_unsupported_protocol_gets_connack_0x84() {
    // [MQTT-3.1.2-2]
    let mut h = Harness::new(ServerOptions::default());
    let mut wire = BytesMut::from(&b"\x10\x0d\x00\x04MQTT\x07\x02\x00\x3c\x00\x01a"[..]);
    assert!(h.server.handle_bytes(h.now, &mut wire).is_err());
    let sent = h.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::ConnAck(a)] if a.reason == ConnectReason::UnsupportedProtocolVersion)
    );
}

#[test]
fn a_second_connect_is_a_protocol_error() {
    // [MQTT-4.13.1-1]
    // [MQTT-3.1.0-2]
    let mut h = Harness::new(ServerOptions::default());
    h.connect_v(ProtocolVersion::V5);
    let err = h
        .recv(Connect::new(ProtocolVersion::V5, "c".try_into().unwrap()))
        .unwrap_err();
    assert!(matches!(
        err,
        ConnectionError::Protocol {
            reason: DisconnectReason::ProtocolError,
            ..
        }
    ));
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            DisconnectReason::ProtocolError
        ))]
    );
}

#[test]
fn pingreq_is_answered_and_silence_times_out_at_one_and_a_half_keep_alive() {
    // [MQTT-3.2.2-22]
    // [MQTT-3.12.4-1]; [MQTT-3.1.2-22] (3.1.1 [MQTT-3.1.2-24]).
    let mut h = Harness::new(ServerOptions::default());
    let mut c = Connect::new(ProtocolVersion::V5, "c".try_into().unwrap());
    c.keep_alive = 10;
    h.connect(c, None);
    h.recv(Packet::PingReq).unwrap();
    assert_eq!(h.sent(), [Packet::PingResp]);
    assert_eq!(h.server.poll_timeout(), Some(Instant::from_millis(15_000)));
    h.advance(Duration::from_millis(14_999));
    assert!(!h.server.is_closed());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            DisconnectReason::KeepAliveTimeout
        ))]
    );
    assert_eq!(
        h.events(),
        [ServerEvent::Disconnected(ConnectionError::KeepAliveTimeout)]
    );
    assert!(h.server.is_closed());
}

#[test]
fn a_connection_that_never_sends_connect_is_dropped() {
    let mut h = Harness::new(ServerOptions {
        connect_timeout: Some(Duration::from_secs(3)),
        ..Default::default()
    });
    h.advance(Duration::from_secs(3));
    assert_eq!(
        h.events(),
        [ServerEvent::Disconnected(ConnectionError::ConnectTimeout)]
    );
    assert!(h.server.is_closed());
}

#[test]
fn the_announced_limits_are_enforced() {
    let options = ServerOptions {
        maximum_qos: QoS::AtLeastOnce,
        retain_available: false,
        receive_maximum: 2,
        ..Default::default()
    };
    // QoS above the maximum: 0x9B.
    let mut h = Harness::new(options.clone());
    h.connect_v(ProtocolVersion::V5);
    h.recv(msg("t", QoS::ExactlyOnce, 1)).unwrap_err();
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            DisconnectReason::QoSNotSupported
        ))]
    );
    // RETAIN when not available: 0x9A.
    let mut h = Harness::new(options.clone());
    h.connect_v(ProtocolVersion::V5);
    let mut r = msg("t", QoS::AtMostOnce, 1);
    r.retain = true;
    h.recv(r).unwrap_err();
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            DisconnectReason::RetainNotSupported
        ))]
    );
    // More QoS 2 messages awaiting PUBREL than the Receive Maximum: 0x93.
    let mut h = Harness::new(ServerOptions {
        receive_maximum: 2,
        ..Default::default()
    });
    h.connect_v(ProtocolVersion::V5);
    h.recv(msg("t", QoS::ExactlyOnce, 1)).unwrap();
    h.recv(msg("t", QoS::ExactlyOnce, 2)).unwrap();
    h.recv(msg("t", QoS::ExactlyOnce, 3)).unwrap_err();
    let sent = h.sent();
    assert_eq!(
        sent.last(),
        Some(&Packet::Disconnect(Disconnect::new(
            DisconnectReason::ReceiveMaximumExceeded
        )))
    );
}

#[test]
fn deliveries_keep_to_the_clients_receive_maximum_and_size() {
    // [MQTT-3.3.4-9] / [MQTT-2.2.1-4]: within the client's Receive Maximum;
    // [MQTT-3.1.2-24], [MQTT-3.1.2-25]: too large for the client, dropped for it.
    let mut h = Harness::new(ServerOptions::default());
    let mut c = Connect::new(ProtocolVersion::V5, "c".try_into().unwrap());
    c.properties.receive_maximum = NonZeroU16::new(2);
    c.properties.maximum_packet_size = NonZeroU32::new(100);
    h.connect(c, None);
    let mut big = msg("t", QoS::AtLeastOnce, 1);
    big.set_payload(vec![0u8; 200]);
    assert_eq!(h.server.deliver(big), Err(DeliverError::TooLarge));
    let requests: Vec<_> = (0..4)
        .map(|i| {
            h.server
                .deliver(msg(&format!("t/{i}"), QoS::AtLeastOnce, 1))
                .unwrap()
        })
        .collect();
    let sent = h.sent();
    let ids: Vec<_> = sent
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id().unwrap().get(),
            p => panic!("{p:?}"),
        })
        .collect();
    assert_eq!(ids, [1, 2]);
    h.recv(PubAck::new(pid(1))).unwrap();
    assert!(
        matches!(h.events().as_slice(), [ServerEvent::Delivered { request, .. }] if *request == requests[0])
    );
    let sent = h.sent();
    assert!(matches!(sent.as_slice(), [Packet::Publish(p)] if p.topic() == "t/2"));
}

#[test]
fn session_state_survives_the_connection() {
    // 3.1.1 [MQTT-2.3.1-4], [MQTT-3.2.0-1], [MQTT-4.1.0-1]
    // [MQTT-4.4.0-1]: a resumed session resends in-flight messages (DUP) and PUBREL in order;
    // [MQTT-4.3.3-10] (3.1.1 [MQTT-4.3.3-2]): QoS 2 ids awaiting PUBREL are kept, so a resend
    // is not delivered twice; [MQTT-3.3.1-1] (3.1.1 [MQTT-3.3.1-1], [MQTT-4.4.0-1]): DUP on resend.
    let mut h = Harness::new(ServerOptions::default());
    let mut c = Connect::new(ProtocolVersion::V3_1_1, "c".try_into().unwrap());
    c.clean_start = false;
    h.connect(c.clone(), None);
    let a = h.server.deliver(msg("a", QoS::AtLeastOnce, 1)).unwrap();
    let b = h.server.deliver(msg("b", QoS::ExactlyOnce, 1)).unwrap();
    h.sent();
    // What a storing broker records before the packets go out: the QoS 2
    // message's identifier, then its receipt.
    assert_eq!(
        h.events(),
        [ServerEvent::Assigned {
            request: b,
            packet_id: pid(2)
        }]
    );
    h.recv(PubRec::new(pid(2))).unwrap();
    h.sent();
    assert_eq!(
        h.events(),
        [ServerEvent::Received {
            request: b,
            packet_id: pid(2)
        }]
    );
    h.recv(msg("in", QoS::ExactlyOnce, 9)).unwrap();
    assert!(matches!(h.events().as_slice(), [ServerEvent::Message(_)]));
    h.server.connection_lost();
    let state = h.server.session_state();
    assert_eq!(state.inflight.len(), 2);
    assert_eq!(state.inflight[0].1, a, "requests are kept with the state");
    assert_eq!(state.inflight[1].1, b);
    assert_eq!(state.awaiting_release, [pid(9)]);

    let mut h2 = Harness::new(ServerOptions::default());
    let ack = h2.connect(c, Some(state));
    assert!(ack.session_present);
    let resent = h2.sent();
    assert!(
        matches!(resent.as_slice(), [Packet::Publish(a), Packet::PubRel(r)] if a.dup && a.topic() == "a" && r.packet_id == pid(2)),
        "{resent:?}"
    );
    // The client resends its unreleased QoS 2 message: acknowledged, not delivered again.
    let mut again = msg("in", QoS::ExactlyOnce, 9);
    again.dup = true;
    h2.recv(again).unwrap();
    assert_eq!(h2.sent(), [Packet::PubRec(PubRec::new(pid(9)))]);
    assert!(h2.events().is_empty());
    h2.recv(PubRel::new(pid(9))).unwrap();
    assert_eq!(h2.events(), [ServerEvent::Released { packet_id: pid(9) }]);
    // The restored flows complete under their original requests.
    h2.recv(PubAck::new(pid(1))).unwrap();
    h2.recv(PubComp::new(pid(2))).unwrap();
    let done: Vec<_> = h2
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Delivered { request, .. } => Some(request),
            _ => None,
        })
        .collect();
    assert_eq!(done, [a, b]);
}

#[test]
fn packets_sent_before_connack_are_handled_after_accept() {
    let mut h = Harness::new(ServerOptions::default());
    h.recv(Connect::new(ProtocolVersion::V5, "c".try_into().unwrap()))
        .unwrap();
    h.recv(msg("early", QoS::AtLeastOnce, 4)).unwrap();
    assert!(matches!(h.events().as_slice(), [ServerEvent::Connect(_)]));
    h.server.accept(h.now, ConnAck::default(), None);
    let sent = h.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::ConnAck(_), Packet::PubAck(a)] if a.packet_id == pid(4))
    );
    assert!(matches!(h.events().as_slice(), [ServerEvent::Message(m)] if m.topic() == "early"));
}

/// What a client sends before CONNACK is kept up to `max_queued` packets;
/// one more is a protocol error (and with a bound of 0, the first is).
#[test]
fn packets_before_connack_are_bounded_by_max_queued() {
    for bound in [0usize, 2] {
        let mut h = Harness::new(ServerOptions {
            max_queued: bound,
            ..ServerOptions::default()
        });
        h.recv(Connect::new(ProtocolVersion::V5, "c".try_into().unwrap()))
            .unwrap();
        for i in 0..bound {
            h.recv(msg("early", QoS::AtMostOnce, i as u16 + 1)).unwrap();
        }
        assert!(
            h.recv(msg("early", QoS::AtMostOnce, 9)).is_err(),
            "packet {} before CONNACK with a bound of {bound}",
            bound + 1
        );
    }
}

#[test]
fn client_disconnect_is_reported_and_session_expiry_cannot_be_raised() {
    let mut h = Harness::new(ServerOptions::default());
    h.connect_v(ProtocolVersion::V5);
    h.recv(Disconnect::new(DisconnectReason::NormalDisconnection))
        .unwrap();
    assert_eq!(
        h.events(),
        [ServerEvent::Disconnected(ConnectionError::ClosedByPeer(
            DisconnectReason::NormalDisconnection
        ))]
    );
    // Section 3.14.2.2.2: a Session Expiry of 0 at CONNECT cannot become non-zero.
    let mut h = Harness::new(ServerOptions::default());
    h.connect_v(ProtocolVersion::V5);
    let mut d = Disconnect::new(DisconnectReason::NormalDisconnection);
    d.properties.session_expiry_interval = Some(60);
    h.recv(d).unwrap_err();
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            DisconnectReason::ProtocolError
        ))]
    );
}

#[test]
fn subscribe_reaches_the_broker_and_suback_goes_out() {
    let mut h = Harness::new(ServerOptions::default());
    h.connect_v(ProtocolVersion::V3_1_1);
    let sub = Subscribe {
        packet_id: pid(3),
        subscriptions: vec![Subscription::new(
            TopicFilter::try_from("a/+").unwrap(),
            QoS::AtLeastOnce,
        )],
        properties: Default::default(),
    };
    h.recv(sub.clone()).unwrap();
    assert_eq!(h.events(), [ServerEvent::Subscribe(sub)]);
    let suback = SubAck {
        packet_id: pid(3),
        reasons: vec![SubAckReason::GrantedQoS1],
        properties: Default::default(),
    };
    h.server.suback(suback.clone());
    assert_eq!(h.sent(), [Packet::SubAck(suback)]);
}

#[test]
fn enhanced_authentication_runs_before_connack() {
    // Section 4.12: AUTH packets are exchanged between CONNECT and CONNACK.
    let mut h = Harness::new(ServerOptions::default());
    let mut c = Connect::new(ProtocolVersion::V5, "c".try_into().unwrap());
    c.properties.authentication_method = Some("SCRAM-SHA-256".try_into().unwrap());
    h.recv(c).unwrap();
    assert!(matches!(h.events().as_slice(), [ServerEvent::Connect(_)]));
    let challenge = Auth {
        reason: AuthReason::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some("SCRAM-SHA-256".try_into().unwrap()),
            ..Default::default()
        },
    };
    h.server.auth(challenge.clone());
    assert_eq!(h.sent(), [Packet::Auth(challenge.clone())]);
    h.recv(challenge.clone()).unwrap();
    assert_eq!(h.events(), [ServerEvent::Auth(challenge)]);
    h.server.accept(h.now, ConnAck::default(), None);
    assert!(matches!(h.sent().as_slice(), [Packet::ConnAck(_)]));
}

#[test]
fn a_connect_handed_over_as_a_packet_sets_the_version_for_later_bytes() {
    let mut h = Harness::new(ServerOptions::default());
    h.connect_v(ProtocolVersion::V5);
    let mut wire = BytesMut::new();
    msg("t", QoS::AtLeastOnce, 1)
        .encode(ProtocolVersion::V5, &mut wire)
        .unwrap();
    h.server.handle_bytes(h.now, &mut wire).unwrap();
    assert!(matches!(h.events().as_slice(), [ServerEvent::Message(_)]));
}

#[test]
fn diagnostics_are_dropped_to_fit_the_clients_maximum_packet_size() {
    // [MQTT-3.9.2-1], [MQTT-3.9.2-2], [MQTT-3.2.2-19]: Reason String first, then User Properties.
    let mut h = Harness::new(ServerOptions::default());
    let mut c = Connect::new(ProtocolVersion::V5, "c".try_into().unwrap());
    c.properties.maximum_packet_size = NonZeroU32::new(40);
    h.recv(c).unwrap();
    h.events();
    let mut ack = ConnAck::default();
    ack.properties.reason_string = Some(
        "a reason string far too long to fit in forty bytes"
            .try_into()
            .unwrap(),
    );
    h.server.accept(h.now, ack, None);
    let sent = h.sent();
    let [Packet::ConnAck(ack)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert!(ack.properties.reason_string.is_none());
    assert!(sent[0].encoded_len(ProtocolVersion::V5) <= 40);

    let user = UserProperty::new(
        "k".try_into().unwrap(),
        "a value of some length, too long".try_into().unwrap(),
    );
    let small = UserProperty::new("k".try_into().unwrap(), "v".try_into().unwrap());
    for (users, kept) in [(vec![small.clone()], true), (vec![user], false)] {
        let suback = SubAck {
            packet_id: pid(1),
            reasons: vec![SubAckReason::GrantedQoS0],
            properties: AckProperties {
                reason_string: Some("another long reason string".try_into().unwrap()),
                user_properties: users,
            },
        };
        h.server.suback(suback);
        let sent = h.sent();
        let [Packet::SubAck(s)] = sent.as_slice() else {
            panic!("{sent:?}")
        };
        assert!(s.properties.reason_string.is_none());
        assert_eq!(!s.properties.user_properties.is_empty(), kept);
        assert!(sent[0].encoded_len(ProtocolVersion::V5) <= 40);
    }
}

#[test]
fn a_violation_before_connack_still_sends_connack_first() {
    // [MQTT-3.2.0-1], [MQTT-3.14.0-1]: CONNACK precedes the DISCONNECT.
    let mut h = Harness::new(ServerOptions {
        retain_available: false,
        ..Default::default()
    });
    h.recv(Connect::new(ProtocolVersion::V5, "c".try_into().unwrap()))
        .unwrap();
    let mut early = msg("t", QoS::AtMostOnce, 1);
    early.retain = true;
    h.recv(early).unwrap();
    h.events();
    h.server.accept(h.now, ConnAck::default(), None);
    let sent = h.sent();
    assert!(
        matches!(sent.as_slice(), [Packet::ConnAck(_), Packet::Disconnect(d)] if d.reason == DisconnectReason::RetainNotSupported),
        "{sent:?}"
    );
}

#[test]
fn what_connack_announces_is_what_is_enforced() {
    let mut h = Harness::new(ServerOptions::default());
    h.recv(Connect::new(ProtocolVersion::V5, "c".try_into().unwrap()))
        .unwrap();
    h.events();
    let mut ack = ConnAck::default();
    ack.properties.topic_alias_maximum = Some(100);
    h.server.accept(h.now, ack, None);
    h.sent();
    let mut p = msg("t", QoS::AtMostOnce, 1);
    p.properties_mut().topic_alias = NonZeroU16::new(80);
    assert!(h.recv(p).is_ok(), "alias 80 is within the announced 100");
}

#[test]
fn clean_start_never_resumes_and_a_closed_connection_reports_once() {
    // [MQTT-3.2.2-2]: Clean Start gives Session Present 0 even with stored state.
    let mut h = Harness::new(ServerOptions::default());
    let stored = SessionState {
        queued: vec![(RequestId::from_raw(1), msg("old", QoS::AtLeastOnce, 1))],
        ..Default::default()
    };
    let ack = h.connect(
        Connect::new(ProtocolVersion::V5, "c".try_into().unwrap()),
        Some(stored),
    );
    assert!(!ack.session_present);
    assert!(h.sent().is_empty(), "nothing from a discarded session");
    // Closed by the server, then the transport goes: one Disconnected event.
    h.server.disconnect(DisconnectReason::SessionTakenOver);
    h.server.connection_lost();
    assert_eq!(
        h.events(),
        [ServerEvent::Disconnected(ConnectionError::ClosedLocally(
            DisconnectReason::SessionTakenOver
        ))]
    );
}

#[test]
fn a_delivery_without_a_topic_is_refused() {
    let mut h = Harness::new(ServerOptions::default());
    h.connect_v(ProtocolVersion::V3_1_1);
    let p = Publish::new(TopicName::default(), &b"x"[..]);
    assert_eq!(h.server.deliver(p), Err(DeliverError::EmptyTopic));
}

#[test]
fn untracked_messages_produce_no_events_and_tracked_ones_do() {
    let mut h = Harness::new(ServerOptions::default());
    h.connect_v(ProtocolVersion::V5);
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        for tracked in [false, true] {
            let request = if tracked {
                RequestId::from_raw(7)
            } else {
                RequestId::UNTRACKED
            };
            h.server.deliver_as(msg("t", qos, 1), request).unwrap();
            let sent = h.sent();
            let [Packet::Publish(p)] = sent.as_slice() else {
                panic!("{sent:?}")
            };
            // The flow runs the same either way.
            if let Some(id) = p.packet_id() {
                if qos == QoS::AtLeastOnce {
                    h.recv(PubAck::new(id)).unwrap();
                } else {
                    h.recv(PubRec::new(id)).unwrap();
                    assert!(matches!(h.sent().as_slice(), [Packet::PubRel(_)]));
                    h.recv(PubComp::new(id)).unwrap();
                }
            }
            let events = h.events();
            if tracked {
                assert!(
                    events.iter().any(|e| matches!(
                        e,
                        ServerEvent::Delivered { request: r, .. } if *r == request
                    )),
                    "{qos:?}: {events:?}"
                );
            } else {
                assert!(events.is_empty(), "{qos:?}: {events:?}");
            }
            assert_eq!(h.server.in_flight(), 0);
        }
    }
}
