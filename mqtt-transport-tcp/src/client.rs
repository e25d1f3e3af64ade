//! Connecting to a broker over TCP or TLS.

use crate::{
    ClientTls, Connection, ConnectionInfo, Scheme, ServerAddr, TransportError, TransportKind,
};
use rustls_pki_types::ServerName;
use std::{net::SocketAddr, time::Duration};
use tokio::net::TcpStream;

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Limit for resolving, connecting and the TLS handshake together.
    pub timeout: Duration,
    /// TLS settings for `mqtts://` (and `wss://` in the WebSocket transport).
    pub tls: ClientTls,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(10),
            tls: ClientTls::default(),
        }
    }
}

/// Opens a TCP connection to `host:port`, trying each resolved address in
/// turn, with `TCP_NODELAY` set (MQTT acknowledgements are small and must
/// not wait for delayed ACKs).
pub async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, TransportError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| TransportError::Dns {
            host: host.to_string(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(source) => last = Some(TransportError::Connect { addr, source }),
        }
    }
    Err(last.unwrap_or_else(|| TransportError::Dns {
        host: host.to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
    }))
}

/// Runs the client side of a TLS handshake over `stream`.
pub async fn tls_handshake<S>(
    stream: S,
    host: &str,
    tls: &ClientTls,
) -> Result<tokio_rustls::client::TlsStream<S>, TransportError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let name = tls.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| TransportError::TlsConfig(format!("server name {name:?}: {e}")))?;
    tokio_rustls::TlsConnector::from(tls.config()?)
        .connect(server_name, stream)
        .await
        .map_err(|source| TransportError::Tls {
            peer: host.to_string(),
            source,
        })
}

/// Connects to an `mqtt://` or `mqtts://` address.
pub async fn connect(
    addr: &ServerAddr,
    options: &ConnectOptions,
) -> Result<Connection, TransportError> {
    if addr.scheme.is_websocket() {
        return Err(TransportError::UnsupportedScheme(addr.to_string()));
    }
    let attempt = async {
        let tcp = connect_tcp(&addr.host, addr.port).await?;
        let mut info = ConnectionInfo::tcp(tcp.peer_addr()?, tcp.local_addr()?);
        match addr.scheme {
            Scheme::Mqtt => Ok(Connection::new(tcp, info)),
            Scheme::Mqtts => {
                let tls = tls_handshake(tcp, &addr.host, &options.tls).await?;
                let (_, session) = tls.get_ref();
                info.kind = TransportKind::Tls;
                let details = info.details_mut();
                details.alpn = session.alpn_protocol().map(<[u8]>::to_vec);
                details.peer_certificates = session
                    .peer_certificates()
                    .map(<[_]>::to_vec)
                    .unwrap_or_default();
                Ok(Connection::new(tls, info))
            }
            Scheme::Ws | Scheme::Wss => Err(TransportError::UnsupportedScheme(addr.to_string())),
        }
    };
    tokio::time::timeout(options.timeout, attempt)
        .await
        .map_err(|_| TransportError::Timeout {
            what: "connect",
            after: options.timeout,
        })?
}
