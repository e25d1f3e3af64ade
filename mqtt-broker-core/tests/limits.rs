//! Limits and overload: the broker refuses what is past its limits cleanly
//! and keeps serving everyone else. (A subscriber that never reads while a
//! publisher floods is in clients.rs; 10,000 idle connections in
//! examples/tests/overload.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_broker_core::{AllowAll, Broker, BrokerConfig, Limits, ListenerConfig};
use mqtt_client::{ClientBuilder, Message, ProtocolVersion, QoS, Reconnect};
use mqtt_codec::{ConnectReason, PubAckReason, SubAckReason};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

async fn start(limits: Limits, tune: impl FnOnce(&mut BrokerConfig)) -> (Broker, u16) {
    let mut config = BrokerConfig {
        limits,
        ..Default::default()
    };
    tune(&mut config);
    let broker = Broker::new(config, Arc::new(AllowAll));
    let port = broker
        .listen(ListenerConfig::Tcp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap()
        .port();
    (broker, port)
}

fn client(port: u16, v: ProtocolVersion, id: &str) -> ClientBuilder {
    ClientBuilder::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .version(v)
        .client_id(id)
        .reconnect(Reconnect::off())
}

fn no_limits() -> Limits {
    Limits::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limits_are_refused_cleanly() {
    let (b, port) = start(
        Limits {
            max_connections: Some(4),
            ..no_limits()
        },
        |_| {},
    )
    .await;
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(
            client(port, ProtocolVersion::V5, &format!("c{i}"))
                .connect()
                .await
                .unwrap()
                .0,
        );
    }
    // MQTT 5: CONNACK 0x89 Server busy; 3.1.1: return code 3.
    for (v, reason) in [
        (ProtocolVersion::V5, ConnectReason::ServerBusy),
        (ProtocolVersion::V3_1_1, ConnectReason::ServerUnavailable),
    ] {
        let e = client(port, v, "one-too-many").connect().await.unwrap_err();
        assert_eq!(e.connect_reason(), Some(reason), "{v:?}: {e}");
    }
    // The others are unaffected, and a freed place can be taken.
    held[0]
        .publish(Message::new("t", "x").unwrap().qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    held.pop().unwrap().disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (again, _) = client(port, ProtocolVersion::V5, "again")
        .connect()
        .await
        .unwrap();
    assert!(
        b.stats()
            .connections_refused
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    again.disconnect().await.unwrap();
    b.shutdown().await;

    // Per IP address: 0x97 Quota exceeded.
    let (b, port) = start(
        Limits {
            max_connections_per_ip: Some(2),
            ..no_limits()
        },
        |_| {},
    )
    .await;
    let one = client(port, ProtocolVersion::V5, "ip1")
        .connect()
        .await
        .unwrap()
        .0;
    let two = client(port, ProtocolVersion::V5, "ip2")
        .connect()
        .await
        .unwrap()
        .0;
    let e = client(port, ProtocolVersion::V5, "ip3")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        e.connect_reason(),
        Some(ConnectReason::QuotaExceeded),
        "{e}"
    );
    one.disconnect().await.unwrap();
    two.disconnect().await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_connect_is_dropped_at_the_timeout() {
    let (b, port) = start(no_limits(), |c| {
        c.session.connect_timeout = Some(Duration::from_millis(500));
    })
    .await;
    // Slow loris: half a CONNECT, then nothing.
    let mut loris = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    loris
        .write_all(&[0x10, 0x20, 0x00, 0x04, b'M'])
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let started = Instant::now();
    for s in [&mut loris, &mut silent] {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .expect("closed by the server")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without a reply");
    }
    assert!(started.elapsed() >= Duration::from_millis(400));
    // Meanwhile others connect and work.
    let (c, _) = client(port, ProtocolVersion::V5, "fine")
        .connect()
        .await
        .unwrap();
    c.publish(Message::new("t", "x").unwrap().qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_topics_past_the_limits_are_refused() {
    let (b, port) = start(
        Limits {
            max_subscriptions: Some(2),
            max_topic_levels: Some(3),
            max_topic_length: Some(20),
            ..no_limits()
        },
        |_| {},
    )
    .await;
    let (c, _) = client(port, ProtocolVersion::V5, "subs")
        .connect()
        .await
        .unwrap();
    let reasons = |s: mqtt_client::SubAck| s.reasons;
    assert_eq!(
        reasons(c.subscribe("a/1", QoS::AtLeastOnce).await.unwrap()),
        [SubAckReason::GrantedQoS1]
    );
    assert_eq!(
        reasons(c.subscribe("a/2", QoS::AtLeastOnce).await.unwrap()),
        [SubAckReason::GrantedQoS1]
    );
    // A third filter: 0x97; the same filter again replaces, so it is fine.
    assert_eq!(
        reasons(c.subscribe("a/3", QoS::AtLeastOnce).await.unwrap()),
        [SubAckReason::QuotaExceeded]
    );
    assert_eq!(
        reasons(c.subscribe("a/2", QoS::AtMostOnce).await.unwrap()),
        [SubAckReason::GrantedQoS0]
    );
    c.unsubscribe(&["a/1"]).await.unwrap();
    // Too deep, too long: 0x8F.
    assert_eq!(
        reasons(c.subscribe("a/b/c/d", QoS::AtLeastOnce).await.unwrap()),
        [SubAckReason::TopicFilterInvalid]
    );
    assert_eq!(
        reasons(
            c.subscribe("a/very-long-topic-filter", QoS::AtLeastOnce)
                .await
                .unwrap()
        ),
        [SubAckReason::TopicFilterInvalid]
    );
    // Publishing to such topics: PUBACK 0x90 Topic Name invalid.
    for topic in ["a/b/c/d", "a/very-long-topic-name"] {
        let r = c
            .publish(Message::new(topic, "x").unwrap().qos(QoS::AtLeastOnce))
            .await;
        assert!(
            matches!(
                r,
                Err(mqtt_client::Error::Refused(PubAckReason::TopicNameInvalid))
            ),
            "{topic}: {r:?}"
        );
    }
    c.publish(Message::new("a/2", "fine").unwrap().qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_over_its_rate_is_slowed_down_not_cut_off() {
    let (b, port) = start(
        Limits {
            max_publish_rate: Some(100),
            ..no_limits()
        },
        |_| {},
    )
    .await;
    let (sub, mut messages) = client(port, ProtocolVersion::V5, "rate-sub")
        .connect()
        .await
        .unwrap();
    sub.subscribe("rate/#", QoS::AtLeastOnce).await.unwrap();
    let (publisher, _) = client(port, ProtocolVersion::V5, "rate-pub")
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    let mut deliveries = Vec::new();
    for i in 0..300 {
        deliveries.push(
            publisher
                .enqueue(
                    Message::new("rate/x", format!("{i}"))
                        .unwrap()
                        .qos(QoS::AtLeastOnce),
                )
                .await
                .unwrap(),
        );
    }
    for d in deliveries {
        d.await.unwrap();
    }
    // 300 messages at 100 a second with a burst of 100: at least 2 s. (A
    // lower bound only: a slow machine takes longer, never shorter.)
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    // Nothing was dropped.
    for i in 0..300 {
        let m = tokio::time::timeout(WAIT, messages.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.payload(), format!("{i}").as_bytes());
    }
    publisher.disconnect().await.unwrap();
    sub.disconnect().await.unwrap();
    b.shutdown().await;
}

/// In a multithreaded process, Linux makes each growth of the descriptor
/// table wait for an RCU grace period (10-30 ms), stalling every accept in
/// progress at 256, 512, 1,024, ... connections; a listening broker has made
/// the room beforehand.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_broker_has_room_for_its_connections_in_the_descriptor_table() {
    let (b, _) = start(no_limits(), |_| {}).await;
    let soft = mqtt_test_support::brokers::proc_number("self", "limits", "Max open files")
        .unwrap_or(u64::MAX);
    let want = (mqtt_broker_core::RESERVED_DESCRIPTORS as u64).min(soft);
    let size = mqtt_test_support::brokers::proc_number("self", "status", "FDSize:").unwrap();
    assert!(size >= want, "descriptor table of {size}, {want} wanted");
    b.shutdown().await;
}
