//! Decode-loop driver for profiling with callgrind:
//! `PACKET=subscribe ROUNDS=20 valgrind --tool=callgrind target/release/examples/prof_decode`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failed test
use mqtt_codec::*;

fn frame() -> BytesMut {
    let mut f = BytesMut::new();
    let v = ProtocolVersion::V3_1_1;
    match std::env::var("PACKET").as_deref() {
        Ok("subscribe") => Subscribe {
            packet_id: PacketId::MIN,
            subscriptions: (0..10)
                .map(|i| {
                    let filter =
                        TopicFilter::try_from(format!("building/{i}/+/sensors/#")).expect("valid");
                    Subscription::new(filter, QoS::AtLeastOnce)
                })
                .collect(),
            properties: Default::default(),
        }
        .encode(v, &mut f),
        _ => {
            let topic = TopicName::from_static("sensors/room-17/temp").expect("valid");
            let mut p = Publish::new(topic, Bytes::from(vec![0xABu8; 64]));
            p.qos_pid = QosPid::AtLeastOnce(PacketId::MIN);
            p.encode(v, &mut f)
        }
    }
    .expect("encodes");
    f
}

fn main() {
    let f = frame();
    let n = 256 * 1024 / f.len();
    let stream = f.repeat(n);
    let mut d = Decoder::new();
    d.set_version(ProtocolVersion::V3_1_1);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        let mut src = BytesMut::from(&stream[..]);
        for _ in 0..n {
            std::hint::black_box(d.decode(&mut src).expect("valid").expect("complete"));
        }
    }
    eprintln!(
        "{:.1} ns/packet (incl. refill)",
        t.elapsed().as_nanos() as f64 / (rounds * n) as f64
    );
}
