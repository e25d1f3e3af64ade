//! MQTT over TCP and TLS on tokio, client and server side.
//!
//! Every transport in the workspace produces a [`Connection`]: an ordered,
//! lossless byte stream (`AsyncRead + AsyncWrite`) for the MQTT codec to
//! frame, plus [`ConnectionInfo`] (transport, peer address, the peer's TLS
//! certificates, WebSocket request headers). Clients and brokers never need
//! to know which transport they run on.
//!
//! - Client: [`connect`] to `mqtt://host:1883` or `mqtts://host:8883`
//!   ([`ServerAddr`]), with a timeout and [`ClientTls`] (platform or given
//!   roots, client certificates for mutual TLS, server name, ALPN).
//! - Server: [`Listener`] over TCP or TLS ([`ServerTls`] from PEM files,
//!   optional client-certificate verification, ALPN).
//! - `TCP_NODELAY` on every connection; errors say what failed (DNS, TCP,
//!   TLS, timeout).
//!
//! ```no_run
//! # async fn demo() -> Result<(), mqtt_transport_tcp::TransportError> {
//! use mqtt_transport_tcp::{ConnectOptions, ServerAddr, connect};
//! use tokio::io::AsyncWriteExt;
//!
//! let addr = ServerAddr::parse("mqtts://broker.example:8883")?;
//! let mut conn = connect(&addr, &ConnectOptions::default()).await?;
//! println!("connected to {} over {:?}", conn.peer_addr(), conn.info().kind);
//! conn.write_all(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00").await?;
//! # Ok(()) }
//! ```

mod addr;
mod client;
mod conn;
mod descriptors;
mod error;
mod server;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod sockopt;
mod tls;

pub use addr::{Scheme, ServerAddr};
pub use client::{ConnectOptions, connect, connect_tcp, connect_tcp_from, tls_handshake};
pub use conn::{Connection, ConnectionDetails, ConnectionInfo, Io, TransportKind};
pub use descriptors::{raise_descriptor_limit, reserve_descriptors};
pub use error::TransportError;
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};
pub use server::{Incoming, LISTEN_BACKLOG, Listener, bind_tcp};
pub use tls::{ClientTls, Roots, ServerTls, certs_from_pem, key_from_pem};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
