//! Stores: a broker restarted on the same store finds its persistent
//! sessions (subscriptions, queued and in-flight QoS 1 / QoS 2 messages,
//! QoS 2 identifiers awaiting release) and retained messages again.
//! (A SIGKILL test of the example broker on its file store is in
//! examples/tests/crash.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_broker_core::{
    AllowAll, Broker, BrokerConfig, ListenerConfig,
    store::{Durability, MemoryStore, RedbStore, Store},
};
use mqtt_client::{ClientBuilder, Message, ProtocolVersion, QoS};
use mqtt_codec::{
    BytesMut, Connect, Decoder, Encode, MqttStr, Packet, PacketId, PubAck, PubComp, PubRec, PubRel,
    Publish, QosPid, Subscribe, Subscription, SubscriptionOptions, TopicFilter, TopicName,
};
use std::{sync::Arc, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

async fn broker(store: Arc<dyn Store>) -> (Broker, u16) {
    let broker = Broker::with_store(
        BrokerConfig {
            sys_interval: None,
            ..Default::default()
        },
        Arc::new(AllowAll),
        store,
        Durability::Always,
    )
    .unwrap();
    let port = broker
        .listen(ListenerConfig::Tcp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap()
        .port();
    (broker, port)
}

fn client(port: u16, id: &str) -> ClientBuilder {
    ClientBuilder::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .version(ProtocolVersion::V5)
        .client_id(id)
        .clean_start(false)
        .session_expiry(Duration::from_secs(3600))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_queued_messages_and_retained_messages_survive_a_restart() {
    for (name, store) in [
        ("memory", Arc::new(MemoryStore::new()) as Arc<dyn Store>),
        (
            "redb",
            Arc::new(
                RedbStore::open(
                    std::env::temp_dir()
                        .join(format!("mqtt-store-test-{}.redb", std::process::id())),
                )
                .unwrap(),
            ),
        ),
    ] {
        let (b1, port) = broker(store.clone()).await;
        // A persistent subscriber, away while messages come.
        let (sub, _) = client(port, "keeper").connect().await.unwrap();
        sub.subscribe("q1/#", QoS::AtLeastOnce).await.unwrap();
        sub.subscribe("q2/#", QoS::ExactlyOnce).await.unwrap();
        sub.disconnect().await.unwrap();
        let (publisher, _) = client(port, "writer").connect().await.unwrap();
        for i in 0..50 {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            let topic = if qos == QoS::AtLeastOnce {
                "q1/a"
            } else {
                "q2/a"
            };
            publisher
                .publish(Message::new(topic, format!("{i}")).unwrap().qos(qos))
                .await
                .unwrap();
        }
        publisher
            .publish(
                Message::new("kept/1", "retained")
                    .unwrap()
                    .qos(QoS::AtLeastOnce)
                    .retain(true),
            )
            .await
            .unwrap();
        publisher.disconnect().await.unwrap();
        b1.shutdown().await;

        // A new broker on the same store.
        let (b2, port) = broker(store.clone()).await;
        assert_eq!(b2.retained(), 1, "{name}");
        let (sub, mut messages) = client(port, "keeper").connect().await.unwrap();
        assert!(sub.connack().unwrap().session_present, "{name}");
        let mut got = Vec::new();
        while got.len() < 50 {
            let m = tokio::time::timeout(WAIT, messages.recv())
                .await
                .unwrap_or_else(|_| panic!("{name}: {} of 50", got.len()))
                .unwrap();
            got.push(String::from_utf8(m.payload().to_vec()).unwrap());
        }
        let expected: Vec<String> = (0..50).map(|i| i.to_string()).collect();
        assert_eq!(got, expected, "{name}: every message once, in order");
        // The subscriptions came back too: new messages arrive.
        let (p2, _) = client(port, "writer").connect().await.unwrap();
        p2.publish(Message::new("q2/b", "after").unwrap().qos(QoS::ExactlyOnce))
            .await
            .unwrap();
        let m = tokio::time::timeout(WAIT, messages.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.payload(), b"after");
        // The retained message, to a newcomer.
        let (late, mut late_messages) = ClientBuilder::new(&format!("mqtt://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        late.subscribe("kept/#", QoS::AtLeastOnce).await.unwrap();
        let m = tokio::time::timeout(WAIT, late_messages.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((m.topic(), m.payload()), ("kept/1", &b"retained"[..]));
        // Delivered messages are forgotten: a third start has nothing queued.
        sub.disconnect().await.unwrap();
        p2.disconnect().await.unwrap();
        late.disconnect().await.unwrap();
        b2.shutdown().await;
        let (b3, port) = broker(store).await;
        let (sub, mut messages) = client(port, "keeper").connect().await.unwrap();
        assert!(sub.connack().unwrap().session_present);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), messages.recv())
                .await
                .is_err(),
            "{name}: nothing is delivered twice"
        );
        b3.shutdown().await;
    }
}

/// A raw MQTT 5 connection.
struct Raw {
    s: tokio::net::TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Raw {
    async fn connect(port: u16, id: &str) -> (Raw, bool) {
        let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut raw = Raw {
            s,
            buf: BytesMut::new(),
            decoder: Decoder::client(ProtocolVersion::V5),
        };
        let mut c = Connect::new(ProtocolVersion::V5, MqttStr::try_from(id).unwrap());
        c.clean_start = false;
        c.properties.session_expiry_interval = Some(3600);
        raw.send(c).await;
        match raw.next().await {
            Packet::ConnAck(a) => (raw, a.session_present),
            other => panic!("{other:?}"),
        }
    }

    async fn send(&mut self, p: impl Into<Packet>) {
        let mut out = BytesMut::new();
        p.into().encode(ProtocolVersion::V5, &mut out).unwrap();
        self.s.write_all(&out).await.unwrap();
    }

    async fn next(&mut self) -> Packet {
        loop {
            if let Some(p) = self.decoder.decode(&mut self.buf).unwrap() {
                return p;
            }
            let n = tokio::time::timeout(WAIT, self.s.read_buf(&mut self.buf))
                .await
                .expect("a packet in time")
                .unwrap();
            assert!(n > 0, "closed");
        }
    }
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_flows_resume_under_the_same_packet_ids_after_a_restart() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (b1, port) = broker(store.clone()).await;
    // The subscriber takes a QoS 2 message and acknowledges nothing.
    let (mut sub, _) = Raw::connect(port, "sub").await;
    sub.send(Subscribe {
        packet_id: pid(1),
        subscriptions: vec![Subscription {
            filter: TopicFilter::try_from("x/#").unwrap(),
            options: SubscriptionOptions::qos(mqtt_codec::QoS::ExactlyOnce),
        }],
        properties: Default::default(),
    })
    .await;
    assert!(matches!(sub.next().await, Packet::SubAck(_)));
    // The publisher sends two QoS 2 messages and releases only the first.
    let (mut publisher, _) = Raw::connect(port, "pub").await;
    for (n, body) in [(10, "one"), (11, "two")] {
        let mut p = Publish::new(
            TopicName::try_from("x/1").unwrap(),
            body.as_bytes().to_vec(),
        );
        p.qos_pid = QosPid::new(mqtt_codec::QoS::ExactlyOnce, pid(n));
        publisher.send(p).await;
        assert!(matches!(publisher.next().await, Packet::PubRec(r) if r.packet_id == pid(n)));
    }
    publisher.send(PubRel::new(pid(10))).await;
    assert!(matches!(publisher.next().await, Packet::PubComp(c) if c.packet_id == pid(10)));
    let first = match sub.next().await {
        Packet::Publish(p) => p,
        other => panic!("{other:?}"),
    };
    let second = match sub.next().await {
        Packet::Publish(p) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(first.payload(), b"one");
    // The subscriber acknowledges receipt of the first (PUBREC) only.
    sub.send(PubRec::new(first.packet_id().unwrap())).await;
    assert!(matches!(sub.next().await, Packet::PubRel(_)));
    b1.shutdown().await;
    drop((sub, publisher));

    let (b2, port) = broker(store).await;
    let (mut sub, present) = Raw::connect(port, "sub").await;
    assert!(present);
    // [MQTT-4.4.0-1]: the PUBREL again for the first, the second again
    // under its packet identifier with DUP set.
    let resent: Vec<Packet> = vec![sub.next().await, sub.next().await];
    assert!(
        resent
            .iter()
            .any(|p| matches!(p, Packet::PubRel(r) if r.packet_id == first.packet_id().unwrap())),
        "{resent:?}"
    );
    assert!(
        resent.iter().any(|p| matches!(p, Packet::Publish(p) if p.dup && p.payload() == b"two" && p.packet_id() == second.packet_id())),
        "{resent:?}"
    );
    // The publisher's unreleased message is still awaiting release: its
    // resend is acknowledged, not routed again ([MQTT-4.3.3-10]).
    let (mut publisher, present) = Raw::connect(port, "pub").await;
    assert!(present);
    let mut again = Publish::new(TopicName::try_from("x/1").unwrap(), &b"two"[..]);
    again.qos_pid = QosPid::new(mqtt_codec::QoS::ExactlyOnce, pid(11));
    again.dup = true;
    publisher.send(again).await;
    assert!(matches!(publisher.next().await, Packet::PubRec(r) if r.packet_id == pid(11)));
    publisher.send(PubRel::new(pid(11))).await;
    assert!(matches!(publisher.next().await, Packet::PubComp(_)));
    sub.send(PubComp::new(first.packet_id().unwrap())).await;
    sub.send(PubRec::new(second.packet_id().unwrap())).await;
    assert!(matches!(sub.next().await, Packet::PubRel(_)));
    sub.send(PubComp::new(second.packet_id().unwrap())).await;
    // Nothing else: "two" was not routed a second time.
    let mut probe = Publish::new(TopicName::try_from("x/1").unwrap(), &b"probe"[..]);
    probe.qos_pid = QosPid::new(mqtt_codec::QoS::AtLeastOnce, pid(12));
    publisher.send(probe).await;
    assert!(matches!(publisher.next().await, Packet::PubAck(_)));
    match sub.next().await {
        Packet::Publish(p) => {
            assert_eq!(p.payload(), b"probe");
            sub.send(PubAck::new(p.packet_id().unwrap())).await;
        }
        other => panic!("{other:?}"),
    }
    b2.shutdown().await;
}
