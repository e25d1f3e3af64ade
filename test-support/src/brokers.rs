//! Real brokers started for a test: Debian's mosquitto on ephemeral ports
//! of 127.0.0.1, and aedes (npm) for MQTT over WebSocket.

use crate::tls::Ca;
use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
pub async fn wait_for_port(port: u16) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing listens on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A mosquitto process with a plain TCP listener, an optional TLS listener
/// and persistence in its own directory; killed when dropped.
pub struct Mosquitto {
    program: PathBuf,
    /// The directory holding its configuration, certificates and database.
    pub dir: PathBuf,
    /// The plain TCP port.
    pub port: u16,
    /// The TLS port, if any (its certificate is for `localhost`).
    pub tls_port: Option<u16>,
    /// The CA that signed the TLS certificate.
    pub ca: Option<Ca>,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts mosquitto with `extra` configuration lines, or returns `None`
    /// (after reporting the skip) when it is not installed.
    pub async fn start(test: &str, tls: bool, extra: &str) -> Option<Mosquitto> {
        let program = crate::program(test, "mosquitto")?;
        let dir = std::env::temp_dir().join(format!(
            "mqtt-{test}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut m = Mosquitto {
            program,
            dir,
            port: 0,
            tls_port: None,
            ca: None,
            child: None,
        };
        // A port found free can be taken (by another test's connection)
        // before mosquitto binds it; mosquitto then exits, and the ports
        // are chosen again.
        for _ in 0..5 {
            m.configure(tls, extra);
            if m.spawn().await {
                return Some(m);
            }
        }
        panic!("mosquitto did not start: {}", m.log());
    }

    /// Picks ports and writes the configuration.
    fn configure(&mut self, tls: bool, extra: &str) {
        let dir = &self.dir;
        self.port = free_port();
        let mut conf = format!(
            // `user root`: when the tests run as root, mosquitto would otherwise
            // switch to the `mosquitto` user, who cannot write in `dir`.
            "per_listener_settings false\nallow_anonymous true\nuser root\npersistence true\n\
             persistence_location {d}/\nlog_dest file {d}/mosquitto.log\nlog_type all\n\
             listener {port} 127.0.0.1\n",
            d = dir.display(),
            port = self.port,
        );
        if tls {
            let authority = Ca::new("mosquitto test CA");
            let leaf = authority.issue("localhost", &["localhost"]);
            std::fs::write(dir.join("ca.pem"), authority.pem()).unwrap();
            std::fs::write(dir.join("cert.pem"), &leaf.cert_pem).unwrap();
            std::fs::write(dir.join("key.pem"), &leaf.key_pem).unwrap();
            let p = free_port();
            conf.push_str(&format!(
                "listener {p} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/cert.pem\nkeyfile {d}/key.pem\n",
                d = dir.display()
            ));
            self.tls_port = Some(p);
            self.ca = Some(authority);
        }
        conf.push_str(extra);
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
    }

    /// Starts the process and waits until it listens; `false` if it exited
    /// instead (a port was taken).
    async fn spawn(&mut self) -> bool {
        // Mosquitto logs "running" once every listener is bound.
        let runs = self.log().matches(" running").count();
        let mut child = Command::new(&self.program)
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .kill_on_drop(true)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ports = [Some(self.port), self.tls_port];
        let start = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            let mut listening = self.log().matches(" running").count() > runs;
            for p in ports.into_iter().flatten() {
                listening &= tokio::net::TcpStream::connect(("127.0.0.1", p))
                    .await
                    .is_ok();
            }
            if listening {
                self.child = Some(child);
                return true;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto does not listen on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Stops it gracefully (SIGTERM: it saves its persistence file) and
    /// waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }

    /// Stops it gracefully, then starts it again on the same ports.
    pub async fn restart(&mut self) {
        self.stop().await;
        assert!(
            self.spawn().await,
            "mosquitto did not start again on its ports"
        );
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const AEDES_SCRIPT: &str = r#"
const aedes = require('aedes')();
const { createServer } = require('aedes-server-factory');
const server = createServer(aedes, { ws: true });
server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('LISTENING'));
"#;

/// aedes (npm) serving MQTT over WebSocket on `ws://127.0.0.1:PORT/mqtt`
/// (Debian's mosquitto is built without WebSocket support); killed when
/// dropped.
pub struct Aedes {
    /// The WebSocket port.
    pub port: u16,
    _child: Child,
    script: PathBuf,
}

impl Aedes {
    /// Starts aedes, or returns `None` (after reporting the skip) when it is
    /// not installed.
    pub async fn start(test: &str) -> Option<Aedes> {
        let (node, node_path) = crate::node_with(test, "aedes-server-factory")?;
        let port = free_port();
        let script =
            std::env::temp_dir().join(format!("aedes-{test}-{}-{port}.js", std::process::id()));
        std::fs::write(&script, AEDES_SCRIPT).unwrap();
        let child = Command::new(node)
            .arg(&script)
            .arg(port.to_string())
            .env("NODE_PATH", node_path)
            .kill_on_drop(true)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port).await;
        Some(Aedes {
            port,
            _child: child,
            script,
        })
    }

    /// `ws://127.0.0.1:PORT/mqtt`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/mqtt", self.port)
    }
}

impl Drop for Aedes {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` whose connections can
/// all be cut at once (both sides see the connection drop, with no MQTT
/// DISCONNECT): a network failure on demand.
pub struct CuttingProxy {
    /// The port clients connect to.
    pub port: u16,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    /// A proxy to `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> CuttingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                let mut cuts = cuts.clone();
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = down.set_nodelay(true);
                    let _ = up.set_nodelay(true);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        CuttingProxy { port, cut, task }
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Cuts every connection open now.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The number that starts the line beginning with `prefix` in
/// `/proc/PROCESS/FILE` (Linux): `proc_number("self", "status", "FDSize:")`,
/// `proc_number(pid, "limits", "Max open files")`. `None` when the file or
/// line is missing or holds no number there.
pub fn proc_number(process: impl std::fmt::Display, file: &str, prefix: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{process}/{file}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(prefix))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system) used so far by process `pid`, from
/// `/proc/PID/stat` (Linux).
pub fn cpu_time(pid: u32) -> std::time::Duration {
    stat_cpu_time(&format!("/proc/{pid}/stat"))
}

/// CPU time (user + system) used so far by the calling thread, from
/// `/proc/thread-self/stat` (Linux).
pub fn thread_cpu_time() -> std::time::Duration {
    stat_cpu_time("/proc/thread-self/stat")
}

fn stat_cpu_time(path: &str) -> std::time::Duration {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 here.
    let total = ticks(11) + ticks(12);
    // Linux reports in USER_HZ, 100 on every common configuration.
    std::time::Duration::from_millis(total * 10)
}
