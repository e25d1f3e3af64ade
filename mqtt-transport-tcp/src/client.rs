//! Connecting to a broker over TCP or TLS.

use crate::{
    ClientTls, Connection, ConnectionInfo, Scheme, ServerAddr, TransportError, TransportKind,
};
use rustls_pki_types::ServerName;
use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};
use tokio::net::{TcpSocket, TcpStream};

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Limit for resolving, connecting and the TLS handshake together.
    pub timeout: Duration,
    /// TLS settings for `mqtts://` (and `wss://` in the WebSocket transport).
    pub tls: ClientTls,
    /// The local address to connect from (a host with several interfaces
    /// or addresses choosing one); `None` lets the routing table choose.
    /// The kernel picks the port when connecting, so many connections can
    /// share the address.
    pub local_addr: Option<IpAddr>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Duration::from_secs(10),
            tls: ClientTls::default(),
            local_addr: None,
        }
    }
}

/// Opens a TCP connection to `host:port`, trying each resolved address in
/// turn, with `TCP_NODELAY` set (MQTT acknowledgements are small and must
/// not wait for delayed ACKs).
pub async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, TransportError> {
    connect_tcp_from(host, port, None).await
}

/// [`connect_tcp`] from the local address `local` when given (only the
/// resolved addresses of its family are tried).
pub async fn connect_tcp_from(
    host: &str,
    port: u16,
    local: Option<IpAddr>,
) -> Result<TcpStream, TransportError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| TransportError::Dns {
            host: host.to_string(),
            source,
        })?
        .collect();
    let mut last = None;
    for addr in addrs {
        let attempt = match local {
            None => TcpStream::connect(addr).await,
            Some(local) if local.is_ipv4() != addr.is_ipv4() => {
                last = Some(TransportError::Connect {
                    addr,
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("cannot connect from {local}: another address family"),
                    ),
                });
                continue;
            }
            Some(local) => connect_from(local, addr).await,
        };
        match attempt {
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

/// Connects to `addr` from `local`, the port left for `connect` to choose.
async fn connect_from(local: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Only a cost saved: without it `bind` takes the port.
    let _ = bind_address_no_port(&socket);
    socket
        .bind(SocketAddr::new(local, 0))
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding to {local}: {e}")))?;
    socket.connect(addr).await
}

/// Lets a socket bound to port 0 take its port when it connects, where the
/// kernel needs only the whole address pair to be unique: without this,
/// `bind` takes a port for the local address alone, and connections from
/// it run out of ports sooner and find them more slowly.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_address_no_port(socket: &TcpSocket) -> std::io::Result<()> {
    // At the `SOL_IP` level, for IPv6 sockets too.
    crate::sockopt::set_int(socket, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1)
}

/// Elsewhere `bind` takes the port; connections still work.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_address_no_port(_: &TcpSocket) -> std::io::Result<()> {
    Ok(())
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
        let tcp = connect_tcp_from(&addr.host, addr.port, options.local_addr).await?;
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
