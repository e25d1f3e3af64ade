//! The same PUBLISH stream over TCP, TLS, WebSocket and secure WebSocket on
//! loopback: messages per second and bytes on the wire, as ratios to TCP.
//!
//! `cargo bench -p mqtt-transport-ws --bench transports`. A client sends
//! 200,000 QoS 0 PUBLISH packets (64 B payload, 20 B topic) in writes of 100
//! packets each (one WebSocket frame per write); a server decodes them all.
//! A relay between the two counts the bytes that cross. Transports run in
//! alternation, five rounds; medians are reported.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code

use mqtt_codec::{BytesMut, Decoder, Encode, Packet, ProtocolVersion, Publish, TopicName};
use mqtt_transport_tcp::{
    ClientTls, ConnectOptions, Connection, Listener, Roots, ServerAddr, ServerTls,
};
use mqtt_transport_ws::{WsConnectOptions, WsServerOptions};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MESSAGES: usize = 200_000;
const BATCH: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Tcp,
    Tls,
    Ws,
    Wss,
}

struct Pki {
    ca: mqtt_test_support::tls::Ca,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            ca: mqtt_test_support::tls::Ca::new("bench CA"),
        }
    }

    fn server(&self) -> ServerTls {
        let leaf = self.ca.issue("localhost", &["localhost"]);
        ServerTls {
            certs: leaf.chain,
            key: Arc::new(leaf.key),
            client_ca: None,
            alpn: Vec::new(),
        }
    }

    fn client(&self) -> ClientTls {
        ClientTls {
            roots: Roots::Custom(vec![self.ca.cert()]),
            ..Default::default()
        }
    }
}

/// Forwards `listener`'s first connection to `target`, counting client-to-server bytes.
async fn relay(listener: tokio::net::TcpListener, target: u16) -> u64 {
    let (mut inbound, _) = listener.accept().await.unwrap();
    let mut outbound = tokio::net::TcpStream::connect(("127.0.0.1", target))
        .await
        .unwrap();
    inbound.set_nodelay(true).unwrap();
    outbound.set_nodelay(true).unwrap();
    let (mut ri, mut wi) = inbound.split();
    let (mut ro, mut wo) = outbound.split();
    let up = async {
        let n = tokio::io::copy(&mut ri, &mut wo).await.unwrap_or(0);
        let _ = wo.shutdown().await;
        n
    };
    let down = async {
        let _ = tokio::io::copy(&mut ro, &mut wi).await;
        let _ = wi.shutdown().await;
    };
    let (n, _) = tokio::join!(up, down);
    n
}

async fn serve(listener: Listener, kind: Kind) -> usize {
    let conn = listener.accept().await.unwrap().establish().await.unwrap();
    let mut conn: Connection = match kind {
        Kind::Ws | Kind::Wss => mqtt_transport_ws::accept(conn, &WsServerOptions::default())
            .await
            .unwrap(),
        _ => conn,
    };
    let mut decoder = Decoder::new();
    decoder.set_version(ProtocolVersion::V3_1_1);
    let mut buf = BytesMut::with_capacity(256 * 1024);
    let mut count = 0;
    while count < MESSAGES {
        if conn.read_buf(&mut buf).await.unwrap() == 0 {
            break;
        }
        while let Some(Packet::Publish(_)) = decoder.decode(&mut buf).unwrap() {
            count += 1;
        }
    }
    count
}

/// One run: (seconds, bytes on the wire).
async fn run(kind: Kind, pki: &Pki) -> (f64, u64) {
    let tls = matches!(kind, Kind::Tls | Kind::Wss).then(|| pki.server());
    let listener = Listener::bind("127.0.0.1:0", tls).await.unwrap();
    let server_port = listener.local_addr().unwrap().port();
    let relay_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_port = relay_listener.local_addr().unwrap().port();
    let relay = tokio::spawn(relay(relay_listener, server_port));
    let server = tokio::spawn(serve(listener, kind));
    let scheme = match kind {
        Kind::Tcp => "mqtt",
        Kind::Tls => "mqtts",
        Kind::Ws => "ws",
        Kind::Wss => "wss",
    };
    let addr = ServerAddr::parse(&format!("{scheme}://localhost:{relay_port}/mqtt")).unwrap();
    let connect = ConnectOptions {
        tls: pki.client(),
        ..Default::default()
    };
    let mut conn = match kind {
        Kind::Ws | Kind::Wss => mqtt_transport_ws::connect(
            &addr,
            &WsConnectOptions {
                connect,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
        _ => mqtt_transport_tcp::connect(&addr, &connect).await.unwrap(),
    };
    let publish = Publish::new(
        TopicName::from_static("sensors/room-17/temp").unwrap(),
        vec![0xAB; 64],
    );
    let mut batch = BytesMut::new();
    for _ in 0..BATCH {
        publish.encode(ProtocolVersion::V3_1_1, &mut batch).unwrap();
    }
    let batch = batch.freeze();
    let start = Instant::now();
    for _ in 0..MESSAGES / BATCH {
        conn.write_all(&batch).await.unwrap();
        conn.flush().await.unwrap();
    }
    let received = server.await.unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(received, MESSAGES);
    let _ = conn.shutdown().await;
    drop(conn);
    let bytes = tokio::time::timeout(Duration::from_secs(10), relay)
        .await
        .unwrap()
        .unwrap();
    (elapsed, bytes)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench`-less args; keep it quick then.
    let rounds = if std::env::args().any(|a| a == "--bench") {
        5
    } else {
        1
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = Pki::new();
    let kinds = [Kind::Tcp, Kind::Tls, Kind::Ws, Kind::Wss];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut wire: Vec<u64> = vec![0; kinds.len()];
    for _ in 0..rounds {
        for (i, kind) in kinds.iter().enumerate() {
            let (secs, bytes) = rt.block_on(run(*kind, &pki));
            rates[i].push(MESSAGES as f64 / secs);
            wire[i] = bytes;
        }
    }
    let tcp_rate = median(rates[0].clone());
    let tcp_bytes = wire[0] as f64;
    println!(
        "| transport | messages/s (median of {rounds}) | ratio to TCP | bytes on the wire per message | ratio to TCP |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (i, kind) in kinds.iter().enumerate() {
        let rate = median(rates[i].clone());
        let per = wire[i] as f64 / MESSAGES as f64;
        println!(
            "| {kind:?} | {:.0} | {:.2} | {:.1} | {:.3} |",
            rate,
            rate / tcp_rate,
            per,
            wire[i] as f64 / tcp_bytes
        );
    }
}
