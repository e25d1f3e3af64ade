//! Heap held per idle connection: opens connections to an in-process
//! broker and counts the bytes allocated and not freed, with a counting
//! allocator (no allocator overhead, no kernel buffers: the part of the
//! RSS this crate controls).
//!
//! `cargo run --release -p mqtt-broker-core --example conn_memory [N]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: a panic is a failed run

use mqtt_broker_core::{AllowAll, Broker, BrokerConfig, ListenerConfig};
use mqtt_codec::{BytesMut, Connect, Encode, MqttStr, ProtocolVersion};
use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::{
        Arc,
        atomic::{AtomicIsize, Ordering},
    },
    time::Duration,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Live allocations by exact size (sizes up to 64 KiB), to say what is held.
static BY_SIZE: [AtomicIsize; 65536] = [const { AtomicIsize::new(0) }; 65536];

fn count(size: usize, d: isize) {
    if let Some(c) = BY_SIZE.get(size) {
        c.fetch_add(d, Ordering::Relaxed);
    }
}

fn snapshot() -> Vec<isize> {
    BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        count(l.size(), 1);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        count(l.size(), -1);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        count(l.size(), -1);
        count(new, 1);
        // SAFETY: as for `realloc` itself.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    for (label, v) in [
        ("3.1.1", ProtocolVersion::V3_1_1),
        ("5", ProtocolVersion::V5),
    ] {
        let broker = Broker::new(
            BrokerConfig {
                sys_interval: None,
                ..Default::default()
            },
            Arc::new(AllowAll),
        );
        let port = broker
            .listen(ListenerConfig::Tcp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap()
            .port();
        // Warm up the runtime and the broker's tables.
        let mut held = Vec::new();
        for i in 0..50 {
            held.push(open(port, v, &format!("warm{i}")).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // (The snapshot is taken first: its own 512 KiB is not counted.)
        let sizes_before = snapshot();
        let before = LIVE.load(Ordering::Relaxed);
        let mut sockets = Vec::with_capacity(n);
        for i in 0..n {
            sockets.push(open(port, v, &format!("client-{i:06}")).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = LIVE.load(Ordering::Relaxed);
        let sizes_after = snapshot();
        if std::env::var_os("BY_SIZE").is_some() {
            let mut held: Vec<(usize, f64)> = (0..65536)
                .map(|s| (s, (sizes_after[s] - sizes_before[s]) as f64 / n as f64))
                .filter(|(_, k)| *k >= 0.5)
                .collect();
            held.sort_by(|a, b| (b.0 as f64 * b.1).total_cmp(&(a.0 as f64 * a.1)));
            let small: f64 = (0..65536)
                .map(|s| (sizes_after[s] - sizes_before[s]) as f64 * s as f64 / n as f64)
                .sum();
            println!("  {small:.0} B per connection in allocations under 64 KiB");
            for (size, k) in held.iter().take(15) {
                println!("  {size:>6} B x {k:.2} per connection");
            }
        }
        // The client side's sockets are counted too: measure them alone,
        // against a listener whose accepted sockets are plain std ones.
        let client_side = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let accepted = std::thread::spawn(move || {
                let mut kept = Vec::with_capacity(n);
                for _ in 0..n {
                    kept.push(listener.accept().unwrap().0);
                }
                kept
            });
            let b = LIVE.load(Ordering::Relaxed);
            let mut extra = Vec::with_capacity(n);
            for _ in 0..n {
                extra.push(tokio::net::TcpStream::connect(addr).await.unwrap());
            }
            let a = LIVE.load(Ordering::Relaxed);
            let kept = accepted.join().unwrap();
            drop((extra, kept));
            (a - b) as f64 / n as f64
        };
        let per = (after - before) as f64 / n as f64;
        println!(
            "MQTT {label}: {per:.0} B of heap per idle connection (both ends), about {:.0} B the broker's ({n} connections)",
            per - client_side
        );
        drop(sockets);
        drop(held);
        broker.shutdown().await;
    }
}

async fn open(port: u16, v: ProtocolVersion, id: &str) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut c = Connect::new(v, MqttStr::try_from(id).unwrap());
    c.keep_alive = 600;
    let mut buf = BytesMut::new();
    c.encode(v, &mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    let mut ack = [0u8; 64];
    let n = s.read(&mut ack).await.unwrap();
    assert!(n >= 4 && ack[0] == 0x20, "CONNACK expected");
    s
}
