//! Accepting WebSocket connections.

use crate::{WsError, WsIo};
use mqtt_transport_tcp::{Connection, TransportKind};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio_tungstenite::tungstenite::{
    handshake::server::{ErrorResponse, Request, Response},
    http::{HeaderValue, StatusCode},
    protocol::WebSocketConfig,
};

/// Server-side WebSocket settings.
#[derive(Clone, Debug)]
pub struct WsServerOptions {
    /// The only path upgrades are accepted on (`/mqtt` by default); `None`
    /// accepts any path. Others get 404.
    pub path: Option<String>,
    /// Subprotocols accepted, in preference order: `mqtt`, then the legacy
    /// `mqttv3.1` of MQTT 3.1 clients.
    pub subprotocols: Vec<String>,
    /// Refuse (400) an upgrade that offers none of `subprotocols`.
    pub require_subprotocol: bool,
    /// When set, only these Origin header values may connect (403 otherwise);
    /// requests without an Origin (non-browser clients) are let through.
    ///
    /// Set it whenever authentication relies on cookies from the upgrade
    /// request: without it any web page can open an authenticated connection
    /// from a visitor's browser (cross-site WebSocket hijacking).
    pub allowed_origins: Option<Vec<String>>,
    /// Largest WebSocket message and frame accepted.
    pub max_message_size: usize,
    /// Extra headers for the 101 response.
    pub response_headers: Vec<(String, String)>,
    /// How long the upgrade may take.
    pub handshake_timeout: Duration,
}

impl Default for WsServerOptions {
    fn default() -> Self {
        WsServerOptions {
            path: Some("/mqtt".into()),
            subprotocols: vec!["mqtt".into(), "mqttv3.1".into()],
            require_subprotocol: true,
            allowed_origins: None,
            max_message_size: 16 << 20,
            response_headers: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

fn refuse(status: StatusCode, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(why.to_string()));
    *r.status_mut() = status;
    r
}

/// Checks the upgrade request and picks the subprotocol.
#[allow(clippy::result_large_err)] // the error type is tungstenite's handshake callback's
fn negotiate(
    options: &WsServerOptions,
    req: &Request,
    mut resp: Response,
) -> Result<Response, ErrorResponse> {
    if options
        .path
        .as_ref()
        .is_some_and(|path| req.uri().path() != path)
    {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "no MQTT endpoint at this path",
        ));
    }
    let origin = req.headers().get("origin");
    if let (Some(allowed), Some(origin)) = (&options.allowed_origins, origin)
        && !allowed.iter().any(|a| a.as_bytes() == origin.as_bytes())
    {
        return Err(refuse(StatusCode::FORBIDDEN, "origin not allowed"));
    }
    let offered: Vec<&str> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // Answer with the client's own spelling: clients compare it exactly.
    let chosen = options
        .subprotocols
        .iter()
        .find_map(|p| offered.iter().find(|o| o.eq_ignore_ascii_case(p)));
    match chosen {
        // [MQTT-6.0.0-4]: the server selects and returns the subprotocol.
        Some(p) => {
            let value = HeaderValue::from_str(p)
                .map_err(|_| refuse(StatusCode::INTERNAL_SERVER_ERROR, "bad subprotocol"))?;
            resp.headers_mut().insert("sec-websocket-protocol", value);
        }
        None if options.require_subprotocol => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Protocol must offer mqtt",
            ));
        }
        None => {}
    }
    for (name, value) in &options.response_headers {
        if let (Ok(n), Ok(v)) = (
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    Ok(resp)
}

/// Upgrades an accepted TCP or TLS connection to MQTT over WebSocket.
///
/// The result is again a [`Connection`]: its kind is `WebSocket` or
/// `SecureWebSocket`, and its info carries the upgrade request's headers.
pub async fn accept(conn: Connection, options: &WsServerOptions) -> Result<Connection, WsError> {
    let mut info = conn.info().clone();
    info.kind = match info.kind {
        TransportKind::Tls | TransportKind::SecureWebSocket => TransportKind::SecureWebSocket,
        _ => TransportKind::WebSocket,
    };
    let headers = Arc::new(Mutex::new(Vec::new()));
    let seen = headers.clone();
    let opts = options.clone();
    #[allow(clippy::result_large_err)] // tungstenite's callback signature
    let callback = move |req: &Request, resp: Response| {
        let result = negotiate(&opts, req, resp);
        if let Ok(mut h) = seen.lock() {
            *h = req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
        }
        result
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(options.max_message_size))
        .max_frame_size(Some(options.max_message_size))
        .read_buffer_size(crate::SERVER_READ_BUFFER);
    let ws = tokio::time::timeout(
        options.handshake_timeout,
        tokio_tungstenite::accept_hdr_async_with_config(conn, callback, Some(config)),
    )
    .await
    .map_err(|_| WsError::Timeout)?
    .map_err(crate::handshake_error)?;
    info.details_mut().http_headers = headers
        .lock()
        .map(|mut h| std::mem::take(&mut *h))
        .unwrap_or_default();
    Ok(Connection::new(WsIo::new(ws), info))
}
