//! What the command-line tools share: connection options in the style of
//! mosquitto_pub and mosquitto_sub, turned into a [`ClientBuilder`].

use clap::{Args, ValueEnum};
use mqtt_client::{ClientBuilder, ClientTls, Error, ProtocolVersion, QoS, Reconnect};
use std::{path::PathBuf, time::Duration};

/// Protocol versions by their mosquitto names.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Version {
    /// MQTT 3.1.1.
    #[value(name = "mqttv311", alias = "311", alias = "4")]
    V311,
    /// MQTT 5.0.
    #[value(name = "mqttv5", alias = "5")]
    V5,
}

/// Connection options.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// Broker host.
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port [default: 1883, or 8883 with TLS options].
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Broker URL instead of host and port: mqtt://, mqtts://, ws:// or wss://
    /// (e.g. ws://127.0.0.1:8080/mqtt).
    #[arg(short = 'L', long, conflicts_with_all = ["host", "port"])]
    pub url: Option<String>,
    /// Protocol version.
    #[arg(
        short = 'V',
        long = "protocol-version",
        value_enum,
        default_value = "mqttv311"
    )]
    pub protocol: Version,
    /// Client identifier [default: random].
    #[arg(short = 'i', long = "id")]
    pub id: Option<String>,
    /// Keep alive in seconds.
    #[arg(short = 'k', long, default_value_t = 60)]
    pub keepalive: u16,
    /// User name.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw")]
    pub password: Option<String>,
    /// CA certificates (PEM) to trust for TLS; turns TLS on.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM) for TLS.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for TLS.
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Use TLS with the system's trusted roots.
    #[arg(long)]
    pub tls: bool,
    /// Print the client's logs (connections, reconnections) on stderr.
    #[arg(short = 'd', long)]
    pub debug: bool,
}

impl Connection {
    /// The broker URL these options name.
    pub fn url(&self) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let tls = self.tls || self.cafile.is_some() || self.cert.is_some();
        let (scheme, default_port) = if tls { ("mqtts", 8883) } else { ("mqtt", 1883) };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port.unwrap_or(default_port))
    }

    /// A builder with these options; tools add their own.
    pub fn builder(&self) -> Result<ClientBuilder, Error> {
        if self.debug {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(tracing::Level::DEBUG)
                .init();
        }
        let mut b = ClientBuilder::new(&self.url())?
            .version(match self.protocol {
                Version::V311 => ProtocolVersion::V3_1_1,
                Version::V5 => ProtocolVersion::V5,
            })
            .keep_alive(Duration::from_secs(self.keepalive.into()))
            // A command-line tool reports a lost connection rather than hide it.
            .reconnect(Reconnect::off());
        if let Some(id) = &self.id {
            b = b.try_client_id(id)?;
        }
        if let Some(user) = &self.username {
            let password = self.password.clone().unwrap_or_default();
            b = b.try_credentials(user, password)?;
        }
        let mut tls = ClientTls::default();
        if let Some(ca) = &self.cafile {
            tls = tls.with_ca_file(ca)?;
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls = tls.with_identity_files(cert, key)?;
        }
        Ok(b.tls(tls))
    }
}

/// A QoS from 0, 1 or 2.
pub fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}
