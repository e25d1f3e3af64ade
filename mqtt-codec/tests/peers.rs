//! Byte-exact checks against real clients nobody here wrote: `mosquitto_pub`
//! and `mosquitto_sub` (Debian `mosquitto-clients`) and paho-mqtt (PyPI).
//!
//! Each test runs a small fake broker on 127.0.0.1:0 that answers every
//! packet so the client completes its flows, records each packet's raw
//! bytes, decodes them, re-encodes the packet in the connection's version and
//! requires the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failed test

use mqtt_codec::{
    BytesMut, ConnAck, ConnectReason, Decoder, Encode, FixedHeader, Packet, ProtocolVersion,
    PubAck, PubComp, PubRec, QoS, SubAck, SubAckReason, UnsubAck, UnsubAckReason,
};
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A received packet and the exact bytes it arrived as.
struct Captured {
    raw: Vec<u8>,
    packet: Packet,
}

fn accept(listener: &TcpListener, child: &mut Child) -> TcpStream {
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("blocking");
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("peer exited before connecting: {status}");
                }
                assert!(Instant::now() < deadline, "peer did not connect");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// What the fake broker answers to `p`, if anything.
fn answer(p: &Packet) -> Option<Packet> {
    Some(match p {
        Packet::Connect(_) => ConnAck::new(ConnectReason::Success).into(),
        Packet::Publish(p) => match p.qos_pid {
            mqtt_codec::QosPid::AtMostOnce => return None,
            mqtt_codec::QosPid::AtLeastOnce(id) => PubAck::new(id).into(),
            mqtt_codec::QosPid::ExactlyOnce(id) => PubRec::new(id).into(),
        },
        Packet::PubRel(r) => PubComp::new(r.packet_id).into(),
        Packet::Subscribe(s) => SubAck {
            packet_id: s.packet_id,
            reasons: s
                .subscriptions
                .iter()
                .map(|s| SubAckReason::granted(s.options.qos))
                .collect(),
            properties: Default::default(),
        }
        .into(),
        Packet::Unsubscribe(u) => UnsubAck {
            packet_id: u.packet_id,
            reasons: vec![UnsubAckReason::Success; u.filters.len()],
            properties: Default::default(),
        }
        .into(),
        Packet::PingReq => Packet::PingResp,
        _ => return None,
    })
}

/// Serves one client connection until it disconnects; returns what it sent.
fn serve(mut child: Child, listener: TcpListener) -> (ProtocolVersion, Vec<Captured>) {
    let mut stream = accept(&listener, &mut child);
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut decoder = Decoder::server();
    let mut buf = BytesMut::new();
    let mut captured = Vec::new();
    let mut chunk = [0u8; 4096];
    'conn: loop {
        let n = stream.read(&mut chunk).expect("read from peer");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(h) = FixedHeader::parse(&buf).expect("valid header") {
            if buf.len() < h.packet_len() {
                break;
            }
            let raw = buf[..h.packet_len()].to_vec();
            let packet = decoder
                .decode(&mut buf)
                .expect("peer packet decodes")
                .expect("complete");
            let version = decoder.version().expect("known after CONNECT");
            if let Some(reply) = answer(&packet) {
                let mut out = BytesMut::new();
                reply.encode(version, &mut out).expect("encode reply");
                stream.write_all(&out).expect("write reply");
            }
            let done = matches!(packet, Packet::Disconnect(_));
            captured.push(Captured { raw, packet });
            if done {
                break 'conn;
            }
        }
    }
    let status = child.wait().expect("peer exit");
    assert!(status.success(), "peer failed: {status}");
    (decoder.version().expect("version"), captured)
}

/// Re-encodes every captured packet and requires the peer's exact bytes.
fn assert_byte_exact(version: ProtocolVersion, captured: &[Captured]) {
    assert!(!captured.is_empty());
    for c in captured {
        let mut out = BytesMut::new();
        c.packet.encode(version, &mut out).expect("re-encode");
        assert_eq!(
            hex(&out),
            hex(&c.raw),
            "re-encoded {:?} differs from the peer's bytes\n{:#?}",
            c.packet.packet_type(),
            c.packet
        );
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn types(captured: &[Captured]) -> Vec<mqtt_codec::PacketType> {
    captured.iter().map(|c| c.packet.packet_type()).collect()
}

fn run(program: &Path, args: &[&str]) -> (ProtocolVersion, Vec<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let child = Command::new(program)
        .args(["-h", "127.0.0.1", "-p", &port])
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn peer");
    serve(child, listener)
}

#[test]
fn mosquitto_pub_v311_connect_with_will_and_credentials_and_qos1_publish() {
    let Some(pub_) = mqtt_test_support::program("mosquitto_pub_v311", "mosquitto_pub") else {
        return;
    };
    let (v, cap) = run(
        &pub_,
        &[
            "-V",
            "mqttv311",
            "-i",
            "codec-v311",
            "-k",
            "30",
            "-u",
            "user",
            "-P",
            "secret",
            "--will-topic",
            "will/t",
            "--will-payload",
            "gone",
            "--will-qos",
            "2",
            "--will-retain",
            "-q",
            "1",
            "-r",
            "-t",
            "a/b",
            "-m",
            "hello",
        ],
    );
    assert_eq!(v, ProtocolVersion::V3_1_1);
    use mqtt_codec::PacketType::*;
    assert_eq!(types(&cap), [Connect, Publish, Disconnect]);
    let Packet::Connect(c) = &cap[0].packet else {
        panic!()
    };
    assert_eq!(c.client_id, "codec-v311");
    assert_eq!(c.keep_alive, 30);
    assert_eq!(c.username.as_deref(), Some("user"));
    assert_eq!(c.password.as_deref(), Some(&b"secret"[..]));
    let will = c.will.as_ref().expect("will");
    assert_eq!(
        (
            will.topic.as_str(),
            &will.payload[..],
            will.qos,
            will.retain
        ),
        ("will/t", &b"gone"[..], QoS::ExactlyOnce, true)
    );
    let Packet::Publish(p) = &cap[1].packet else {
        panic!()
    };
    assert_eq!(
        (p.topic(), p.payload(), p.qos(), p.retain),
        ("a/b", &b"hello"[..], QoS::AtLeastOnce, true)
    );
    assert_byte_exact(v, &cap);
}

#[test]
fn mosquitto_pub_v5_properties_and_qos2_publish() {
    let Some(pub_) = mqtt_test_support::program("mosquitto_pub_v5", "mosquitto_pub") else {
        return;
    };
    // Properties given in ascending identifier order, the order this codec writes.
    let (v, cap) = run(
        &pub_,
        &[
            "-V",
            "mqttv5",
            "-i",
            "codec-v5",
            "-q",
            "2",
            "-D",
            "connect",
            "session-expiry-interval",
            "3600",
            "-D",
            "connect",
            "request-problem-information",
            "0",
            "-D",
            "connect",
            "receive-maximum",
            "10",
            "-D",
            "connect",
            "topic-alias-maximum",
            "4",
            "-D",
            "connect",
            "user-property",
            "client",
            "codec",
            "-D",
            "connect",
            "maximum-packet-size",
            "65536",
            "-D",
            "publish",
            "payload-format-indicator",
            "1",
            "-D",
            "publish",
            "message-expiry-interval",
            "60",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "response-topic",
            "reply/t",
            "-D",
            "publish",
            "correlation-data",
            "abc",
            "-D",
            "publish",
            "user-property",
            "a",
            "1",
            "-D",
            "publish",
            "user-property",
            "a",
            "2",
            "-D",
            "disconnect",
            "session-expiry-interval",
            "0",
            "-t",
            "a/b",
            "-m",
            "hello v5",
        ],
    );
    assert_eq!(v, ProtocolVersion::V5);
    use mqtt_codec::PacketType::*;
    assert_eq!(types(&cap), [Connect, Publish, PubRel, Disconnect]);
    let Packet::Connect(c) = &cap[0].packet else {
        panic!()
    };
    assert_eq!(c.properties.session_expiry_interval, Some(3600));
    assert_eq!(c.properties.receive_maximum.map(|v| v.get()), Some(10));
    assert_eq!(
        c.properties.maximum_packet_size.map(|v| v.get()),
        Some(65536)
    );
    let Packet::Publish(p) = &cap[1].packet else {
        panic!()
    };
    assert_eq!(p.qos(), QoS::ExactlyOnce);
    assert_eq!(p.properties().content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.properties().response_topic.as_deref(), Some("reply/t"));
    assert_eq!(
        p.properties().correlation_data.as_deref(),
        Some(&b"abc"[..])
    );
    let ups: Vec<_> = p
        .properties()
        .user_properties
        .iter()
        .map(|u| (u.name.as_str(), u.value.as_str()))
        .collect();
    assert_eq!(ups, [("a", "1"), ("a", "2")]);
    assert_byte_exact(v, &cap);
}

#[test]
fn mosquitto_pub_v31_connect() {
    let Some(pub_) = mqtt_test_support::program("mosquitto_pub_v31", "mosquitto_pub") else {
        return;
    };
    let (v, cap) = run(
        &pub_,
        &[
            "-V",
            "mqttv31",
            "-i",
            "old-device",
            "-q",
            "1",
            "-t",
            "legacy/t",
            "-m",
            "hi",
        ],
    );
    assert_eq!(v, ProtocolVersion::V3_1);
    assert_byte_exact(v, &cap);
}

#[test]
fn mosquitto_sub_subscribe_and_unsubscribe_both_versions() {
    let Some(sub) = mqtt_test_support::program("mosquitto_sub", "mosquitto_sub") else {
        return;
    };
    for version in ["mqttv311", "mqttv5"] {
        let mut args = vec![
            "-V",
            version,
            "-i",
            "codec-sub",
            "-c",
            "-q",
            "2",
            "-t",
            "a/+/c",
            "-t",
            "b/#",
            "-t",
            "$SYS/#",
            "-U",
            "old/+",
            "-E",
        ];
        if version == "mqttv5" {
            args.extend([
                "-x",
                "300",
                "-D",
                "subscribe",
                "subscription-identifier",
                "42",
            ]);
            args.extend(["-D", "unsubscribe", "user-property", "why", "cleanup"]);
        }
        let (v, cap) = run(&sub, &args);
        use mqtt_codec::PacketType::*;
        let t = types(&cap);
        assert!(t.contains(&Subscribe) && t.contains(&Unsubscribe), "{t:?}");
        let Some(Packet::Subscribe(s)) = cap
            .iter()
            .map(|c| &c.packet)
            .find(|p| matches!(p, Packet::Subscribe(_)))
        else {
            panic!()
        };
        let filters: Vec<_> = s.subscriptions.iter().map(|s| s.filter.as_str()).collect();
        assert_eq!(filters, ["a/+/c", "b/#", "$SYS/#"]);
        if v.is_v5() {
            assert_eq!(
                s.properties.subscription_identifier.map(|v| v.get()),
                Some(42)
            );
        }
        assert_byte_exact(v, &cap);
    }
}

const PAHO_SCRIPT: &str = r#"
import sys, threading
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

port, v5 = int(sys.argv[1]), sys.argv[2] == "5"
events = {k: threading.Event() for k in ("connect", "subscribe", "unsubscribe")}
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-codec",
                protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, **({} if v5 else {"clean_session": True}))
c.on_connect = lambda *a: events["connect"].set()
c.on_subscribe = lambda *a: events["subscribe"].set()
c.on_unsubscribe = lambda *a: events["unsubscribe"].set()
c.username_pw_set("user", "secret")
wp = None
if v5:
    wp = Properties(PacketTypes.WILLMESSAGE)
    wp.WillDelayInterval = 10
    wp.UserProperty = [("w", "1")]
c.will_set("will/t", b"gone", qos=1, retain=True, properties=wp)
cp = None
if v5:
    cp = Properties(PacketTypes.CONNECT)
    cp.SessionExpiryInterval = 120
    cp.ReceiveMaximum = 20
    cp.TopicAliasMaximum = 5
    cp.UserProperty = [("k", "v")]
c.connect("127.0.0.1", port, keepalive=30, properties=cp, **({"clean_start": True} if v5 else {}))
c.loop_start()
assert events["connect"].wait(10)
if v5:
    sp = Properties(PacketTypes.SUBSCRIBE)
    sp.SubscriptionIdentifier = 7
    c.subscribe([("a/+", SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True, retainHandling=1)),
                 ("$share/g/b/#", SubscribeOptions(qos=2, retainHandling=2))], properties=sp)
else:
    c.subscribe([("a/+", 1), ("b/#", 2)])
assert events["subscribe"].wait(10)
pp = None
if v5:
    pp = Properties(PacketTypes.PUBLISH)
    pp.PayloadFormatIndicator = 1
    pp.MessageExpiryInterval = 30
    pp.ContentType = "text/plain"
    pp.ResponseTopic = "reply/t"
    pp.CorrelationData = b"\x01\x02"
    pp.UserProperty = [("a", "1"), ("a", "2")]
c.publish("a/b", b"hello", qos=1, properties=pp).wait_for_publish(10)
c.publish("a/c", b"x" * 300, qos=2).wait_for_publish(10)
c.publish("a/d", b"", qos=0, retain=True).wait_for_publish(10)
c.unsubscribe(["a/+", "b/#"])
assert events["unsubscribe"].wait(10)
c.disconnect()
c.loop_stop()
"#;

#[test]
fn paho_mqtt_full_session_both_versions() {
    let Some(python) = mqtt_test_support::python_with("paho_mqtt", "paho.mqtt.client") else {
        return;
    };
    let script = std::env::temp_dir().join(format!("mqtt-codec-paho-{}.py", std::process::id()));
    std::fs::write(&script, PAHO_SCRIPT).expect("write script");
    for version in ["311", "5"] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port().to_string();
        let child = Command::new(&python)
            .arg(&script)
            .args([&port, version])
            .spawn()
            .expect("spawn python");
        let (v, cap) = serve(child, listener);
        use mqtt_codec::PacketType::*;
        assert_eq!(
            types(&cap),
            [
                Connect,
                Subscribe,
                Publish,
                Publish,
                PubRel,
                Publish,
                Unsubscribe,
                Disconnect
            ]
        );
        if v.is_v5() {
            let Packet::Subscribe(s) = &cap[1].packet else {
                panic!()
            };
            let o = s.subscriptions[0].options;
            assert!(o.no_local && o.retain_as_published);
            assert_eq!(
                o.retain_handling,
                mqtt_codec::RetainHandling::SendAtSubscribeIfNew
            );
            assert_eq!(s.subscriptions[1].filter.shared(), Some(("g", "b/#")));
            let Packet::Connect(c) = &cap[0].packet else {
                panic!()
            };
            assert_eq!(
                c.will
                    .as_ref()
                    .and_then(|w| w.properties.will_delay_interval),
                Some(10)
            );
        }
        assert_byte_exact(v, &cap);
    }
    let _ = std::fs::remove_file(script);
}
