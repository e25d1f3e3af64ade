//! `$SYS/broker/` topics. (The Prometheus `/metrics` endpoint and the
//! status page are tested with the example broker, examples/tests/broker.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_broker_core::{AllowAll, Broker, BrokerConfig, ListenerConfig};
use mqtt_client::{ClientBuilder, Message, ProtocolVersion, QoS};
use std::{collections::HashMap, sync::Arc, time::Duration};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_published_under_sys() {
    let broker = Broker::new(
        BrokerConfig {
            sys_interval: Some(Duration::from_millis(100)),
            ..Default::default()
        },
        Arc::new(AllowAll),
    );
    let port = broker
        .listen(ListenerConfig::Tcp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap()
        .port();
    let url = format!("mqtt://127.0.0.1:{port}");
    for v in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let (c, mut messages) = ClientBuilder::new(&url)
            .unwrap()
            .version(v)
            .connect()
            .await
            .unwrap();
        // [MQTT-4.7.2-1]: `#` does not match `$` topics; `$SYS/#` does.
        c.subscribe("#", QoS::AtMostOnce).await.unwrap();
        c.publish(Message::new("plain/x", "1").unwrap().qos(QoS::AtLeastOnce))
            .await
            .unwrap();
        let m = tokio::time::timeout(Duration::from_secs(5), messages.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.topic(), "plain/x");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), messages.recv())
                .await
                .is_err(),
            "nothing from $SYS through #"
        );
        c.subscribe("$SYS/#", QoS::AtMostOnce).await.unwrap();
        let mut seen: HashMap<String, String> = HashMap::new();
        while !(seen.contains_key("$SYS/broker/uptime")
            && seen.contains_key("$SYS/broker/clients/connected")
            && seen.contains_key("$SYS/broker/messages/received"))
        {
            let m = tokio::time::timeout(Duration::from_secs(5), messages.recv())
                .await
                .unwrap()
                .unwrap();
            seen.insert(
                m.topic().to_string(),
                String::from_utf8(m.payload().to_vec()).unwrap(),
            );
        }
        let n = |t: &str| seen[t].parse::<u64>().unwrap();
        assert!(n("$SYS/broker/clients/connected") >= 1);
        assert!(n("$SYS/broker/messages/received") >= 1);
        c.disconnect().await.unwrap();
    }
    broker.shutdown().await;
}
