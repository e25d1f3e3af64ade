//! Arbitrary bytes from a "client" into a ServerSession from the first byte:
//! nothing panics, CONNECT is accepted when it comes, and the session keeps
//! answering its API (deliveries, session state, timers) afterwards.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_codec::{BytesMut, ConnAck, PacketId, Publish, QoS, QosPid, TopicName};
use mqtt_session::{Instant, ServerEvent, ServerOptions, ServerSession};

fuzz_target!(|data: &[u8]| {
    let now = Instant::ZERO;
    let options = ServerOptions {
        receive_maximum: 4,
        topic_alias_maximum: 4,
        max_queued: 16,
        ..Default::default()
    };
    let mut server = ServerSession::new(options, now);
    let mut buf = BytesMut::new();
    for chunk in data.chunks(7) {
        buf.extend_from_slice(chunk);
        let _ = server.handle_bytes(now, &mut buf);
        while let Some(e) = server.poll_event() {
            if let ServerEvent::Connect(_) = e {
                let resume = Some(server.session_state());
                server.accept(now, ConnAck::default(), resume);
                if let Ok(topic) = TopicName::from_static("out") {
                    let mut p = Publish::new(topic, &b"x"[..]);
                    p.qos_pid = QosPid::new(QoS::ExactlyOnce, PacketId::MIN);
                    let _ = server.deliver(p);
                }
            }
        }
        while server.poll_transmit(now).is_some() {}
    }
    let _ = server.session_state();
    server.handle_timeout(Instant::from_millis(86_400_000));
    while server.poll_transmit(now).is_some() {}
});
