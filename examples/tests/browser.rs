//! The browser examples (examples/web) in a real headless Chromium, driven
//! by Playwright (examples/web/test/browser.cjs): the dashboard shows the
//! simulated fleet and its wills, and two chat pages talk through a broker
//! restart. Screenshots go to target/browser-artifacts/.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_test_support::{missing, node_with, program};
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

#[test]
fn dashboard_and_chat_in_headless_chromium() {
    const TEST: &str = "dashboard_and_chat_in_headless_chromium";
    let Some((node, node_path)) = node_with(TEST, "playwright-core") else {
        return;
    };
    let Some(chromium) = program(TEST, "chromium") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let web = root.join("examples/web");
    // The pages load MQTT.js from vendor/ (examples/web/build.sh puts it there).
    let built = Command::new("bash")
        .arg(web.join("build.sh"))
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        missing::<()>(
            TEST,
            "npm package mqtt (for examples/web/vendor/mqtt.min.js)",
        );
        return;
    }
    let artifacts = root.join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let log_path = artifacts.join("browser.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(node)
        .arg(web.join("test/browser.cjs"))
        .env("NODE_PATH", node_path)
        .env("BROKER_BIN", env!("CARGO_BIN_EXE_broker"))
        .env("FLEET_BIN", env!("CARGO_BIN_EXE_fleet"))
        .env("CHAT_BIN", env!("CARGO_BIN_EXE_chat-history"))
        .env("WEB_DIR", &web)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", chromium)
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    // The script bounds each step; this bounds the whole.
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    println!("{log}");
    assert!(
        status.is_some_and(|s| s.success()),
        "browser test failed ({status:?}):\n{log}"
    );
    for shot in [
        "dashboard-online.png",
        "dashboard-offline.png",
        "chat-alice.png",
        "chat-bob.png",
    ] {
        assert!(artifacts.join(shot).is_file(), "{shot} missing");
    }
}
