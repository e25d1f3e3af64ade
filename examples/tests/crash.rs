//! The example broker's promise on its file store: once it has sent PUBACK
//! (QoS 1) or PUBREC (QoS 2) for a message, that message reaches every
//! matching persistent-session subscriber even if the broker is killed
//! with SIGKILL right after and started again: QoS 1 at least once, QoS 2
//! exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use futures::{StreamExt, stream::FuturesUnordered};
use mqtt_client::{ClientBuilder, Message, ProtocolVersion, QoS, Reconnect};
use mqtt_test_support::brokers::{free_port, wait_for_port};
use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

const BROKER: &str = env!("CARGO_BIN_EXE_broker");
/// Messages per publisher.
const N: u64 = 1500;
/// Unacknowledged messages per publisher.
const WINDOW: usize = 20;
/// Kills, at these fractions of all messages acknowledged.
const KILLS: [f64; 3] = [0.2, 0.45, 0.7];

fn start(port: u16, dir: &Path) -> Child {
    Command::new(BROKER)
        .args(["--tcp", &format!("127.0.0.1:{port}"), "--log", "error"])
        .arg("--data-dir")
        .arg(dir)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn client(port: u16, id: &str, version: ProtocolVersion) -> ClientBuilder {
    ClientBuilder::new(&format!("mqtt://127.0.0.1:{port}"))
        .unwrap()
        .version(version)
        .client_id(id)
        // Persistent sessions: both the publishers' (QoS 2 identifiers
        // awaiting release) and the subscriber's (messages owed).
        .clean_start(false)
        .session_expiry(Duration::from_secs(3600))
        .reconnect(Reconnect {
            enabled: true,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(300),
            jitter: 0.2,
        })
        .connect_timeout(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill_and_restart() {
    let dir = std::env::temp_dir().join(format!("mqtt-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let broker = Arc::new(Mutex::new(start(port, &dir)));
    wait_for_port(port).await;

    let (sub, mut messages) = client(port, "crash-sub", ProtocolVersion::V5)
        .connect()
        .await
        .unwrap();
    sub.subscribe("crash/#", QoS::ExactlyOnce).await.unwrap();
    // Deliveries counted per (topic, number).
    let received: Arc<Mutex<HashMap<(String, u64), u32>>> = Arc::default();
    let counter = received.clone();
    tokio::spawn(async move {
        while let Some(m) = messages.recv().await {
            let n: u64 = std::str::from_utf8(m.payload()).unwrap().parse().unwrap();
            *counter
                .lock()
                .unwrap()
                .entry((m.topic().to_string(), n))
                .or_default() += 1;
        }
    });

    // Four publishers: both versions, QoS 1 and QoS 2.
    let acked = Arc::new(AtomicU64::new(0));
    let mut publishers = Vec::new();
    let mut topics = Vec::new();
    for (version, v) in [
        (ProtocolVersion::V5, "v5"),
        (ProtocolVersion::V3_1_1, "v311"),
    ] {
        for (qos, q) in [(QoS::AtLeastOnce, "q1"), (QoS::ExactlyOnce, "q2")] {
            let topic = format!("crash/{v}/{q}");
            topics.push((topic.clone(), qos));
            let (c, _) = client(port, &format!("crash-pub-{v}-{q}"), version)
                .connect()
                .await
                .unwrap();
            let acked = acked.clone();
            publishers.push(tokio::spawn(async move {
                let mut window = FuturesUnordered::new();
                for n in 0..N {
                    if window.len() >= WINDOW {
                        let r: Result<_, mqtt_client::Error> = window.next().await.unwrap();
                        r.unwrap();
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    let m = Message::new(&topic, n.to_string()).unwrap().qos(qos);
                    window.push(c.enqueue(m).await.unwrap());
                }
                while let Some(r) = window.next().await {
                    r.unwrap();
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                c
            }));
        }
    }
    let total = N * topics.len() as u64;

    // Kill the broker (SIGKILL) at points of the flow, and start it again.
    let killer = {
        let broker = broker.clone();
        let acked = acked.clone();
        let dir = dir.clone();
        tokio::spawn(async move {
            for at in KILLS {
                while (acked.load(Ordering::Relaxed) as f64) < at * total as f64 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let mut old = {
                    let mut b = broker.lock().unwrap();
                    b.start_kill().unwrap();
                    std::mem::replace(&mut *b, start_later())
                };
                let _ = old.wait().await;
                let done = acked.load(Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                *broker.lock().unwrap() = start(port, &dir);
                eprintln!("killed the broker at {done} of {total} acknowledged; restarted");
            }
        })
    };

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut clients = Vec::new();
    for p in publishers {
        clients.push(
            tokio::time::timeout_at(deadline.into(), p)
                .await
                .expect("publishers finish")
                .unwrap(),
        );
    }
    killer.await.unwrap();
    // Every acknowledged message reaches the subscriber.
    let complete = || {
        let r = received.lock().unwrap();
        topics
            .iter()
            .all(|(t, _)| (0..N).all(|n| r.contains_key(&(t.clone(), n))))
    };
    while !complete() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = received.lock().unwrap().clone();
    for (topic, qos) in &topics {
        let missing: Vec<u64> = (0..N)
            .filter(|n| !r.contains_key(&(topic.clone(), *n)))
            .collect();
        assert!(
            missing.is_empty(),
            "{topic}: {} acknowledged messages lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        let twice: Vec<u64> = (0..N).filter(|n| r[&(topic.clone(), *n)] > 1).collect();
        if *qos == QoS::ExactlyOnce {
            // QoS 2: exactly once, across crashes.
            assert!(
                twice.is_empty(),
                "{topic}: {} QoS 2 messages delivered twice, e.g. {:?}",
                twice.len(),
                &twice[..twice.len().min(10)]
            );
        } else {
            eprintln!(
                "{topic}: every message at least once ({} twice)",
                twice.len()
            );
        }
    }
    for c in clients {
        let _ = c.disconnect().await;
    }
    let _ = sub.disconnect().await;
    let _ = broker.lock().unwrap().start_kill();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A placeholder child while the broker is down: a process that exits at once.
fn start_later() -> Child {
    Command::new("true").spawn().unwrap()
}
