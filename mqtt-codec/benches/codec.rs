//! Decode and encode benchmarks, with the same packets through peer codecs
//! (mqttbytes 0.6 v4 and v5, mqtt-protocol 0.12, ntex-mqtt 9 decoding) in
//! the same run.
//!
//! Decoding reads frames laid back to back in a buffer of at least 256 KiB,
//! the way a socket read fills it; each timed batch decodes the whole buffer,
//! so timer overhead is spread over many packets. Encoding writes into a
//! cleared, already-allocated buffer. For 64 KiB payloads every library's
//! destination is placed 2 KiB away from its source modulo 4 KiB, to keep
//! clear of the 4 KiB-aliasing slowdown of memcpy on this kind of CPU.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failed test

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use mqtt_codec::{
    Bytes, BytesMut, Connect, Decoder, Encode, PacketId, ProtocolVersion, Publish, QoS, QosPid,
    Subscribe, Subscription, TopicFilter, TopicName, Will, property::UserProperty,
};
use std::{
    hint::black_box,
    time::{Duration, Instant},
};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
const TOPIC: &str = "sensors/room-17/temp"; // 20 bytes

fn topic() -> TopicName {
    TopicName::from_static(TOPIC).expect("valid")
}

fn pid() -> PacketId {
    PacketId::new(42).expect("non-zero")
}

/// A QoS 1 PUBLISH with a payload of `len` bytes.
fn publish(len: usize) -> Publish {
    let mut p = Publish::new(topic(), Bytes::from(vec![0xAB; len]));
    p.qos_pid = QosPid::AtLeastOnce(pid());
    p
}

/// An MQTT 5 QoS 1 PUBLISH with five properties and a 64 B payload.
fn publish_v5_props() -> Publish {
    let mut p = publish(64);
    let pr = p.properties_mut();
    pr.payload_format_indicator = Some(mqtt_codec::PayloadFormat::Utf8);
    pr.message_expiry_interval = Some(3600);
    pr.content_type = Some("application/json".try_into().expect("valid"));
    pr.response_topic = Some("replies/room-17".try_into().expect("valid"));
    pr.user_properties = vec![UserProperty::new(
        "trace".try_into().expect("v"),
        "abc123".try_into().expect("v"),
    )];
    p
}

fn connect() -> Connect {
    let mut c = Connect::new(V311, "device-0001-abcdef".try_into().expect("valid"));
    c.keep_alive = 30;
    c.username = Some("device-user".try_into().expect("valid"));
    c.password = Some(Bytes::from_static(b"s3cr3t-passw0rd"));
    let mut will = Will::new(
        "devices/0001/status".try_into().expect("valid"),
        &b"offline"[..],
    );
    will.qos = QoS::AtLeastOnce;
    will.retain = true;
    c.will = Some(will);
    c
}

fn filters() -> Vec<String> {
    (0..10)
        .map(|i| format!("building/{i}/+/sensors/#"))
        .collect()
}

fn subscribe() -> Subscribe {
    Subscribe {
        packet_id: pid(),
        subscriptions: filters()
            .into_iter()
            .map(|f| Subscription::new(TopicFilter::try_from(f).expect("valid"), QoS::AtLeastOnce))
            .collect(),
        properties: Default::default(),
    }
}

fn wire(p: &impl Encode, v: ProtocolVersion) -> Vec<u8> {
    let mut b = BytesMut::new();
    p.encode(v, &mut b).expect("encodes");
    b.to_vec()
}

/// Frames per timed batch: fill at least 256 KiB, and at least 16 frames.
fn batch(frame_len: usize) -> usize {
    (256 * 1024 / frame_len).max(16)
}

/// Times decoding `n` back-to-back frames from a freshly filled source.
fn bench_decode<S>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    frame: &[u8],
    fill: impl Fn(&[u8]) -> S,
    mut decode_all: impl FnMut(&mut S, usize),
) {
    let n = batch(frame.len());
    let stream = frame.repeat(n);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let mut src = fill(&stream);
                let start = Instant::now();
                decode_all(&mut src, n);
                total += start.elapsed();
                done += n as u64;
            }
            total.mul_f64(iters as f64 / done as f64)
        })
    });
}

fn ours_decode(g: &mut BenchmarkGroup<'_, WallTime>, frame: &[u8], v: ProtocolVersion) {
    let mut d = Decoder::new().with_max_packet_size(16 << 20);
    d.set_version(v);
    bench_decode(
        g,
        "mqtt-codec",
        frame,
        |w: &[u8]| BytesMut::from(w),
        |src, n| {
            for _ in 0..n {
                black_box(d.decode(src).expect("valid").expect("complete"));
            }
        },
    );
}

fn mqttbytes_v4_decode(g: &mut BenchmarkGroup<'_, WallTime>, frame: &[u8]) {
    bench_decode(
        g,
        "mqttbytes-v4",
        frame,
        |w: &[u8]| BytesMut::from(w),
        |src, n| {
            for _ in 0..n {
                black_box(mqttbytes::v4::read(src, 16 << 20).expect("valid"));
            }
        },
    );
}

fn mqttbytes_v5_decode(g: &mut BenchmarkGroup<'_, WallTime>, frame: &[u8]) {
    bench_decode(
        g,
        "mqttbytes-v5",
        frame,
        |w: &[u8]| BytesMut::from(w),
        |src, n| {
            for _ in 0..n {
                black_box(mqttbytes::v5::read(src, 16 << 20).expect("valid"));
            }
        },
    );
}

fn mqtt_protocol_decode(g: &mut BenchmarkGroup<'_, WallTime>, frame: &[u8]) {
    use mqtt::{Decodable, packet::VariablePacket};
    bench_decode(
        g,
        "mqtt-protocol",
        frame,
        |w: &[u8]| w.to_vec(),
        |src, n| {
            let mut cur = std::io::Cursor::new(&src[..]);
            for _ in 0..n {
                black_box(VariablePacket::decode(&mut cur).expect("valid"));
            }
        },
    );
}

fn ntex_decode(g: &mut BenchmarkGroup<'_, WallTime>, frame: &[u8], v: ProtocolVersion) {
    use ntex_codec::Decoder as _;
    if v.is_v5() {
        let codec = ntex_mqtt::v5::codec::Codec::new();
        codec.set_max_inbound_size(16 << 20);
        bench_decode(
            g,
            "ntex-mqtt",
            frame,
            |w: &[u8]| ntex_bytes::BytesMut::from(w),
            |src, n| {
                for _ in 0..n {
                    black_box(codec.decode(src).expect("valid").expect("complete"));
                }
            },
        );
    } else {
        let codec = ntex_mqtt::v3::codec::Codec::new();
        codec.set_max_size(16 << 20);
        bench_decode(
            g,
            "ntex-mqtt",
            frame,
            |w: &[u8]| ntex_bytes::BytesMut::from(w),
            |src, n| {
                for _ in 0..n {
                    black_box(codec.decode(src).expect("valid").expect("complete"));
                }
            },
        );
    }
}

/// A destination buffer and a copy of `payload` placed so that the payload's
/// destination (after `header_len` bytes) sits 2 KiB from its source modulo 4 KiB.
fn placed(payload_len: usize, header_len: usize, capacity: usize) -> (BytesMut, Bytes) {
    let dst = BytesMut::with_capacity(capacity);
    let dst_payload = dst.as_ptr() as usize + header_len;
    let backing = Bytes::from(vec![0xABu8; payload_len + 4096]);
    let base = backing.as_ptr() as usize;
    let offset = (dst_payload.wrapping_sub(2048).wrapping_sub(base)) % 4096;
    (dst, backing.slice(offset..offset + payload_len))
}

fn encode_cases(c: &mut Criterion) {
    for (label, len) in [("64B", 64usize), ("1KiB", 1024), ("64KiB", 65536)] {
        let mut g = c.benchmark_group(format!("encode/v311/publish_qos1_{label}"));
        let template = publish(len);
        let frame_len = template.encoded_len(V311);
        let header_len = frame_len - len;

        let (mut buf, payload) = placed(len, header_len, frame_len * 2);
        let mut p = template.clone();
        p.set_payload(payload);
        g.bench_function("mqtt-codec", |b| {
            b.iter(|| {
                buf.clear();
                black_box(p.encode(V311, &mut buf).expect("encodes"));
            })
        });

        let (mut buf, payload) = placed(len, header_len, frame_len * 2);
        g.bench_function("mqtt-codec header (vectored)", |b| {
            let mut p = template.clone();
            p.set_payload(payload.clone());
            b.iter(|| {
                buf.clear();
                black_box(p.encode_header(V311, &mut buf).expect("encodes"));
            })
        });

        let (mut buf, payload) = placed(len, header_len, frame_len * 2);
        let mut mb = mqttbytes::v4::Publish::new(TOPIC, mqttbytes::QoS::AtLeastOnce, Vec::new());
        mb.pkid = 42;
        mb.payload = payload;
        g.bench_function("mqttbytes-v4", |b| {
            b.iter(|| {
                buf.clear();
                black_box(mb.write(&mut buf).expect("encodes"));
            })
        });

        let (mut buf, payload) = placed(len, header_len + 1, frame_len * 2);
        let mut mb5 = mqttbytes::v5::Publish::new(TOPIC, mqttbytes::QoS::AtLeastOnce, Vec::new());
        mb5.pkid = 42;
        mb5.payload = payload;
        g.bench_function("mqttbytes-v5 (v5 wire)", |b| {
            b.iter(|| {
                buf.clear();
                black_box(mb5.write(&mut buf).expect("encodes"));
            })
        });

        let mp = mqtt::packet::PublishPacket::new(
            mqtt::TopicName::new(TOPIC).expect("valid"),
            mqtt::packet::QoSWithPacketIdentifier::Level1(42),
            vec![0xABu8; len],
        );
        let mut out = Vec::with_capacity(frame_len * 2);
        g.bench_function("mqtt-protocol", |b| {
            use mqtt::Encodable;
            b.iter(|| {
                out.clear();
                mp.encode(&mut out).expect("encodes");
                black_box(&out);
            })
        });

        // The floor: copying the finished frame into the buffer.
        let (mut buf, payload) = placed(len, header_len, frame_len * 2);
        let mut frame = BytesMut::with_capacity(frame_len);
        let mut p = template.clone();
        p.set_payload(payload);
        p.encode(V311, &mut frame).expect("encodes");
        let (mut src_buf, _) = placed(frame_len, 0, frame_len);
        src_buf.extend_from_slice(&frame);
        let src = src_buf.freeze();
        g.bench_function("memcpy floor", |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(black_box(&src));
                black_box(&buf);
            })
        });
        g.finish();
    }

    let mut g = c.benchmark_group("encode/v5/publish_5_properties_64B");
    let p = publish_v5_props();
    let mut buf = BytesMut::with_capacity(1024);
    g.bench_function("mqtt-codec", |b| {
        b.iter(|| {
            buf.clear();
            black_box(p.encode(V5, &mut buf).expect("encodes"));
        })
    });
    let mb = mqttbytes_v5_props();
    g.bench_function("mqttbytes-v5", |b| {
        b.iter(|| {
            buf.clear();
            black_box(mb.write(&mut buf).expect("encodes"));
        })
    });
    g.finish();

    let mut g = c.benchmark_group("encode/v311/connect_will_credentials");
    let cp = connect();
    g.bench_function("mqtt-codec", |b| {
        b.iter(|| {
            buf.clear();
            black_box(cp.encode(V311, &mut buf).expect("encodes"));
        })
    });
    let mb = mqttbytes_connect();
    g.bench_function("mqttbytes-v4", |b| {
        b.iter(|| {
            buf.clear();
            black_box(mb.write(&mut buf).expect("encodes"));
        })
    });
    let mp = mqtt_protocol_connect();
    let mut out = Vec::with_capacity(1024);
    g.bench_function("mqtt-protocol", |b| {
        use mqtt::Encodable;
        b.iter(|| {
            out.clear();
            mp.encode(&mut out).expect("encodes");
            black_box(&out);
        })
    });
    g.finish();

    let mut g = c.benchmark_group("encode/v311/subscribe_10_filters");
    let sp = subscribe();
    g.bench_function("mqtt-codec", |b| {
        b.iter(|| {
            buf.clear();
            black_box(sp.encode(V311, &mut buf).expect("encodes"));
        })
    });
    let mb = mqttbytes::v4::Subscribe::new_many(
        filters()
            .into_iter()
            .map(|f| mqttbytes::v4::SubscribeFilter::new(f, mqttbytes::QoS::AtLeastOnce)),
    );
    g.bench_function("mqttbytes-v4", |b| {
        b.iter(|| {
            buf.clear();
            black_box(mb.write(&mut buf).expect("encodes"));
        })
    });
    let mp = mqtt::packet::SubscribePacket::new(
        42,
        filters()
            .into_iter()
            .map(|f| {
                (
                    mqtt::TopicFilter::new(f).expect("valid"),
                    mqtt::QualityOfService::Level1,
                )
            })
            .collect(),
    );
    g.bench_function("mqtt-protocol", |b| {
        use mqtt::Encodable;
        b.iter(|| {
            out.clear();
            mp.encode(&mut out).expect("encodes");
            black_box(&out);
        })
    });
    g.finish();
}

fn mqttbytes_v5_props() -> mqttbytes::v5::Publish {
    let mut p = mqttbytes::v5::Publish::new(TOPIC, mqttbytes::QoS::AtLeastOnce, vec![0xAB; 64]);
    p.pkid = 42;
    p.properties = Some(mqttbytes::v5::PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(3600),
        topic_alias: None,
        response_topic: Some("replies/room-17".into()),
        correlation_data: None,
        user_properties: vec![("trace".into(), "abc123".into())],
        subscription_identifiers: vec![],
        content_type: Some("application/json".into()),
    });
    p
}

fn mqttbytes_connect() -> mqttbytes::v4::Connect {
    let mut c = mqttbytes::v4::Connect::new("device-0001-abcdef");
    c.keep_alive = 30;
    c.set_login("device-user", "s3cr3t-passw0rd");
    c.last_will = Some(mqttbytes::v4::LastWill::new(
        "devices/0001/status",
        &b"offline"[..],
        mqttbytes::QoS::AtLeastOnce,
        true,
    ));
    c
}

fn mqtt_protocol_connect() -> mqtt::packet::ConnectPacket {
    let mut c = mqtt::packet::ConnectPacket::new("device-0001-abcdef");
    c.set_keep_alive(30);
    c.set_user_name(Some("device-user".into()));
    c.set_password(Some("s3cr3t-passw0rd".into()));
    c.set_will(Some((
        mqtt::TopicName::new("devices/0001/status").expect("valid"),
        b"offline".to_vec(),
    )));
    c.set_will_qos(1);
    c.set_will_retain(true);
    c
}

fn decode_cases(c: &mut Criterion) {
    for (label, len) in [("64B", 64usize), ("1KiB", 1024), ("64KiB", 65536)] {
        let p = publish(len);
        let mut g = c.benchmark_group(format!("decode/v311/publish_qos1_{label}"));
        let frame = wire(&p, V311);
        ours_decode(&mut g, &frame, V311);
        mqttbytes_v4_decode(&mut g, &frame);
        mqtt_protocol_decode(&mut g, &frame);
        ntex_decode(&mut g, &frame, V311);
        g.finish();

        let mut g = c.benchmark_group(format!("decode/v5/publish_qos1_{label}"));
        let frame = wire(&p, V5);
        ours_decode(&mut g, &frame, V5);
        mqttbytes_v5_decode(&mut g, &frame);
        ntex_decode(&mut g, &frame, V5);
        g.finish();
    }

    let mut g = c.benchmark_group("decode/v5/publish_5_properties_64B");
    let frame = wire(&publish_v5_props(), V5);
    ours_decode(&mut g, &frame, V5);
    mqttbytes_v5_decode(&mut g, &frame);
    ntex_decode(&mut g, &frame, V5);
    g.finish();

    let mut g = c.benchmark_group("decode/v311/connect_will_credentials");
    let frame = wire(&connect(), V311);
    ours_decode(&mut g, &frame, V311);
    mqttbytes_v4_decode(&mut g, &frame);
    mqtt_protocol_decode(&mut g, &frame);
    ntex_decode(&mut g, &frame, V311);
    g.finish();

    let mut g = c.benchmark_group("decode/v311/subscribe_10_filters");
    let frame = wire(&subscribe(), V311);
    ours_decode(&mut g, &frame, V311);
    mqttbytes_v4_decode(&mut g, &frame);
    mqtt_protocol_decode(&mut g, &frame);
    ntex_decode(&mut g, &frame, V311);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = decode_cases, encode_cases
}
criterion_main!(benches);
