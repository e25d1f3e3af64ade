//! The example broker: MQTT 3.1.1 and 5.0 over TCP, TLS, WebSocket and WSS.
//!
//! `cargo run --release --bin broker` serves 127.0.0.1:1883 (TCP) and
//! ws://127.0.0.1:8080/mqtt (WebSocket; plain HTTP on that port answers
//! `/status`, Prometheus `/metrics`, and with `--web DIR` the files of DIR).
//! `--help` lists every option.

use clap::Parser;
use mqtt_broker_core::{
    AllowAll, Broker, BrokerConfig, Hooks, ListenerConfig, ServerTls,
    auth::{Acl, CertIdentity, FileAuth, PasswordFile},
    store::{Durability, RedbStore},
};
use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

/// An MQTT 3.1.1 / 5.0 broker over TCP, TLS, WebSocket and secure WebSocket.
///
/// With no listener options it serves MQTT on 127.0.0.1:1883 and MQTT over
/// WebSocket on ws://127.0.0.1:8080/mqtt (where a plain HTTP GET answers a
/// status page). Giving any of --tcp, --ws, --tls or --wss (each repeatable)
/// replaces those defaults.
#[derive(Parser, Debug)]
#[command(name = "broker", version)]
struct Args {
    /// Worker threads spin up to this many microseconds before sleeping,
    /// while work keeps arriving within twice that (0: never): fewer
    /// wake-ups under bursts, nothing spent when idle.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 30)]
    spin_us: u64,
    /// Serve MQTT over TCP on ADDR (e.g. 0.0.0.0:1883).
    #[arg(long, value_name = "ADDR")]
    tcp: Vec<SocketAddr>,
    /// Serve MQTT over WebSocket on ADDR, at path /mqtt (e.g. 0.0.0.0:8080).
    #[arg(long, value_name = "ADDR")]
    ws: Vec<SocketAddr>,
    /// Serve MQTT over TLS on ADDR (needs --cert and --key).
    #[arg(long, value_name = "ADDR", requires_all = ["cert", "key"])]
    tls: Vec<SocketAddr>,
    /// Serve MQTT over secure WebSocket on ADDR (needs --cert and --key).
    #[arg(long, value_name = "ADDR", requires_all = ["cert", "key"])]
    wss: Vec<SocketAddr>,
    /// Server certificate chain (PEM) for --tls and --wss.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Server private key (PEM) for --tls and --wss.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Require client certificates signed by these CAs (PEM) on TLS listeners.
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// A TOML configuration file (see examples/broker.toml); command-line
    /// listeners are added to those it lists.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Users and password hashes (see `passwd`): clients must log in
    /// (anonymous access is then off unless --allow-anonymous).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Access control list (mosquitto's format: `user`, `topic`, `pattern`
    /// with %c and %u): what each client may publish and subscribe to.
    #[arg(long, value_name = "FILE")]
    acl_file: Option<PathBuf>,
    /// Let clients without credentials in: needed when a listener is not on
    /// loopback (otherwise only clients with credentials are admitted), or
    /// beside a password file, certificate identity or tokens.
    #[arg(long)]
    allow_anonymous: bool,
    /// Take the user name from the TLS client certificate (needs
    /// --client-ca): `cn` (Common Name) or `san` (first DNS / e-mail SAN).
    #[arg(long, value_name = "cn|san")]
    cert_identity: Option<String>,
    /// WebSocket bearer tokens: lines `TOKEN USER`; an upgrade request with
    /// `Authorization: Bearer TOKEN` or a `mqtt_token=TOKEN` cookie is that
    /// user.
    #[arg(long, value_name = "FILE")]
    ws_tokens: Option<PathBuf>,
    /// Keep persistent sessions, the messages queued for them and retained
    /// messages in DIR (created if missing), across restarts and crashes.
    #[arg(long, value_name = "DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Keep nothing on disk: sessions and retained messages live in memory
    /// and end with the process.
    #[arg(long, conflicts_with = "data_dir")]
    in_memory: bool,
    /// When acknowledgements wait for the disk: `always` (default: PUBACK,
    /// PUBREC, SUBACK and CONNACK go out once what they promise is on
    /// disk; batched across clients) or a flush period in milliseconds
    /// (e.g. `100`: faster; a power loss loses up to that much of what was
    /// acknowledged, a killed process only the last instant's changes).
    #[arg(long, value_name = "always|MS", default_value = "always")]
    sync: String,
    /// Serve the files in DIR over plain HTTP on the WebSocket listeners
    /// (e.g. examples/web: the dashboard and chat pages); `/status` and
    /// `/metrics` are always there.
    #[arg(long, value_name = "DIR")]
    web: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log: tracing::Level,
}

/// The --config file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    listeners: Listeners,
    tls: Option<TlsFiles>,
    #[serde(default)]
    limits: Limits,
    /// Files served over HTTP on the WebSocket listeners.
    web_root: Option<PathBuf>,
    /// Seconds between `$SYS/broker/...` publications (0: none).
    sys_interval_seconds: Option<u64>,
    #[serde(default)]
    auth: AuthFiles,
}

/// The [auth] section.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct AuthFiles {
    password_file: Option<PathBuf>,
    acl_file: Option<PathBuf>,
    allow_anonymous: Option<bool>,
    cert_identity: Option<String>,
    ws_tokens: Option<PathBuf>,
}

/// The policy from the auth options: `None` when nothing is configured
/// (every client allowed, as for a local test broker).
fn file_auth(
    args: &Args,
    config: &AuthFiles,
) -> Result<Option<FileAuth>, Box<dyn std::error::Error>> {
    let passwords = args.password_file.clone().or(config.password_file.clone());
    let acl = args.acl_file.clone().or(config.acl_file.clone());
    let cert = args.cert_identity.clone().or(config.cert_identity.clone());
    let tokens = args.ws_tokens.clone().or(config.ws_tokens.clone());
    if passwords.is_none() && acl.is_none() && cert.is_none() && tokens.is_none() {
        return Ok(None);
    }
    let mut b = FileAuth::builder()
        .allow_anonymous(args.allow_anonymous || config.allow_anonymous.unwrap_or(false));
    if let Some(p) = &passwords {
        b = b.password_file(PasswordFile::load(p)?);
    }
    if let Some(p) = &acl {
        b = b.acl(Acl::load(p)?);
    }
    match cert.as_deref() {
        None => {}
        Some("cn") => b = b.certificate_identity(CertIdentity::CommonName),
        Some("san") => b = b.certificate_identity(CertIdentity::SubjectAltName),
        Some(other) => return Err(format!("--cert-identity {other}: `cn` or `san`").into()),
    }
    if let Some(p) = &tokens {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                [token, user] => b = b.ws_token(token, user),
                _ => {
                    return Err(format!("{}:{}: expected `TOKEN USER`", p.display(), n + 1).into());
                }
            }
        }
    }
    Ok(Some(b.build()))
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct Listeners {
    #[serde(default)]
    tcp: Vec<SocketAddr>,
    #[serde(default)]
    ws: Vec<SocketAddr>,
    #[serde(default)]
    tls: Vec<SocketAddr>,
    #[serde(default)]
    wss: Vec<SocketAddr>,
    /// WebSocket path (default /mqtt).
    ws_path: Option<String>,
    /// Allowed Origin header values for WebSocket upgrades.
    ws_allowed_origins: Option<Vec<String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct Limits {
    max_packet_size: Option<u32>,
    receive_maximum: Option<u16>,
    topic_alias_maximum: Option<u16>,
    max_inflight_queue: Option<usize>,
    max_queued_messages: Option<usize>,
    max_keep_alive: Option<u16>,
    max_session_expiry: Option<u32>,
    connect_timeout_seconds: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    max_subscriptions: Option<usize>,
    max_topic_levels: Option<usize>,
    max_topic_length: Option<usize>,
    max_publish_rate: Option<u32>,
    min_keep_alive: Option<u16>,
}

impl Limits {
    /// The broker's connection and subscription limits from the file.
    fn to_broker(&self) -> mqtt_broker_core::Limits {
        mqtt_broker_core::Limits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            max_subscriptions: self.max_subscriptions,
            max_topic_levels: self.max_topic_levels,
            max_topic_length: self.max_topic_length,
            max_publish_rate: self.max_publish_rate,
            min_keep_alive: self.min_keep_alive,
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(args.log)
        .with_target(false)
        .init();
    // A connection is a descriptor: the common default of 1,024 open files
    // would cap the broker near a thousand clients.
    match mqtt_transport_tcp::raise_descriptor_limit() {
        Ok(n) => tracing::debug!(open_files = n, "open-file limit"),
        Err(e) => tracing::debug!(error = %e, "open-file limit not raised"),
    }
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("broker: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Room in the descriptor table before the runtime's threads start, when
    // growing it stalls no one (the listeners find it made).
    let _ = mqtt_transport_tcp::reserve_descriptors(config.limits.to_broker().descriptors());
    let runtime = match mqtt_broker_core::spin_before_park(
        tokio::runtime::Builder::new_multi_thread().enable_all(),
        std::time::Duration::from_micros(args.spin_us),
    )
    .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("broker: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("broker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The configuration file named by `--config`, or the defaults.
fn load_config(args: &Args) -> Result<Config, String> {
    match &args.config {
        Some(path) => toml::from_str(
            &std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )
        .map_err(|e| format!("{}: {e}", path.display())),
        None => Ok(Config::default()),
    }
}

async fn run(args: Args, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let mut broker_config = BrokerConfig::default();
    let l = &config.limits;
    let s = &mut broker_config.session;
    if let Some(v) = l.max_packet_size {
        s.maximum_packet_size = v;
    }
    if let Some(v) = l.receive_maximum {
        s.receive_maximum = v;
    }
    if let Some(v) = l.topic_alias_maximum {
        s.topic_alias_maximum = v;
    }
    if let Some(v) = l.max_inflight_queue {
        s.max_queued = v;
    }
    if let Some(v) = l.connect_timeout_seconds {
        s.connect_timeout = Some(Duration::from_secs(v));
    }
    if let Some(v) = l.max_queued_messages {
        broker_config.mailbox_limit = v;
    }
    broker_config.max_keep_alive = l.max_keep_alive;
    if let Some(v) = l.max_session_expiry {
        broker_config.max_session_expiry = v;
    }
    broker_config.limits = l.to_broker();
    if let Some(p) = &config.listeners.ws_path {
        broker_config.ws.path = Some(p.clone());
    }
    broker_config.ws.allowed_origins = config.listeners.ws_allowed_origins.clone();
    if (args.ws_tokens.is_some() || config.auth.ws_tokens.is_some())
        && broker_config.ws.allowed_origins.is_none()
    {
        tracing::warn!(
            "WebSocket tokens are accepted from cookies but no ws_allowed_origins is set: any web page the user visits can connect as them"
        );
    }
    broker_config.web_root = args.web.clone().or(config.web_root.clone());
    if let Some(s) = config.sys_interval_seconds {
        broker_config.sys_interval = (s > 0).then(|| Duration::from_secs(s));
    }
    if let Some(root) = &broker_config.web_root
        && !root.is_dir()
    {
        return Err(format!("--web {}: not a folder", root.display()).into());
    }

    let tls_files = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone(), args.client_ca.clone())),
        _ => config
            .tls
            .as_ref()
            .map(|t| (t.cert.clone(), t.key.clone(), t.client_ca.clone())),
    };
    let server_tls = || -> Result<ServerTls, Box<dyn std::error::Error>> {
        let Some((cert, key, ca)) = &tls_files else {
            return Err("TLS listeners need --cert and --key (or [tls] in the config)".into());
        };
        let mut tls = ServerTls::from_pem_files(cert, key)?;
        if let Some(ca) = ca {
            tls = tls.with_client_ca_file(ca)?;
        }
        Ok(tls)
    };

    let mut listeners = Vec::new();
    let c = &config.listeners;
    for a in c.tcp.iter().chain(&args.tcp) {
        listeners.push(ListenerConfig::Tcp(*a));
    }
    for a in c.ws.iter().chain(&args.ws) {
        listeners.push(ListenerConfig::Ws(*a));
    }
    for a in c.tls.iter().chain(&args.tls) {
        listeners.push(ListenerConfig::Tls(*a, server_tls()?));
    }
    for a in c.wss.iter().chain(&args.wss) {
        listeners.push(ListenerConfig::Wss(*a, server_tls()?));
    }
    if listeners.is_empty() {
        listeners.push(ListenerConfig::Tcp(SocketAddr::from((
            [127, 0, 0, 1],
            1883,
        ))));
        listeners.push(ListenerConfig::Ws(SocketAddr::from(([127, 0, 0, 1], 8080))));
    }

    tracing::info!(
        mailbox_limit = broker_config.mailbox_limit,
        session_queue = broker_config.session.max_queued,
        "per-client queues are bounded: messages past these are dropped and counted"
    );
    let auth = file_auth(&args, &config.auth)?.map(Arc::new);
    let hooks: Arc<dyn Hooks> = match &auth {
        Some(auth) => auth.clone(),
        None => {
            let open = listeners.iter().any(|l| {
                let a = match l {
                    ListenerConfig::Tcp(a)
                    | ListenerConfig::Ws(a)
                    | ListenerConfig::Tls(a, _)
                    | ListenerConfig::Wss(a, _) => a,
                };
                !a.ip().is_loopback()
            });
            // As mosquitto: anonymous clients are welcome on loopback only,
            // unless allowed explicitly.
            let anonymous = args.allow_anonymous || config.auth.allow_anonymous.unwrap_or(false);
            if open && !anonymous {
                tracing::error!(
                    "a listener is not on loopback and no --password-file, --cert-identity or --ws-tokens is given: every client will be refused; pass --allow-anonymous to let anyone in"
                );
                Arc::new(FileAuth::builder().allow_anonymous(false).build())
            } else {
                if open {
                    tracing::warn!(
                        "--allow-anonymous on a listener that is not on loopback: any client may connect and do anything"
                    );
                }
                Arc::new(AllowAll)
            }
        }
    };
    let broker = if args.in_memory {
        Broker::new(broker_config, hooks)
    } else {
        let durability = match args.sync.as_str() {
            "always" => Durability::Always,
            ms => Durability::Periodic(Duration::from_millis(
                ms.parse()
                    .map_err(|_| format!("--sync {ms}: `always` or a number of milliseconds"))?,
            )),
        };
        std::fs::create_dir_all(&args.data_dir)
            .map_err(|e| format!("--data-dir {}: {e}", args.data_dir.display()))?;
        let store = RedbStore::open(args.data_dir.join("broker.redb"))?;
        tracing::info!(data_dir = %args.data_dir.display(), ?durability, "sessions and retained messages are stored");
        Broker::with_store(broker_config, hooks, Arc::new(store), durability)?
    };
    for l in listeners {
        let what = format!("{l:?}");
        broker.listen(l).await.map_err(|e| {
            format!(
                "cannot listen ({}): {e}",
                what.split('(').next().unwrap_or("")
            )
        })?;
    }
    // SIGHUP reloads the password file and the ACL.
    #[cfg(unix)]
    if let Some(auth) = auth {
        let password_file = args
            .password_file
            .clone()
            .or(config.auth.password_file.clone());
        let acl_file = args.acl_file.clone().or(config.auth.acl_file.clone());
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if let Some(p) = &password_file {
                    match PasswordFile::load(p) {
                        Ok(f) => auth.set_password_file(Some(f)),
                        Err(e) => tracing::error!(error = %e, "password file not reloaded"),
                    }
                }
                if let Some(p) = &acl_file {
                    match Acl::load(p) {
                        Ok(a) => auth.set_acl(Some(a)),
                        Err(e) => tracing::error!(error = %e, "ACL not reloaded"),
                    }
                }
                tracing::info!("reloaded the password file and the ACL");
            }
        });
    }
    shutdown_signal().await;
    broker.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
