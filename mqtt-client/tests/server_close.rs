//! How the client reports a server that ends the connection, against a
//! scripted server on a raw socket.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_client::{ClientBuilder, ConnectionEvent, ProtocolVersion};
use mqtt_codec::{
    BytesMut, ConnAck, Decoder, Disconnect, DisconnectReason, Encode, Packet, Publish, TopicName,
};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

/// A server sends messages the application does not take (more than its
/// message stream holds), then
/// DISCONNECT 0x8B and closes: the client reports the server's reason, not
/// the closed socket, though it stopped decoding for the unread messages.
#[tokio::test]
async fn a_disconnect_behind_unread_messages_gives_its_reason() {
    let v = ProtocolVersion::V5;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut decoder = Decoder::server();
        let mut buf = BytesMut::new();
        loop {
            s.read_buf(&mut buf).await.unwrap();
            if let Some(Packet::Connect(_)) = decoder.decode(&mut buf).unwrap() {
                break;
            }
        }
        let mut out = BytesMut::new();
        Packet::from(ConnAck::default())
            .encode(v, &mut out)
            .unwrap();
        for _ in 0..5 {
            let publish = Publish::new(TopicName::try_from("unread").unwrap(), "m");
            Packet::from(publish).encode(v, &mut out).unwrap();
        }
        s.write_all(&out).await.unwrap();
        // The messages reach the client before what follows.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut out = BytesMut::new();
        Packet::from(Disconnect::new(DisconnectReason::ServerShuttingDown))
            .encode(v, &mut out)
            .unwrap();
        s.write_all(&out).await.unwrap();
        s.shutdown().await.unwrap();
        // Until the client closes its side.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
    });
    let (client, _messages) = ClientBuilder::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .version(v)
        .client_id("unread")
        .incoming_capacity(1)
        .connect()
        .await
        .unwrap();
    let mut events = client.events();
    let reason = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(ConnectionEvent::Disconnected(e)) = events.recv().await {
                return e.to_string();
            }
        }
    })
    .await
    .expect("disconnected in time");
    assert!(reason.contains("ServerShuttingDown"), "{reason}");
    server.await.unwrap();
}
