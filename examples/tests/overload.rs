//! The example broker under many connections: 10,000 idle clients are
//! accepted and held, the broker's memory per connection is measured and
//! reported, and it keeps serving others meanwhile. (Refusals past limits,
//! slow-loris clients and rate limits are in
//! mqtt-broker-core/tests/limits.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_test_support::brokers::{free_port, wait_for_port};
use std::time::Duration;
use tokio::process::Command;

const BROKER: &str = env!("CARGO_BIN_EXE_broker");
const BENCH: &str = env!("CARGO_BIN_EXE_mqtt-bench");
const PUB: &str = env!("CARGO_BIN_EXE_pub");
const SUB: &str = env!("CARGO_BIN_EXE_sub");

#[tokio::test]
async fn ten_thousand_idle_connections() {
    let port = free_port();
    let mut broker = Command::new(BROKER)
        .args([
            "--tcp",
            &format!("127.0.0.1:{port}"),
            "--log",
            "error",
            "--in-memory",
        ])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_port(port).await;
    let pid = broker.id().unwrap().to_string();
    let url = format!("mqtt://127.0.0.1:{port}");
    // Held while a subscriber and a publisher use the broker.
    let sub = Command::new(SUB)
        .args([
            "-p",
            &port.to_string(),
            "-t",
            "busy/x",
            "-C",
            "1",
            "-W",
            "60",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new(BENCH)
            .args(["conns", "-c", "10000", "-L", &url, "--pid", &pid])
            .output(),
    )
    .await
    .expect("in time")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout.lines().find(|l| l.starts_with('{')).unwrap();
    assert!(json.contains("\"connections\":10000"), "{json}");
    let per_conn = json
        .split("\"rss_kb_per_conn\":")
        .nth(1)
        .and_then(|v| v.split([',', '}']).next()?.parse::<f64>().ok())
        .expect("RSS measured");
    // Reported, not asserted: memory is a benchmark figure.
    eprintln!("10,000 idle connections: broker RSS {per_conn:.2} KB per connection");
    // Still serving.
    let ok = Command::new(PUB)
        .args([
            "-p",
            &port.to_string(),
            "-t",
            "busy/x",
            "-m",
            "still here",
            "-q",
            "1",
        ])
        .output()
        .await
        .unwrap();
    assert!(ok.status.success());
    let got = tokio::time::timeout(Duration::from_secs(20), sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "still here");
    broker.start_kill().unwrap();
}
