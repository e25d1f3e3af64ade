//! The broker runtime with real clients: our mqtt-client over all four
//! transports, Debian's mosquitto_pub / mosquitto_sub, MQTT.js and
//! paho-mqtt, plus clients that misbehave.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_broker_core::{AllowAll, Broker, BrokerConfig, ListenerConfig, ServerTls};
use mqtt_client::{
    ClientBuilder, ClientTls, ConnectionEvent, Message, ProtocolVersion, QoS, Roots,
};
use mqtt_codec::{
    BytesMut, Connect, Decoder, DisconnectReason, Encode, MqttStr, Packet, Publish, TopicName, Will,
};
use mqtt_test_support::tls::Ca;
use std::{sync::Arc, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);
const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

struct Running {
    broker: Broker,
    tcp: u16,
    ws: u16,
    tls: u16,
    wss: u16,
    ca: Ca,
}

async fn start(config: BrokerConfig) -> Running {
    if let Ok(level) = std::env::var("MQTT_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_max_level(level.parse().unwrap_or(tracing::Level::DEBUG))
            .with_test_writer()
            .try_init();
    }
    let ca = Ca::new("broker test CA");
    let leaf = ca.issue("localhost", &["localhost"]);
    let tls = ServerTls {
        certs: leaf.chain.clone(),
        key: Arc::new(leaf.key.clone_key()),
        client_ca: None,
        alpn: Vec::new(),
    };
    let broker = Broker::new(config, Arc::new(AllowAll));
    let any = "127.0.0.1:0".parse().unwrap();
    let tcp = broker
        .listen(ListenerConfig::Tcp(any))
        .await
        .unwrap()
        .port();
    let ws = broker.listen(ListenerConfig::Ws(any)).await.unwrap().port();
    let tls_port = broker
        .listen(ListenerConfig::Tls(any, tls.clone()))
        .await
        .unwrap()
        .port();
    let wss = broker
        .listen(ListenerConfig::Wss(any, tls))
        .await
        .unwrap()
        .port();
    Running {
        broker,
        tcp,
        ws,
        tls: tls_port,
        wss,
        ca,
    }
}

impl Running {
    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.tcp)
    }
    fn client(&self, url: &str, v: ProtocolVersion, id: &str) -> ClientBuilder {
        ClientBuilder::new(url)
            .unwrap()
            .version(v)
            .client_id(id)
            .tls(ClientTls {
                roots: Roots::Custom(vec![self.ca.cert()]),
                ..ClientTls::default()
            })
            .reconnect(mqtt_client::Reconnect::off())
    }
}

/// Writes a peer's script into a directory of its own under the system's
/// temporary directory.
fn write_script(dir: &str, file: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{dir}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, contents).unwrap();
    path
}

async fn recv(m: &mut mqtt_client::Messages) -> Publish {
    tokio::time::timeout(WAIT, m.recv())
        .await
        .expect("a message in time")
        .expect("stream open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_over_every_transport_at_every_qos() {
    let b = start(BrokerConfig::default()).await;
    let urls = [
        b.url(),
        format!("mqtts://localhost:{}", b.tls),
        format!("ws://127.0.0.1:{}/mqtt", b.ws),
        format!("wss://localhost:{}/mqtt", b.wss),
    ];
    for url in &urls {
        for v in VERSIONS {
            let tag = format!("{}{}", &url[..url.find(':').unwrap()], u8::from(v.is_v5()));
            let (sub, mut messages) = b
                .client(url, v, &format!("{tag}-sub"))
                .connect()
                .await
                .unwrap();
            sub.subscribe(&format!("{tag}/#"), QoS::ExactlyOnce)
                .await
                .unwrap();
            let (publisher, _) = b
                .client(url, v, &format!("{tag}-pub"))
                .connect()
                .await
                .unwrap();
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let topic = format!("{tag}/{}", qos as u8);
                publisher
                    .publish(Message::new(&topic, vec![7u8; 300]).unwrap().qos(qos))
                    .await
                    .unwrap();
                let m = recv(&mut messages).await;
                // [MQTT-3.3.2-3], [MQTT-3.8.4-8]
                assert_eq!(m.topic(), topic);
                assert_eq!(m.qos(), qos);
                assert_eq!(m.payload(), &[7u8; 300][..]);
            }
            sub.disconnect().await.unwrap();
            publisher.disconnect().await.unwrap();
        }
    }
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_properties_pass_through_and_subscription_identifiers_are_set() {
    let b = start(BrokerConfig::default()).await;
    let v = ProtocolVersion::V5;
    let (sub, mut messages) = b.client(&b.url(), v, "props-sub").connect().await.unwrap();
    let props = mqtt_codec::SubscribeProperties {
        subscription_identifier: std::num::NonZeroU32::new(42),
        ..Default::default()
    };
    sub.subscribe_with(
        vec![mqtt_codec::Subscription::new(
            TopicFilter::try_from("props/+").unwrap(),
            QoS::AtLeastOnce,
        )],
        props,
    )
    .await
    .unwrap();
    let (publisher, _) = b.client(&b.url(), v, "props-pub").connect().await.unwrap();
    let m = Message::new("props/a", "{}")
        .unwrap()
        .qos(QoS::AtLeastOnce)
        .content_type("application/json")
        .unwrap()
        .response_topic("props/reply")
        .unwrap()
        .correlation_data(&b"c1"[..])
        .payload_format(mqtt_codec::PayloadFormat::Utf8)
        .user_property("a", "1")
        .unwrap()
        .user_property("b", "2")
        .unwrap()
        .user_property("a", "3")
        .unwrap();
    publisher.publish(m).await.unwrap();
    let got = recv(&mut messages).await;
    let p = got.properties();
    // [MQTT-3.3.2-4], [MQTT-3.3.2-15], [MQTT-3.3.2-16], [MQTT-3.3.2-17], [MQTT-3.3.2-18], [MQTT-3.3.2-20]
    assert_eq!(
        p.payload_format_indicator,
        Some(mqtt_codec::PayloadFormat::Utf8)
    );
    assert_eq!(
        p.content_type.as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(p.response_topic.as_ref().unwrap().as_str(), "props/reply");
    assert_eq!(p.correlation_data.as_deref(), Some(&b"c1"[..]));
    let users: Vec<(String, String)> = p
        .user_properties
        .iter()
        .map(|u| (u.name.as_str().to_owned(), u.value.as_str().to_owned()))
        .collect();
    assert_eq!(
        users,
        [("a", "1"), ("b", "2"), ("a", "3")].map(|(a, b)| (a.into(), b.into()))
    );
    // [MQTT-3.3.4-3]
    assert_eq!(
        p.subscription_identifiers,
        vec![std::num::NonZeroU32::new(42).unwrap()]
    );
    b.broker.shutdown().await;
}

use mqtt_codec::TopicFilter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_reach_later_subscribers_and_empty_payload_clears() {
    let b = start(BrokerConfig::default()).await;
    for v in VERSIONS {
        let tag = format!("ret{}", u8::from(v.is_v5()));
        let (publisher, _) = b
            .client(&b.url(), v, &format!("{tag}-p"))
            .connect()
            .await
            .unwrap();
        publisher
            .publish(
                Message::new(&format!("{tag}/state"), "on")
                    .unwrap()
                    .qos(QoS::AtLeastOnce)
                    .retain(true),
            )
            .await
            .unwrap();
        let (sub, mut messages) = b
            .client(&b.url(), v, &format!("{tag}-s"))
            .connect()
            .await
            .unwrap();
        sub.subscribe(&format!("{tag}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        let m = recv(&mut messages).await;
        // 3.1.1 [MQTT-3.3.1-8]: sent because of a new subscription: RETAIN 1.
        assert!(m.retain);
        assert_eq!(m.payload(), b"on");
        // [MQTT-3.3.1-6]: delivered normally, then nothing retained.
        publisher
            .publish(
                Message::new(&format!("{tag}/state"), "")
                    .unwrap()
                    .qos(QoS::AtLeastOnce)
                    .retain(true),
            )
            .await
            .unwrap();
        let _ = recv(&mut messages).await;
        let (late, mut late_messages) = b
            .client(&b.url(), v, &format!("{tag}-l"))
            .connect()
            .await
            .unwrap();
        late.subscribe(&format!("{tag}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), late_messages.recv())
                .await
                .is_err()
        );
    }
    b.broker.shutdown().await;
}

/// A raw MQTT connection for misbehaving on purpose.
async fn raw(port: u16) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap()
}

fn connect_bytes(v: ProtocolVersion, id: &str, will: Option<Will>) -> BytesMut {
    let mut c = Connect::new(v, MqttStr::try_from(id).unwrap());
    c.will = will;
    c.keep_alive = 60;
    let mut buf = BytesMut::new();
    c.encode(v, &mut buf).unwrap();
    buf
}

/// Reads until the server closes; returns the packets it sent.
async fn read_until_closed(s: &mut tokio::net::TcpStream, v: ProtocolVersion) -> Vec<Packet> {
    let mut decoder = Decoder::client(v);
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, s.read_buf(&mut buf))
            .await
            .expect("closed in time")
        {
            Ok(0) | Err(_) => return packets,
            Ok(_) => {
                while let Ok(Some(p)) = decoder.decode(&mut buf) {
                    packets.push(p);
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_published_on_abnormal_loss_only() {
    let b = start(BrokerConfig::default()).await;
    for v in VERSIONS {
        let tag = format!("will{}", u8::from(v.is_v5()));
        let (sub, mut messages) = b
            .client(&b.url(), v, &format!("{tag}-s"))
            .connect()
            .await
            .unwrap();
        sub.subscribe(&format!("{tag}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        // Lost connection: the will goes out ([MQTT-3.1.2-8]).
        let mut s = raw(b.tcp).await;
        let will = Will::new(
            TopicName::try_from(format!("{tag}/gone").as_str()).unwrap(),
            &b"bye"[..],
        );
        s.write_all(&connect_bytes(v, &format!("{tag}-w"), Some(will.clone())))
            .await
            .unwrap();
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack[..if v.is_v5() { 3 } else { 4 }])
            .await
            .unwrap();
        drop(s);
        let m = recv(&mut messages).await;
        assert_eq!(m.topic(), format!("{tag}/gone"));
        // Normal DISCONNECT: no will ([MQTT-3.14.4-3], [MQTT-3.1.2-10]).
        let mut s = raw(b.tcp).await;
        s.write_all(&connect_bytes(v, &format!("{tag}-w2"), Some(will)))
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        mqtt_codec::Disconnect::new(DisconnectReason::NormalDisconnection)
            .encode(v, &mut buf)
            .unwrap();
        s.write_all(&buf).await.unwrap();
        let _ = read_until_closed(&mut s, v).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(300), messages.recv())
                .await
                .is_err()
        );
    }
    b.broker.shutdown().await;
}

/// Packets take effect in the order the client sent them, even when they
/// arrive in one read and the broker routes the PUBLISHes among them
/// together: a message published before a SUBSCRIBE does not reach that
/// subscription, one published after it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_sent_together_take_effect_in_their_order() {
    let b = start(BrokerConfig::default()).await;
    for v in VERSIONS {
        let mut s = raw(b.tcp).await;
        let mut buf = connect_bytes(v, "in-order", None);
        let topic = TopicName::try_from("order/t").unwrap();
        let publish = |id: u16, payload: &'static str| {
            let mut p = Publish::new(topic.clone(), payload);
            p.qos_pid = mqtt_codec::QosPid::AtLeastOnce(mqtt_codec::PacketId::new(id).unwrap());
            Packet::from(p)
        };
        let subscribe = mqtt_codec::Subscribe {
            packet_id: mqtt_codec::PacketId::new(2).unwrap(),
            subscriptions: vec![subscription("order/t", QoS::AtLeastOnce)],
            properties: Default::default(),
        };
        for p in [publish(1, "before"), subscribe.into(), publish(3, "after")] {
            p.encode(v, &mut buf).unwrap();
        }
        s.write_all(&buf).await.unwrap();
        let mut decoder = Decoder::client(v);
        let mut rbuf = BytesMut::new();
        let mut payloads = Vec::new();
        tokio::time::timeout(WAIT, async {
            while !payloads.contains(&"after".to_string()) {
                assert!(s.read_buf(&mut rbuf).await.unwrap() > 0, "closed");
                while let Ok(Some(p)) = decoder.decode(&mut rbuf) {
                    if let Packet::Publish(p) = p {
                        payloads.push(String::from_utf8_lossy(p.payload()).to_string());
                    }
                }
            }
        })
        .await
        .expect("the later message arrives");
        assert_eq!(payloads, ["after"], "{v:?}");
    }
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_takeover_disconnects_the_old_connection_with_0x8e() {
    let b = start(BrokerConfig::default()).await;
    let (old, _) = b
        .client(&b.url(), ProtocolVersion::V5, "twin")
        .connect()
        .await
        .unwrap();
    let mut events = old.events();
    let (new, _) = b
        .client(&b.url(), ProtocolVersion::V5, "twin")
        .connect()
        .await
        .unwrap();
    // [MQTT-3.1.4-3]
    let reason = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(ConnectionEvent::Disconnected(e)) = events.recv().await {
                return e.to_string();
            }
        }
    })
    .await
    .unwrap();
    assert!(reason.contains("SessionTakenOver"), "{reason}");
    assert_eq!(new.state(), mqtt_client::ConnectionState::Connected);
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_gets_messages_queued_while_offline() {
    let b = start(BrokerConfig::default()).await;
    for v in VERSIONS {
        let tag = format!("resume{}", u8::from(v.is_v5()));
        let builder = || {
            b.client(&b.url(), v, &format!("{tag}-s"))
                .clean_start(false)
                .session_expiry(Duration::from_secs(60))
        };
        let (sub, _) = builder().connect().await.unwrap();
        sub.subscribe(&format!("{tag}/#"), QoS::ExactlyOnce)
            .await
            .unwrap();
        sub.disconnect().await.unwrap();
        let (publisher, _) = b
            .client(&b.url(), v, &format!("{tag}-p"))
            .connect()
            .await
            .unwrap();
        for i in 0..20u8 {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            publisher
                .publish(Message::new(&format!("{tag}/x"), vec![i]).unwrap().qos(qos))
                .await
                .unwrap();
        }
        // [MQTT-3.1.2-5], [MQTT-3.2.2-3]: resumed with Session Present.
        let (sub, mut messages) = builder().connect().await.unwrap();
        assert!(sub.connack().unwrap().session_present);
        for i in 0..20u8 {
            assert_eq!(recv(&mut messages).await.payload(), &[i]);
        }
        sub.disconnect().await.unwrap();
    }
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_clients_are_disconnected_and_others_keep_working() {
    let mut config = BrokerConfig::default();
    config.session.maximum_packet_size = 1024;
    let b = start(config).await;
    let v = ProtocolVersion::V5;
    let (sub, mut messages) = b.client(&b.url(), v, "good-sub").connect().await.unwrap();
    sub.subscribe("good/#", QoS::AtLeastOnce).await.unwrap();
    let (publisher, _) = b.client(&b.url(), v, "good-pub").connect().await.unwrap();

    // Garbage instead of CONNECT: closed.
    let mut s = raw(b.tcp).await;
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let _ = read_until_closed(&mut s, v).await;
    // A PUBLISH before CONNECT: closed ([MQTT-3.1.0-1]).
    let mut s = raw(b.tcp).await;
    let mut buf = BytesMut::new();
    Publish::new(TopicName::try_from("good/x").unwrap(), &b"sneaky"[..])
        .encode(v, &mut buf)
        .unwrap();
    s.write_all(&buf).await.unwrap();
    let _ = read_until_closed(&mut s, v).await;
    // A second CONNECT: DISCONNECT 0x82 Protocol Error ([MQTT-3.1.0-2]).
    let mut s = raw(b.tcp).await;
    s.write_all(&connect_bytes(v, "twice", None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(&connect_bytes(v, "twice", None)).await.unwrap();
    let got = read_until_closed(&mut s, v).await;
    assert!(
        got.iter().any(
            |p| matches!(p, Packet::Disconnect(d) if d.reason == DisconnectReason::ProtocolError)
        ),
        "{got:?}"
    );
    // An oversized packet: DISCONNECT 0x95 Packet too large.
    let mut s = raw(b.tcp).await;
    s.write_all(&connect_bytes(v, "big", None)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut buf = BytesMut::new();
    Publish::new(TopicName::try_from("good/x").unwrap(), vec![0u8; 4096])
        .encode(v, &mut buf)
        .unwrap();
    s.write_all(&buf).await.unwrap();
    let got = read_until_closed(&mut s, v).await;
    assert!(
        got.iter().any(
            |p| matches!(p, Packet::Disconnect(d) if d.reason == DisconnectReason::PacketTooLarge)
        ),
        "{got:?}"
    );
    // A malformed subscribe filter: DISCONNECT 0x81 or 0x82 (a/#/b is invalid).
    let mut s = raw(b.tcp).await;
    s.write_all(&connect_bytes(v, "badsub", None))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut bytes = Vec::new();
    // SUBSCRIBE id 1, no properties, filter "a/#/b", options 0.
    bytes.extend_from_slice(&[0x82, 11, 0, 1, 0, 0, 5, b'a', b'/', b'#', b'/', b'b', 0]);
    s.write_all(&bytes).await.unwrap();
    let got = read_until_closed(&mut s, v).await;
    assert!(
        got.iter()
            .any(|p| matches!(p, Packet::Disconnect(d) if d.reason.is_error())),
        "{got:?}"
    );

    // The well-behaved pair never noticed.
    publisher
        .publish(
            Message::new("good/y", "still here")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    let m = recv(&mut messages).await;
    assert_eq!(m.payload(), b"still here");
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_sends_v5_clients_0x8b() {
    let b = start(BrokerConfig::default()).await;
    let (c, _) = b
        .client(&b.url(), ProtocolVersion::V5, "bye")
        .connect()
        .await
        .unwrap();
    let mut events = c.events();
    b.broker.shutdown().await;
    let reason = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(ConnectionEvent::Disconnected(e)) = events.recv().await {
                return e.to_string();
            }
        }
    })
    .await
    .unwrap();
    assert!(reason.contains("ServerShuttingDown"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_in_both_versions() {
    let Some(sub_bin) = mqtt_test_support::program("broker_mosquitto_clients", "mosquitto_sub")
    else {
        return;
    };
    let Some(pub_bin) = mqtt_test_support::program("broker_mosquitto_clients", "mosquitto_pub")
    else {
        return;
    };
    let b = start(BrokerConfig::default()).await;
    let port = b.tcp.to_string();
    for v in ["mqttv311", "mqttv5"] {
        let topic = format!("mosq/{v}");
        let sub = tokio::process::Command::new(&sub_bin)
            .args([
                "-p",
                &port,
                "-V",
                v,
                "-t",
                &format!("{topic}/#"),
                "-q",
                "2",
                "-C",
                "4",
                "-v",
                "-W",
                "10",
            ])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Wait for the subscription to exist.
        tokio::time::timeout(WAIT, async {
            while b.broker.subscriptions() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        for q in ["0", "1", "2"] {
            let ok = tokio::process::Command::new(&pub_bin)
                .args([
                    "-p",
                    &port,
                    "-V",
                    v,
                    "-t",
                    &format!("{topic}/q{q}"),
                    "-q",
                    q,
                    "-m",
                    &format!("m{q}"),
                ])
                .status()
                .await
                .unwrap();
            assert!(ok.success());
        }
        // Retained, then delivered live too.
        tokio::process::Command::new(&pub_bin)
            .args([
                "-p",
                &port,
                "-V",
                v,
                "-t",
                &format!("{topic}/r"),
                "-q",
                "1",
                "-r",
                "-m",
                "kept",
            ])
            .status()
            .await
            .unwrap();
        let out = tokio::time::timeout(WAIT, sub.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        for line in [
            format!("{topic}/q0 m0"),
            format!("{topic}/q1 m1"),
            format!("{topic}/q2 m2"),
            format!("{topic}/r kept"),
        ] {
            assert!(text.contains(&line), "{line} missing from {text}");
        }
        // A late subscriber gets the retained message.
        let late = tokio::process::Command::new(&sub_bin)
            .args([
                "-p",
                &port,
                "-V",
                v,
                "-t",
                &format!("{topic}/r"),
                "-C",
                "1",
                "-W",
                "5",
            ])
            .output()
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&late.stdout).trim(), "kept");
    }
    b.broker.shutdown().await;
}

const MQTTJS: &str = r#"
const mqtt = require('mqtt');
const [url, version] = [process.argv[2], Number(process.argv[3])];
const c = mqtt.connect(url, { protocolVersion: version, clientId: 'js' + version + Math.random().toString(16).slice(2, 8) });
c.on('connect', () => {
  c.subscribe('js/+/in', { qos: 2 }, () => {
    c.publish('js/x/in', 'loop', { qos: 1 });
  });
});
c.on('message', (topic, payload) => {
  console.log(topic + ' ' + payload.toString());
  c.end();
});
c.on('error', (e) => { console.log('ERROR ' + e.message); process.exit(1); });
"#;

/// MQTT.js over ws:// and mqtt://, both versions: subscribe, publish, receive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_js_over_websocket_and_tcp() {
    let Some((node, node_path)) = mqtt_test_support::node_with("broker_mqttjs", "mqtt") else {
        return;
    };
    let b = start(BrokerConfig::default()).await;
    let script = write_script("broker-mqttjs", "c.js", MQTTJS);
    for url in [format!("ws://127.0.0.1:{}/mqtt", b.ws), b.url()] {
        for version in ["4", "5"] {
            let out = tokio::time::timeout(
                WAIT,
                tokio::process::Command::new(&node)
                    .arg(&script)
                    .arg(&url)
                    .arg(version)
                    .env("NODE_PATH", &node_path)
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .expect("MQTT.js finished in time")
            .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "js/x/in loop",
                "{url} v{version}"
            );
        }
    }
    b.broker.shutdown().await;
}

const PAHO: &str = r#"
import sys, time, paho.mqtt.client as mqtt
host, port, transport, version, base = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
proto = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=proto, transport=transport)
if transport == "websockets":
    c.ws_set_options(path="/mqtt")
got = []
c.on_message = lambda cl, u, m: got.append((m.topic, m.payload.decode(), m.qos, m.retain))
c.connect(host, port)
c.loop_start()
c.subscribe(base + "/#", qos=2)
time.sleep(0.3)
for q in (0, 1, 2):
    c.publish(base + "/q%d" % q, "m%d" % q, qos=q).wait_for_publish(5)
c.publish(base + "/keep", "kept", qos=1, retain=True).wait_for_publish(5)
deadline = time.time() + 5
while len(got) < 4 and time.time() < deadline:
    time.sleep(0.05)
c.loop_stop()
c.disconnect()
for t in sorted(got):
    print("%s %s %d" % (t[0].split("/", 1)[1], t[1], t[2]))
"#;

/// paho-mqtt over TCP and WebSocket, both versions, every QoS and retained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_over_tcp_and_websocket() {
    let Some(python) = mqtt_test_support::python_with("broker_paho", "paho.mqtt.client") else {
        return;
    };
    let b = start(BrokerConfig::default()).await;
    let script = write_script("broker-paho", "c.py", PAHO);
    for (port, transport) in [(b.tcp, "tcp"), (b.ws, "websockets")] {
        for version in ["3", "5"] {
            let out = tokio::time::timeout(
                WAIT,
                tokio::process::Command::new(&python)
                    .arg(&script)
                    .args([
                        "127.0.0.1",
                        &port.to_string(),
                        transport,
                        version,
                        &format!("paho{transport}{version}"),
                    ])
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .expect("paho finished in time")
            .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(
                lines,
                ["keep kept 1", "q0 m0 0", "q1 m1 1", "q2 m2 2"],
                "{transport} v{version}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    b.broker.shutdown().await;
}

fn subscription(filter: &str, qos: QoS) -> mqtt_codec::Subscription {
    mqtt_codec::Subscription::new(TopicFilter::try_from(filter).unwrap(), qos)
}

/// Waits `d` for a message and expects none.
async fn none_within(m: &mut mqtt_client::Messages, d: Duration) {
    if let Ok(Some(p)) = tokio::time::timeout(d, m.recv()).await {
        panic!("unexpected message on {}", p.topic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscription_spreads_messages_round_robin() {
    let b = start(BrokerConfig::default()).await;
    let v = ProtocolVersion::V5;
    let mut members = Vec::new();
    for i in 0..3 {
        let (c, m) = b
            .client(&b.url(), v, &format!("worker{i}"))
            .connect()
            .await
            .unwrap();
        c.subscribe("$share/workers/jobs/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        members.push((c, m));
    }
    let (publisher, _) = b.client(&b.url(), v, "boss").connect().await.unwrap();
    for i in 0..30u8 {
        publisher
            .publish(
                Message::new("jobs/build", vec![i])
                    .unwrap()
                    .qos(QoS::AtLeastOnce),
            )
            .await
            .unwrap();
    }
    let mut all = Vec::new();
    for (_, m) in &mut members {
        // Round robin: ten each.
        for _ in 0..10 {
            all.push(recv(m).await.payload()[0]);
        }
        none_within(m, Duration::from_millis(100)).await;
    }
    all.sort();
    assert_eq!(all, (0..30).collect::<Vec<u8>>());
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_options_no_local_retain_as_published_and_retain_handling() {
    let b = start(BrokerConfig::default()).await;
    let v = ProtocolVersion::V5;
    let (c, mut messages) = b.client(&b.url(), v, "opts").connect().await.unwrap();
    // No Local ([MQTT-3.8.3-3]): our own message does not come back.
    let mut s = subscription("opts/nl", QoS::AtLeastOnce);
    s.options.no_local = true;
    c.subscribe_with(vec![s], Default::default()).await.unwrap();
    c.publish(
        Message::new("opts/nl", "mine")
            .unwrap()
            .qos(QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    none_within(&mut messages, Duration::from_millis(200)).await;

    let (other, _) = b.client(&b.url(), v, "opts-pub").connect().await.unwrap();
    other
        .publish(
            Message::new("opts/kept", "r")
                .unwrap()
                .qos(QoS::AtLeastOnce)
                .retain(true),
        )
        .await
        .unwrap();
    // Retain Handling 2 ([MQTT-3.3.1-11]): nothing retained on subscribing.
    let mut s = subscription("opts/kept", QoS::AtLeastOnce);
    s.options.retain_handling = mqtt_codec::RetainHandling::DoNotSend;
    c.subscribe_with(vec![s], Default::default()).await.unwrap();
    none_within(&mut messages, Duration::from_millis(200)).await;
    // Retain Handling 1 ([MQTT-3.3.1-10]): the subscription exists now, so none.
    let mut s = subscription("opts/kept", QoS::AtLeastOnce);
    s.options.retain_handling = mqtt_codec::RetainHandling::SendAtSubscribeIfNew;
    c.subscribe_with(vec![s], Default::default()).await.unwrap();
    none_within(&mut messages, Duration::from_millis(200)).await;
    // Retain Handling 0 ([MQTT-3.3.1-9], [MQTT-3.8.4-4]): sent again.
    let mut s = subscription("opts/kept", QoS::AtLeastOnce);
    s.options.retain_as_published = true;
    c.subscribe_with(vec![s], Default::default()).await.unwrap();
    let m = recv(&mut messages).await;
    assert!(m.retain);
    // Retain As Published 1 ([MQTT-3.3.1-13]) keeps RETAIN on live messages ...
    other
        .publish(
            Message::new("opts/kept", "r2")
                .unwrap()
                .qos(QoS::AtLeastOnce)
                .retain(true),
        )
        .await
        .unwrap();
    assert!(recv(&mut messages).await.retain);
    // ... and 0 ([MQTT-3.3.1-12]) clears it.
    c.subscribe("opts/kept", QoS::AtLeastOnce).await.unwrap();
    let _ = recv(&mut messages).await; // the retained message again (Retain Handling 0)
    other
        .publish(
            Message::new("opts/kept", "r3")
                .unwrap()
                .qos(QoS::AtLeastOnce)
                .retain(true),
        )
        .await
        .unwrap();
    assert!(!recv(&mut messages).await.retain);
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_waits_and_a_resumed_session_cancels_it() {
    let b = start(BrokerConfig::default()).await;
    let v = ProtocolVersion::V5;
    let (sub, mut messages) = b.client(&b.url(), v, "wd-sub").connect().await.unwrap();
    sub.subscribe("wd/#", QoS::AtLeastOnce).await.unwrap();
    let connect_with_delay = |id: &str, clean: bool| {
        let mut will = Will::new(TopicName::try_from("wd/gone").unwrap(), &b"late"[..]);
        will.properties.will_delay_interval = Some(1);
        let mut c = Connect::new(v, MqttStr::try_from(id).unwrap());
        c.will = Some(will);
        c.clean_start = clean;
        c.properties.session_expiry_interval = Some(30);
        let mut buf = BytesMut::new();
        c.encode(v, &mut buf).unwrap();
        buf
    };
    // Lost, then not resumed: the will comes after about a second.
    let mut s = raw(b.tcp).await;
    s.write_all(&connect_with_delay("wd-a", true))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lost = std::time::Instant::now();
    drop(s);
    let m = recv(&mut messages).await;
    assert_eq!(m.payload(), b"late");
    assert!(
        lost.elapsed() >= Duration::from_millis(900),
        "{:?}",
        lost.elapsed()
    );
    // Lost, then resumed within the delay: no will ([MQTT-3.1.3-9]).
    let mut s = raw(b.tcp).await;
    s.write_all(&connect_with_delay("wd-b", true))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut s = raw(b.tcp).await;
    s.write_all(&connect_with_delay("wd-b", false))
        .await
        .unwrap();
    none_within(&mut messages, Duration::from_millis(1500)).await;
    drop(s);
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_expire_and_sessions_expire() {
    let b = start(BrokerConfig::default()).await;
    let v = ProtocolVersion::V5;
    let builder = |expiry: u64| {
        b.client(&b.url(), v, "exp-sub")
            .clean_start(false)
            .session_expiry(Duration::from_secs(expiry))
    };
    let (sub, _) = builder(30).connect().await.unwrap();
    sub.subscribe("exp/#", QoS::AtLeastOnce).await.unwrap();
    sub.disconnect().await.unwrap();
    let (publisher, _) = b.client(&b.url(), v, "exp-pub").connect().await.unwrap();
    publisher
        .publish(
            Message::new("exp/short", "gone")
                .unwrap()
                .qos(QoS::AtLeastOnce)
                .message_expiry(1),
        )
        .await
        .unwrap();
    publisher
        .publish(
            Message::new("exp/long", "kept")
                .unwrap()
                .qos(QoS::AtLeastOnce)
                .message_expiry(60),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (sub, mut messages) = builder(1).connect().await.unwrap();
    assert!(sub.connack().unwrap().session_present);
    // [MQTT-3.3.2-5]: the expired one is gone; [MQTT-3.3.2-6]: the other
    // carries what is left of its interval.
    let m = recv(&mut messages).await;
    assert_eq!(m.payload(), b"kept");
    let left = m.properties().message_expiry_interval.unwrap();
    assert!((57..=58).contains(&left), "{left}");
    none_within(&mut messages, Duration::from_millis(200)).await;
    sub.disconnect().await.unwrap();
    // [MQTT-4.1.0-2]: the session (expiry 1 s now) is discarded after it.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (sub, _) = builder(1).connect().await.unwrap();
    assert!(!sub.connack().unwrap().session_present);
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_aliases_and_assigned_client_identifiers() {
    let b = start(BrokerConfig::default()).await;
    let v = ProtocolVersion::V5;
    let (sub, mut messages) = b.client(&b.url(), v, "alias-sub").connect().await.unwrap();
    sub.subscribe("alias/#", QoS::AtLeastOnce).await.unwrap();
    // Empty client id: the broker assigns one ([MQTT-3.1.3-6], [MQTT-3.2.2-16]).
    let (publisher, _) = b
        .client(&b.url(), v, "")
        .outgoing_topic_aliases(true)
        .connect()
        .await
        .unwrap();
    let assigned = publisher
        .connack()
        .unwrap()
        .properties
        .assigned_client_identifier
        .unwrap();
    assert!(!assigned.as_str().is_empty());
    for i in 0..3u8 {
        publisher
            .publish(
                Message::new("alias/long/topic/name", vec![i])
                    .unwrap()
                    .qos(QoS::AtLeastOnce),
            )
            .await
            .unwrap();
    }
    for i in 0..3u8 {
        let m = recv(&mut messages).await;
        // The alias was resolved: subscribers see the topic.
        assert_eq!(m.topic(), "alias/long/topic/name");
        assert_eq!(m.payload(), &[i]);
    }
    b.broker.shutdown().await;
}

/// Denies subscriptions under `secret/` and publishes under `readonly/`,
/// and stamps every routed message with a user property.
struct Policy;

impl mqtt_broker_core::Hooks for Policy {
    fn authorize_subscribe(&self, _: &mqtt_broker_core::ClientInfo, filter: &TopicFilter) -> bool {
        !filter.as_str().starts_with("secret/")
    }
    fn authorize_publish(&self, _: &mqtt_broker_core::ClientInfo, p: &Publish) -> bool {
        !p.topic().starts_with("readonly/")
    }
    fn on_message(&self, client: &mqtt_broker_core::ClientInfo, mut p: Publish) -> Option<Publish> {
        if p.topic().ends_with("/drop") {
            return None;
        }
        p.properties_mut()
            .user_properties
            .push(mqtt_codec::UserProperty {
                name: MqttStr::try_from("sender").unwrap(),
                value: MqttStr::try_from(&*client.client_id).unwrap(),
            });
        Some(p)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_authorize_and_intercept() {
    let broker = Broker::new(BrokerConfig::default(), Arc::new(Policy));
    let port = broker
        .listen(ListenerConfig::Tcp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap()
        .port();
    let url = format!("mqtt://127.0.0.1:{port}");
    for v in VERSIONS {
        let (c, mut messages) = ClientBuilder::new(&url)
            .unwrap()
            .version(v)
            .connect()
            .await
            .unwrap();
        let suback = c
            .subscribe_with(
                vec![
                    subscription("secret/#", QoS::AtLeastOnce),
                    subscription("open/#", QoS::AtLeastOnce),
                    subscription("readonly/#", QoS::AtLeastOnce),
                ],
                Default::default(),
            )
            .await
            .unwrap();
        let denied = if v.is_v5() {
            mqtt_codec::SubAckReason::NotAuthorized
        } else {
            mqtt_codec::SubAckReason::UnspecifiedError
        };
        assert_eq!(suback.reasons[0], denied);
        assert_eq!(suback.reasons[1], mqtt_codec::SubAckReason::GrantedQoS1);
        // 3.1.1 [MQTT-3.3.5-2]: an unauthorized PUBLISH is acknowledged
        // normally (and dropped); MQTT 5 answers PUBACK 0x87 Not authorized.
        let r = c
            .publish(
                Message::new("readonly/x", "no")
                    .unwrap()
                    .qos(QoS::AtLeastOnce),
            )
            .await;
        if v.is_v5() {
            assert!(
                matches!(
                    r,
                    Err(mqtt_client::Error::Refused(
                        mqtt_codec::PubAckReason::NotAuthorized
                    ))
                ),
                "{r:?}"
            );
        } else {
            r.unwrap();
        }
        c.publish(
            Message::new("open/drop", "no")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
        c.publish(Message::new("open/x", "yes").unwrap().qos(QoS::AtLeastOnce))
            .await
            .unwrap();
        let m = recv(&mut messages).await;
        assert_eq!(m.topic(), "open/x");
        if v.is_v5() {
            assert_eq!(m.properties().user_properties[0].name.as_str(), "sender");
        }
        none_within(&mut messages, Duration::from_millis(200)).await;
        c.disconnect().await.unwrap();
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_stays_bounded_and_others_get_everything() {
    let mut config = BrokerConfig {
        mailbox_limit: 2000,
        ..Default::default()
    };
    config.session.max_queued = 100;
    let b = start(config).await;
    let v = ProtocolVersion::V5;
    // Never reads: its stream fills, the client stops reading, TCP backs up.
    let (stuck, _stuck_messages) = b
        .client(&b.url(), v, "stuck")
        .incoming_capacity(1)
        .connect()
        .await
        .unwrap();
    stuck.subscribe("flood/#", QoS::AtLeastOnce).await.unwrap();
    let (ok, mut messages) = b.client(&b.url(), v, "ok").connect().await.unwrap();
    ok.subscribe("flood/#", QoS::AtLeastOnce).await.unwrap();
    let (publisher, _) = b
        .client(&b.url(), v, "flooder")
        .queue_limit(1000)
        .connect()
        .await
        .unwrap();
    let n = 20_000u32;
    let payload = vec![0u8; 512];
    let sending = tokio::spawn(async move {
        let mut pending = Vec::new();
        for i in 0..n {
            let mut p = payload.clone();
            p[..4].copy_from_slice(&i.to_be_bytes());
            pending.push(
                publisher
                    .enqueue(Message::new("flood/x", p).unwrap().qos(QoS::AtLeastOnce))
                    .await
                    .unwrap(),
            );
        }
        for d in pending {
            d.await.unwrap();
        }
    });
    // [MQTT-4.6.0-5], [MQTT-4.6.0-6]: in the order published.
    for i in 0..n {
        let m = recv(&mut messages).await;
        assert_eq!(u32::from_be_bytes(m.payload()[..4].try_into().unwrap()), i);
    }
    tokio::time::timeout(WAIT, sending).await.unwrap().unwrap();
    // The stuck subscriber's share was bounded and the excess dropped, counted.
    assert!(
        b.broker
            .stats()
            .messages_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_follows_the_rules_for_sessions_and_identifiers() {
    let b = start(BrokerConfig::default()).await;
    for v in VERSIONS {
        // [MQTT-3.1.3-5]: 23 characters of 0-9a-zA-Z are accepted.
        let id = if v.is_v5() {
            "abcdefghijklmnopqrstuvw"
        } else {
            "ABCDEFGHIJ0123456789xyz"
        };
        let (c, _) = b
            .client(&b.url(), v, id)
            .clean_start(false)
            .session_expiry(Duration::from_secs(60))
            .connect()
            .await
            .unwrap();
        // [MQTT-3.1.4-4], [MQTT-3.1.4-5]: accepted with 0x00.
        let connack = c.connack().unwrap();
        assert_eq!(connack.reason, mqtt_codec::ConnectReason::Success);
        if v.is_v5() {
            // [MQTT-3.1.2-28], [MQTT-4.12.0-6]: nothing asked, nothing sent.
            assert!(connack.properties.response_information.is_none());
            assert!(connack.properties.authentication_method.is_none());
        }
        c.disconnect().await.unwrap();
        // [MQTT-3.1.3-2]: the session is found by client id ...
        let (c, _) = b
            .client(&b.url(), v, id)
            .clean_start(false)
            .session_expiry(Duration::from_secs(60))
            .connect()
            .await
            .unwrap();
        assert!(c.connack().unwrap().session_present);
        c.disconnect().await.unwrap();
        // ... and Clean Start discards it ([MQTT-3.1.2-4], 3.1.1 [MQTT-3.2.2-1]).
        let (c, _) = b
            .client(&b.url(), v, id)
            .clean_start(true)
            .connect()
            .await
            .unwrap();
        assert!(!c.connack().unwrap().session_present);
        c.disconnect().await.unwrap();
    }
    // [MQTT-4.12.0-1]: an Authentication Method nobody handles: 0x8C.
    let mut connect = Connect::new(ProtocolVersion::V5, MqttStr::try_from("auth").unwrap());
    connect.properties.authentication_method = Some(MqttStr::try_from("SCRAM-SHA-256").unwrap());
    let mut bytes = BytesMut::new();
    connect.encode(ProtocolVersion::V5, &mut bytes).unwrap();
    let mut s = raw(b.tcp).await;
    s.write_all(&bytes).await.unwrap();
    let got = read_until_closed(&mut s, ProtocolVersion::V5).await;
    assert!(
        matches!(&got[..], [Packet::ConnAck(c)] if c.reason == mqtt_codec::ConnectReason::BadAuthenticationMethod),
        "{got:?}"
    );
    // [MQTT-3.1.2-2] (3.1.1 [MQTT-3.1.2-2]): an unknown protocol level is refused with 0x84 / 1.
    let mut s = raw(b.tcp).await;
    s.write_all(&[0x10, 10, 0, 4, b'M', b'Q', b'T', b'T', 9, 2, 0, 60])
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut reply))
        .await
        .unwrap();
    assert!(reply.is_empty() || reply[0] == 0x20, "{reply:?}");
    if reply.len() >= 4 {
        assert!(reply[3] == 0x01 || reply[3] == 0x84, "{reply:?}");
    }
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_and_unsubscribe_with_several_filters() {
    let b = start(BrokerConfig::default()).await;
    for v in VERSIONS {
        let tag = format!("multi{}", u8::from(v.is_v5()));
        let (c, mut messages) = b
            .client(&b.url(), v, &format!("{tag}-c"))
            .connect()
            .await
            .unwrap();
        // [MQTT-3.8.4-5], [MQTT-3.8.4-6], [MQTT-3.8.4-7], [MQTT-3.9.3-1]: one code per filter, in order.
        let suback = c
            .subscribe_with(
                vec![
                    subscription(&format!("{tag}/a"), QoS::ExactlyOnce),
                    subscription(&format!("{tag}/b"), QoS::AtMostOnce),
                    subscription(&format!("{tag}/c/+"), QoS::AtLeastOnce),
                ],
                Default::default(),
            )
            .await
            .unwrap();
        use mqtt_codec::SubAckReason::*;
        assert_eq!(suback.reasons, vec![GrantedQoS2, GrantedQoS0, GrantedQoS1]);
        // [MQTT-3.10.4-5], [MQTT-3.10.4-6], [MQTT-3.11.3-1]: one UNSUBACK, also for what did not exist.
        let unsuback = c
            .unsubscribe_with(
                vec![
                    TopicFilter::try_from(format!("{tag}/a").as_str()).unwrap(),
                    TopicFilter::try_from(format!("{tag}/zzz").as_str()).unwrap(),
                ],
                Default::default(),
            )
            .await
            .unwrap();
        if v.is_v5() {
            assert_eq!(
                unsuback.reasons,
                vec![
                    mqtt_codec::UnsubAckReason::Success,
                    mqtt_codec::UnsubAckReason::NoSubscriptionExisted
                ]
            );
        }
        // [MQTT-3.10.4-2]: nothing more through the removed filter.
        c.publish(
            Message::new(&format!("{tag}/a"), "x")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
        c.publish(
            Message::new(&format!("{tag}/b"), "y")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
        let m = recv(&mut messages).await;
        assert_eq!(m.topic(), format!("{tag}/b"));
        // [MQTT-3.8.4-8]: delivered at the granted QoS 0.
        assert_eq!(m.qos(), QoS::AtMostOnce);
        none_within(&mut messages, Duration::from_millis(200)).await;
        // [MQTT-3.3.1-8]: RETAIN 0 leaves the retained message alone.
        c.publish(
            Message::new(&format!("{tag}/c/r"), "kept")
                .unwrap()
                .qos(QoS::AtLeastOnce)
                .retain(true),
        )
        .await
        .unwrap();
        let _ = recv(&mut messages).await;
        c.publish(
            Message::new(&format!("{tag}/c/r"), "live")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
        let _ = recv(&mut messages).await;
        let (late, mut late_messages) = b
            .client(&b.url(), v, &format!("{tag}-late"))
            .connect()
            .await
            .unwrap();
        late.subscribe(&format!("{tag}/c/+"), QoS::AtLeastOnce)
            .await
            .unwrap();
        assert_eq!(recv(&mut late_messages).await.payload(), b"kept");
    }
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_give_one_copy_with_every_identifier() {
    let b = start(BrokerConfig::default()).await;
    let v = ProtocolVersion::V5;
    let (c, mut messages) = b.client(&b.url(), v, "overlap").connect().await.unwrap();
    for (filter, qos, id) in [("ov/+", QoS::AtMostOnce, 1), ("ov/#", QoS::ExactlyOnce, 2)] {
        let props = mqtt_codec::SubscribeProperties {
            subscription_identifier: std::num::NonZeroU32::new(id),
            ..Default::default()
        };
        c.subscribe_with(vec![subscription(filter, qos)], props)
            .await
            .unwrap();
    }
    let (p, _) = b
        .client(&b.url(), v, "overlap-pub")
        .connect()
        .await
        .unwrap();
    p.publish(Message::new("ov/x", "one").unwrap().qos(QoS::ExactlyOnce))
        .await
        .unwrap();
    let m = recv(&mut messages).await;
    // [MQTT-3.3.4-2], [MQTT-3.3.5-1]: one copy at the highest QoS;
    // [MQTT-3.3.4-3], [MQTT-3.3.4-4]: with both identifiers.
    assert_eq!(m.qos(), QoS::ExactlyOnce);
    let mut ids: Vec<u32> = m
        .properties()
        .subscription_identifiers
        .iter()
        .map(|i| i.get())
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
    none_within(&mut messages, Duration::from_millis(200)).await;
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reduced_maximum_qos_and_client_maximum_packet_size() {
    let mut config = BrokerConfig::default();
    config.session.maximum_qos = QoS::AtLeastOnce;
    let b = start(config).await;
    let v = ProtocolVersion::V5;
    let (c, mut messages) = b
        .client(&b.url(), v, "small")
        .maximum_packet_size(std::num::NonZeroU32::new(200).unwrap())
        .connect()
        .await
        .unwrap();
    // [MQTT-3.2.2-9]: announced.
    assert_eq!(
        c.connack().unwrap().properties.maximum_qos,
        Some(QoS::AtLeastOnce)
    );
    // [MQTT-3.2.2-10]: a QoS 2 subscription is accepted (granted at most 1).
    let suback = c.subscribe("mq/#", QoS::ExactlyOnce).await.unwrap();
    assert_eq!(suback.reasons, vec![mqtt_codec::SubAckReason::GrantedQoS1]);
    // A shared member granted QoS 0 gets QoS 0 ([MQTT-4.8.2-3]).
    let (member, mut member_messages) = b.client(&b.url(), v, "member").connect().await.unwrap();
    member
        .subscribe("$share/g/mq/#", QoS::AtMostOnce)
        .await
        .unwrap();
    let (p, _) = b.client(&b.url(), v, "mq-pub").connect().await.unwrap();
    // [MQTT-3.1.2-25]: too large for "small": dropped for it, not for others.
    p.publish(
        Message::new("mq/big", vec![1u8; 500])
            .unwrap()
            .qos(QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    p.publish(Message::new("mq/small", "s").unwrap().qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    assert_eq!(recv(&mut messages).await.topic(), "mq/small");
    let first = recv(&mut member_messages).await;
    assert_eq!(first.topic(), "mq/big");
    assert_eq!(first.qos(), QoS::AtMostOnce);
    b.broker.shutdown().await;
}

const PAHO_V5: &str = r#"
import sys, time, paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
V2 = mqtt.CallbackAPIVersion.VERSION2

def client(cid, clean=True, expiry=None):
    c = mqtt.Client(V2, client_id=cid, protocol=mqtt.MQTTv5)
    got = []
    c.on_message = lambda cl, u, m: got.append(m)
    props = None
    if expiry is not None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
    return c, got, props

def wait(got, n):
    deadline = time.time() + 5
    while len(got) < n and time.time() < deadline:
        time.sleep(0.02)

if mode == "will":
    # Connects with a will, then waits to be killed.
    c, _, _ = client("paho-will")
    c.will_set("pv5/will", "paho gone", qos=1)
    c.connect(host, port)
    c.loop_start()
    print("READY", flush=True)
    time.sleep(60)
elif mode == "resume":
    # Persistent session: messages published while offline arrive on return.
    c, got, props = client("paho-resume", expiry=60)
    c.connect(host, port, clean_start=False, properties=props)
    c.loop_start()
    c.subscribe("pv5/queued", qos=1)
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()
    p, _, _ = client("paho-resume-pub")
    p.connect(host, port)
    p.loop_start()
    for i in range(3):
        p.publish("pv5/queued", "q%d" % i, qos=1).wait_for_publish(5)
    p.disconnect()
    p.loop_stop()
    c, got, props = client("paho-resume", expiry=60)
    present = []
    c.on_connect = lambda cl, u, flags, rc, pr: present.append(flags.session_present)
    c.on_message = lambda cl, u, m: got.append(m)
    c.connect(host, port, clean_start=False, properties=props)
    c.loop_start()
    wait(got, 3)
    c.disconnect()
    c.loop_stop()
    print("present", present[0] if present else None)
    for m in got:
        print(m.topic, m.payload.decode())
elif mode == "shared":
    # Two members of one shared group, and user properties in order.
    members = []
    for i in range(2):
        c, got, _ = client("paho-member%d" % i)
        c.connect(host, port)
        c.loop_start()
        c.subscribe("$share/grp/pv5/jobs", qos=1)
        members.append((c, got))
    time.sleep(0.3)
    p, _, _ = client("paho-boss")
    p.connect(host, port)
    p.loop_start()
    for i in range(10):
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("a", "1"), ("b", "2"), ("a", "3")]
        props.ContentType = "text/plain"
        p.publish("pv5/jobs", "j%d" % i, qos=1, properties=props).wait_for_publish(5)
    deadline = time.time() + 5
    while sum(len(g) for _, g in members) < 10 and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    counts = [len(g) for _, g in members]
    m = members[0][1][0]
    print("counts", counts[0], counts[1])
    print("props", m.properties.UserProperty, m.properties.ContentType)
    for c, _ in members:
        c.disconnect()
        c.loop_stop()
    p.disconnect()
    p.loop_stop()
"#;

/// paho-mqtt in MQTT 5: will on a killed client, a resumed session with
/// queued messages, a shared group of two, user properties in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_v5_will_resume_shared_and_properties() {
    let Some(python) = mqtt_test_support::python_with("broker_paho_v5", "paho.mqtt.client") else {
        return;
    };
    let b = start(BrokerConfig::default()).await;
    let script = write_script("broker-paho5", "c.py", PAHO_V5);
    let port = b.tcp.to_string();
    let run = |mode: &'static str| {
        let mut cmd = tokio::process::Command::new(&python);
        cmd.arg(&script)
            .args(["127.0.0.1", &port, mode])
            .kill_on_drop(true);
        cmd
    };

    // Will: the process is killed, so the connection ends without DISCONNECT.
    let (watcher, mut messages) = b
        .client(&b.url(), ProtocolVersion::V5, "paho-watch")
        .connect()
        .await
        .unwrap();
    watcher
        .subscribe("pv5/will", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut will = run("will")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(will.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(
        WAIT,
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(line.trim(), "READY");
    will.start_kill().unwrap();
    let m = recv(&mut messages).await;
    assert_eq!(m.payload(), b"paho gone");

    let text = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let resume = text(
        tokio::time::timeout(Duration::from_secs(20), run("resume").output())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(
        resume.trim(),
        "present True\npv5/queued q0\npv5/queued q1\npv5/queued q2"
    );

    let shared = text(
        tokio::time::timeout(Duration::from_secs(20), run("shared").output())
            .await
            .unwrap()
            .unwrap(),
    );
    let mut lines = shared.lines();
    assert_eq!(lines.next(), Some("counts 5 5"), "{shared}");
    assert_eq!(
        lines.next(),
        Some("props [('a', '1'), ('b', '2'), ('a', '3')] text/plain"),
        "{shared}"
    );
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_with_will_message_publishes_the_will() {
    let b = start(BrokerConfig::default()).await;
    let v = ProtocolVersion::V5;
    let (sub, mut messages) = b.client(&b.url(), v, "dww-sub").connect().await.unwrap();
    sub.subscribe("dww/#", QoS::AtLeastOnce).await.unwrap();
    let mut s = raw(b.tcp).await;
    let will = Will::new(TopicName::try_from("dww/gone").unwrap(), &b"asked for"[..]);
    s.write_all(&connect_bytes(v, "dww", Some(will)))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    mqtt_codec::Disconnect::new(DisconnectReason::DisconnectWithWillMessage)
        .encode(v, &mut buf)
        .unwrap();
    s.write_all(&buf).await.unwrap();
    let _ = read_until_closed(&mut s, v).await;
    // [MQTT-3.1.2-8]: 0x04 keeps the will.
    assert_eq!(recv(&mut messages).await.payload(), b"asked for");
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_keep_alive_caps_the_clients() {
    let config = BrokerConfig {
        max_keep_alive: Some(20),
        ..Default::default()
    };
    let b = start(config).await;
    let (c, _) = b
        .client(&b.url(), ProtocolVersion::V5, "ka")
        .keep_alive(Duration::from_secs(300))
        .connect()
        .await
        .unwrap();
    assert_eq!(c.connack().unwrap().properties.server_keep_alive, Some(20));
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_reconnect_resumes_the_session_it_left() {
    let b = start(BrokerConfig::default()).await;
    for v in VERSIONS {
        let id = format!("quick{}", u8::from(v.is_v5()));
        let builder = || {
            b.client(&b.url(), v, &id)
                .clean_start(false)
                .session_expiry(Duration::from_secs(60))
        };
        let (c, _) = builder().connect().await.unwrap();
        c.subscribe("quick/#", QoS::AtLeastOnce).await.unwrap();
        drop(c); // every handle gone: the client disconnects
        let (p, _) = b
            .client(&b.url(), v, &format!("{id}-pub"))
            .connect()
            .await
            .unwrap();
        p.publish(
            Message::new("quick/x", "while away")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
        let (c, mut messages) = builder().connect().await.unwrap();
        assert!(c.connack().unwrap().session_present);
        assert_eq!(recv(&mut messages).await.payload(), b"while away");
        c.disconnect().await.unwrap();
    }
    b.broker.shutdown().await;
}

/// An idle connection waits parked, with its keep-alive deadline as its
/// one timer: a client that goes silent is closed after one and a half
/// times its Keep Alive (MQTT 5: with DISCONNECT 0x8D first), one that
/// pings is woken by each PINGREQ and stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_closes_silent_clients_and_pings_keep_others() {
    let b = start(BrokerConfig::default()).await;
    for v in VERSIONS {
        let connect = |id: &str| {
            let mut c = Connect::new(v, MqttStr::try_from(id).unwrap());
            c.keep_alive = 1;
            let mut bytes = BytesMut::new();
            c.encode(v, &mut bytes).unwrap();
            bytes
        };
        let mut silent = raw(b.tcp).await;
        silent.write_all(&connect("silent")).await.unwrap();
        let mut pinging = raw(b.tcp).await;
        pinging.write_all(&connect("pinging")).await.unwrap();
        let started = std::time::Instant::now();
        let pings = async {
            // Every half second for 3 s: well past 1.5 s of Keep Alive.
            let mut decoder = Decoder::client(v);
            let mut buf = BytesMut::new();
            let mut pongs = 0;
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                pinging.write_all(&[0xC0, 0]).await.unwrap();
                loop {
                    let p = decoder.decode(&mut buf).unwrap();
                    match p {
                        Some(Packet::PingResp) => {
                            pongs += 1;
                            break;
                        }
                        Some(_) => {}
                        None => {
                            let n = tokio::time::timeout(WAIT, pinging.read_buf(&mut buf))
                                .await
                                .unwrap()
                                .unwrap();
                            assert!(n > 0, "the pinging client was closed");
                        }
                    }
                }
            }
            pongs
        };
        let silence = async {
            let packets = read_until_closed(&mut silent, v).await;
            (packets, started.elapsed())
        };
        let ((closing, waited), pongs) = tokio::join!(silence, pings);
        assert_eq!(pongs, 6);
        // [MQTT-3.1.2-22] (MQTT 5), [MQTT-3.1.2-24] (3.1.1): closed
        // after 1.5 x Keep Alive, not long after.
        assert!(
            waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
            "closed after {waited:?}"
        );
        assert!(matches!(closing.first(), Some(Packet::ConnAck(_))));
        if v.is_v5() {
            match closing.last() {
                Some(Packet::Disconnect(d)) => {
                    assert_eq!(d.reason, DisconnectReason::KeepAliveTimeout)
                }
                other => panic!("expected DISCONNECT 0x8D, got {other:?}"),
            }
        } else {
            assert_eq!(closing.len(), 1, "3.1.1: the connection just closes");
        }
    }
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_but_never_reads_is_closed() {
    let b = start(BrokerConfig::default()).await;
    let v = ProtocolVersion::V5;
    let mut c = Connect::new(v, MqttStr::try_from("deaf").unwrap());
    c.keep_alive = 1;
    let mut bytes = BytesMut::new();
    c.encode(v, &mut bytes).unwrap();
    let s = raw(b.tcp).await;
    let (_rd, mut wr) = s.into_split();
    wr.write_all(&bytes).await.unwrap();
    // PINGREQs without ever reading a PINGRESP: the broker stops reading
    // once its answers back up, and the connection ends.
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        let ping = [0xC0u8, 0].repeat(4096);
        loop {
            if wr.write_all(&ping).await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still accepting bytes after 20 s");
    b.broker.shutdown().await;
}

/// A broker whose mailboxes hold 200 messages, and a subscriber to
/// `filter` that takes 16 messages at a time off the socket.
async fn slow_subscriber(
    v: ProtocolVersion,
    id: &str,
    filter: &str,
) -> (Running, mqtt_client::Client, mqtt_client::Messages) {
    let config = BrokerConfig {
        mailbox_limit: 200,
        ..Default::default()
    };
    let b = start(config).await;
    let (sub, messages) = b
        .client(&b.url(), v, id)
        .incoming_capacity(16)
        .connect()
        .await
        .unwrap();
    sub.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    (b, sub, messages)
}

fn dropped(b: &Running) -> u64 {
    b.broker
        .stats()
        .messages_dropped
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Many publishers at once into one slow subscriber (each routing its
/// messages in bursts while the subscriber keeps up): nothing acknowledged
/// is dropped, and each publisher's messages arrive in its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_publishers_into_a_slow_subscriber_lose_nothing() {
    let v = ProtocolVersion::V3_1_1;
    let (b, _sub, mut messages) = slow_subscriber(v, "slow-many", "many/#").await;
    let (publishers, each) = (16u32, 400u32);
    let mut sending = Vec::new();
    for p in 0..publishers {
        let (publisher, _) = b
            .client(&b.url(), v, &format!("many-{p}"))
            .max_in_flight(200)
            .queue_limit(each as usize)
            .connect()
            .await
            .unwrap();
        sending.push(tokio::spawn(async move {
            let mut pending = Vec::new();
            for i in 0..each {
                let payload = [p.to_be_bytes(), i.to_be_bytes()].concat();
                let m = Message::new("many/x", payload)
                    .unwrap()
                    .qos(QoS::AtLeastOnce);
                pending.push(publisher.enqueue(m).await.unwrap());
            }
            for d in pending {
                d.await.unwrap();
            }
            publisher
        }));
    }
    let mut next = vec![0u32; publishers as usize];
    for n in 0..publishers * each {
        if n % 400 == 0 {
            // Slower than the publishers, but never stuck.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Ok(Some(m)) = tokio::time::timeout(WAIT, messages.recv()).await else {
            let dropped = b
                .broker
                .stats()
                .messages_dropped
                .load(std::sync::atomic::Ordering::Relaxed);
            panic!("stalled after {n} messages ({dropped} dropped)");
        };
        let p = u32::from_be_bytes(m.payload()[..4].try_into().unwrap()) as usize;
        let i = u32::from_be_bytes(m.payload()[4..].try_into().unwrap());
        // Each publisher's messages in its order ([MQTT-4.6.0-5]).
        assert_eq!(i, next[p], "publisher {p}");
        next[p] += 1;
    }
    for s in sending {
        tokio::time::timeout(WAIT, s).await.unwrap().unwrap();
    }
    assert_eq!(dropped(&b), 0);
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_slows_the_publisher_instead_of_losing_messages() {
    let v = ProtocolVersion::V5;
    let (b, _sub, mut messages) = slow_subscriber(v, "slow", "slow/#").await;
    let (publisher, _) = b
        .client(&b.url(), v, "fast")
        .queue_limit(5000)
        .connect()
        .await
        .unwrap();
    let n = 5000u32;
    let sending = tokio::spawn(async move {
        let mut pending = Vec::new();
        for i in 0..n {
            pending.push(
                publisher
                    .enqueue(
                        Message::new("slow/x", i.to_be_bytes().to_vec())
                            .unwrap()
                            .qos(QoS::AtLeastOnce),
                    )
                    .await
                    .unwrap(),
            );
        }
        for d in pending {
            d.await.unwrap();
        }
    });
    for i in 0..n {
        if i % 500 == 0 {
            // Slower than the publisher, but never stuck.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Ok(Some(m)) = tokio::time::timeout(WAIT, messages.recv()).await else {
            let s = b.broker.stats();
            panic!(
                "stalled at {i}: received {} sent {} dropped {}",
                s.messages_received
                    .load(std::sync::atomic::Ordering::Relaxed),
                s.messages_sent.load(std::sync::atomic::Ordering::Relaxed),
                s.messages_dropped
                    .load(std::sync::atomic::Ordering::Relaxed)
            );
        };
        assert_eq!(m.payload(), i.to_be_bytes());
    }
    tokio::time::timeout(WAIT, sending).await.unwrap().unwrap();
    assert_eq!(dropped(&b), 0);
    b.broker.shutdown().await;
}
