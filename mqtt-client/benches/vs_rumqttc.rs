//! Client throughput and memory against rumqttc, through the same Debian
//! mosquitto in the same run.
//!
//! `cargo bench -p mqtt-client --bench vs_rumqttc [-- ROUNDS]`
//!
//! Throughput: one client publishes 64-byte messages to mosquitto over
//! loopback TCP (MQTT 3.1.1, 100 messages in flight for both clients), the
//! two clients alternating round by round; medians and the ratio are
//! printed. QoS 0 counts messages written to the socket, QoS 1 messages
//! acknowledged by PUBACK.
//!
//! The same two runs against a minimal acknowledging server on its own
//! thread (it answers CONNACK, then a PUBACK for every QoS 1 PUBLISH,
//! written in batches): mosquitto is single-threaded and saturates one core
//! at QoS 1 with either client, so this second table is where the clients
//! themselves are the bottleneck.
//!
//! Memory: each client publishes 10,000 QoS 1 messages to a server that
//! never acknowledges them; the heap growth from before the client is built
//! (so rumqttc's table of in-flight slots, allocated up front for 10,000,
//! counts), divided by 10,000, is the cost of one message in flight
//! (counted by a global allocator wrapper; the `Delivery` handles ours
//! returns count too).
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failed run

use mqtt_client::{ClientBuilder, Message, QoS};
use mqtt_test_support::brokers::Mosquitto;
use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only adds bookkeeping on an atomic counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const PAYLOAD: [u8; 64] = [b'x'; 64];
const TOPIC: &str = "bench/client";
const WINDOW: u16 = 100;

async fn ours(port: u16, qos: QoS, n: usize) -> Duration {
    let (client, _) = ClientBuilder::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .max_in_flight(WINDOW)
        .queue_limit(10_000)
        .connect()
        .await
        .unwrap();
    let start = Instant::now();
    // Every outcome is checked, oldest first (acknowledgements come in
    // order): the window's deliveries wait in a queue.
    let mut pending = std::collections::VecDeque::new();
    for _ in 0..n {
        let m = Message::new(TOPIC, &PAYLOAD[..]).unwrap().qos(qos);
        pending.push_back(client.enqueue(m).await.unwrap());
        while let Some(front) = pending.front_mut() {
            match futures::FutureExt::now_or_never(front) {
                Some(r) => {
                    r.unwrap();
                    pending.pop_front();
                }
                None => break,
            }
        }
    }
    for d in pending {
        d.await.unwrap();
    }
    let elapsed = start.elapsed();
    client.disconnect().await.unwrap();
    elapsed
}

async fn rumqttc(port: u16, qos: QoS, n: usize) -> Duration {
    let mut options = rumqttc::MqttOptions::new("rumqttc-bench", "127.0.0.1", port);
    options
        .set_inflight(WINDOW)
        .set_keep_alive(Duration::from_secs(60));
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10_000);
    let q = match qos {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    };
    // Connect first, as ours does.
    loop {
        if let rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) =
            eventloop.poll().await.unwrap()
        {
            break;
        }
    }
    let start = Instant::now();
    let publisher = tokio::spawn(async move {
        for _ in 0..n {
            client.publish(TOPIC, q, false, &PAYLOAD[..]).await.unwrap();
        }
        client
    });
    let mut done = 0;
    while done < n {
        match eventloop.poll().await.unwrap() {
            rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) if qos == QoS::AtLeastOnce => {
                done += 1
            }
            rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(_)) if qos == QoS::AtMostOnce => {
                done += 1
            }
            _ => {}
        }
    }
    let elapsed = start.elapsed();
    let client = publisher.await.unwrap();
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
    elapsed
}

/// A server that accepts one client, answers CONNACK and then only counts
/// the bytes it reads, acknowledging nothing.
async fn black_hole() -> (u16, tokio::sync::watch::Receiver<usize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::watch::channel(0usize);
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = s.read(&mut buf).await.unwrap();
        s.write_all(&[0x20, 2, 0, 0]).await.unwrap();
        let mut total = 0usize;
        let _ = n;
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    total += n;
                    let _ = tx.send(total);
                }
            }
        }
    });
    (port, rx)
}

const UNACKED: usize = 10_000;
/// PUBLISH QoS 1 of TOPIC and PAYLOAD: header 2, topic 2 + 12, id 2, payload 64.
const PUBLISH_LEN: usize = 2 + 2 + TOPIC.len() + 2 + 64;

async fn wait_bytes(rx: &mut tokio::sync::watch::Receiver<usize>, bytes: usize) {
    tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|&b| b >= bytes))
        .await
        .expect("every PUBLISH written")
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn memory_ours() -> f64 {
    let (port, mut rx) = black_hole().await;
    // Let earlier runs' tasks finish and free what they hold.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = LIVE.load(Ordering::Relaxed);
    let (client, _) = ClientBuilder::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .queue_limit(UNACKED)
        .connect()
        .await
        .unwrap();
    let mut pending = Vec::with_capacity(UNACKED);
    for _ in 0..UNACKED {
        let m = Message::new(TOPIC, &PAYLOAD[..])
            .unwrap()
            .qos(QoS::AtLeastOnce);
        pending.push(client.enqueue(m).await.unwrap());
    }
    wait_bytes(&mut rx, UNACKED * PUBLISH_LEN).await;
    let grown = LIVE.load(Ordering::Relaxed) - base;
    // The caller's Delivery handles are the caller's, but count them too.
    drop(pending);
    drop(client);
    grown as f64 / UNACKED as f64
}

async fn memory_rumqttc() -> f64 {
    let (port, mut rx) = black_hole().await;
    // Let earlier runs' tasks finish and free what they hold.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = LIVE.load(Ordering::Relaxed);
    let mut options = rumqttc::MqttOptions::new("rumqttc-mem", "127.0.0.1", port);
    // Room for exactly the messages of the test: rumqttc allocates its
    // table of in-flight slots up front.
    options.set_inflight(UNACKED as u16);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, UNACKED);
    loop {
        if let rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)) =
            eventloop.poll().await.unwrap()
        {
            break;
        }
    }
    let driver = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                return;
            }
        }
    });
    for _ in 0..UNACKED {
        client
            .publish(TOPIC, rumqttc::QoS::AtLeastOnce, false, &PAYLOAD[..])
            .await
            .unwrap();
    }
    wait_bytes(&mut rx, UNACKED * PUBLISH_LEN).await;
    let grown = LIVE.load(Ordering::Relaxed) - base;
    driver.abort();
    grown as f64 / UNACKED as f64
}

/// A server on its own thread that accepts connections one after another,
/// answers CONNACK and acknowledges every QoS 1 PUBLISH, batching the
/// PUBACKs of one read into one write.
fn ack_server() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            s.set_nodelay(true).unwrap();
            let mut buf = Vec::with_capacity(256 * 1024);
            let mut chunk = vec![0u8; 128 * 1024];
            let mut out = Vec::with_capacity(64 * 1024);
            'conn: loop {
                let n = match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let mut at = 0;
                loop {
                    // Fixed header and remaining length.
                    let (mut len, mut shift, mut i) = (0usize, 0, at + 1);
                    while let Some(&b) = buf.get(i) {
                        len |= ((b & 0x7f) as usize) << shift;
                        shift += 7;
                        i += 1;
                        if b & 0x80 == 0 {
                            break;
                        }
                    }
                    if i > buf.len() || buf.len() < i + len || at >= buf.len() {
                        break;
                    }
                    let body = &buf[i..i + len];
                    match buf[at] >> 4 {
                        1 => out.extend_from_slice(&[0x20, 2, 0, 0]),
                        3 if buf[at] & 0x06 == 0x02 => {
                            let t = u16::from_be_bytes([body[0], body[1]]) as usize;
                            out.extend_from_slice(&[0x40, 2, body[2 + t], body[3 + t]]);
                        }
                        12 => out.extend_from_slice(&[0xd0, 0]),
                        14 => break 'conn,
                        _ => {}
                    }
                    at = i + len;
                }
                buf.drain(..at);
                if !out.is_empty() {
                    if s.write_all(&out).is_err() {
                        break;
                    }
                    out.clear();
                }
            }
        }
    });
    port
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let Some(broker) = Mosquitto::start(
        "bench_vs_rumqttc",
        false,
        "max_inflight_messages 0\nmax_queued_messages 0\n",
    )
    .await
    else {
        eprintln!("mosquitto is not installed: nothing to compare against");
        return;
    };
    println!(
        "client throughput through mosquitto, MQTT 3.1.1, 64 B payload, window {WINDOW}, {rounds} rounds (medians)"
    );
    println!(
        "| publish | mqtt-client msgs/s | rumqttc msgs/s | ratio | client CPU µs/msg (ours / rumqttc) | mosquitto CPU µs/msg (ours / rumqttc) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let only = std::env::var("VS_RUMQTTC_ONLY").ok();
    if only.as_deref() == Some("memory") {
        memory().await;
        return;
    }
    if let Some(which) = &only {
        // Profiling aid: one QoS 1 run of one client.
        // Through VS_RUMQTTC_BROKER's port if given, else mosquitto.
        let port = std::env::var("VS_RUMQTTC_BROKER")
            .ok()
            .and_then(|v| v.split_once(':')?.0.parse::<u16>().ok())
            .unwrap_or(broker.port);
        let n = 1_000_000;
        let t = match which.as_str() {
            "rumqttc" => rumqttc(port, QoS::AtLeastOnce, n).await,
            _ => ours(port, QoS::AtLeastOnce, n).await,
        };
        println!("{which}: {:.0} msgs/s", n as f64 / t.as_secs_f64());
        return;
    }
    throughput(broker.port, broker.pid().unwrap(), rounds).await;
    // Through another broker as well, e.g. the workspace's own (which is not
    // single-threaded): VS_RUMQTTC_BROKER=PORT:PID.
    if let Some((port, pid)) = std::env::var("VS_RUMQTTC_BROKER").ok().and_then(|v| {
        let (port, pid) = v.split_once(':')?;
        Some((port.parse::<u16>().ok()?, pid.parse::<u32>().ok()?))
    }) {
        println!();
        println!(
            "client throughput through the broker on 127.0.0.1:{port}, MQTT 3.1.1, 64 B payload, window {WINDOW}, {rounds} rounds (medians)"
        );
        println!(
            "| publish | mqtt-client msgs/s | rumqttc msgs/s | ratio | client CPU µs/msg (ours / rumqttc) | broker CPU µs/msg (ours / rumqttc) |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        throughput(port, pid, rounds).await;
    }
    let port = ack_server();
    println!();
    println!(
        "client throughput to an acknowledging server on its own thread, MQTT 3.1.1, 64 B payload, window {WINDOW}, {rounds} rounds (medians)"
    );
    println!(
        "| publish | mqtt-client msgs/s | rumqttc msgs/s | ratio | client CPU µs/msg (ours / rumqttc) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (qos, n) in [(QoS::AtMostOnce, 200_000), (QoS::AtLeastOnce, 200_000)] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let c0 = thread_cpu();
            a.push(n as f64 / ours(port, qos, n).await.as_secs_f64());
            ca.push((thread_cpu() - c0) * 1e6 / n as f64);
            let c0 = thread_cpu();
            b.push(n as f64 / rumqttc(port, qos, n).await.as_secs_f64());
            cb.push((thread_cpu() - c0) * 1e6 / n as f64);
        }
        let (a, b) = (median(&mut a), median(&mut b));
        let (ca, cb) = (median(&mut ca), median(&mut cb));
        println!(
            "| {qos:?} | {a:.0} | {b:.0} | {:.2} | {ca:.2} / {cb:.2} |",
            a / b
        );
    }
    memory().await;
}

/// CPU time of the calling thread (the benchmark's single runtime thread,
/// where both clients run), in seconds.
fn thread_cpu() -> f64 {
    mqtt_test_support::brokers::thread_cpu_time().as_secs_f64()
}

async fn throughput(port: u16, pid: u32, rounds: usize) {
    for (qos, n) in [(QoS::AtMostOnce, 200_000), (QoS::AtLeastOnce, 100_000)] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        let (mut ba, mut bb) = (Vec::new(), Vec::new());
        let me = std::process::id();
        let cpu = |p| mqtt_test_support::brokers::cpu_time(p).as_secs_f64();
        for _ in 0..rounds {
            let (c0, b0) = (cpu(me), cpu(pid));
            a.push(n as f64 / ours(port, qos, n).await.as_secs_f64());
            ca.push((cpu(me) - c0) * 1e6 / n as f64);
            ba.push((cpu(pid) - b0) * 1e6 / n as f64);
            let (c0, b0) = (cpu(me), cpu(pid));
            b.push(n as f64 / rumqttc(port, qos, n).await.as_secs_f64());
            cb.push((cpu(me) - c0) * 1e6 / n as f64);
            bb.push((cpu(pid) - b0) * 1e6 / n as f64);
        }
        let (a, b) = (median(&mut a), median(&mut b));
        let (ca, cb) = (median(&mut ca), median(&mut cb));
        let (ba, bb) = (median(&mut ba), median(&mut bb));
        println!(
            "| {qos:?} | {a:.0} | {b:.0} | {:.2} | {ca:.2} / {cb:.2} | {ba:.2} / {bb:.2} |",
            a / b
        );
    }
}

async fn memory() {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        a.push(memory_ours().await);
        b.push(memory_rumqttc().await);
    }
    let (a, b) = (median(&mut a), median(&mut b));
    println!();
    println!("heap per unacknowledged QoS 1 message ({UNACKED} in flight, 64 B payload)");
    println!("| mqtt-client | rumqttc | ratio |");
    println!("|---:|---:|---:|");
    println!("| {a:.0} B | {b:.0} B | {:.2} |", a / b);
}
