//! The `pub` and `sub` tools against Debian's mosquitto, next to
//! mosquitto_pub and mosquitto_sub, and over WebSocket against aedes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_test_support::brokers::{Aedes, Mosquitto};
use std::{process::Stdio, time::Duration};
use tokio::{io::AsyncWriteExt, process::Command};

const PUB: &str = env!("CARGO_BIN_EXE_pub");
const SUB: &str = env!("CARGO_BIN_EXE_sub");

async fn output(cmd: &mut Command) -> String {
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("in time")
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn pub_and_sub_work_like_mosquitto_pub_and_sub() {
    let Some(broker) = Mosquitto::start("cli_tools", false, "").await else {
        return;
    };
    let Some(mosquitto_sub) = mqtt_test_support::program("cli_tools", "mosquitto_sub") else {
        return;
    };
    let port = broker.port.to_string();
    for v in ["mqttv311", "mqttv5"] {
        // Retained, so the subscribers started after it still get it.
        let topic = format!("cli/{v}");
        output(
            Command::new(PUB)
                .args(["-p", &port, "-V", v, "-t", &topic, "-m", "one"])
                .args(["-q", "2", "-r"]),
        )
        .await;
        let theirs = output(Command::new(&mosquitto_sub).args([
            "-p", &port, "-V", v, "-t", &topic, "-C", "1", "-W", "10", "-v",
        ]))
        .await;
        assert_eq!(theirs.trim(), format!("{topic} one"));
        let ours = output(Command::new(SUB).args([
            "-p", &port, "-V", v, "-t", &topic, "-C", "1", "-W", "10", "-v",
        ]))
        .await;
        assert_eq!(ours.trim(), format!("{topic} one"));
    }
    // Lines of standard input, each a message, to a live subscriber.
    let sub = Command::new(SUB)
        .args([
            "-p", &port, "-t", "lines/#", "-q", "1", "-C", "3", "-W", "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut publisher = Command::new(PUB)
        .args(["-p", &port, "-t", "lines/x", "-q", "1", "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    stdin.write_all(b"a\nb\nc\n").await.unwrap();
    drop(stdin);
    assert!(publisher.wait().await.unwrap().success());
    let out = tokio::time::timeout(Duration::from_secs(20), sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\nc\n");
    // A refused connection is an error exit with a message.
    let bad = Command::new(PUB)
        .args([
            "-p",
            &mqtt_test_support::brokers::free_port().to_string(),
            "-t",
            "x",
            "-m",
            "y",
        ])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("pub: "));
}

#[tokio::test]
async fn pub_and_sub_over_websocket() {
    let Some(broker) = Aedes::start("cli_tools_ws").await else {
        return;
    };
    let url = broker.url();
    output(Command::new(PUB).args(["-L", &url, "-t", "ws/cli", "-m", "over ws", "-q", "1", "-r"]))
        .await;
    let got =
        output(Command::new(SUB).args(["-L", &url, "-t", "ws/#", "-C", "1", "-W", "10", "-v"]))
            .await;
    assert_eq!(got.trim(), "ws/cli over ws");
}
