//! The connection type every transport produces.

use rustls_pki_types::CertificateDer;
use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Which transport carries a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket over TCP.
    WebSocket,
    /// WebSocket over TLS.
    SecureWebSocket,
}

/// What is known about a connection, whatever its transport.
///
/// A broker keeps one per connection for the connection's life: what only
/// TLS and WebSocket connections have is boxed in `details`, so that a plain TCP connection's info is
/// its addresses alone.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The transport.
    pub kind: TransportKind,
    /// The peer's address.
    pub peer_addr: SocketAddr,
    /// This end's address.
    pub local_addr: SocketAddr,
    /// What the TLS handshake or WebSocket upgrade told (`None`: nothing).
    pub details: Option<Box<ConnectionDetails>>,
}

/// What a TLS handshake or a WebSocket upgrade tells about a connection.
#[derive(Clone, Debug, Default)]
pub struct ConnectionDetails {
    /// The certificate chain the peer presented over TLS (a client
    /// certificate on the server side), leaf first; empty without TLS or
    /// without a client certificate.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// The ALPN protocol agreed over TLS, if any.
    pub alpn: Option<Vec<u8>>,
    /// The TLS server name the client asked for (server side), if any.
    pub server_name: Option<String>,
    /// The WebSocket upgrade request's headers (name, value), for
    /// authentication upstream (cookies, bearer tokens, X-Forwarded-For).
    pub http_headers: Vec<(String, String)>,
}

impl ConnectionInfo {
    /// Info for a plain TCP connection.
    pub fn tcp(peer_addr: SocketAddr, local_addr: SocketAddr) -> ConnectionInfo {
        ConnectionInfo {
            kind: TransportKind::Tcp,
            peer_addr,
            local_addr,
            details: None,
        }
    }

    /// The details, made empty first if there were none.
    pub fn details_mut(&mut self) -> &mut ConnectionDetails {
        self.details.get_or_insert_default()
    }

    /// The certificate chain the peer presented over TLS, leaf first
    /// (see [`ConnectionDetails::peer_certificates`]).
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        self.details.as_ref().map_or(&[], |d| &d.peer_certificates)
    }

    /// The ALPN protocol agreed over TLS, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.details.as_ref()?.alpn.as_deref()
    }

    /// The TLS server name the client asked for (server side), if any.
    pub fn server_name(&self) -> Option<&str> {
        self.details.as_ref()?.server_name.as_deref()
    }

    /// The WebSocket upgrade request's headers (name, value).
    pub fn http_headers(&self) -> &[(String, String)] {
        self.details.as_ref().map_or(&[], |d| &d.http_headers)
    }
}

/// A byte stream that any transport produces.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// An established connection on any transport: an ordered, lossless byte
/// stream (`AsyncRead + AsyncWrite`) for the MQTT codec to frame, plus what
/// is known about the peer. The client and the broker see the same type
/// whether the bytes travel over TCP, TLS, WebSocket or secure WebSocket.
pub struct Connection {
    io: Stream,
    /// Shared: whoever keeps it for the connection's life (a broker's
    /// authentication hooks) holds the same copy.
    info: std::sync::Arc<ConnectionInfo>,
}

/// The byte stream: a TCP socket in place (a server holds thousands of
/// connections, most of them plain TCP: no allocation of their own), any
/// other stream boxed.
enum Stream {
    Tcp(tokio::net::TcpStream),
    Other(Box<dyn Io>),
}

impl Stream {
    fn pin(&mut self) -> Pin<&mut (dyn Io + 'static)> {
        match self {
            Stream::Tcp(s) => Pin::new(s),
            Stream::Other(b) => Pin::new(&mut **b),
        }
    }
}

impl Connection {
    /// A connection over `io`.
    pub fn new(io: impl Io, info: ConnectionInfo) -> Connection {
        let mut io = Some(io);
        let tcp = (&mut io as &mut dyn std::any::Any)
            .downcast_mut::<Option<tokio::net::TcpStream>>()
            .and_then(Option::take);
        let io = match (tcp, io) {
            (Some(tcp), _) => Stream::Tcp(tcp),
            (None, Some(other)) => Stream::Other(Box::new(other)),
            // (`io` is taken only when it is a TcpStream.)
            (None, None) => unreachable!("the stream is one or the other"),
        };
        Connection {
            io,
            info: std::sync::Arc::new(info),
        }
    }

    /// What is known about the connection.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// What is known about the connection, as a shared handle (no copy).
    pub fn shared_info(&self) -> std::sync::Arc<ConnectionInfo> {
        self.info.clone()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.info.peer_addr
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io.pin().poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.pin().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io.pin().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Other(b) => b.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.pin().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.pin().poll_shutdown(cx)
    }
}
