//! Decode-loop driver for profiling (callgrind): `ROUNDS=20 valgrind --tool=callgrind target/release/examples/prof_decode`.
use mqtt_codec::*;
fn main() {
    let mut p = Publish::new(
        TopicName::from_static("sensors/room-17/temp").unwrap(),
        Bytes::from(vec![0xABu8; 64]),
    );
    p.qos_pid = QosPid::AtLeastOnce(PacketId::new(42).unwrap());
    let mut f = BytesMut::new();
    p.encode(ProtocolVersion::V3_1_1, &mut f).unwrap();
    let n = 256 * 1024 / f.len();
    let stream = f.repeat(n);
    let mut d = Decoder::new();
    d.set_version(ProtocolVersion::V3_1_1);
    sizes();
    let t = std::time::Instant::now();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    for _ in 0..rounds {
        let mut src = BytesMut::from(&stream[..]);
        for _ in 0..n {
            std::hint::black_box(d.decode(&mut src).unwrap().unwrap());
        }
    }
    eprintln!(
        "{:.1} ns/packet (incl. refill)",
        t.elapsed().as_nanos() as f64 / (rounds * n) as f64
    );
}
#[allow(dead_code)]
fn sizes() {
    eprintln!(
        "Packet {} Publish {} props {}",
        size_of::<Packet>(),
        size_of::<Publish>(),
        size_of::<PublishProperties>()
    );
}
