//! MQTT over WebSocket and secure WebSocket on tokio, client and server side.
//!
//! A WebSocket connection becomes the same
//! [`Connection`](mqtt_transport_tcp::Connection) byte stream as TCP: binary
//! message payloads are one continuous stream, so packets may span frames
//! and frames may hold several packets; bytes written between flushes go out
//! as one binary frame; a text frame ends the connection.
//!
//! - Client: [`connect`] to `ws://host:8080/mqtt` or `wss://host:8443/mqtt`,
//!   offering the `mqtt` subprotocol, with extra request headers (e.g.
//!   `Authorization`) and TLS settings shared with the TCP transport.
//! - Server: [`accept`] upgrades a connection a listener accepted (TCP or
//!   TLS, or a stream a user's own HTTP server hands over): path check,
//!   subprotocol negotiation (`mqtt`, and the legacy `mqttv3.1`), an Origin
//!   allow-list, size limits, extra response headers; the request's headers
//!   are kept in the connection's info for authentication upstream.
//! - Sharing a port with HTTP: [`peek_request_head`] looks at a request
//!   without consuming it, to route it to [`accept`] or to ordinary HTTP;
//!   [`accept_upgraded`] takes a stream an HTTP framework already upgraded.
//!   `examples/shared_port.rs` serves a status page and MQTT on one port.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mqtt_transport_ws::WsError> {
//! use mqtt_transport_tcp::{Listener, ServerAddr};
//! use mqtt_transport_ws::{WsConnectOptions, WsServerOptions, accept, connect};
//!
//! let listener = Listener::bind("127.0.0.1:8080", None).await?;
//! tokio::spawn(async move {
//!     let tcp = listener.accept().await?.establish().await?;
//!     let ws = accept(tcp, &WsServerOptions::default()).await?;
//!     println!("{:?} from {}", ws.info().kind, ws.peer_addr());
//!     Ok::<_, mqtt_transport_ws::WsError>(())
//! });
//! let conn = connect(&ServerAddr::parse("ws://127.0.0.1:8080/mqtt")?, &WsConnectOptions::default()).await?;
//! # let _ = conn;
//! # Ok(()) }
//! ```

mod client;
mod http;
mod io;
mod server;

/// The read buffer of each server-side WebSocket connection. tungstenite
/// allocates it up front and zeroes it before every read: its 128 KiB
/// default made each idle browser connection cost 128 KiB and every read
/// a 128 KiB memset.
const SERVER_READ_BUFFER: usize = 4 * 1024;

pub use client::{WsConnectOptions, connect};
pub use http::{RequestHead, accept_upgraded, peek_request_head};
pub use io::WsIo;
pub use server::{WsServerOptions, accept};

use mqtt_transport_tcp::TransportError;

/// A handshake error, with an HTTP refusal turned into [`WsError::Refused`].
pub(crate) fn handshake_error(e: tokio_tungstenite::tungstenite::Error) -> WsError {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(resp) => WsError::Refused {
            status: resp.status().as_u16(),
            reason: resp
                .body()
                .clone()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
        },
        e => WsError::Handshake(e),
    }
}

/// Why a WebSocket connection could not be made or accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The TCP or TLS connection underneath failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The HTTP upgrade was refused (404 wrong path, 403 Origin not allowed,
    /// 400 no acceptable subprotocol, ...).
    #[error("WebSocket upgrade refused: HTTP {status} {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Why.
        reason: String,
    },
    /// The server did not select the offered subprotocol.
    #[error("server selected subprotocol {0:?}, not the one offered")]
    Subprotocol(Option<String>),
    /// The WebSocket handshake failed otherwise.
    #[error("WebSocket handshake: {0}")]
    Handshake(#[from] tokio_tungstenite::tungstenite::Error),
    /// The handshake took too long.
    #[error("WebSocket handshake timed out")]
    Timeout,
}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
