//! Sharing a port with ordinary HTTP.

use crate::{WsError, WsIo};
use mqtt_transport_tcp::{Connection, ConnectionInfo, Io, TransportKind};
use std::{io, time::Duration};
use tokio::net::TcpStream;
use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::Role};

/// The head of an HTTP request, looked at without consuming it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Path with query, e.g. `/mqtt`.
    pub path: String,
    /// Headers (name, value).
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// Whether the request asks for a WebSocket upgrade.
    pub fn is_websocket_upgrade(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("upgrade") && v.eq_ignore_ascii_case("websocket"))
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

/// Looks at the HTTP request head waiting on `stream` without consuming it,
/// so the stream can then go to [`accept`](crate::accept) (a WebSocket
/// upgrade for MQTT) or to ordinary HTTP handling: the MQTT endpoint can
/// share a port with a status page or a user's HTTP routes.
///
/// `Ok(None)` when the peer closed first; an error when the head exceeds
/// `max_len` bytes, is not HTTP, or does not arrive within `timeout`.
pub async fn peek_request_head(
    stream: &TcpStream,
    max_len: usize,
    timeout: Duration,
) -> Result<Option<RequestHead>, io::Error> {
    if max_len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "max_len must be positive",
        ));
    }
    let mut buf = vec![0u8; max_len];
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = 0;
    let mut backoff = Duration::from_millis(2);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut buf))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "no HTTP request head in time")
            })??;
        if n == 0 {
            return Ok(None);
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..n]) {
            Ok(httparse::Status::Complete(_)) => {
                return Ok(Some(RequestHead {
                    method: req.method.unwrap_or_default().to_string(),
                    path: req.path.unwrap_or_default().to_string(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_string(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                }));
            }
            Ok(httparse::Status::Partial) if n < max_len => {
                // Peeking returns what is buffered at once: wait (backing off
                // while nothing new arrives) for the rest of the head.
                if n == seen {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(100));
                } else {
                    backoff = Duration::from_millis(2);
                }
                seen = n;
            }
            Ok(httparse::Status::Partial) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "HTTP request head too long",
                ));
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// Wraps a stream whose WebSocket upgrade an HTTP framework already answered
/// (e.g. a hyper `Upgraded` connection after a 101 response carrying
/// `Sec-WebSocket-Protocol: mqtt`) as an MQTT connection.
pub async fn accept_upgraded(
    io: impl Io,
    mut info: ConnectionInfo,
    max_message_size: usize,
) -> Result<Connection, WsError> {
    info.kind = match info.kind {
        TransportKind::Tls | TransportKind::SecureWebSocket => TransportKind::SecureWebSocket,
        _ => TransportKind::WebSocket,
    };
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
        .read_buffer_size(crate::SERVER_READ_BUFFER);
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    Ok(Connection::new(WsIo::new(ws), info))
}
