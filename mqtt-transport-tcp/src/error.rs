//! Transport errors that say what failed.

use std::{io, net::SocketAddr, time::Duration};

/// Why a connection could not be made or accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The address is not a valid broker URL.
    #[error("invalid address {0}")]
    InvalidAddress(String),
    /// This transport does not handle the scheme (e.g. `ws://` given to the TCP transport).
    #[error("scheme of {0} is not handled by this transport")]
    UnsupportedScheme(String),
    /// The host name did not resolve.
    #[error("could not resolve {host}: {source}")]
    Dns {
        /// The host.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// No resolved address accepted the TCP connection.
    #[error("TCP connect to {addr} failed: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Connecting (TCP and TLS) or a server-side TLS handshake took too long.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// Which step.
        what: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The TLS handshake failed (certificate not trusted, name mismatch, ...).
    #[error("TLS handshake with {peer} failed: {source}")]
    Tls {
        /// The peer.
        peer: String,
        /// The TLS error.
        #[source]
        source: io::Error,
    },
    /// TLS settings that cannot be used (bad PEM, key not matching, ...).
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    /// Other IO failure (e.g. binding a listener).
    #[error(transparent)]
    Io(#[from] io::Error),
}
