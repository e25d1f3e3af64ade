//! One port for ordinary HTTP and MQTT over WebSocket: `GET /` answers a
//! status page, an upgrade on `/mqtt` becomes an MQTT connection (answered by
//! a tiny echo: CONNACK, then every PUBLISH sent back).
//!
//! `cargo run -p mqtt-transport-ws --example shared_port -- 127.0.0.1:8080`,
//! then open http://127.0.0.1:8080/ or point an MQTT client at
//! ws://127.0.0.1:8080/mqtt.

use mqtt_codec::{BytesMut, ConnAck, ConnectReason, Decoder, Encode, Packet, ProtocolVersion};
use mqtt_transport_tcp::{Connection, ConnectionInfo};
use mqtt_transport_ws::{WsServerOptions, accept, peek_request_head};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "listening on http://{}/ and ws://{}/mqtt",
        listener.local_addr()?,
        listener.local_addr()?
    );
    loop {
        let (stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = handle(stream, peer).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

async fn handle(
    mut stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
) -> Result<(), Box<dyn std::error::Error>> {
    stream.set_nodelay(true)?;
    let Some(head) = peek_request_head(&stream, 16 * 1024, Duration::from_secs(10)).await? else {
        return Ok(());
    };
    if head.is_websocket_upgrade() && head.path_only() == "/mqtt" {
        let info = ConnectionInfo::tcp(peer, stream.local_addr()?);
        let conn = accept(Connection::new(stream, info), &WsServerOptions::default()).await?;
        return echo(conn).await;
    }
    // Ordinary HTTP: consume the request and answer it.
    let mut discard = vec![0u8; 16 * 1024];
    let _ = stream.read(&mut discard).await?;
    let body = "MQTT over WebSocket is served at /mqtt\n";
    let status = if head.path_only() == "/" {
        "200 OK"
    } else {
        "404 Not Found"
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

async fn echo(mut conn: Connection) -> Result<(), Box<dyn std::error::Error>> {
    let mut decoder = Decoder::server();
    let mut buf = BytesMut::new();
    let mut version = ProtocolVersion::V3_1_1;
    loop {
        while let Some(packet) = decoder.decode(&mut buf)? {
            let mut out = BytesMut::new();
            match packet {
                Packet::Connect(c) => {
                    version = c.version;
                    ConnAck::new(ConnectReason::Success).encode(version, &mut out)?;
                }
                Packet::Publish(p) => {
                    mqtt_codec::Publish::new(p.topic_name(), p.payload_bytes())
                        .encode(version, &mut out)?;
                }
                Packet::PingReq => {
                    Packet::PingResp.encode(version, &mut out)?;
                }
                Packet::Disconnect(_) => return Ok(()),
                _ => {}
            }
            conn.write_all(&out).await?;
            conn.flush().await?;
        }
        if conn.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}
