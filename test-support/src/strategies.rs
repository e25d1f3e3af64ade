//! proptest strategies for valid packets of each protocol version.
//!
//! Every packet a strategy yields for a version encodes in that version and
//! decodes back to an equal value: fields that the version cannot carry are
//! left at their defaults.

use mqtt_codec::{property::*, *};
use proptest::{collection::vec, option, prelude::*};
use std::num::{NonZeroU16, NonZeroU32};

/// All protocol versions.
pub fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![
        Just(ProtocolVersion::V3_1),
        Just(ProtocolVersion::V3_1_1),
        Just(ProtocolVersion::V5)
    ]
}

/// UTF-8 strings that satisfy section 1.5.4 (no U+0000), mostly short.
pub fn mqtt_str() -> impl Strategy<Value = MqttStr> {
    "[^\u{0}]{0,24}".prop_map(|s| MqttStr::try_from(s).expect("generated string is valid"))
}

/// Non-empty topic names (no wildcards).
pub fn topic_name() -> impl Strategy<Value = TopicName> {
    "[^\u{0}+#]{1,24}".prop_map(|s| TopicName::try_from(s).expect("generated topic is valid"))
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[^\u{0}+#/]{0,8}",
        1 => Just("+".to_string()),
    ]
}

/// Valid topic filters, with `+`, trailing `#` and `$share/` groups.
pub fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    (
        vec(level(), 1..5),
        any::<bool>(),
        option::weighted(0.2, "[^\u{0}+#/]{1,6}"),
    )
        .prop_map(|(levels, hash, share)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str("/#");
            }
            if f.is_empty() {
                f.push('#');
            }
            if let Some(group) = share {
                f = format!("$share/{group}/{f}");
            }
            TopicFilter::try_from(f).expect("generated filter is valid")
        })
}

/// Binary data.
pub fn binary() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..32).prop_map(Bytes::from)
}

/// Packet identifiers.
pub fn packet_id() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|v| PacketId::new(v).expect("non-zero"))
}

fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> {
    vec(
        (mqtt_str(), mqtt_str()).prop_map(|(n, v)| UserProperty::new(n, v)),
        0..3,
    )
}

fn nz16() -> impl Strategy<Value = NonZeroU16> {
    (1u16..).prop_map(|v| NonZeroU16::new(v).expect("non-zero"))
}

fn nz32() -> impl Strategy<Value = NonZeroU32> {
    (1u32..).prop_map(|v| NonZeroU32::new(v).expect("non-zero"))
}

fn sub_id() -> impl Strategy<Value = NonZeroU32> {
    (1u32..=MAX_VARINT).prop_map(|v| NonZeroU32::new(v).expect("non-zero"))
}

fn format() -> impl Strategy<Value = PayloadFormat> {
    prop_oneof![Just(PayloadFormat::Unspecified), Just(PayloadFormat::Utf8)]
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

/// Authentication method and data: data only with a method.
fn auth_pair() -> impl Strategy<Value = (Option<MqttStr>, Option<Bytes>)> {
    option::of((mqtt_str(), option::of(binary()))).prop_map(|o| match o {
        Some((m, d)) => (Some(m), d),
        None => (None, None),
    })
}

/// CONNECT properties.
pub fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        option::of(any::<u32>()),
        auth_pair(),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(nz16()),
        option::of(any::<u16>()),
        user_properties(),
        option::of(nz32()),
    )
        .prop_map(
            |(sei, (am, ad), rpi, rri, rm, tam, up, mps)| ConnectProperties {
                session_expiry_interval: sei,
                authentication_method: am,
                authentication_data: ad,
                request_problem_information: rpi,
                request_response_information: rri,
                receive_maximum: rm,
                topic_alias_maximum: tam,
                user_properties: up,
                maximum_packet_size: mps,
            },
        )
}

/// Will properties.
pub fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        option::of(format()),
        option::of(any::<u32>()),
        option::of(mqtt_str()),
        option::of(topic_name()),
        option::of(binary()),
        option::of(any::<u32>()),
        user_properties(),
    )
        .prop_map(|(pf, mei, ct, rt, cd, wdi, up)| WillProperties {
            payload_format_indicator: pf,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            will_delay_interval: wdi,
            user_properties: up,
        })
}

/// CONNECT in `v`.
pub fn connect(v: ProtocolVersion) -> impl Strategy<Value = Connect> {
    let will = option::of((
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        will_properties(),
    ));
    (
        any::<bool>(),
        any::<u16>(),
        mqtt_str(),
        will,
        option::of(mqtt_str()),
        option::of(binary()),
        connect_properties(),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, props)| {
                let v5 = v.is_v5();
                Connect {
                    version: v,
                    clean_start,
                    keep_alive,
                    client_id,
                    will: will.map(|(topic, payload, qos, retain, p)| Will {
                        topic,
                        payload,
                        qos,
                        retain,
                        properties: if v5 { p } else { Default::default() },
                    }),
                    // Before MQTT 5 a password needs a user name.
                    password: if v5 || username.is_some() {
                        password
                    } else {
                        None
                    },
                    username,
                    properties: if v5 { props } else { Default::default() },
                }
            },
        )
}

/// CONNACK properties.
pub fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    (
        (
            option::of(any::<u32>()),
            option::of(mqtt_str()),
            option::of(any::<u16>()),
            auth_pair(),
            option::of(mqtt_str()),
            option::of(mqtt_str()),
            option::of(mqtt_str()),
            option::of(nz16()),
        ),
        (
            option::of(any::<u16>()),
            option::of(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
            option::of(any::<bool>()),
            user_properties(),
            option::of(nz32()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
        ),
    )
        .prop_map(
            |((sei, aci, ska, (am, ad), ri, sr, rs, rm), (tam, mq, ra, up, mps, wsa, sia, ssa))| {
                ConnAckProperties {
                    session_expiry_interval: sei,
                    assigned_client_identifier: aci,
                    server_keep_alive: ska,
                    authentication_method: am,
                    authentication_data: ad,
                    response_information: ri,
                    server_reference: sr,
                    reason_string: rs,
                    receive_maximum: rm,
                    topic_alias_maximum: tam,
                    maximum_qos: mq,
                    retain_available: ra,
                    user_properties: up,
                    maximum_packet_size: mps,
                    wildcard_subscription_available: wsa,
                    subscription_identifier_available: sia,
                    shared_subscription_available: ssa,
                }
            },
        )
}

/// CONNACK in `v`.
pub fn connack(v: ProtocolVersion) -> impl Strategy<Value = ConnAck> {
    let reason = if v.is_v5() {
        proptest::sample::select(ConnectReason::ALL).boxed()
    } else {
        (0u8..=5)
            .prop_map(|c| ConnectReason::from_v3_return_code(c).expect("0-5 are return codes"))
            .boxed()
    };
    (any::<bool>(), reason, connack_properties()).prop_map(move |(sp, reason, props)| ConnAck {
        session_present: sp && !reason.is_error() && v != ProtocolVersion::V3_1,
        reason,
        properties: if v.is_v5() { props } else { Default::default() },
    })
}

/// PUBLISH properties (with subscription identifiers, as a server sends them).
pub fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        option::of(format()),
        option::of(any::<u32>()),
        option::of(mqtt_str()),
        option::of(topic_name()),
        option::of(binary()),
        vec(sub_id(), 0..3),
        option::of(nz16()),
        user_properties(),
    )
        .prop_map(|(pf, mei, ct, rt, cd, si, ta, up)| PublishProperties {
            payload_format_indicator: pf,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            subscription_identifiers: si,
            topic_alias: ta,
            user_properties: up,
        })
}

/// PUBLISH in `v`. MQTT 5 PUBLISHes sometimes use a Topic Alias with an empty topic.
pub fn publish(v: ProtocolVersion) -> impl Strategy<Value = Publish> {
    (
        any::<bool>(),
        qos(),
        packet_id(),
        any::<bool>(),
        topic_name(),
        vec(any::<u8>(), 0..256),
        publish_properties(),
        any::<bool>(),
    )
        .prop_map(
            move |(dup, qos, id, retain, topic, payload, props, empty_topic)| {
                let qos_pid = QosPid::new(qos, id);
                let props = if v.is_v5() { props } else { Default::default() };
                let topic = if empty_topic && props.topic_alias.is_some() {
                    TopicName::default()
                } else {
                    topic
                };
                let mut p = Publish::new(topic, payload);
                p.dup = dup && qos != QoS::AtMostOnce;
                p.qos_pid = qos_pid;
                p.retain = retain;
                p.set_properties(props);
                p
            },
        )
}

/// Reason string and user properties.
pub fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (option::of(mqtt_str()), user_properties()).prop_map(|(reason_string, user_properties)| {
        AckProperties {
            reason_string,
            user_properties,
        }
    })
}

macro_rules! ack_strategy {
    ($fn:ident, $ty:ident, $reason:ident) => {
        #[doc = concat!("`", stringify!($ty), "` in `v`.")]
        pub fn $fn(v: ProtocolVersion) -> impl Strategy<Value = $ty> {
            (
                packet_id(),
                proptest::sample::select($reason::ALL),
                ack_properties(),
            )
                .prop_map(move |(id, r, p)| {
                    let mut ack = $ty::new(id);
                    if v.is_v5() {
                        ack.reason = r;
                        ack.properties = p;
                    }
                    ack
                })
        }
    };
}

ack_strategy!(puback, PubAck, PubAckReason);
ack_strategy!(pubrec, PubRec, PubAckReason);
ack_strategy!(pubrel, PubRel, PubRelReason);
ack_strategy!(pubcomp, PubComp, PubRelReason);

/// SUBSCRIBE in `v`.
pub fn subscribe(v: ProtocolVersion) -> impl Strategy<Value = Subscribe> {
    let options = (
        qos(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(RetainHandling::SendAtSubscribe),
            Just(RetainHandling::SendAtSubscribeIfNew),
            Just(RetainHandling::DoNotSend)
        ],
    );
    (
        packet_id(),
        vec((topic_filter(), options), 1..6),
        option::of(sub_id()),
        user_properties(),
    )
        .prop_map(move |(packet_id, subs, si, up)| Subscribe {
            packet_id,
            subscriptions: subs
                .into_iter()
                .map(|(filter, (qos, nl, rap, rh))| {
                    let options = if v.is_v5() {
                        SubscriptionOptions {
                            qos,
                            no_local: nl && !filter.is_shared(),
                            retain_as_published: rap,
                            retain_handling: rh,
                        }
                    } else {
                        SubscriptionOptions::qos(qos)
                    };
                    Subscription { filter, options }
                })
                .collect(),
            properties: if v.is_v5() {
                SubscribeProperties {
                    subscription_identifier: si,
                    user_properties: up,
                }
            } else {
                Default::default()
            },
        })
}

/// SUBACK in `v`.
pub fn suback(v: ProtocolVersion) -> impl Strategy<Value = SubAck> {
    const V3_CODES: &[SubAckReason] = &[
        SubAckReason::GrantedQoS0,
        SubAckReason::GrantedQoS1,
        SubAckReason::GrantedQoS2,
        SubAckReason::UnspecifiedError,
    ];
    let codes = if v.is_v5() {
        SubAckReason::ALL
    } else {
        V3_CODES
    };
    (
        packet_id(),
        vec(proptest::sample::select(codes), 1..6),
        ack_properties(),
    )
        .prop_map(move |(id, reasons, p)| SubAck {
            packet_id: id,
            reasons,
            properties: if v.is_v5() { p } else { Default::default() },
        })
}

/// UNSUBSCRIBE in `v`.
pub fn unsubscribe(v: ProtocolVersion) -> impl Strategy<Value = Unsubscribe> {
    (packet_id(), vec(topic_filter(), 1..6), user_properties()).prop_map(
        move |(id, filters, up)| Unsubscribe {
            packet_id: id,
            filters,
            properties: if v.is_v5() {
                UnsubscribeProperties {
                    user_properties: up,
                }
            } else {
                Default::default()
            },
        },
    )
}

/// UNSUBACK in `v` (no reason codes before MQTT 5).
pub fn unsuback(v: ProtocolVersion) -> impl Strategy<Value = UnsubAck> {
    (
        packet_id(),
        vec(proptest::sample::select(UnsubAckReason::ALL), 1..6),
        ack_properties(),
    )
        .prop_map(move |(id, reasons, p)| UnsubAck {
            packet_id: id,
            reasons: if v.is_v5() { reasons } else { Vec::new() },
            properties: if v.is_v5() { p } else { Default::default() },
        })
}

/// DISCONNECT in `v`.
pub fn disconnect(v: ProtocolVersion) -> impl Strategy<Value = Disconnect> {
    (
        proptest::sample::select(DisconnectReason::ALL),
        option::of(any::<u32>()),
        option::of(mqtt_str()),
        option::of(mqtt_str()),
        user_properties(),
    )
        .prop_map(move |(reason, sei, sr, rs, up)| {
            if v.is_v5() {
                Disconnect {
                    reason,
                    properties: DisconnectProperties {
                        session_expiry_interval: sei,
                        server_reference: sr,
                        reason_string: rs,
                        user_properties: up,
                    },
                }
            } else {
                Disconnect::default()
            }
        })
}

/// AUTH (MQTT 5 only): a method whenever the packet is not an empty success.
pub fn auth() -> impl Strategy<Value = Auth> {
    (
        proptest::sample::select(AuthReason::ALL),
        mqtt_str(),
        option::of(binary()),
        option::of(mqtt_str()),
        user_properties(),
        any::<bool>(),
    )
        .prop_map(|(reason, method, data, rs, up, empty)| {
            if empty {
                Auth::default()
            } else {
                Auth {
                    reason,
                    properties: AuthProperties {
                        authentication_method: Some(method),
                        authentication_data: data,
                        reason_string: rs,
                        user_properties: up,
                    },
                }
            }
        })
}

/// Any packet valid in `v`.
pub fn packet(v: ProtocolVersion) -> BoxedStrategy<Packet> {
    let mut options: Vec<BoxedStrategy<Packet>> = vec![
        connect(v).prop_map(Packet::from).boxed(),
        connack(v).prop_map(Packet::from).boxed(),
        publish(v).prop_map(Packet::from).boxed(),
        puback(v).prop_map(Packet::from).boxed(),
        pubrec(v).prop_map(Packet::from).boxed(),
        pubrel(v).prop_map(Packet::from).boxed(),
        pubcomp(v).prop_map(Packet::from).boxed(),
        subscribe(v).prop_map(Packet::from).boxed(),
        suback(v).prop_map(Packet::from).boxed(),
        unsubscribe(v).prop_map(Packet::from).boxed(),
        unsuback(v).prop_map(Packet::from).boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect(v).prop_map(Packet::from).boxed(),
    ];
    if v.is_v5() {
        options.push(auth().prop_map(Packet::from).boxed());
    }
    proptest::strategy::Union::new(options).boxed()
}
