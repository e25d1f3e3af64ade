//! The client against Debian's mosquitto (TCP and TLS) and aedes (WebSocket),
//! and next to clients nobody here wrote: mosquitto_pub / mosquitto_sub and
//! MQTT.js.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use futures::StreamExt;
use mqtt_client::*;
use mqtt_codec::{PubAckReason, SubscribeProperties, UserProperty};
use mqtt_test_support::brokers::{Aedes, CuttingProxy, Mosquitto};
use std::{num::NonZeroU32, time::Duration};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
const WAIT: Duration = Duration::from_secs(10);

async fn recv(messages: &mut Messages) -> Publish {
    tokio::time::timeout(WAIT, messages.recv())
        .await
        .expect("a message in time")
        .expect("client open")
}

async fn nothing(messages: &mut Messages, within: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(within, messages.recv()).await {
        panic!("unexpected message on {}", m.topic());
    }
}

/// Publishes 20 messages at each QoS from one client to another through
/// the broker at `url`, in `version`; checks order, payloads and QoS.
async fn pub_sub_every_qos(
    builder: impl Fn() -> ClientBuilder,
    version: ProtocolVersion,
    tag: &str,
) {
    let (sub, mut messages) = builder().version(version).connect().await.unwrap();
    let (publisher, _) = builder().version(version).connect().await.unwrap();
    for qos in QOS {
        let filter = format!("{tag}/{version:?}/{qos:?}/#");
        let suback = sub.subscribe(&filter, qos).await.unwrap();
        assert_eq!(suback.reasons[0].granted_qos(), Some(qos));
        let topic = format!("{tag}/{version:?}/{qos:?}/x");
        let mut deliveries = Vec::new();
        for i in 0..20 {
            let m = Message::new(&topic, format!("{i}")).unwrap().qos(qos);
            deliveries.push(publisher.enqueue(m).await.unwrap());
        }
        for d in deliveries {
            assert!(!d.await.unwrap().is_error());
        }
        for i in 0..20 {
            let m = recv(&mut messages).await;
            assert_eq!(m.topic(), topic);
            assert_eq!(m.payload(), format!("{i}").as_bytes(), "in order");
            assert_eq!(m.qos(), qos);
        }
    }
    publisher.disconnect().await.unwrap();
    sub.disconnect().await.unwrap();
}

#[tokio::test]
async fn publish_and_subscribe_over_tcp_at_every_qos_in_both_versions() {
    let Some(broker) = Mosquitto::start("client_tcp", false, "").await else {
        return;
    };
    for v in VERSIONS {
        pub_sub_every_qos(|| ClientBuilder::new(&broker.url()).unwrap(), v, "tcp").await;
    }
}

#[tokio::test]
async fn publish_and_subscribe_over_tls_at_every_qos_in_both_versions() {
    let Some(broker) = Mosquitto::start("client_tls", true, "").await else {
        return;
    };
    let url = format!("mqtts://localhost:{}", broker.tls_port.unwrap());
    let ca = broker.ca.as_ref().unwrap().cert();
    let tls = ClientTls {
        roots: Roots::Custom(vec![ca]),
        ..ClientTls::default()
    };
    for v in VERSIONS {
        pub_sub_every_qos(
            || ClientBuilder::new(&url).unwrap().tls(tls.clone()),
            v,
            "tls",
        )
        .await;
    }
}

/// MQTT over WebSocket against aedes (MQTT 3.1.1).
#[tokio::test]
async fn publish_and_subscribe_over_websocket_at_every_qos() {
    let Some(broker) = Aedes::start("client_ws").await else {
        return;
    };
    pub_sub_every_qos(
        || ClientBuilder::new(&broker.url()).unwrap(),
        ProtocolVersion::V3_1_1,
        "ws",
    )
    .await;
}

#[tokio::test]
async fn retained_messages_are_stored_replaced_and_deleted() {
    let Some(broker) = Mosquitto::start("client_retained", false, "").await else {
        return;
    };
    for v in VERSIONS {
        let topic = format!("retained/{v:?}");
        let (c, _) = ClientBuilder::new(&broker.url())
            .unwrap()
            .version(v)
            .connect()
            .await
            .unwrap();
        for payload in ["first", "second"] {
            let m = Message::new(&topic, payload)
                .unwrap()
                .qos(QoS::AtLeastOnce)
                .retain(true);
            c.publish(m).await.unwrap();
        }
        let (s, mut messages) = ClientBuilder::new(&broker.url())
            .unwrap()
            .version(v)
            .connect()
            .await
            .unwrap();
        s.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        let m = recv(&mut messages).await;
        // [MQTT-3.3.1-8] retained flag set on a retained message sent on subscribe.
        assert!(m.retain);
        assert_eq!(m.payload(), b"second");
        // An empty retained payload deletes it [MQTT-3.3.1-10].
        c.publish(
            Message::new(&topic, "")
                .unwrap()
                .qos(QoS::AtLeastOnce)
                .retain(true),
        )
        .await
        .unwrap();
        let deletion = recv(&mut messages).await;
        assert!(deletion.payload().is_empty());
        let (s2, mut m2) = ClientBuilder::new(&broker.url())
            .unwrap()
            .version(v)
            .connect()
            .await
            .unwrap();
        s2.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        nothing(&mut m2, Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn mqtt5_properties_and_subscription_options_round_trip() {
    let Some(broker) = Mosquitto::start("client_v5_props", false, "").await else {
        return;
    };
    let v5 = || {
        ClientBuilder::new(&broker.url())
            .unwrap()
            .version(ProtocolVersion::V5)
    };
    let (c, mut messages) = v5().connect().await.unwrap();
    let props = SubscribeProperties {
        subscription_identifier: NonZeroU32::new(42),
        ..Default::default()
    };
    c.subscribe_with(
        vec![Subscription::new(
            TopicFilter::try_from("props/#").unwrap(),
            QoS::ExactlyOnce,
        )],
        props,
    )
    .await
    .unwrap();
    let (p, _) = v5().connect().await.unwrap();
    let m = Message::new("props/a", "{\"t\":21.5}")
        .unwrap()
        .qos(QoS::AtLeastOnce)
        .content_type("application/json")
        .unwrap()
        .payload_format(PayloadFormat::Utf8)
        .response_topic("props/reply")
        .unwrap()
        .correlation_data(&b"\x00\x01corr"[..])
        .message_expiry(3600)
        .user_property("b", "2")
        .unwrap()
        .user_property("a", "1")
        .unwrap()
        .user_property("b", "3")
        .unwrap();
    p.publish(m).await.unwrap();
    let got = recv(&mut messages).await;
    let props = got.properties();
    assert_eq!(
        props.content_type.as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(props.payload_format_indicator, Some(PayloadFormat::Utf8));
    assert_eq!(
        props.response_topic.as_ref().unwrap().as_str(),
        "props/reply"
    );
    assert_eq!(
        props.correlation_data.as_deref(),
        Some(&b"\x00\x01corr"[..])
    );
    let expiry = props.message_expiry_interval.unwrap();
    assert!(expiry <= 3600 && expiry > 3500);
    let users: Vec<(&str, &str)> = props
        .user_properties
        .iter()
        .map(|UserProperty { name, value }| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(users, [("b", "2"), ("a", "1"), ("b", "3")], "order kept");
    assert_eq!(
        props.subscription_identifiers,
        [NonZeroU32::new(42).unwrap()]
    );

    // No Local: our own publication does not come back [MQTT-3.8.3-3].
    let mut no_local = SubscriptionOptions::qos(QoS::AtLeastOnce);
    no_local.no_local = true;
    c.subscribe_with(
        vec![Subscription {
            filter: TopicFilter::try_from("nolocal").unwrap(),
            options: no_local,
        }],
        Default::default(),
    )
    .await
    .unwrap();
    c.publish(
        Message::new("nolocal", "mine")
            .unwrap()
            .qos(QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    p.publish(
        Message::new("nolocal", "theirs")
            .unwrap()
            .qos(QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut messages).await.payload(), b"theirs");

    // Retain As Published and Retain Handling.
    p.publish(
        Message::new("rap/x", "kept")
            .unwrap()
            .qos(QoS::AtLeastOnce)
            .retain(true),
    )
    .await
    .unwrap();
    let mut send_none = SubscriptionOptions::qos(QoS::AtLeastOnce);
    send_none.retain_handling = RetainHandling::DoNotSend;
    send_none.retain_as_published = true;
    c.subscribe_with(
        vec![Subscription {
            filter: TopicFilter::try_from("rap/#").unwrap(),
            options: send_none,
        }],
        Default::default(),
    )
    .await
    .unwrap();
    nothing(&mut messages, Duration::from_millis(300)).await;
    p.publish(
        Message::new("rap/x", "live")
            .unwrap()
            .qos(QoS::AtLeastOnce)
            .retain(true),
    )
    .await
    .unwrap();
    let live = recv(&mut messages).await;
    assert_eq!(live.payload(), b"live");
    assert!(live.retain, "Retain As Published keeps the flag");

    // A refused publish reports its reason: mosquitto's 0x10 No matching
    // subscribers is not an error.
    let r = p
        .publish(
            Message::new("nobody/listens", "x")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    assert_eq!(r, PubAckReason::NoMatchingSubscribers);
}

#[tokio::test]
async fn request_response_with_correlation_data() {
    let Some(broker) = Mosquitto::start("client_request", false, "").await else {
        return;
    };
    let v5 = || {
        ClientBuilder::new(&broker.url())
            .unwrap()
            .version(ProtocolVersion::V5)
    };
    let (service, mut requests) = v5().connect().await.unwrap();
    service
        .subscribe("service/upper", QoS::AtLeastOnce)
        .await
        .unwrap();
    let responder = tokio::spawn(async move {
        while let Some(req) = requests.recv().await {
            let text = String::from_utf8_lossy(req.payload()).to_uppercase();
            let reply = Message::reply_to(&req, text).unwrap();
            service.publish(reply).await.unwrap();
        }
    });
    let (client, _) = v5().connect().await.unwrap();
    let requester = client.requester("replies/client-1").await.unwrap();
    let mut answers = futures::stream::FuturesUnordered::new();
    for word in ["alpha", "beta", "gamma"] {
        let r = requester.clone();
        answers.push(async move {
            let m = Message::new("service/upper", word)
                .unwrap()
                .qos(QoS::AtLeastOnce);
            (word, r.request(m, WAIT).await.unwrap())
        });
    }
    while let Some((word, response)) = answers.next().await {
        assert_eq!(response.payload(), word.to_uppercase().as_bytes());
    }
    // Nobody answers: a timeout, not a hang.
    let lonely = Message::new("service/none", "?").unwrap();
    assert!(matches!(
        requester.request(lonely, Duration::from_millis(200)).await,
        Err(Error::Timeout)
    ));
    responder.abort();
}

#[tokio::test]
async fn per_subscription_streams_take_their_messages() {
    let Some(broker) = Mosquitto::start("client_streams", false, "").await else {
        return;
    };
    let (c, mut main) = ClientBuilder::new(&broker.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (_, mut alerts) = c
        .subscribe_stream(
            vec![Subscription::new(
                TopicFilter::try_from("alerts/+").unwrap(),
                QoS::AtLeastOnce,
            )],
            Default::default(),
        )
        .await
        .unwrap();
    c.subscribe("metrics/#", QoS::AtLeastOnce).await.unwrap();
    for t in ["metrics/cpu", "alerts/fire", "metrics/mem"] {
        c.publish(Message::new(t, t).unwrap().qos(QoS::AtLeastOnce))
            .await
            .unwrap();
    }
    assert_eq!(recv(&mut alerts).await.topic(), "alerts/fire");
    assert_eq!(recv(&mut main).await.topic(), "metrics/cpu");
    assert_eq!(recv(&mut main).await.topic(), "metrics/mem");
    // Dropped stream: its messages come to the main stream.
    drop(alerts);
    c.publish(
        Message::new("alerts/flood", "x")
            .unwrap()
            .qos(QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut main).await.topic(), "alerts/flood");
}

/// A message from our client reaches mosquitto_sub, and mosquitto_pub's
/// reach ours, in both versions.
#[tokio::test]
async fn interoperates_with_mosquitto_pub_and_sub() {
    let Some(broker) = Mosquitto::start("client_mosquitto_clients", false, "").await else {
        return;
    };
    let (Some(sub_bin), Some(pub_bin)) = (
        mqtt_test_support::program("client_mosquitto_clients", "mosquitto_sub"),
        mqtt_test_support::program("client_mosquitto_clients", "mosquitto_pub"),
    ) else {
        return;
    };
    let port = broker.port.to_string();
    for (v, flag) in [
        (ProtocolVersion::V3_1_1, "mqttv311"),
        (ProtocolVersion::V5, "mqttv5"),
    ] {
        let (c, mut messages) = ClientBuilder::new(&broker.url())
            .unwrap()
            .version(v)
            .connect()
            .await
            .unwrap();
        // Ours to theirs: retained, so it waits for mosquitto_sub.
        let topic = format!("interop/ours/{flag}");
        let m = Message::new(&topic, "from rust")
            .unwrap()
            .qos(QoS::ExactlyOnce)
            .retain(true);
        c.publish(m).await.unwrap();
        let out = tokio::process::Command::new(&sub_bin)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                flag,
                "-t",
                &topic,
                "-q",
                "2",
            ])
            .args(["-C", "1", "-W", "10", "-v"])
            .output()
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{topic} from rust")
        );
        // Theirs to ours.
        c.subscribe("interop/theirs", QoS::ExactlyOnce)
            .await
            .unwrap();
        let status = tokio::process::Command::new(&pub_bin)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-V",
                flag,
                "-t",
                "interop/theirs",
            ])
            .args(["-q", "2", "-m", "from mosquitto_pub"])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        let m = recv(&mut messages).await;
        assert_eq!(m.payload(), b"from mosquitto_pub");
        assert_eq!(m.qos(), QoS::ExactlyOnce);
        c.unsubscribe(&["interop/theirs"]).await.unwrap();
    }
}

const MQTTJS_SCRIPT: &str = r#"
const mqtt = require('mqtt');
const [url, version] = [process.argv[2], Number(process.argv[3])];
const c = mqtt.connect(url, { protocolVersion: version, clientId: 'mqttjs-' + version });
c.on('connect', () => {
  c.subscribe('js/from-rust', { qos: 1 }, () => {
    console.log('READY');
  });
});
c.on('message', (topic, payload, packet) => {
  const ct = packet.properties && packet.properties.contentType;
  c.publish('js/from-js', 'echo:' + payload.toString() + (ct ? ':' + ct : ''),
    { qos: 1, properties: version === 5 ? { userProperties: { via: 'mqtt.js' } } : undefined },
    () => { console.log('DONE'); c.end(); });
});
"#;

/// Messages both ways with MQTT.js, in both versions.
#[tokio::test]
async fn interoperates_with_mqtt_js() {
    let Some(broker) = Mosquitto::start("client_mqttjs", false, "").await else {
        return;
    };
    let Some((node, node_path)) = mqtt_test_support::node_with("client_mqttjs", "mqtt") else {
        return;
    };
    let script = broker.dir.join("mqttjs.js");
    std::fs::write(&script, MQTTJS_SCRIPT).unwrap();
    for (v, n) in [(ProtocolVersion::V3_1_1, "4"), (ProtocolVersion::V5, "5")] {
        let (c, mut messages) = ClientBuilder::new(&broker.url())
            .unwrap()
            .version(v)
            .connect()
            .await
            .unwrap();
        c.subscribe("js/from-js", QoS::AtLeastOnce).await.unwrap();
        let mut js = tokio::process::Command::new(&node)
            .arg(&script)
            .arg(broker.url())
            .arg(n)
            .env("NODE_PATH", &node_path)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = tokio::io::BufReader::new(js.stdout.take().unwrap());
        let mut line = String::new();
        tokio::time::timeout(
            WAIT,
            tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(line.trim(), "READY");
        let mut m = Message::new("js/from-rust", "hi")
            .unwrap()
            .qos(QoS::AtLeastOnce);
        if v.is_v5() {
            m = m.content_type("text/plain").unwrap();
        }
        c.publish(m).await.unwrap();
        let echo = recv(&mut messages).await;
        let expected = if v.is_v5() {
            "echo:hi:text/plain"
        } else {
            "echo:hi"
        };
        assert_eq!(echo.payload(), expected.as_bytes());
        if v.is_v5() {
            let u = &echo.properties().user_properties;
            assert_eq!(
                (u[0].name.as_str(), u[0].value.as_str()),
                ("via", "mqtt.js")
            );
        }
        let status = tokio::time::timeout(WAIT, js.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
    }
}

/// Messages published while the broker is unreachable wait in the queue
/// and go out once it is up; the client reports its attempts.
#[tokio::test]
async fn offline_queue_is_sent_once_the_broker_comes_up() {
    let port = mqtt_test_support::brokers::free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let (c, _) = ClientBuilder::new(&url)
        .unwrap()
        .client_id("offline-publisher")
        .reconnect(Reconnect {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            ..Reconnect::default()
        })
        .queue_limit(10)
        .start();
    let mut events = c.events();
    let mut deliveries = Vec::new();
    for i in 0..10 {
        let m = Message::new("offline/x", format!("{i}"))
            .unwrap()
            .qos(QoS::AtLeastOnce);
        deliveries.push(c.try_enqueue(m).unwrap());
    }
    // Full: the caller chooses between an error and waiting.
    let Err(Error::QueueFull(back)) = c.try_enqueue(Message::new("offline/x", "11").unwrap())
    else {
        panic!("queue should be full")
    };
    assert_eq!(back.payload(), b"11");
    assert!(
        tokio::time::timeout(
            Duration::from_millis(100),
            c.enqueue(Message::new("offline/x", "11").unwrap())
        )
        .await
        .is_err(),
        "enqueue waits for room"
    );
    assert_eq!(c.pending(), 10);
    // Attempts are reported.
    let mut attempts = 0;
    while attempts < 2 {
        if let Some(ConnectionEvent::Reconnecting { attempt, .. }) = events.recv().await {
            attempts = attempt;
        }
    }
    // Between attempts (or already in the next one, on a slow machine).
    assert!(
        matches!(
            c.state(),
            ConnectionState::Disconnected | ConnectionState::Connecting
        ),
        "{:?}",
        c.state()
    );
    // A broker appears on that port.
    let conf = std::env::temp_dir().join(format!("mqtt-offline-{port}.conf"));
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    )
    .unwrap();
    let Some(bin) = mqtt_test_support::program("client_offline_queue", "mosquitto") else {
        return;
    };
    let _broker = tokio::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .kill_on_drop(true)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::timeout(WAIT, c.wait_connected())
        .await
        .unwrap()
        .unwrap();
    for d in deliveries {
        tokio::time::timeout(WAIT, d).await.unwrap().unwrap();
    }
    assert_eq!(c.pending(), 0);
    let _ = std::fs::remove_file(conf);
}

#[tokio::test]
async fn a_refused_connection_is_an_error_and_closes_the_client() {
    let Some(broker) = Mosquitto::start("client_refused", false, "allow_anonymous false\n").await
    else {
        return;
    };
    for v in VERSIONS {
        let err = ClientBuilder::new(&broker.url())
            .unwrap()
            .version(v)
            .connect()
            .await
            .unwrap_err();
        let reason = err.connect_reason().unwrap_or_else(|| panic!("{err:?}"));
        assert!(
            matches!(reason, mqtt_codec::ConnectReason::NotAuthorized),
            "{reason:?}"
        );
    }
    // Nothing listens: an error, not a hang.
    let port = mqtt_test_support::brokers::free_port();
    let err = ClientBuilder::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err}");
}

#[tokio::test]
async fn server_assigned_client_identifier_is_reported() {
    let Some(broker) = Mosquitto::start("client_assigned_id", false, "").await else {
        return;
    };
    let (c, _) = ClientBuilder::new(&broker.url())
        .unwrap()
        .version(ProtocolVersion::V5)
        .client_id("")
        .connect()
        .await
        .unwrap();
    let id = c.client_id();
    assert!(!id.is_empty());
    assert_eq!(
        c.connack()
            .unwrap()
            .properties
            .assigned_client_identifier
            .unwrap()
            .as_str(),
        id
    );
}

/// A Will is published when the connection drops without DISCONNECT, and
/// not after a normal disconnect.
#[tokio::test]
async fn will_is_published_on_abnormal_loss_only() {
    let Some(broker) = Mosquitto::start("client_will", false, "").await else {
        return;
    };
    for v in VERSIONS {
        let (watcher, mut messages) = ClientBuilder::new(&broker.url())
            .unwrap()
            .version(v)
            .connect()
            .await
            .unwrap();
        let topic = format!("will/{v:?}");
        watcher.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        let will = |payload: &'static str| {
            let mut w = Will::new(TopicName::try_from(topic.as_str()).unwrap(), payload);
            w.qos = QoS::AtLeastOnce;
            w
        };
        // Normal disconnect: no Will [MQTT-3.1.2-10].
        let (polite, _) = ClientBuilder::new(&broker.url())
            .unwrap()
            .version(v)
            .will(will("polite"))
            .connect()
            .await
            .unwrap();
        polite.disconnect().await.unwrap();
        nothing(&mut messages, Duration::from_millis(300)).await;
        // Abnormal loss: through a proxy that is cut.
        let proxy = CuttingProxy::start(broker.port).await;
        let (rude, _) = ClientBuilder::new(&format!("mqtt://127.0.0.1:{}", proxy.port))
            .unwrap()
            .version(v)
            .will(will("gone"))
            .reconnect(Reconnect::off())
            .connect()
            .await
            .unwrap();
        proxy.cut();
        assert_eq!(recv(&mut messages).await.payload(), b"gone");
        drop(rude);
    }
}
