//! Encode-loop driver for profiling with callgrind:
//! `ROUNDS=200000 valgrind --tool=callgrind target/release/examples/prof_encode`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // profiling driver
use mqtt_codec::*;

fn main() {
    let topic = TopicName::from_static("sensors/room-17/temp").expect("valid");
    let mut p = Publish::new(topic, Bytes::from(vec![0xABu8; 64]));
    p.qos_pid = QosPid::AtLeastOnce(PacketId::MIN);
    let mut buf = BytesMut::with_capacity(4096);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000_000);
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        buf.clear();
        std::hint::black_box(
            p.encode(ProtocolVersion::V3_1_1, &mut buf)
                .expect("encodes"),
        );
    }
    eprintln!(
        "{:.1} ns/packet",
        t.elapsed().as_nanos() as f64 / rounds as f64
    );
}
