//! What the protocol logic costs: complete QoS 1 and QoS 2 publish cycles
//! from a ClientSession through a ServerSession and back, handing packets
//! over directly, and through encoded bytes (as a transport would).
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mqtt_codec::{BytesMut, ConnAck, PacketId, ProtocolVersion, Publish, QoS, QosPid, TopicName};
use mqtt_session::{
    ClientOptions, ClientSession, Event, Instant, ServerEvent, ServerOptions, ServerSession,
};
use std::hint::black_box;

const BATCH: u64 = 100;

fn pair(v: ProtocolVersion) -> (ClientSession, ServerSession) {
    let now = Instant::ZERO;
    let mut o = ClientOptions::new(v, "bench".try_into().unwrap());
    o.max_queued = BATCH as usize;
    let mut client = ClientSession::new(o);
    let mut server = ServerSession::new(ServerOptions::default(), now);
    client.connect(now);
    while let Some(p) = client.poll_transmit(now) {
        server.handle_packet(now, p).unwrap();
    }
    while let Some(e) = server.poll_event() {
        if let ServerEvent::Connect(_) = e {
            server.accept(now, ConnAck::default(), None);
        }
    }
    while let Some(p) = server.poll_transmit(now) {
        client.handle_packet(now, p).unwrap();
    }
    while client.poll_event().is_some() {}
    (client, server)
}

fn message(qos: QoS) -> Publish {
    let mut p = Publish::new(
        TopicName::from_static("bench/topic").unwrap(),
        vec![0u8; 64],
    );
    p.qos_pid = QosPid::new(qos, PacketId::MIN);
    p
}

/// Publishes BATCH messages and runs every flow to completion, handing packets over.
fn cycle_packets(client: &mut ClientSession, server: &mut ServerSession, msg: &Publish) {
    let now = Instant::ZERO;
    for _ in 0..BATCH {
        client.publish(msg.clone()).unwrap();
    }
    let mut done = 0;
    while done < BATCH {
        while let Some(p) = client.poll_transmit(now) {
            server.handle_packet(now, p).unwrap();
        }
        while let Some(e) = server.poll_event() {
            black_box(e);
        }
        while let Some(p) = server.poll_transmit(now) {
            client.handle_packet(now, p).unwrap();
        }
        while let Some(e) = client.poll_event() {
            if let Event::Published { .. } = e {
                done += 1;
            }
        }
    }
}

/// The same through bytes: each side encodes into a buffer the other decodes.
fn cycle_bytes(
    client: &mut ClientSession,
    server: &mut ServerSession,
    msg: &Publish,
    c2s: &mut BytesMut,
    s2c: &mut BytesMut,
) {
    let now = Instant::ZERO;
    for _ in 0..BATCH {
        client.publish(msg.clone()).unwrap();
    }
    let mut done = 0;
    while done < BATCH {
        client.encode_transmits(now, c2s);
        server.handle_bytes(now, c2s).unwrap();
        while let Some(e) = server.poll_event() {
            black_box(e);
        }
        server.encode_transmits(now, s2c);
        client.handle_bytes(now, s2c).unwrap();
        while let Some(e) = client.poll_event() {
            if let Event::Published { .. } = e {
                done += 1;
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    for (v, vname) in [
        (ProtocolVersion::V3_1_1, "v311"),
        (ProtocolVersion::V5, "v5"),
    ] {
        let mut g = c.benchmark_group(format!("session/{vname}"));
        g.throughput(Throughput::Elements(BATCH));
        for (qos, qname) in [(QoS::AtLeastOnce, "qos1"), (QoS::ExactlyOnce, "qos2")] {
            let msg = message(qos);
            let (mut client, mut server) = pair(v);
            g.bench_function(format!("{qname} cycle, packets"), |b| {
                b.iter(|| cycle_packets(&mut client, &mut server, &msg))
            });
            let (mut client, mut server) = pair(v);
            let (mut c2s, mut s2c) = (
                BytesMut::with_capacity(64 * 1024),
                BytesMut::with_capacity(64 * 1024),
            );
            g.bench_function(format!("{qname} cycle, encoded"), |b| {
                b.iter(|| cycle_bytes(&mut client, &mut server, &msg, &mut c2s, &mut s2c))
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
