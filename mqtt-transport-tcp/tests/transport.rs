//! TCP and TLS transports, both sides, on 127.0.0.1 with ephemeral ports;
//! certificates generated in the test (rcgen); and Debian's mosquitto with a
//! TLS listener as a real peer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_codec::{
    BytesMut, ConnAck, Connect, ConnectReason, Decoder, Encode, Packet, ProtocolVersion,
};
use mqtt_test_support::tls::Ca;
use mqtt_transport_tcp::*;
use std::{sync::Arc, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// (chain, key, cert PEM, key PEM) for `names` with common name `cn`.
fn leaf(
    ca: &Ca,
    cn: &str,
    names: &[&str],
) -> (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    String,
    String,
) {
    let l = ca.issue(cn, names);
    (l.chain, l.key, l.cert_pem, l.key_pem)
}

fn server_tls(ca: &Ca) -> ServerTls {
    let (certs, key, ..) = leaf(ca, "localhost", &["localhost", "127.0.0.1"]);
    ServerTls {
        certs,
        key: Arc::new(key),
        client_ca: None,
        alpn: vec![b"mqtt".to_vec()],
    }
}

fn client_options(ca: &Ca) -> ConnectOptions {
    ConnectOptions {
        timeout: Duration::from_secs(5),
        tls: ClientTls {
            roots: Roots::Custom(vec![ca.cert()]),
            alpn: vec![b"mqtt".to_vec()],
            ..Default::default()
        },
        local_addr: None,
    }
}

async fn read_packet(conn: &mut Connection, decoder: &mut Decoder, buf: &mut BytesMut) -> Packet {
    loop {
        if let Some(p) = decoder.decode(buf).unwrap() {
            return p;
        }
        let n = conn.read_buf(buf).await.unwrap();
        assert!(n > 0, "connection closed before a whole packet");
    }
}

async fn send(conn: &mut Connection, p: impl Into<Packet>, v: ProtocolVersion) {
    let mut out = BytesMut::new();
    p.into().encode(v, &mut out).unwrap();
    conn.write_all(&out).await.unwrap();
}

/// Serves one connection: answers CONNECT with CONNACK; returns the info.
async fn serve_one(listener: Listener) -> Result<ConnectionInfo, TransportError> {
    serve_one_of(&listener).await
}

/// [`serve_one`] for a listener that serves more.
async fn serve_one_of(listener: &Listener) -> Result<ConnectionInfo, TransportError> {
    let mut conn = listener.accept().await?.establish().await?;
    let info = conn.info().clone();
    let mut decoder = Decoder::server();
    let mut buf = BytesMut::new();
    let Packet::Connect(c) = read_packet(&mut conn, &mut decoder, &mut buf).await else {
        panic!("expected CONNECT")
    };
    send(&mut conn, ConnAck::new(ConnectReason::Success), c.version).await;
    Ok(info)
}

/// Client side of the same exchange.
async fn connect_and_handshake(
    addr: &ServerAddr,
    options: &ConnectOptions,
) -> Result<Connection, TransportError> {
    let mut conn = connect(addr, options).await?;
    send(
        &mut conn,
        Connect::new(ProtocolVersion::V5, "t".try_into().unwrap()),
        ProtocolVersion::V5,
    )
    .await;
    let mut decoder = Decoder::client(ProtocolVersion::V5);
    let mut buf = BytesMut::new();
    assert!(matches!(
        read_packet(&mut conn, &mut decoder, &mut buf).await,
        Packet::ConnAck(_)
    ));
    Ok(conn)
}

#[tokio::test]
async fn plain_tcp_connect_and_exchange() {
    let listener = Listener::bind("127.0.0.1:0", None).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener));
    let addr = ServerAddr::parse(&format!("mqtt://127.0.0.1:{port}")).unwrap();
    let conn = connect_and_handshake(&addr, &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(conn.info().kind, TransportKind::Tcp);
    assert_eq!(conn.peer_addr().port(), port);
    let info = server.await.unwrap().unwrap();
    assert_eq!(info.kind, TransportKind::Tcp);
    assert_eq!(info.peer_addr, conn.info().local_addr);
}

#[tokio::test]
async fn tls_with_a_test_ca_and_alpn() {
    let ca = Ca::new("test CA");
    let listener = Listener::bind("127.0.0.1:0", Some(server_tls(&ca)))
        .await
        .unwrap();
    assert_eq!(listener.kind(), TransportKind::Tls);
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener));
    let addr = ServerAddr::parse(&format!("mqtts://localhost:{port}")).unwrap();
    let conn = connect_and_handshake(&addr, &client_options(&ca))
        .await
        .unwrap();
    assert_eq!(conn.info().kind, TransportKind::Tls);
    assert_eq!(conn.info().alpn(), Some(&b"mqtt"[..]));
    assert_eq!(
        conn.info().peer_certificates().len(),
        1,
        "the server's leaf"
    );
    let info = server.await.unwrap().unwrap();
    assert_eq!(info.server_name(), Some("localhost"));
    assert!(info.peer_certificates().is_empty(), "no client certificate");
}

#[tokio::test]
async fn mutual_tls_exposes_the_client_certificate() {
    let ca = Ca::new("test CA");
    let mut tls = server_tls(&ca);
    tls.client_ca = Some(vec![ca.cert()]);
    let listener = Listener::bind("127.0.0.1:0", Some(tls)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener));
    let (chain, key, ..) = leaf(&ca, "device-7", &["device-7"]);
    let mut options = client_options(&ca);
    options.tls.identity = Some((chain.clone(), Arc::new(key)));
    let addr = ServerAddr::parse(&format!("mqtts://localhost:{port}")).unwrap();
    connect_and_handshake(&addr, &options).await.unwrap();
    let info = server.await.unwrap().unwrap();
    assert_eq!(
        info.peer_certificates(),
        chain,
        "the broker sees the client's certificate"
    );
}

#[tokio::test]
async fn an_untrusted_client_certificate_is_rejected() {
    let ca = Ca::new("test CA");
    let rogue = Ca::new("rogue CA");
    let mut tls = server_tls(&ca);
    tls.client_ca = Some(vec![ca.cert()]);
    let listener = Listener::bind("127.0.0.1:0", Some(tls)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener));
    let (chain, key, ..) = leaf(&rogue, "intruder", &["intruder"]);
    let mut options = client_options(&ca);
    options.tls.identity = Some((chain, Arc::new(key)));
    let addr = ServerAddr::parse(&format!("mqtts://localhost:{port}")).unwrap();
    // TLS 1.3 reports the rejection to the client after its handshake, at
    // the first read; either way the client never gets a CONNACK.
    let client = tokio::spawn(async move {
        let mut conn = connect(&addr, &options).await?;
        send(
            &mut conn,
            Connect::new(ProtocolVersion::V5, "t".try_into().unwrap()),
            ProtocolVersion::V5,
        )
        .await;
        let mut buf = [0u8; 16];
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => Err(TransportError::TlsConfig("rejected".into())),
            Ok(_) => Ok(()),
        }
    });
    let err = server.await.unwrap().unwrap_err();
    assert!(matches!(err, TransportError::Tls { .. }), "{err}");
    assert!(client.await.unwrap().is_err());
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_rejected() {
    let ca = Ca::new("test CA");
    let other = Ca::new("other CA");
    let listener = Listener::bind("127.0.0.1:0", Some(server_tls(&ca)))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve_one(listener));
    let addr = ServerAddr::parse(&format!("mqtts://localhost:{port}")).unwrap();
    let err = connect(&addr, &client_options(&other)).await.unwrap_err();
    assert!(matches!(err, TransportError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
}

// (127.0.0.2 answers on Linux's loopback without configuration.)
#[cfg(target_os = "linux")]
#[tokio::test]
async fn connects_from_the_local_address_asked_for() {
    let listener = Listener::bind("127.0.0.1:0", None).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let addr = ServerAddr::parse(&format!("mqtt://127.0.0.1:{port}")).unwrap();
    let from = ConnectOptions {
        local_addr: Some("127.0.0.2".parse().unwrap()),
        ..Default::default()
    };
    // Two at once from one address: the port is the kernel's choice at
    // connect time, per address pair.
    let server = tokio::spawn(async move {
        let a = serve_one_of(&listener).await.unwrap();
        let b = serve_one_of(&listener).await.unwrap();
        (a, b)
    });
    let c1 = connect_and_handshake(&addr, &from).await.unwrap();
    let c2 = connect_and_handshake(&addr, &from).await.unwrap();
    for c in [&c1, &c2] {
        assert_eq!(c.info().local_addr.ip().to_string(), "127.0.0.2");
        assert_eq!(c.peer_addr().port(), port);
    }
    assert_ne!(c1.info().local_addr.port(), c2.info().local_addr.port());
    let (a, b) = server.await.unwrap();
    assert_eq!(a.peer_addr, c1.info().local_addr);
    assert_eq!(b.peer_addr, c2.info().local_addr);
    // An address of the other family cannot reach an IPv4 server.
    let v6 = ConnectOptions {
        local_addr: Some("::1".parse().unwrap()),
        ..Default::default()
    };
    let err = connect(&addr, &v6).await.unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}

#[tokio::test]
async fn errors_say_what_failed() {
    // Nothing listens: a TCP error naming the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let addr = ServerAddr::parse(&format!("mqtt://127.0.0.1:{port}")).unwrap();
    let err = connect(&addr, &ConnectOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err}");
    // A server that never answers the TLS handshake: a timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let addr = ServerAddr::parse(&format!("mqtts://localhost:{port}")).unwrap();
    let mut options = client_options(&Ca::new("ca"));
    options.timeout = Duration::from_millis(300);
    let err = connect(&addr, &options).await.unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Timeout {
                what: "connect",
                ..
            }
        ),
        "{err}"
    );
    // A WebSocket URL is not this transport's.
    let err = connect(
        &ServerAddr::parse("ws://127.0.0.1:1/mqtt").unwrap(),
        &ConnectOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TransportError::UnsupportedScheme(_)));
    // A server-side handshake that never comes times out too.
    let ca = Ca::new("ca");
    let mut listener = Listener::bind("127.0.0.1:0", Some(server_tls(&ca)))
        .await
        .unwrap();
    listener.set_handshake_timeout(Duration::from_millis(200));
    let port = listener.local_addr().unwrap().port();
    let _idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let err = listener
        .accept()
        .await
        .unwrap()
        .establish()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::Timeout {
                what: "TLS handshake",
                ..
            }
        ),
        "{err}"
    );
}

/// Our TLS client against Debian's mosquitto with a TLS listener: CONNECT,
/// SUBSCRIBE and a PUBLISH that comes back through the broker.
#[tokio::test]
async fn tls_client_against_mosquitto() {
    let Some(mosquitto) = mqtt_test_support::program("tls_client_against_mosquitto", "mosquitto")
    else {
        return;
    };
    let ca = Ca::new("test CA");
    let (_, _, cert_pem, key_pem) = leaf(&ca, "localhost", &["localhost"]);
    let dir = std::env::temp_dir().join(format!("mqtt-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), key_pem).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {d}/ca.pem\ncertfile {d}/cert.pem\nkeyfile {d}/key.pem\n",
        d = dir.display()
    );
    std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
    let mut broker = tokio::process::Command::new(mosquitto)
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = ServerAddr::parse(&format!("mqtts://localhost:{port}")).unwrap();
    let mut options = ConnectOptions::default();
    options.tls.roots = Roots::Custom(vec![ca.cert()]);
    let mut conn = None;
    for _ in 0..50 {
        match connect(&addr, &options).await {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let mut conn = conn.expect("mosquitto accepts TLS connections");
    assert_eq!(conn.info().kind, TransportKind::Tls);
    let v = ProtocolVersion::V3_1_1;
    let mut decoder = Decoder::client(v);
    let mut buf = BytesMut::new();
    send(
        &mut conn,
        Connect::new(v, "tls-test".try_into().unwrap()),
        v,
    )
    .await;
    let Packet::ConnAck(ack) = read_packet(&mut conn, &mut decoder, &mut buf).await else {
        panic!()
    };
    assert_eq!(ack.reason, ConnectReason::Success);
    let sub = mqtt_codec::Subscribe {
        packet_id: mqtt_codec::PacketId::MIN,
        subscriptions: vec![mqtt_codec::Subscription::new(
            "tls/t".try_into().unwrap(),
            mqtt_codec::QoS::AtMostOnce,
        )],
        properties: Default::default(),
    };
    send(&mut conn, sub, v).await;
    assert!(matches!(
        read_packet(&mut conn, &mut decoder, &mut buf).await,
        Packet::SubAck(_)
    ));
    send(
        &mut conn,
        mqtt_codec::Publish::new("tls/t".try_into().unwrap(), &b"over tls"[..]),
        v,
    )
    .await;
    let Packet::Publish(p) = read_packet(&mut conn, &mut decoder, &mut buf).await else {
        panic!()
    };
    assert_eq!(p.payload(), b"over tls");
    let _ = broker.kill().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A burst of connection attempts larger than tokio's default queue (128)
/// is queued by the kernel while nothing accepts, instead of dropped (a
/// dropped attempt waits a second or more for its SYN to be sent again):
/// each connect completes at once.
#[tokio::test]
async fn a_burst_of_connects_waits_in_the_listen_queue() {
    const BURST: usize = 300;
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok());
    if somaxconn.is_some_and(|m| m < BURST) {
        eprintln!("skipped: net.core.somaxconn is below {BURST}");
        return;
    }
    let listener = Listener::bind("127.0.0.1:0", None).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut clients = Vec::new();
    for i in 0..BURST {
        // (A loopback connect with room in the queue completes in the
        // call; a dropped one would not within this limit.)
        let mut c = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .unwrap_or_else(|_| panic!("connect {i} was not queued"))
        .unwrap();
        // A byte, as an MQTT client sends: the listener holds a
        // connection until its first data.
        c.write_all(b"\x10").await.unwrap();
        clients.push(c);
    }
    // All of them wait in the listener's accept queue (a queue of 128
    // would hold 129 and drop the rest's data).
    assert_eq!(accept_queue(addr.port()), Some(BURST));
    for _ in 0..BURST {
        tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();
    }
}

/// MQTT clients speak first: a connection is handed over with its first
/// bytes (one wake-up of the server instead of two), and one that sends
/// nothing is handed over after a second all the same, for the server's
/// own timeout to close.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_connection_is_handed_over_with_its_first_bytes() {
    let listener = Listener::bind("127.0.0.1:0", None).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connected = std::time::Instant::now();
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    // Handed over before any data only if this test stalled past the
    // kernel's second.
    if early.is_ok() {
        assert!(
            connected.elapsed() >= Duration::from_millis(900),
            "handed over before any data"
        );
    }
    client.write_all(b"\x10").await.unwrap();
    let incoming = match early {
        Ok(incoming) => incoming,
        Err(_) => tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap(),
    };
    let mut conn = incoming.unwrap().establish().await.unwrap();
    let mut first = [0u8; 1];
    conn.read_exact(&mut first).await.unwrap();
    assert_eq!(first, [0x10]);
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("a silent client is handed over in the end")
        .unwrap();
}

/// Connections waiting to be accepted by the IPv4 listener on `port`, from
/// /proc/net/tcp (the receive-queue column of a listening socket).
fn accept_queue(port: u16) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
        // State 0A: LISTEN; queues as "tx:rx" in hex.
        if local_port != port || *f.get(3)? != "0A" {
            return None;
        }
        usize::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok()
    })
}
