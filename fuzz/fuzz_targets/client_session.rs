//! Arbitrary bytes from a "server" into a ClientSession that has connected
//! (the first byte picks the version): nothing panics, and the session keeps
//! answering its API afterwards.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_codec::{BytesMut, ConnAck, ConnectReason, PacketId, ProtocolVersion, Publish, QoS, QosPid, TopicName};
use mqtt_session::{ClientOptions, ClientSession, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let version = if first & 1 == 0 { ProtocolVersion::V3_1_1 } else { ProtocolVersion::V5 };
    let Ok(id) = "fuzz".try_into() else { return };
    let mut options = ClientOptions::new(version, id);
    options.properties.topic_alias_maximum = Some(4);
    let mut client = ClientSession::new(options);
    let now = Instant::ZERO;
    client.connect(now);
    while client.poll_transmit(now).is_some() {}
    let _ = client.handle_packet(now, ConnAck::new(ConnectReason::Success).into());
    if let Ok(topic) = TopicName::from_static("t") {
        let mut p = Publish::new(topic, &b"x"[..]);
        p.qos_pid = QosPid::new(QoS::ExactlyOnce, PacketId::MIN);
        let _ = client.publish(p);
    }
    while client.poll_transmit(now).is_some() {}
    // Feed the bytes in two reads to cross packet boundaries.
    let split = rest.len() / 2;
    let mut buf = BytesMut::from(&rest[..split]);
    let _ = client.handle_bytes(now, &mut buf);
    buf.extend_from_slice(&rest[split..]);
    let _ = client.handle_bytes(now, &mut buf);
    while client.poll_transmit(now).is_some() {}
    while client.poll_event().is_some() {}
    client.handle_timeout(Instant::from_millis(3_600_000));
    let _ = client.poll_timeout();
});
