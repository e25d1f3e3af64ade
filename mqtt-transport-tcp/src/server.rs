//! Accepting connections over TCP or TLS.

use crate::{Connection, ConnectionInfo, ServerTls, TransportError, TransportKind};
use std::{net::SocketAddr, time::Duration};
use tokio::net::{TcpListener, TcpSocket, TcpStream, ToSocketAddrs};

/// Connections the kernel queues for a listener until they are accepted
/// (capped at `net.core.somaxconn`). When a network comes back, every
/// device on it reconnects at once and can outrun the accept loop for a
/// moment; past this queue the kernel drops the attempts, and each client
/// waits a second or more for its SYN to be sent again.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a TCP listening socket (address reuse on, as
/// `tokio::net::TcpListener::bind` has it) with a queue of
/// [`LISTEN_BACKLOG`] connections instead of tokio's 128; tries each
/// address `addr` resolves to in turn.
///
/// The listener is for protocols whose clients speak first, as MQTT's do
/// (CONNECT, a WebSocket upgrade request or a TLS ClientHello): on Linux a
/// connection is handed over once its first bytes have arrived
/// (`TCP_DEFER_ACCEPT`), so the server wakes once per connection instead of
/// twice (for the connection, then for its data). A client that connects
/// and sends nothing waits in the kernel's queue of half-open connections
/// (which counts against the backlog) and is handed over after a second all
/// the same, for the server's own timeout to close. A protocol in which the
/// server speaks first would wait that second: bind it with
/// `tokio::net::TcpListener` instead.
pub async fn bind_tcp(addr: impl ToSocketAddrs) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        };
        let listener = socket.and_then(|s| {
            #[cfg(unix)]
            s.set_reuseaddr(true)?;
            s.bind(a)?;
            let listener = s.listen(LISTEN_BACKLOG)?;
            // Only a cost saved: the listener works without it.
            let _ = defer_accept(&listener);
            Ok(listener)
        });
        match listener {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

/// Hands connections over once data has arrived, or after a second.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn defer_accept(listener: &TcpListener) -> std::io::Result<()> {
    crate::sockopt::set_int(listener, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, 1)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn defer_accept(_: &TcpListener) -> std::io::Result<()> {
    Ok(())
}

/// A listening socket for MQTT over TCP, or over TLS when given [`ServerTls`].
///
/// [`accept`](Self::accept) only takes the TCP connection; the TLS handshake
/// happens in [`Incoming::establish`], so a server can run each handshake in
/// its own task and one slow client never holds up the others.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handshake_timeout: Duration,
    /// The bound address when it names one interface: every connection's
    /// local address then (no `getsockname` per connection).
    bound: Option<SocketAddr>,
}

impl Listener {
    /// Binds to `addr` (e.g. `"127.0.0.1:0"`).
    pub async fn bind(
        addr: impl ToSocketAddrs,
        tls: Option<ServerTls>,
    ) -> Result<Listener, TransportError> {
        let tls = match tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(t.config()?)),
            None => None,
        };
        let tcp = bind_tcp(addr).await?;
        let bound = tcp.local_addr().ok().filter(|a| !a.ip().is_unspecified());
        Ok(Listener {
            bound,
            tcp,
            tls,
            handshake_timeout: Duration::from_secs(10),
        })
    }

    /// Sets how long a client may take to finish the TLS handshake.
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.handshake_timeout = timeout;
    }

    /// The bound address (with the port the system chose for port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        Ok(self.tcp.local_addr()?)
    }

    /// The kind of connection this listener produces.
    pub fn kind(&self) -> TransportKind {
        if self.tls.is_some() {
            TransportKind::Tls
        } else {
            TransportKind::Tcp
        }
    }

    /// Waits for the next TCP connection.
    pub async fn accept(&self) -> Result<Incoming, TransportError> {
        let (stream, peer) = self.tcp.accept().await?;
        // Fails on some systems when the peer already reset the connection;
        // that is this connection's problem, not the listener's.
        let _ = stream.set_nodelay(true);
        Ok(Incoming {
            stream,
            peer,
            local: self.bound,
            tls: self.tls.clone(),
            handshake_timeout: self.handshake_timeout,
        })
    }
}

/// A TCP connection that has been accepted and may still need its TLS handshake.
pub struct Incoming {
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handshake_timeout: Duration,
}

impl Incoming {
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Completes the connection (the TLS handshake, on a TLS listener).
    pub async fn establish(self) -> Result<Connection, TransportError> {
        let local = match self.local {
            Some(a) => a,
            None => self.stream.local_addr()?,
        };
        let mut info = ConnectionInfo::tcp(self.peer, local);
        let Some(acceptor) = self.tls else {
            return Ok(Connection::new(self.stream, info));
        };
        let tls = tokio::time::timeout(self.handshake_timeout, acceptor.accept(self.stream))
            .await
            .map_err(|_| TransportError::Timeout {
                what: "TLS handshake",
                after: self.handshake_timeout,
            })?
            .map_err(|source| TransportError::Tls {
                peer: self.peer.to_string(),
                source,
            })?;
        let (_, session) = tls.get_ref();
        info.kind = TransportKind::Tls;
        let details = info.details_mut();
        details.alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        details.server_name = session.server_name().map(str::to_string);
        details.peer_certificates = session
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        Ok(Connection::new(tls, info))
    }
}
