//! The example `broker` binary: flags, config file, status page, serving
//! mosquitto_pub / mosquitto_sub and our pub / sub over TCP and WebSocket,
//! and a graceful stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

#[cfg(target_os = "linux")]
use mqtt_test_support::brokers::proc_number;
use mqtt_test_support::brokers::{free_port, wait_for_port};
use std::{process::Stdio, time::Duration};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::{Child, Command},
};

const BROKER: &str = env!("CARGO_BIN_EXE_broker");
const PUB: &str = env!("CARGO_BIN_EXE_pub");
const SUB: &str = env!("CARGO_BIN_EXE_sub");

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

async fn broker(args: &[&str], wait: u16) -> Running {
    let child = Command::new(BROKER)
        .args(args)
        .args(["--log", "warn", "--in-memory"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_port(wait).await;
    Running(child)
}

async fn run(cmd: &mut Command) -> String {
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
async fn help_explains_every_listener_flag() {
    let help = run(Command::new(BROKER).arg("--help")).await;
    for flag in [
        "--tcp", "--ws", "--tls", "--wss", "--config", "--cert", "--key",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[tokio::test]
async fn serves_tcp_and_websocket_with_a_status_page() {
    let (tcp, ws) = (free_port(), free_port());
    let _b = broker(
        &[
            "--tcp",
            &format!("127.0.0.1:{tcp}"),
            "--ws",
            &format!("127.0.0.1:{ws}"),
        ],
        ws,
    )
    .await;
    wait_for_port(tcp).await;
    // Our tools over TCP and WebSocket, both versions, retained.
    for v in ["mqttv311", "mqttv5"] {
        let topic = format!("bin/{v}");
        run(Command::new(PUB).args([
            "-p",
            &tcp.to_string(),
            "-V",
            v,
            "-t",
            &topic,
            "-m",
            "tcp",
            "-q",
            "1",
            "-r",
        ]))
        .await;
        let got = run(Command::new(SUB).args([
            "-L",
            &format!("ws://127.0.0.1:{ws}/mqtt"),
            "-V",
            v,
            "-t",
            &topic,
            "-C",
            "1",
            "-W",
            "10",
        ]))
        .await;
        assert_eq!(got.trim(), "tcp");
    }
    // mosquitto's own tools, when installed.
    if let Some(mosquitto_sub) = mqtt_test_support::program("broker_bin_mosquitto", "mosquitto_sub")
    {
        let got = run(Command::new(mosquitto_sub).args([
            "-p",
            &tcp.to_string(),
            "-t",
            "bin/mqttv5",
            "-C",
            "1",
            "-W",
            "10",
        ]))
        .await;
        assert_eq!(got.trim(), "tcp");
    }
    // A plain HTTP GET on the WebSocket port: the status page.
    let page = http_get(ws, "/").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    // Two retained messages of ours, and the $SYS/broker/... ones.
    let retained: usize = page
        .lines()
        .find_map(|l| l.strip_prefix("retained "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(retained > 2, "{page}");
}

/// One plain HTTP GET; the whole response.
async fn http_get(port: u16, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut page = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut page))
        .await
        .unwrap()
        .unwrap();
    page
}

#[tokio::test]
async fn serves_web_pages_and_prometheus_metrics_beside_websocket() {
    let (tcp, ws) = (free_port(), free_port());
    let web = concat!(env!("CARGO_MANIFEST_DIR"), "/web");
    let _b = broker(
        &[
            "--tcp",
            &format!("127.0.0.1:{tcp}"),
            "--ws",
            &format!("127.0.0.1:{ws}"),
            "--web",
            web,
        ],
        ws,
    )
    .await;
    wait_for_port(tcp).await;
    run(Command::new(PUB).args(["-p", &tcp.to_string(), "-t", "m/1", "-m", "x", "-q", "1"])).await;

    let index = http_get(ws, "/").await;
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(index.contains("content-type: text/html"), "{index}");
    assert!(index.contains("/dashboard/"), "{index}");
    let script = http_get(ws, "/chat/chat.js").await;
    assert!(script.contains("content-type: text/javascript"), "{script}");
    let dir = http_get(ws, "/dashboard/").await;
    assert!(dir.contains("Fleet dashboard"), "{dir}");
    // Nothing outside the folder, nothing hidden.
    for path in [
        "/../Cargo.toml",
        "/dashboard/../../Cargo.toml",
        "/.gitignore",
        "/%2e%2e/Cargo.toml",
        "/nope.html",
    ] {
        let r = http_get(ws, path).await;
        assert!(r.starts_with("HTTP/1.1 404"), "{path}: {r}");
    }

    let metrics = http_get(ws, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("# TYPE mqtt_broker_messages_received_total counter\nmqtt_broker_messages_received_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("mqtt_broker_connections "), "{metrics}");
    assert!(
        metrics.contains("# TYPE mqtt_broker_uptime_seconds gauge"),
        "{metrics}"
    );
    let status = http_get(ws, "/status").await;
    assert!(status.contains("messages_received 1"), "{status}");
}

#[tokio::test]
async fn reads_a_config_file_and_stops_on_sigterm() {
    let (tcp, ws) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("broker-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[listeners]\ntcp = [\"127.0.0.1:{tcp}\"]\nws = [\"127.0.0.1:{ws}\"]\n\n[limits]\nmax_packet_size = 2048\nmax_keep_alive = 30\n"
        ),
    )
    .unwrap();
    let mut b = broker(&["--config", config.to_str().unwrap()], tcp).await;
    // max_packet_size is enforced: a 4 KiB message is refused.
    let big = "x".repeat(4096);
    let out = Command::new(PUB)
        .args([
            "-p",
            &tcp.to_string(),
            "-V",
            "mqttv5",
            "-t",
            "cfg/big",
            "-m",
            &big,
            "-q",
            "1",
        ])
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    // A subscriber that stays connected is told the server is shutting down.
    let sub = Command::new(SUB)
        .args([
            "-p",
            &tcp.to_string(),
            "-V",
            "mqttv5",
            "-t",
            "cfg/#",
            "-W",
            "20",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = b.0.id().unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), b.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(10), sub.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ShuttingDown") || err.contains("shutting down"),
        "{err}"
    );
    // An unknown key in the file is an error, not ignored.
    std::fs::write(&config, "[limits]\nmax_paket_size = 1\n").unwrap();
    let out = Command::new(BROKER)
        .args(["--config", config.to_str().unwrap(), "--in-memory"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_paket_size"));
}

/// The broker grows its descriptor table before its threads start, as far
/// as its connection limit needs: to 65,536 (or its open-file limit) by
/// default, and to a few hundred for `max_connections = 100`.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn reserves_descriptors_for_the_configured_connection_limit() {
    let tcp = free_port();
    let b = broker(&["--tcp", &format!("127.0.0.1:{tcp}")], tcp).await;
    let pid = b.0.id().unwrap();
    let soft = proc_number(pid, "limits", "Max open files").unwrap_or(u64::MAX);
    let size = proc_number(pid, "status", "FDSize:").unwrap();
    assert!(
        size >= soft.min(65_536),
        "descriptor table of {size}, open-file limit {soft}"
    );
    drop(b);

    let tcp = free_port();
    let dir = std::env::temp_dir().join(format!("broker-fds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("broker.toml");
    std::fs::write(
        &config,
        format!("[listeners]\ntcp = [\"127.0.0.1:{tcp}\"]\n\n[limits]\nmax_connections = 100\n"),
    )
    .unwrap();
    let b = broker(&["--config", config.to_str().unwrap()], tcp).await;
    let size = proc_number(b.0.id().unwrap(), "status", "FDSize:").unwrap();
    assert!(
        size <= 1_024,
        "descriptor table of {size} for 100 connections"
    );
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

const BENCH: &str = env!("CARGO_BIN_EXE_mqtt-bench");

/// The load tool against the example broker, briefly, in every scenario:
/// it runs, reports JSON, and nothing is lost.
#[tokio::test]
async fn load_tool_runs_every_scenario_against_the_broker() {
    let (tcp, ws) = (free_port(), free_port());
    let b = broker(
        &[
            "--tcp",
            &format!("127.0.0.1:{tcp}"),
            "--ws",
            &format!("127.0.0.1:{ws}"),
        ],
        tcp,
    )
    .await;
    wait_for_port(ws).await;
    let pid = b.0.id().unwrap().to_string();
    let tcp_url = format!("mqtt://127.0.0.1:{tcp}");
    let ws_url = format!("ws://127.0.0.1:{ws}/mqtt");
    let runs: Vec<Vec<&str>> = vec![
        vec!["fanin", "-q", "0", "-n", "2000"],
        vec!["fanin", "-q", "1", "-n", "2000", "-V", "5"],
        vec!["fanin", "-q", "2", "-n", "1000"],
        vec!["fanout", "-S", "5", "-q", "1", "-n", "500"],
        vec!["pairs", "-P", "3", "-q", "1", "-n", "500"],
        vec!["shared", "-P", "2", "-S", "3", "-q", "1", "-n", "500"],
        vec!["pairs", "-P", "1", "-q", "0", "-n", "200", "-r", "2000"],
    ];
    for url in [&tcp_url, &ws_url] {
        for args in &runs {
            let out = run(Command::new(BENCH)
                .args(args)
                .args(["-L", url, "--pid", &pid]))
            .await;
            let json = out.lines().next().unwrap();
            assert!(json.starts_with('{'), "{out}");
            assert!(json.contains("\"lost\":0,"), "{args:?} over {url}: {out}");
            assert!(json.contains("\"broker_cpu_s\":"), "{out}");
        }
    }
    let out =
        run(Command::new(BENCH).args(["conns", "-c", "200", "-L", &tcp_url, "--pid", &pid])).await;
    assert!(out.contains("\"connects_per_s\":"), "{out}");
}

const PASSWD: &str = env!("CARGO_BIN_EXE_passwd");

#[tokio::test]
async fn logins_from_a_password_file_and_rules_from_an_acl_file() {
    let dir = std::env::temp_dir().join(format!("broker-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let passwords = dir.join("passwords");
    let acl = dir.join("acl");
    run(Command::new(PASSWD)
        .arg("-c")
        .arg("-b")
        .arg(&passwords)
        .args(["ann", "ann-pw"]))
    .await;
    run(Command::new(PASSWD)
        .arg("-b")
        .arg(&passwords)
        .args(["bob", "bob-pw"]))
    .await;
    std::fs::write(
        &acl,
        "user ann\ntopic readwrite ann/#\npattern read inbox/%u/#\n",
    )
    .unwrap();
    let tcp = free_port();
    let _b = broker(
        &[
            "--tcp",
            &format!("127.0.0.1:{tcp}"),
            "--password-file",
            passwords.to_str().unwrap(),
            "--acl-file",
            acl.to_str().unwrap(),
        ],
        tcp,
    )
    .await;
    let port = tcp.to_string();
    let attempt = |user: &'static str, pw: &'static str| {
        let port = port.clone();
        async move {
            tokio::time::timeout(
                Duration::from_secs(20),
                Command::new(PUB)
                    .args([
                        "-p", &port, "-V", "mqttv5", "-t", "ann/x", "-m", "1", "-q", "1",
                    ])
                    .args(["-u", user, "-P", pw])
                    .output(),
            )
            .await
            .unwrap()
            .unwrap()
        }
    };
    // Wrong password, unknown user: refused (0x86).
    for (user, pw) in [("ann", "wrong"), ("nobody", "x")] {
        let out = attempt(user, pw).await;
        assert!(!out.status.success(), "{user} got in");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("BadUserNameOrPassword"), "{user}: {err}");
    }
    // Anonymous: refused (0x87).
    let out = Command::new(PUB)
        .args(["-p", &port, "-V", "mqttv5", "-t", "ann/x", "-m", "1"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotAuthorized"));
    // Ann may read her topics; Bob may not subscribe to them.
    let mut sub = Command::new(SUB)
        .args([
            "-p", &port, "-V", "mqttv5", "-t", "ann/#", "-C", "1", "-W", "10",
        ])
        .args(["-u", "ann", "-P", "ann-pw"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = Command::new(SUB)
        .args([
            "-p", &port, "-V", "mqttv5", "-t", "ann/#", "-C", "1", "-W", "1",
        ])
        .args(["-u", "bob", "-P", "bob-pw"])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused") && err.contains("NotAuthorized"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok = attempt("ann", "ann-pw").await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut got = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        sub.stdout.take().unwrap().read_to_string(&mut got),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got.trim(), "1");
    // Bob may not publish to Ann's topics: PUBACK 0x87.
    let denied = attempt("bob", "bob-pw").await;
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("NotAuthorized"));
    let _ = std::fs::remove_dir_all(&dir);
}
