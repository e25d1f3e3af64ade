//! One test per class of malformed input, each asserting the error and the
//! MQTT 5 reason code it maps to, named after the spec statements it checks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failed test

use mqtt_codec::{
    BytesMut, ConnectReason, DecodeError, Decoder, DisconnectReason as R, Encode, Packet,
    PacketType,
    ProtocolVersion::{self, V3_1_1, V5},
    Publish, StringError, TopicName,
};

/// A packet from its first byte and body (the Remaining Length is computed).
fn frame(first: u8, body: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.extend_from_slice(&[first]);
    let mut n = body.len();
    loop {
        let mut byte = (n & 0x7F) as u8;
        n >>= 7;
        if n > 0 {
            byte |= 0x80;
        }
        b.extend_from_slice(&[byte]);
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(body);
    b
}

fn decode_as(d: &mut Decoder, mut buf: BytesMut) -> Result<Option<Packet>, DecodeError> {
    d.decode(&mut buf)
}

fn decode(v: ProtocolVersion, buf: BytesMut) -> Result<Option<Packet>, DecodeError> {
    let mut d = Decoder::new();
    d.set_version(v);
    decode_as(&mut d, buf)
}

#[track_caller]
fn fails(v: ProtocolVersion, buf: BytesMut, reason: R) -> DecodeError {
    let e = decode(v, buf).expect_err("input must be refused");
    assert_eq!(e.disconnect_reason(), reason, "reason code for {e:?}");
    e
}

#[track_caller]
fn server_fails(buf: BytesMut, reason: R) -> DecodeError {
    let mut d = Decoder::server();
    d.set_version(V5);
    let e = decode_as(&mut d, buf).expect_err("input must be refused");
    assert_eq!(e.disconnect_reason(), reason, "reason code for {e:?}");
    e
}

/// Binary field: length prefix and bytes.
fn s(x: &[u8]) -> Vec<u8> {
    let mut v = (x.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(x);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// CONNECT variable header for 3.1.1 with `flags`, keep alive 60.
fn connect311(flags: u8, payload: &[u8]) -> BytesMut {
    frame(0x10, &cat(&[&s(b"MQTT"), &[4, flags, 0, 60], payload]))
}

fn connect5(flags: u8, props: &[u8], payload: &[u8]) -> BytesMut {
    frame(
        0x10,
        &cat(&[
            &s(b"MQTT"),
            &[5, flags, 0, 60],
            &[props.len() as u8],
            props,
            payload,
        ]),
    )
}

/// A v5 PUBLISH QoS 0 to `a` with these properties.
fn publish5(props: &[u8]) -> BytesMut {
    frame(
        0x30,
        &cat(&[&s(b"a"), &[props.len() as u8], props, b"payload"]),
    )
}

// ---- Fixed header -------------------------------------------------------

#[test]
fn remaining_length_longer_than_four_bytes_is_malformed() {
    // [MQTT-1.5.5-1] (and section 2.1.4: at most four bytes)
    let buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01][..]);
    assert_eq!(
        fails(V5, buf, R::MalformedPacket),
        DecodeError::MalformedVarInt
    );
}

#[test]
fn non_minimal_remaining_length_is_malformed() {
    // [MQTT-1.5.5-1]: 0x80 0x00 encodes 0 in two bytes.
    let buf = BytesMut::from(&[0xC0, 0x80, 0x00][..]);
    assert_eq!(
        fails(V5, buf, R::MalformedPacket),
        DecodeError::MalformedVarInt
    );
}

#[test]
fn reserved_packet_types_are_malformed() {
    assert_eq!(
        fails(V5, frame(0x00, &[]), R::MalformedPacket),
        DecodeError::InvalidPacketType(0)
    );
    // AUTH does not exist in 3.1.1.
    assert_eq!(
        fails(V3_1_1, frame(0xF0, &[]), R::MalformedPacket),
        DecodeError::InvalidPacketType(15)
    );
}

#[test]
fn fixed_header_flags_must_match_table_2_2() {
    // [MQTT-2.1.3-1], 3.1.1 [MQTT-2.2.2-1] [MQTT-2.2.2-2]
    let cases: &[(u8, &[u8], PacketType)] = &[
        // [MQTT-3.6.1-1] PUBREL must be 0b0010
        (0x60, &[0, 1], PacketType::PubRel),
        // [MQTT-3.8.1-1] SUBSCRIBE must be 0b0010
        (0x80, &[0, 1, 0, 0, 1, b'a', 0], PacketType::Subscribe),
        // [MQTT-3.10.1-1] UNSUBSCRIBE must be 0b0010
        (0xA0, &[0, 1, 0, 0, 1, b'a'], PacketType::Unsubscribe),
        (0x41, &[0, 1], PacketType::PubAck),
        (0xC1, &[], PacketType::PingReq),
        // [MQTT-3.14.1-1] DISCONNECT reserved bits
        (0xE1, &[], PacketType::Disconnect),
        // [MQTT-3.15.1-1] AUTH flags
        (0xF8, &[], PacketType::Auth),
    ];
    for &(first, body, packet) in cases {
        let e = fails(V5, frame(first, body), R::MalformedPacket);
        assert_eq!(
            e,
            DecodeError::InvalidHeaderFlags {
                packet,
                flags: first & 0x0F
            }
        );
    }
}

#[test]
fn oversized_packet_is_refused_from_the_fixed_header_alone() {
    // A peer announcing ~256 MB is refused after 5 bytes, nothing buffered.
    let mut d = Decoder::new().with_max_packet_size(1024);
    d.set_version(V5);
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let e = d.decode(&mut buf).expect_err("too large");
    assert_eq!(
        e,
        DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: 1024
        }
    );
    assert_eq!(e.disconnect_reason(), R::PacketTooLarge);
    assert!(
        buf.capacity() < 4096,
        "no room was reserved for the announced body"
    );
    // The limit counts the whole packet: 1024 bytes pass, 1025 do not.
    let ok = frame(0x30, &cat(&[&s(b"t"), &[0], &vec![0u8; 1024 - 7]]));
    assert_eq!(ok.len(), 1024);
    assert!(d.decode(&mut ok.clone()).is_ok());
    let big = frame(0x30, &cat(&[&s(b"t"), &[0], &vec![0u8; 1024 - 6]]));
    assert!(matches!(
        d.decode(&mut big.clone()),
        Err(DecodeError::PacketTooLarge { size: 1025, .. })
    ));
}

#[test]
fn trailing_bytes_are_malformed() {
    assert_eq!(
        fails(V5, frame(0xC0, &[0]), R::MalformedPacket),
        DecodeError::TrailingBytes(1)
    );
    // 3.1.1 PUBACK has Remaining Length 2.
    assert_eq!(
        fails(V3_1_1, frame(0x40, &[0, 1, 0]), R::MalformedPacket),
        DecodeError::TrailingBytes(1)
    );
    let mut c = connect311(0x02, &s(b"id")).to_vec();
    c[1] += 1;
    c.push(0);
    assert_eq!(
        fails(V3_1_1, BytesMut::from(&c[..]), R::MalformedPacket),
        DecodeError::TrailingBytes(1)
    );
}

#[test]
fn truncated_fields_are_malformed() {
    // Remaining Length 3 cannot hold a 5-byte topic.
    let e = fails(V5, frame(0x30, &[0, 5, b'a']), R::MalformedPacket);
    assert!(matches!(e, DecodeError::UnexpectedEnd(_)), "{e:?}");
    // Property length pointing past the end of the packet.
    let e = fails(V5, frame(0x40, &[0, 1, 0, 9, 0x1F]), R::MalformedPacket);
    assert!(matches!(e, DecodeError::UnexpectedEnd(_)), "{e:?}");
}

// ---- PUBLISH --------------------------------------------------------------

#[test]
fn publish_qos_3_is_malformed() {
    // [MQTT-3.3.1-4]
    let e = fails(
        V5,
        frame(0x36, &cat(&[&s(b"a"), &[0, 1, 0]])),
        R::MalformedPacket,
    );
    assert_eq!(e, DecodeError::InvalidQoS("PUBLISH"));
}

#[test]
fn dup_on_qos_0_is_malformed() {
    // [MQTT-3.3.1-2]
    assert_eq!(
        fails(V3_1_1, frame(0x38, &s(b"a")), R::MalformedPacket),
        DecodeError::DupOnQoS0
    );
}

#[test]
fn qos_0_publish_has_no_packet_id_and_empty_properties_are_still_written() {
    // [MQTT-2.2.1-2] (3.1.1 [MQTT-2.3.1-5]) no packet id at QoS 0;
    // [MQTT-2.2.2-1] property length 0 present.
    let p = Publish::new(TopicName::from_static("a").expect("valid"), &b"x"[..]);
    let mut buf = BytesMut::new();
    p.encode(V5, &mut buf).expect("encodes");
    assert_eq!(&buf[..], &[0x30, 5, 0, 1, b'a', 0, b'x']);
    buf.clear();
    p.encode(V3_1_1, &mut buf).expect("encodes");
    assert_eq!(&buf[..], &[0x30, 4, 0, 1, b'a', b'x']);
}

#[test]
fn wildcards_in_topic_names_are_topic_name_invalid() {
    // [MQTT-3.3.2-2], [MQTT-4.7.0-1], 3.1.1 [MQTT-4.7.1-1]
    for topic in [&b"a/+"[..], b"#", b"a/#", b"+"] {
        let e = fails(
            V5,
            frame(0x30, &cat(&[&s(topic), &[0]])),
            R::TopicNameInvalid,
        );
        assert!(matches!(
            e,
            DecodeError::InvalidString {
                error: StringError::WildcardInTopicName,
                ..
            }
        ));
        fails(V3_1_1, frame(0x30, &s(topic)), R::TopicNameInvalid);
    }
    // [MQTT-3.3.2-14] Response Topic has no wildcards either.
    let mut props = vec![0x08];
    props.extend(s(b"r/#"));
    fails(V5, publish5(&props), R::TopicNameInvalid);
}

#[test]
fn empty_topic_without_alias_is_refused() {
    // [MQTT-4.7.3-1]; MQTT 5 allows it only with a Topic Alias.
    assert_eq!(
        fails(V5, frame(0x30, &cat(&[&s(b""), &[0]])), R::ProtocolError),
        DecodeError::EmptyTopic
    );
    fails(V3_1_1, frame(0x30, &s(b"")), R::MalformedPacket);
    // With an alias it decodes.
    let ok = frame(0x30, &cat(&[&s(b""), &[3, 0x23, 0, 1]]));
    assert!(matches!(decode(V5, ok), Ok(Some(Packet::Publish(_)))));
}

#[test]
fn topic_alias_zero_is_topic_alias_invalid() {
    assert_eq!(
        fails(V5, publish5(&[0x23, 0, 0]), R::TopicAliasInvalid),
        DecodeError::ZeroTopicAlias
    );
}

#[test]
fn subscription_identifier_from_a_client_is_a_protocol_error() {
    // [MQTT-3.3.4-6]
    assert_eq!(
        server_fails(publish5(&[0x0B, 1]), R::ProtocolError),
        DecodeError::SubscriptionIdentifierFromClient
    );
    // A client may receive several.
    let mut d = Decoder::client(V5);
    let Some(Packet::Publish(p)) = decode_as(&mut d, publish5(&[0x0B, 1, 0x0B, 2])).expect("valid")
    else {
        panic!()
    };
    assert_eq!(p.properties().subscription_identifiers.len(), 2);
}

// ---- Strings --------------------------------------------------------------

#[test]
fn ill_formed_utf8_is_malformed() {
    // [MQTT-1.5.4-1], 3.1.1 [MQTT-1.5.3-1]: invalid byte, truncated sequence, overlong, surrogate.
    for bad in [&b"\xFF"[..], b"a\xC3", b"\xC0\xAF", b"\xED\xA0\x80"] {
        let e = fails(V5, frame(0x30, &cat(&[&s(bad), &[0]])), R::MalformedPacket);
        assert!(
            matches!(
                e,
                DecodeError::InvalidString {
                    error: StringError::InvalidUtf8,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    fails(
        V3_1_1,
        connect311(0x02, &s(b"\xED\xBF\xBF")),
        R::MalformedPacket,
    );
}

#[test]
fn null_character_is_malformed() {
    // [MQTT-1.5.4-2], [MQTT-4.7.3-2], 3.1.1 [MQTT-1.5.3-2]
    let e = fails(
        V5,
        frame(0x30, &cat(&[&s(b"a\0b"), &[0]])),
        R::MalformedPacket,
    );
    assert!(matches!(
        e,
        DecodeError::InvalidString {
            error: StringError::NullCharacter,
            ..
        }
    ));
    let e = fails(V3_1_1, connect311(0x02, &s(b"id\0")), R::MalformedPacket);
    assert_eq!(e.connect_reason(), ConnectReason::ClientIdentifierNotValid);
}

#[test]
fn byte_order_mark_is_kept() {
    // [MQTT-1.5.4-3], 3.1.1 [MQTT-1.5.3-3]
    let Some(Packet::Publish(p)) =
        decode(V5, frame(0x30, &cat(&[&s("\u{FEFF}a".as_bytes()), &[0]]))).expect("valid")
    else {
        panic!()
    };
    assert_eq!(p.topic(), "\u{FEFF}a");
}

#[test]
fn user_property_pair_obeys_string_rules() {
    // [MQTT-1.5.7-1]
    let mut props = vec![0x26];
    props.extend(s(b"name"));
    props.extend(s(b"va\0lue"));
    fails(V5, publish5(&props), R::MalformedPacket);
}

// ---- Topic filters ---------------------------------------------------------

fn subscribe5(filter: &[u8], options: u8) -> BytesMut {
    frame(0x82, &cat(&[&[0, 1, 0], &s(filter), &[options]]))
}

#[test]
fn misplaced_wildcards_in_filters_are_topic_filter_invalid() {
    // [MQTT-4.7.1-1] '#' last and alone; [MQTT-4.7.1-2] '+' a whole level (3.1.1 [MQTT-4.7.1-2], [MQTT-4.7.1-3])
    for bad in [
        &b"sport/tennis#"[..],
        b"a/#/b",
        b"sport+",
        b"a/b+/c",
        b"##",
        b"",
    ] {
        server_fails(subscribe5(bad, 0), R::TopicFilterInvalid);
        let unsub = frame(0xA2, &cat(&[&[0, 1, 0], &s(bad)]));
        server_fails(unsub, R::TopicFilterInvalid);
    }
    for good in [&b"#"[..], b"+", b"+/a/+", b"a/#", b"+/+/#", b"/", b"$SYS/#"] {
        assert!(
            decode(V5, subscribe5(good, 0)).is_ok(),
            "{:?}",
            std::str::from_utf8(good)
        );
    }
}

#[test]
fn shared_subscription_syntax_is_checked() {
    // [MQTT-4.8.2-1] non-empty ShareName; [MQTT-4.8.2-2] no wildcards or '/', then '/' and a filter.
    for bad in [
        &b"$share//a"[..],
        b"$share/g",
        b"$share/g/",
        b"$share/g+/a",
        b"$share/#/a",
    ] {
        server_fails(subscribe5(bad, 0), R::TopicFilterInvalid);
    }
    let Some(Packet::Subscribe(sub)) = decode(V5, subscribe5(b"$share/g/a/+", 1)).expect("valid")
    else {
        panic!()
    };
    assert_eq!(sub.subscriptions[0].filter.shared(), Some(("g", "a/+")));
}

// ---- SUBSCRIBE / UNSUBSCRIBE ------------------------------------------------

#[test]
fn subscription_options_rules() {
    // [MQTT-3.8.3-5] reserved bits 6-7
    let e = server_fails(subscribe5(b"a", 0x40), R::MalformedPacket);
    assert!(matches!(e, DecodeError::InvalidSubscriptionOptions(_)));
    // QoS 3 and Retain Handling 3 are Protocol Errors in MQTT 5.
    server_fails(subscribe5(b"a", 0x03), R::ProtocolError);
    server_fails(subscribe5(b"a", 0x30), R::ProtocolError);
    // [MQTT-3.8.3-4] No Local on a shared subscription.
    server_fails(subscribe5(b"$share/g/a", 0x04), R::ProtocolError);
    // 3.1.1 [MQTT-3.8.3-4]: upper six bits reserved, QoS 3 malformed.
    let sub311 = |o: u8| frame(0x82, &cat(&[&[0, 1], &s(b"a"), &[o]]));
    fails(V3_1_1, sub311(0x04), R::MalformedPacket);
    fails(V3_1_1, sub311(0x03), R::MalformedPacket);
}

#[test]
fn empty_subscribe_and_unsubscribe_are_protocol_errors() {
    // [MQTT-3.8.3-2] (3.1.1 [MQTT-3.8.3-3]), [MQTT-3.10.3-2]
    assert_eq!(
        server_fails(frame(0x82, &[0, 1, 0]), R::ProtocolError),
        DecodeError::EmptyPayload(PacketType::Subscribe)
    );
    assert_eq!(
        server_fails(frame(0xA2, &[0, 1, 0]), R::ProtocolError),
        DecodeError::EmptyPayload(PacketType::Unsubscribe)
    );
    fails(V3_1_1, frame(0x82, &[0, 1]), R::ProtocolError);
}

#[test]
fn zero_packet_identifier_is_refused() {
    // 3.1.1 [MQTT-2.3.1-1]
    for (first, body) in [
        (0x32u8, cat(&[&s(b"a"), &[0, 0]])),
        (0x40, vec![0, 0]),
        (0x62, vec![0, 0]),
        (0x82, cat(&[&[0, 0], &s(b"a"), &[0]])),
        (0xA2, cat(&[&[0, 0], &s(b"a")])),
    ] {
        assert_eq!(
            fails(V3_1_1, frame(first, &body), R::MalformedPacket),
            DecodeError::ZeroPacketId
        );
    }
}

// ---- Reason codes -----------------------------------------------------------

#[test]
fn reason_codes_outside_each_packets_table_are_malformed() {
    let cases: &[(u8, &[u8], PacketType, &str)] = &[
        (0x40, &[0, 1, 0x92], PacketType::PubAck, "[MQTT-3.4.2-1]"),
        (0x50, &[0, 1, 0x92], PacketType::PubRec, "[MQTT-3.5.2-1]"),
        (0x62, &[0, 1, 0x10], PacketType::PubRel, "[MQTT-3.6.2-1]"),
        (0x70, &[0, 1, 0x80], PacketType::PubComp, "[MQTT-3.7.2-1]"),
        (0x90, &[0, 1, 0, 0x03], PacketType::SubAck, "[MQTT-3.9.3-2]"),
        (
            0xB0,
            &[0, 1, 0, 0x01],
            PacketType::UnsubAck,
            "[MQTT-3.11.3-2]",
        ),
        (0xE0, &[0x05], PacketType::Disconnect, "[MQTT-3.14.2-1]"),
        (0xF0, &[0x01], PacketType::Auth, "[MQTT-3.15.2-1]"),
        (0x20, &[0, 0x8B], PacketType::ConnAck, "[MQTT-3.2.2-8]"),
    ];
    for &(first, body, packet, id) in cases {
        let e = fails(V5, frame(first, body), R::MalformedPacket);
        assert_eq!(
            e,
            DecodeError::InvalidReasonCode {
                packet,
                code: *body.last().expect("code")
            },
            "{id}"
        );
    }
    // 3.1.1: CONNACK return codes 6-255 reserved; SUBACK only 0, 1, 2, 0x80 ([MQTT-3.9.3-2]).
    fails(V3_1_1, frame(0x20, &[0, 6]), R::MalformedPacket);
    fails(V3_1_1, frame(0x90, &[0, 1, 0x87]), R::MalformedPacket);
}

#[test]
fn short_forms_mean_success() {
    // PUBACK etc. with Remaining Length 2, DISCONNECT and AUTH with 0.
    assert!(
        matches!(decode(V5, frame(0x40, &[0, 1])), Ok(Some(Packet::PubAck(a))) if a.reason.code() == 0)
    );
    assert!(
        matches!(decode(V5, frame(0xE0, &[])), Ok(Some(Packet::Disconnect(d))) if d.reason == R::NormalDisconnection)
    );
    assert!(matches!(
        decode(V5, frame(0xF0, &[])),
        Ok(Some(Packet::Auth(_)))
    ));
    // Reason code only, no property length (Remaining Length 3).
    assert!(matches!(
        decode(V5, frame(0x50, &[0, 1, 0x10])),
        Ok(Some(Packet::PubRec(_)))
    ));
}

// ---- Properties ---------------------------------------------------------------

#[test]
fn property_not_allowed_in_packet_is_malformed() {
    // Topic Alias (0x23) in CONNECT; Session Expiry (0x11) in PUBLISH; unknown id 0x7F.
    let e = fails(
        V5,
        connect5(0x02, &[0x23, 0, 1], &s(b"id")),
        R::MalformedPacket,
    );
    assert_eq!(
        e,
        DecodeError::InvalidProperty {
            packet: "CONNECT",
            id: 0x23
        }
    );
    fails(V5, publish5(&[0x11, 0, 0, 0, 1]), R::MalformedPacket);
    fails(V5, publish5(&[0x7F, 0]), R::MalformedPacket);
    // Will Delay Interval belongs to the Will Properties only.
    fails(
        V5,
        connect5(0x02, &[0x18, 0, 0, 0, 1], &s(b"id")),
        R::MalformedPacket,
    );
}

#[test]
fn duplicate_property_is_a_protocol_error() {
    let e = fails(
        V5,
        publish5(&[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2]),
        R::ProtocolError,
    );
    assert_eq!(e, DecodeError::DuplicateProperty(0x02));
    fails(
        V5,
        connect5(0x02, &[0x21, 0, 1, 0x21, 0, 2], &s(b"id")),
        R::ProtocolError,
    );
    // Subscription Identifier once in SUBSCRIBE.
    server_fails(
        frame(0x82, &cat(&[&[0, 1, 4, 0x0B, 1, 0x0B, 2], &s(b"a"), &[0]])),
        R::ProtocolError,
    );
    // User Properties may repeat, names included.
    let mut props = vec![0x26];
    props.extend(cat(&[&s(b"k"), &s(b"1"), &[0x26], &s(b"k"), &s(b"2")]));
    let Some(Packet::Publish(p)) = decode(V5, publish5(&props)).expect("valid") else {
        panic!()
    };
    assert_eq!(p.properties().user_properties.len(), 2);
    assert_eq!(p.properties().user_properties[1].value, "2");
}

#[test]
fn property_values_out_of_range_are_protocol_errors() {
    // Receive Maximum 0, Maximum Packet Size 0, Request Problem Information 2.
    for props in [
        &[0x21u8, 0, 0][..],
        &[0x27, 0, 0, 0, 0],
        &[0x17, 2],
        &[0x19, 2],
    ] {
        fails(V5, connect5(0x02, props, &s(b"id")), R::ProtocolError);
    }
    // Maximum QoS 2, Retain Available 2 in CONNACK.
    fails(V5, frame(0x20, &[0, 0, 2, 0x24, 2]), R::ProtocolError);
    fails(V5, frame(0x20, &[0, 0, 2, 0x25, 2]), R::ProtocolError);
    // Subscription Identifier 0; Payload Format Indicator 2.
    server_fails(
        frame(0x82, &cat(&[&[0, 1, 2, 0x0B, 0], &s(b"a"), &[0]])),
        R::ProtocolError,
    );
    fails(V5, publish5(&[0x01, 2]), R::ProtocolError);
}

#[test]
fn authentication_data_needs_a_method() {
    let mut props = vec![0x16];
    props.extend(s(b"data"));
    assert_eq!(
        fails(V5, connect5(0x02, &props, &s(b"id")), R::ProtocolError),
        DecodeError::MissingAuthenticationMethod
    );
    // AUTH with a reason code but no method.
    fails(V5, frame(0xF0, &[0x18, 0]), R::ProtocolError);
}

// ---- CONNECT / CONNACK -------------------------------------------------------

#[test]
fn connect_reserved_flag_is_malformed() {
    // [MQTT-3.1.2-3] (3.1.1 [MQTT-3.1.2-3])
    fails(V3_1_1, connect311(0x03, &s(b"id")), R::MalformedPacket);
    fails(V5, connect5(0x03, &[], &s(b"id")), R::MalformedPacket);
}

#[test]
fn will_flags_are_consistent() {
    // [MQTT-3.1.2-11] will QoS without will, [MQTT-3.1.2-13] will retain without will
    // (3.1.1 [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15])
    fails(
        V3_1_1,
        connect311(0x02 | 0x08, &s(b"id")),
        R::MalformedPacket,
    );
    fails(
        V3_1_1,
        connect311(0x02 | 0x20, &s(b"id")),
        R::MalformedPacket,
    );
    // [MQTT-3.1.2-12] will QoS 3 (3.1.1 [MQTT-3.1.2-14])
    let will = cat(&[&s(b"id"), &s(b"w"), &s(b"bye")]);
    let e = fails(
        V3_1_1,
        connect311(0x02 | 0x04 | 0x18, &will),
        R::MalformedPacket,
    );
    assert_eq!(e, DecodeError::InvalidQoS("will"));
    // [MQTT-3.1.2-9] will flag without will topic and payload
    fails(
        V3_1_1,
        connect311(0x02 | 0x04, &s(b"id")),
        R::MalformedPacket,
    );
    // Will topic with a wildcard.
    let will = cat(&[&s(b"id"), &s(b"w/#"), &s(b"bye")]);
    fails(V3_1_1, connect311(0x06, &will), R::TopicNameInvalid);
}

#[test]
fn user_name_and_password_flags_match_the_payload() {
    // [MQTT-3.1.2-17], [MQTT-3.1.2-19] (3.1.1 [MQTT-3.1.2-19], [MQTT-3.1.2-21]): flag set, field missing
    fails(V3_1_1, connect311(0x82, &s(b"id")), R::MalformedPacket);
    fails(V5, connect5(0x42, &[], &s(b"id")), R::MalformedPacket);
    // [MQTT-3.1.2-16], [MQTT-3.1.2-18] (3.1.1 [MQTT-3.1.2-18], [MQTT-3.1.2-20]): flag clear, field present (trailing bytes)
    fails(
        V3_1_1,
        connect311(0x02, &cat(&[&s(b"id"), &s(b"user")])),
        R::MalformedPacket,
    );
    // 3.1.1 [MQTT-3.1.2-22]: password without user name
    let e = fails(
        V3_1_1,
        connect311(0x42, &cat(&[&s(b"id"), &s(b"pw")])),
        R::ProtocolError,
    );
    assert!(matches!(e, DecodeError::InvalidConnectFlags(_)));
    // MQTT 5 allows it.
    assert!(decode(V5, connect5(0x42, &[], &cat(&[&s(b"id"), &s(b"pw")]))).is_ok());
}

#[test]
fn unknown_protocol_is_unsupported_protocol_version() {
    // [MQTT-3.1.2-1] (3.1.1 [MQTT-3.1.2-1], [MQTT-3.1.2-2])
    for (name, level) in [
        (&b"MQTT"[..], 6u8),
        (b"MQTT", 3),
        (b"MQIsdp", 4),
        (b"HTTP", 4),
    ] {
        let c = frame(0x10, &cat(&[&s(name), &[level, 2, 0, 60], &s(b"id")]));
        let e = decode(V5, c).expect_err("refused");
        assert_eq!(e, DecodeError::UnsupportedProtocol { level });
        assert_eq!(
            e.connect_reason(),
            ConnectReason::UnsupportedProtocolVersion
        );
    }
    // MQTT 3.1 (MQIsdp, level 3) is accepted.
    let c = frame(0x10, &cat(&[&s(b"MQIsdp"), &[3, 2, 0, 60], &s(b"id")]));
    assert!(
        matches!(decode(V5, c), Ok(Some(Packet::Connect(c))) if c.version == ProtocolVersion::V3_1)
    );
}

#[test]
fn connack_reserved_flags_and_session_present_on_failure() {
    // [MQTT-3.2.2-1]
    fails(V5, frame(0x20, &[0x02, 0, 0]), R::MalformedPacket);
    fails(V3_1_1, frame(0x20, &[0x80, 0]), R::MalformedPacket);
    // [MQTT-3.2.2-6] (3.1.1 [MQTT-3.2.2-4])
    fails(V5, frame(0x20, &[0x01, 0x87, 0]), R::MalformedPacket);
    fails(V3_1_1, frame(0x20, &[0x01, 0x05]), R::MalformedPacket);
}

// ---- Direction and version -----------------------------------------------------

#[test]
fn packets_in_the_wrong_direction_are_protocol_errors() {
    server_fails(frame(0x20, &[0, 0, 0]), R::ProtocolError);
    server_fails(frame(0xD0, &[]), R::ProtocolError);
    let mut client = Decoder::client(V5);
    let e = decode_as(&mut client, connect5(0x02, &[], &s(b"id"))).expect_err("refused");
    assert_eq!(e, DecodeError::UnexpectedPacket(PacketType::Connect));
    let e = decode_as(&mut client, frame(0xC0, &[])).expect_err("refused");
    assert_eq!(e.disconnect_reason(), R::ProtocolError);
}

#[test]
fn version_is_learned_from_connect() {
    let mut d = Decoder::server();
    // Anything but CONNECT first is refused: the version is unknown.
    let e = decode_as(&mut d, frame(0xC0, &[])).expect_err("refused");
    assert_eq!(e, DecodeError::VersionUnknown(PacketType::PingReq));
    // After a 3.1.1 CONNECT, a PUBLISH with what would be v5 properties is read as 3.1.1.
    assert!(decode_as(&mut d, connect311(0x02, &s(b"id"))).is_ok());
    assert_eq!(d.version(), Some(V3_1_1));
    let Some(Packet::Publish(p)) =
        decode_as(&mut d, frame(0x30, &cat(&[&s(b"a"), &[0, b'x']]))).expect("ok")
    else {
        panic!()
    };
    assert_eq!(p.payload(), &[0, b'x']);
}

#[test]
fn every_string_field_obeys_the_utf8_rules() {
    // [MQTT-3.1.3-4] client id, [MQTT-3.1.3-11] will topic, [MQTT-3.1.3-12] user name,
    // [MQTT-3.3.2-13] response topic, [MQTT-3.3.2-19] content type, [MQTT-1.5.7-1] user property;
    // 3.1.1 [MQTT-3.1.3-4], [MQTT-3.1.3-10], [MQTT-3.1.3-11].
    let bad = b"\xC0\x80"; // an overlong encoding of U+0000
    let will = |topic: &[u8]| cat(&[&s(b"id"), &s(topic), &s(b"bye")]);
    fails(V3_1_1, connect311(0x02, &s(bad)), R::MalformedPacket);
    fails(V3_1_1, connect311(0x06, &will(bad)), R::MalformedPacket);
    fails(
        V3_1_1,
        connect311(0x82, &cat(&[&s(b"id"), &s(bad)])),
        R::MalformedPacket,
    );
    fails(
        V5,
        connect5(0x06, &[], &cat(&[&s(b"id"), &[0], &s(bad), &s(b"bye")])),
        R::MalformedPacket,
    );
    for id in [0x03u8, 0x08] {
        let mut props = vec![id];
        props.extend(s(bad));
        fails(V5, publish5(&props), R::MalformedPacket);
    }
    let mut props = vec![0x26];
    props.extend(cat(&[&s(bad), &s(b"v")]));
    fails(V5, publish5(&props), R::MalformedPacket);
}

#[test]
fn connect_payload_fields_are_read_in_order() {
    // [MQTT-3.1.3-1] (3.1.1 [MQTT-3.1.3-1]): Client Identifier, Will Properties,
    // Will Topic, Will Payload, User Name, Password.
    let body = cat(&[
        &s(b"MQTT"),
        &[5, 0xC6, 0, 60, 0], // v5, user name + password + will + clean start, no properties
        &s(b"id"),
        &[5, 0x18, 0, 0, 0, 9], // Will Properties: Will Delay Interval 9
        &s(b"w/t"),
        &s(b"bye"),
        &s(b"user"),
        &s(b"pw"),
    ]);
    let Some(Packet::Connect(c)) = decode(V5, frame(0x10, &body)).expect("valid") else {
        panic!()
    };
    let will = c.will.as_ref().expect("will");
    assert_eq!(c.client_id, "id");
    assert_eq!(will.properties.will_delay_interval, Some(9));
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("w/t", &b"bye"[..])
    );
    assert_eq!(c.username.as_deref(), Some("user"));
    assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
}
