//! Test helpers shared by the workspace's crates.
//!
//! Tests against real peers (Debian's `mosquitto` and `mosquitto-clients`,
//! MQTT.js, paho-mqtt) ask this crate whether the peer is installed. When it
//! is missing, the test is skipped with a line on the terminal saying so,
//! unless `MQTT_PEERS_REQUIRED=1` is set (as `scripts/test.sh` and CI do), in
//! which case the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failed test

pub mod brokers;
pub mod strategies;
pub mod tls;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Environment variable that turns a missing peer from a skip into a failure.
pub const PEERS_REQUIRED_ENV: &str = "MQTT_PEERS_REQUIRED";

fn peers_required() -> bool {
    std::env::var(PEERS_REQUIRED_ENV).is_ok_and(|v| v == "1" || v == "true")
}

/// Reports a missing peer: fails the test when peers are required, otherwise
/// prints a skip line straight to the terminal (past the test harness's
/// output capture) and returns `None`.
pub fn missing<T>(test: &str, peer: &str) -> Option<T> {
    let msg =
        format!("{test}: skipped, peer `{peer}` is not installed (scripts/test.sh installs it)\n");
    if peers_required() {
        panic!("{PEERS_REQUIRED_ENV} is set but {msg}");
    }
    // Writing to the handle, not `eprintln!`, so the line is shown even for a passing test.
    let _ = std::io::stderr().lock().write_all(msg.as_bytes());
    None
}

/// `program` on `PATH`, or in the sbin directories where Debian puts
/// daemons such as `mosquitto` (often not on a user's `PATH`).
fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// The path of `program` on `PATH`, or `None` (after reporting the skip) for `test`.
pub fn program(test: &str, program: &str) -> Option<PathBuf> {
    on_path(program).or_else(|| missing(test, program))
}

/// The Python interpreter if it can import `module`, or `None` (after
/// reporting the skip) for `test`.
pub fn python_with(test: &str, module: &str) -> Option<PathBuf> {
    let python = on_path("python3").or_else(|| missing(test, "python3"))?;
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        missing(test, &format!("python3 module {module}"))
    }
}

/// Where `scripts/test.sh` installs npm packages for tests: `.peers/` at
/// the workspace root.
pub fn node_peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(".peers")
}

/// Node.js and the `NODE_PATH` under which `module` is installed, or `None`
/// (after reporting the skip) for `test`.
pub fn node_with(test: &str, module: &str) -> Option<(PathBuf, PathBuf)> {
    let node = on_path("node").or_else(|| missing(test, "node"))?;
    let modules = node_peers_dir().join("node_modules");
    if modules.join(module).join("package.json").is_file() {
        Some((node, modules))
    } else {
        missing(test, &format!("npm package {module} (in .peers/)"))
    }
}
