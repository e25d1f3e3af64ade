//! MQTT over WebSocket on 127.0.0.1 with ephemeral ports: our client and
//! server, raw WebSocket peers that split and batch frames, refusals, WSS,
//! and Debian's mosquitto with a websockets listener.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)] // test code: a panic is a failed test; tungstenite callback signature

use futures_util::{SinkExt, StreamExt};
use mqtt_codec::*;
use mqtt_test_support::tls::Ca;
use mqtt_transport_tcp::{
    ClientTls, Connection, Listener, Roots, ServerAddr, ServerTls, TransportKind,
};
use mqtt_transport_ws::*;
use std::{sync::Arc, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

async fn read_packet(conn: &mut Connection, d: &mut Decoder, buf: &mut BytesMut) -> Option<Packet> {
    loop {
        if let Some(p) = d.decode(buf).unwrap() {
            return Some(p);
        }
        match conn.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn send(conn: &mut Connection, p: impl Into<Packet>, v: ProtocolVersion) {
    let mut out = BytesMut::new();
    p.into().encode(v, &mut out).unwrap();
    conn.write_all(&out).await.unwrap();
    conn.flush().await.unwrap();
}

/// A small MQTT server: CONNACK, SUBACK, PINGRESP, PUBACK, and every PUBLISH
/// echoed back at QoS 0. Returns what it saw of each connection.
async fn echo_server(
    tls: Option<ServerTls>,
    options: WsServerOptions,
) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
    let listener = Listener::bind("127.0.0.1:0", tls).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut log = Vec::new();
        let Ok(incoming) = listener.accept().await else {
            return log;
        };
        let conn = match incoming.establish().await {
            Ok(c) => c,
            Err(e) => {
                log.push(format!("tls error {e}"));
                return log;
            }
        };
        let mut conn = match accept(conn, &options).await {
            Ok(c) => c,
            Err(e) => {
                log.push(format!("refused {e}"));
                return log;
            }
        };
        log.push(format!("kind {:?}", conn.info().kind));
        for (name, value) in conn.info().http_headers() {
            log.push(format!("header {name}: {value}"));
        }
        let mut d = Decoder::server().with_max_packet_size(4 << 20);
        let mut buf = BytesMut::new();
        let mut v = ProtocolVersion::V3_1_1;
        while let Some(p) = read_packet(&mut conn, &mut d, &mut buf).await {
            log.push(format!("{:?}", p.packet_type()));
            match p {
                Packet::Connect(c) => {
                    v = c.version;
                    send(&mut conn, ConnAck::new(ConnectReason::Success), v).await;
                }
                Packet::Subscribe(s) => {
                    let reasons = s
                        .subscriptions
                        .iter()
                        .map(|s| SubAckReason::granted(s.options.qos))
                        .collect();
                    send(
                        &mut conn,
                        SubAck {
                            packet_id: s.packet_id,
                            reasons,
                            properties: Default::default(),
                        },
                        v,
                    )
                    .await;
                }
                Packet::Publish(p) => {
                    if let Some(id) = p.packet_id() {
                        send(&mut conn, PubAck::new(id), v).await;
                    }
                    let mut echo = Publish::new(p.topic_name(), p.payload_bytes());
                    echo.retain = false;
                    send(&mut conn, echo, v).await;
                }
                Packet::PingReq => send(&mut conn, Packet::PingResp, v).await,
                Packet::Disconnect(_) => break,
                _ => {}
            }
        }
        log
    });
    (port, task)
}

async fn mqtt_connect(conn: &mut Connection, v: ProtocolVersion) -> (Decoder, BytesMut) {
    send(conn, Connect::new(v, "ws-client".try_into().unwrap()), v).await;
    let mut d = Decoder::client(v).with_max_packet_size(4 << 20);
    let mut buf = BytesMut::new();
    assert!(matches!(
        read_packet(conn, &mut d, &mut buf).await,
        Some(Packet::ConnAck(_))
    ));
    (d, buf)
}

/// A plain tungstenite client (no MQTT adapter) offering `subprotocol`:
/// the socket and the server's handshake response.
async fn raw_client(
    port: u16,
    subprotocol: &str,
) -> (
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    tokio_tungstenite::tungstenite::handshake::client::Response,
) {
    let mut req = format!("ws://127.0.0.1:{port}/mqtt")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", subprotocol.parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tokio_tungstenite::client_async(req, tcp).await.unwrap()
}

/// Connects once a freshly started broker listens (up to 10 s).
async fn connect_when_up(target: &ServerAddr) -> Option<Connection> {
    for _ in 0..100 {
        if let Ok(c) = connect(target, &WsConnectOptions::default()).await {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn addr(scheme: &str, host: &str, port: u16, path: &str) -> ServerAddr {
    ServerAddr::parse(&format!("{scheme}://{host}:{port}{path}")).unwrap()
}

#[tokio::test]
async fn client_and_server_exchange_packets_with_headers() {
    let (port, server) = echo_server(None, WsServerOptions::default()).await;
    let options = WsConnectOptions {
        headers: vec![("Authorization".into(), "Bearer token-1".into())],
        ..Default::default()
    };
    let mut conn = connect(&addr("ws", "127.0.0.1", port, "/mqtt"), &options)
        .await
        .unwrap();
    assert_eq!(conn.info().kind, TransportKind::WebSocket);
    let v = ProtocolVersion::V5;
    let (mut d, mut buf) = mqtt_connect(&mut conn, v).await;
    send(
        &mut conn,
        Publish::new("a/b".try_into().unwrap(), &b"hi"[..]),
        v,
    )
    .await;
    let Some(Packet::Publish(p)) = read_packet(&mut conn, &mut d, &mut buf).await else {
        panic!()
    };
    assert_eq!((p.topic(), p.payload()), ("a/b", &b"hi"[..]));
    send(&mut conn, Disconnect::default(), v).await;
    let log = server.await.unwrap();
    assert!(log.contains(&"kind WebSocket".to_string()), "{log:?}");
    assert!(
        log.contains(&"header authorization: Bearer token-1".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"header sec-websocket-protocol: mqtt".to_string()),
        "{log:?}"
    );
}

#[tokio::test]
async fn packets_may_span_frames_and_frames_may_hold_several_packets() {
    // [MQTT-6.0.0-2]: the receiver treats the frames as one byte stream.
    let (port, server) = echo_server(None, WsServerOptions::default()).await;
    let (mut ws, _) = raw_client(port, "mqtt").await;
    let v = ProtocolVersion::V3_1_1;
    let mut connect = BytesMut::new();
    Connect::new(v, "split".try_into().unwrap())
        .encode(v, &mut connect)
        .unwrap();
    // CONNECT cut into one-byte frames.
    for b in connect.iter() {
        ws.send(Message::binary(vec![*b])).await.unwrap();
    }
    // PINGREQ, SUBSCRIBE and a 1 MiB PUBLISH's first half in one frame, the rest in another.
    let mut batch = BytesMut::new();
    Packet::PingReq.encode(v, &mut batch).unwrap();
    Subscribe {
        packet_id: PacketId::MIN,
        subscriptions: vec![Subscription::new("t".try_into().unwrap(), QoS::AtMostOnce)],
        properties: Default::default(),
    }
    .encode(v, &mut batch)
    .unwrap();
    Publish::new("t".try_into().unwrap(), vec![7u8; 1 << 20])
        .encode(v, &mut batch)
        .unwrap();
    let half = batch.len() / 2;
    ws.send(Message::binary(batch[..half].to_vec()))
        .await
        .unwrap();
    ws.send(Message::binary(batch[half..].to_vec()))
        .await
        .unwrap();
    // Read what comes back as one stream too.
    let mut stream = BytesMut::new();
    let mut d = Decoder::client(v).with_max_packet_size(4 << 20);
    let mut got = Vec::new();
    while got.len() < 4 {
        match ws.next().await.unwrap().unwrap() {
            Message::Binary(b) => stream.extend_from_slice(&b),
            _ => continue,
        }
        while let Some(p) = d.decode(&mut stream).unwrap() {
            got.push(p);
        }
    }
    let types: Vec<_> = got.iter().map(Packet::packet_type).collect();
    assert_eq!(
        types,
        [
            PacketType::ConnAck,
            PacketType::PingResp,
            PacketType::SubAck,
            PacketType::Publish
        ]
    );
    let Packet::Publish(p) = &got[3] else {
        panic!()
    };
    assert_eq!(p.payload().len(), 1 << 20, "a 1 MiB packet crosses intact");
    ws.close(None).await.unwrap();
    let log = server.await.unwrap();
    assert!(log.contains(&"Connect".to_string()), "{log:?}");
}

#[tokio::test]
async fn our_client_reassembles_and_batches() {
    // A raw WebSocket server that sends CONNACK in two frames and
    // SUBACK + PUBLISH in one.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server =
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let cb = |_req: &tokio_tungstenite::tungstenite::handshake::server::Request,
                  mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
            resp.headers_mut().insert("sec-websocket-protocol", "mqtt".parse().unwrap());
            Ok(resp)
        };
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, cb).await.unwrap();
            let v = ProtocolVersion::V3_1_1;
            // Our client batches CONNECT + SUBSCRIBE written before a flush into one frame.
            let Some(Ok(Message::Binary(first))) = ws.next().await else {
                panic!()
            };
            let mut d = Decoder::server();
            let mut b = BytesMut::from(&first[..]);
            let mut n = 0;
            while d.decode(&mut b).unwrap().is_some() {
                n += 1;
            }
            let mut out = BytesMut::new();
            ConnAck::new(ConnectReason::Success)
                .encode(v, &mut out)
                .unwrap();
            ws.send(Message::binary(out[..2].to_vec())).await.unwrap();
            ws.send(Message::binary(out[2..].to_vec())).await.unwrap();
            let mut out = BytesMut::new();
            SubAck {
                packet_id: PacketId::MIN,
                reasons: vec![SubAckReason::GrantedQoS0],
                properties: Default::default(),
            }
            .encode(v, &mut out)
            .unwrap();
            Publish::new("t".try_into().unwrap(), &b"x"[..])
                .encode(v, &mut out)
                .unwrap();
            ws.send(Message::binary(out.to_vec())).await.unwrap();
            n
        });
    let mut conn = connect(
        &addr("ws", "127.0.0.1", port, "/mqtt"),
        &WsConnectOptions::default(),
    )
    .await
    .unwrap();
    let v = ProtocolVersion::V3_1_1;
    let mut out = BytesMut::new();
    Connect::new(v, "c".try_into().unwrap())
        .encode(v, &mut out)
        .unwrap();
    Subscribe {
        packet_id: PacketId::MIN,
        subscriptions: vec![Subscription::new("t".try_into().unwrap(), QoS::AtMostOnce)],
        properties: Default::default(),
    }
    .encode(v, &mut out)
    .unwrap();
    conn.write_all(&out[..5]).await.unwrap();
    // A vectored write takes every slice at once into the frame.
    assert!(tokio::io::AsyncWrite::is_write_vectored(&conn));
    let slices = [
        std::io::IoSlice::new(&out[5..10]),
        std::io::IoSlice::new(&out[10..11]),
        std::io::IoSlice::new(&out[11..]),
    ];
    let n = conn.write_vectored(&slices).await.unwrap();
    assert_eq!(n, out.len() - 5);
    conn.flush().await.unwrap();
    let mut d = Decoder::client(v);
    let mut buf = BytesMut::new();
    let mut types = Vec::new();
    while types.len() < 3 {
        types.push(
            read_packet(&mut conn, &mut d, &mut buf)
                .await
                .unwrap()
                .packet_type(),
        );
    }
    assert_eq!(
        types,
        [PacketType::ConnAck, PacketType::SubAck, PacketType::Publish]
    );
    assert_eq!(
        server.await.unwrap(),
        2,
        "CONNECT and SUBSCRIBE arrived in one frame"
    );
}

#[tokio::test]
async fn a_text_frame_ends_the_connection() {
    // [MQTT-6.0.0-1]
    let listener = Listener::bind("127.0.0.1:0", None).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let conn = listener.accept().await.unwrap().establish().await.unwrap();
        let mut conn = accept(conn, &WsServerOptions::default()).await.unwrap();
        let mut buf = [0u8; 64];
        conn.read(&mut buf).await
    });
    let (mut ws, _) = raw_client(port, "mqtt").await;
    ws.send(Message::text("{\"hello\": 1}")).await.unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[tokio::test]
async fn upgrades_are_refused_with_clear_http_errors() {
    // Wrong subprotocol: 400.
    let (port, _s) = echo_server(None, WsServerOptions::default()).await;
    let options = WsConnectOptions {
        subprotocol: "graphql-ws".into(),
        ..Default::default()
    };
    let err = connect(&addr("ws", "127.0.0.1", port, "/mqtt"), &options)
        .await
        .unwrap_err();
    assert!(matches!(err, WsError::Refused { status: 400, .. }), "{err}");
    // Wrong path: 404.
    let (port, _s) = echo_server(None, WsServerOptions::default()).await;
    let err = connect(
        &addr("ws", "127.0.0.1", port, "/other"),
        &WsConnectOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WsError::Refused { status: 404, .. }), "{err}");
    // Origin not allowed: 403; an allowed one passes.
    let origins = WsServerOptions {
        allowed_origins: Some(vec!["https://dashboard.example".into()]),
        ..Default::default()
    };
    let (port, _s) = echo_server(None, origins.clone()).await;
    let evil = WsConnectOptions {
        headers: vec![("Origin".into(), "https://evil.example".into())],
        ..Default::default()
    };
    let err = connect(&addr("ws", "127.0.0.1", port, "/mqtt"), &evil)
        .await
        .unwrap_err();
    assert!(matches!(err, WsError::Refused { status: 403, .. }), "{err}");
    let (port, _s) = echo_server(None, origins).await;
    let good = WsConnectOptions {
        headers: vec![("Origin".into(), "https://dashboard.example".into())],
        ..Default::default()
    };
    assert!(
        connect(&addr("ws", "127.0.0.1", port, "/mqtt"), &good)
            .await
            .is_ok()
    );
    // The legacy mqttv3.1 subprotocol is accepted and echoed.
    let (port, _s) = echo_server(None, WsServerOptions::default()).await;
    let legacy = WsConnectOptions {
        subprotocol: "mqttv3.1".into(),
        ..Default::default()
    };
    assert!(
        connect(&addr("ws", "127.0.0.1", port, "/mqtt"), &legacy)
            .await
            .is_ok()
    );
}

fn server_tls(ca: &Ca) -> ServerTls {
    let leaf = ca.issue("localhost", &["localhost"]);
    ServerTls {
        certs: leaf.chain,
        key: Arc::new(leaf.key),
        client_ca: None,
        alpn: Vec::new(),
    }
}

#[tokio::test]
async fn secure_websocket_with_a_test_ca() {
    let ca = Ca::new("ws test CA");
    let (port, server) = echo_server(Some(server_tls(&ca)), WsServerOptions::default()).await;
    let mut options = WsConnectOptions::default();
    options.connect.tls = ClientTls {
        roots: Roots::Custom(vec![ca.cert()]),
        ..Default::default()
    };
    let mut conn = connect(&addr("wss", "localhost", port, "/mqtt"), &options)
        .await
        .unwrap();
    assert_eq!(conn.info().kind, TransportKind::SecureWebSocket);
    mqtt_connect(&mut conn, ProtocolVersion::V5).await;
    send(&mut conn, Disconnect::default(), ProtocolVersion::V5).await;
    assert!(
        server
            .await
            .unwrap()
            .contains(&"kind SecureWebSocket".to_string())
    );
}

/// Our WebSocket client against Debian's mosquitto with a websockets listener.
#[tokio::test]
async fn websocket_client_against_mosquitto() {
    let Some(mosquitto) =
        mqtt_test_support::program("websocket_client_against_mosquitto", "mosquitto")
    else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("mqtt-ws-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("mosquitto.conf"),
        format!("listener {port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n"),
    )
    .unwrap();
    let mut broker = tokio::process::Command::new(mosquitto)
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Some builds (Debian's 2.0.11 among them) have no WebSocket support and
    // exit at once: that is a missing capability of the peer, reported as a
    // skip whether or not peers are required.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(Some(_)) = broker.try_wait() {
        let mut err = String::new();
        if let Some(mut e) = broker.stderr.take() {
            let _ = e.read_to_string(&mut err).await;
        }
        use std::io::Write;
        let _ = std::io::stderr().lock().write_all(
            format!("websocket_client_against_mosquitto: skipped, this mosquitto has no websockets support ({})\n", err.trim())
                .as_bytes(),
        );
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    let target = addr("ws", "127.0.0.1", port, "/mqtt");
    let mut conn = connect_when_up(&target)
        .await
        .expect("mosquitto accepts WebSocket connections");
    for v in [ProtocolVersion::V3_1_1] {
        let (mut d, mut buf) = mqtt_connect(&mut conn, v).await;
        let sub = Subscribe {
            packet_id: PacketId::MIN,
            subscriptions: vec![Subscription::new(
                "ws/t".try_into().unwrap(),
                QoS::AtLeastOnce,
            )],
            properties: Default::default(),
        };
        send(&mut conn, sub, v).await;
        assert!(matches!(
            read_packet(&mut conn, &mut d, &mut buf).await,
            Some(Packet::SubAck(_))
        ));
        let mut p = Publish::new("ws/t".try_into().unwrap(), &b"through mosquitto"[..]);
        p.qos_pid = QosPid::AtLeastOnce(PacketId::MIN);
        send(&mut conn, p, v).await;
        let mut got_message = false;
        let mut got_ack = false;
        while !(got_message && got_ack) {
            match read_packet(&mut conn, &mut d, &mut buf)
                .await
                .expect("packet")
            {
                Packet::PubAck(_) => got_ack = true,
                Packet::Publish(m) => {
                    assert_eq!(m.payload(), b"through mosquitto");
                    if let Some(id) = m.packet_id() {
                        send(&mut conn, PubAck::new(id), v).await;
                    }
                    got_message = true;
                }
                other => panic!("{other:?}"),
            }
        }
    }
    let _ = broker.kill().await;
    let _ = std::fs::remove_dir_all(dir);
}

const MQTTJS_SCRIPT: &str = r#"
const mqtt = require('mqtt');
const [url, version] = process.argv.slice(2);
const c = mqtt.connect(url, { protocolVersion: Number(version), clientId: 'mqttjs-' + version, reconnectPeriod: 0, connectTimeout: 5000 });
c.on('connect', () => {
  c.subscribe('js/t', { qos: 1 }, (err) => {
    if (err) { console.error('SUBSCRIBE', err.message); process.exit(2); }
    c.publish('js/t', 'from mqtt.js', { qos: 1 });
  });
});
c.on('message', (topic, payload) => {
  console.log('MESSAGE ' + topic + ' ' + payload.toString());
  c.end(false, () => process.exit(0));
});
c.on('error', (e) => { console.error('ERROR', e.message); process.exit(1); });
setTimeout(() => { console.error('TIMEOUT'); process.exit(3); }, 10000);
"#;

/// MQTT.js (npm `mqtt`) over `ws://` against our WebSocket server, in 3.1.1 and 5.0.
#[tokio::test]
async fn mqttjs_over_websocket_against_our_server() {
    let Some((node, node_path)) =
        mqtt_test_support::node_with("mqttjs_over_websocket_against_our_server", "mqtt")
    else {
        return;
    };
    let script = std::env::temp_dir().join(format!("mqttjs-ws-{}.js", std::process::id()));
    std::fs::write(&script, MQTTJS_SCRIPT).unwrap();
    for version in ["4", "5"] {
        let (port, server) = echo_server(None, WsServerOptions::default()).await;
        let out = tokio::process::Command::new(&node)
            .arg(&script)
            .arg(format!("ws://127.0.0.1:{port}/mqtt"))
            .arg(version)
            .env("NODE_PATH", &node_path)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "MQTT.js v{version}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("MESSAGE js/t from mqtt.js"), "{stdout}");
        let log = server.await.unwrap();
        assert!(
            log.contains(&"header sec-websocket-protocol: mqtt".to_string()),
            "{log:?}"
        );
        for t in ["Connect", "Subscribe", "Publish"] {
            assert!(log.contains(&t.to_string()), "{log:?}");
        }
    }
    let _ = std::fs::remove_file(script);
}

const PAHO_WS_SCRIPT: &str = r#"
import sys, threading
import paho.mqtt.client as mqtt
port, v5 = int(sys.argv[1]), sys.argv[2] == "5"
got = threading.Event()
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-ws", transport="websockets",
                protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
c.ws_set_options(path="/mqtt")
def on_connect(client, userdata, flags, reason, props):
    client.subscribe("py/t", qos=1)
def on_subscribe(client, userdata, mid, reasons, props):
    client.publish("py/t", b"from paho", qos=1)
def on_message(client, userdata, msg):
    print("MESSAGE", msg.topic, msg.payload.decode())
    got.set()
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
c.connect("127.0.0.1", port, keepalive=30)
c.loop_start()
ok = got.wait(10)
c.disconnect()
c.loop_stop()
sys.exit(0 if ok else 3)
"#;

/// paho-mqtt (PyPI) with `transport="websockets"` against our WebSocket server.
#[tokio::test]
async fn paho_over_websocket_against_our_server() {
    let Some(python) = mqtt_test_support::python_with(
        "paho_over_websocket_against_our_server",
        "paho.mqtt.client",
    ) else {
        return;
    };
    let script = std::env::temp_dir().join(format!("paho-ws-{}.py", std::process::id()));
    std::fs::write(&script, PAHO_WS_SCRIPT).unwrap();
    for version in ["311", "5"] {
        let (port, server) = echo_server(None, WsServerOptions::default()).await;
        let out = tokio::process::Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(version)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "paho v{version}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("MESSAGE py/t from paho"), "{stdout}");
        let log = server.await.unwrap();
        assert!(log.contains(&"Publish".to_string()), "{log:?}");
    }
    let _ = std::fs::remove_file(script);
}

/// Our WebSocket client against a real broker: aedes (npm), the broker of the
/// MQTT.js ecosystem, serving MQTT 3.1.1 over WebSocket. (Debian's mosquitto
/// 2.0.11 is built without websockets support.)
#[tokio::test]
async fn websocket_client_against_aedes() {
    let Some(broker) =
        mqtt_test_support::brokers::Aedes::start("websocket_client_against_aedes").await
    else {
        return;
    };
    let port = broker.port;
    let target = addr("ws", "127.0.0.1", port, "/mqtt");
    let mut conn = connect_when_up(&target)
        .await
        .expect("aedes accepts WebSocket connections");
    let v = ProtocolVersion::V3_1_1;
    let (mut d, mut buf) = mqtt_connect(&mut conn, v).await;
    let sub = Subscribe {
        packet_id: PacketId::MIN,
        subscriptions: vec![Subscription::new(
            "ws/aedes".try_into().unwrap(),
            QoS::AtLeastOnce,
        )],
        properties: Default::default(),
    };
    send(&mut conn, sub, v).await;
    assert!(matches!(
        read_packet(&mut conn, &mut d, &mut buf).await,
        Some(Packet::SubAck(_))
    ));
    // A packet larger than any single frame aedes would produce, and a QoS 1 flow.
    let mut p = Publish::new("ws/aedes".try_into().unwrap(), vec![42u8; 200_000]);
    p.qos_pid = QosPid::AtLeastOnce(PacketId::new(2).unwrap());
    send(&mut conn, p, v).await;
    let (mut got_message, mut got_ack) = (false, false);
    while !(got_message && got_ack) {
        match read_packet(&mut conn, &mut d, &mut buf)
            .await
            .expect("packet from aedes")
        {
            Packet::PubAck(_) => got_ack = true,
            Packet::Publish(m) => {
                assert_eq!(m.payload().len(), 200_000);
                if let Some(id) = m.packet_id() {
                    send(&mut conn, PubAck::new(id), v).await;
                }
                got_message = true;
            }
            other => panic!("{other:?}"),
        }
    }
    send(&mut conn, Disconnect::default(), v).await;
    drop(broker);
}

#[tokio::test]
async fn pings_are_answered_and_close_is_clean() {
    let listener = Listener::bind("127.0.0.1:0", None).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let conn = listener.accept().await.unwrap().establish().await.unwrap();
        let mut conn = accept(conn, &WsServerOptions::default()).await.unwrap();
        let mut buf = [0u8; 16];
        // The ping is answered while reading; the close ends the stream.
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &[0xC0, 0]);
        let eof = conn.read(&mut buf).await.unwrap();
        conn.shutdown().await.unwrap();
        eof
    });
    let (mut ws, _) = raw_client(port, "mqtt").await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::binary(vec![0xC0, 0])).await.unwrap();
    let Some(Ok(Message::Pong(p))) = ws.next().await else {
        panic!("no pong")
    };
    assert_eq!(&p[..], b"are you there");
    ws.close(None).await.unwrap();
    assert_eq!(server.await.unwrap(), 0, "close reads as end of stream");
}

/// One port, two protocols: the shared_port example answers HTTP and MQTT
/// over WebSocket.
#[tokio::test]
async fn http_and_mqtt_share_a_port() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..2 {
            let (stream, peer) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let head = peek_request_head(&stream, 16 * 1024, Duration::from_secs(5))
                    .await
                    .unwrap()
                    .unwrap();
                let mut stream = stream;
                if head.is_websocket_upgrade() {
                    let info =
                        mqtt_transport_tcp::ConnectionInfo::tcp(peer, stream.local_addr().unwrap());
                    let mut conn =
                        accept(Connection::new(stream, info), &WsServerOptions::default())
                            .await
                            .unwrap();
                    let mut d = Decoder::server();
                    let mut buf = BytesMut::new();
                    if let Some(Packet::Connect(c)) = read_packet(&mut conn, &mut d, &mut buf).await
                    {
                        send(&mut conn, ConnAck::new(ConnectReason::Success), c.version).await;
                    }
                } else {
                    let mut discard = [0u8; 4096];
                    let _ = stream.read(&mut discard).await;
                    let body = format!("status page for {}", head.path_only());
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    stream.write_all(reply.as_bytes()).await.unwrap();
                }
            });
        }
    });
    // Plain HTTP, sent in two pieces so the peek has to wait for the rest.
    let mut http = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    http.write_all(b"GET /?x=1 HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    http.write_all(b"\r\n").await.unwrap();
    let mut reply = String::new();
    let mut chunk = [0u8; 256];
    while !reply.contains("status page") {
        let n = http.read(&mut chunk).await.unwrap();
        assert!(n > 0);
        reply.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.ends_with("status page for /"), "{reply}");
    // MQTT over WebSocket on the same port.
    let mut conn = connect(
        &addr("ws", "127.0.0.1", port, "/mqtt"),
        &WsConnectOptions::default(),
    )
    .await
    .unwrap();
    mqtt_connect(&mut conn, ProtocolVersion::V5).await;
}

#[tokio::test]
async fn response_headers_are_sent_and_the_size_limit_holds() {
    let listener = Listener::bind("127.0.0.1:0", None).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let options = WsServerOptions {
        max_message_size: 1024,
        response_headers: vec![("x-served-by".into(), "mqtt-transport-ws".into())],
        ..Default::default()
    };
    let server = tokio::spawn(async move {
        let conn = listener.accept().await.unwrap().establish().await.unwrap();
        let mut conn = accept(conn, &options).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let first = conn.read(&mut buf).await.unwrap();
        let second = conn.read(&mut buf).await;
        (first, second.is_err())
    });
    let (mut ws, response) = raw_client(port, "mqtt").await;
    assert_eq!(
        response.headers().get("x-served-by").unwrap(),
        "mqtt-transport-ws"
    );
    ws.send(Message::binary(vec![0xC0, 0])).await.unwrap();
    let _ = ws.send(Message::binary(vec![0u8; 2048])).await;
    let (first, refused) = server.await.unwrap();
    assert_eq!(first, 2);
    assert!(refused, "a message over the limit ends the connection");
}

#[tokio::test]
async fn write_then_read_works_without_a_flush_and_large_writes_are_split() {
    let listener = Listener::bind("127.0.0.1:0", None).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let big = 17 << 20; // over the 16 MiB default message limit of both ends
    let server = tokio::spawn(async move {
        let conn = listener.accept().await.unwrap().establish().await.unwrap();
        let mut conn = accept(conn, &WsServerOptions::default()).await.unwrap();
        let mut first = [0u8; 2];
        conn.read_exact(&mut first).await.unwrap();
        conn.write_all(&[0xD0, 0]).await.unwrap(); // no flush: the next read sends it
        let mut rest = vec![0u8; big];
        conn.read_exact(&mut rest).await.unwrap();
        rest.iter().all(|&b| b == 9)
    });
    let mut conn = connect(
        &addr("ws", "127.0.0.1", port, "/mqtt"),
        &WsConnectOptions::default(),
    )
    .await
    .unwrap();
    conn.write_all(&[0xC0, 0]).await.unwrap();
    // No flush here either: reading sends what was written.
    let mut answer = [0u8; 2];
    conn.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, [0xD0, 0]);
    conn.write_all(&vec![9u8; big]).await.unwrap();
    conn.flush().await.unwrap();
    assert!(
        server.await.unwrap(),
        "17 MiB written at once crosses in 64 KiB messages"
    );
}

#[tokio::test]
async fn the_subprotocol_answer_keeps_the_clients_spelling() {
    let (port, _server) = echo_server(None, WsServerOptions::default()).await;
    // tungstenite's client compares the answer exactly.
    let (_, response) = raw_client(port, "MQTT").await;
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "MQTT"
    );
}
