//! Connecting over WebSocket.

use crate::{WsError, WsIo};
use mqtt_transport_tcp::{
    ConnectOptions, Connection, Scheme, ServerAddr, TransportError, TransportKind,
};
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest,
    http::{HeaderName, HeaderValue},
    protocol::WebSocketConfig,
};

/// Client-side WebSocket settings.
#[derive(Clone, Debug)]
pub struct WsConnectOptions {
    /// Timeout and TLS settings (for `wss://`), as for TCP.
    pub connect: ConnectOptions,
    /// Extra request headers (e.g. `Authorization`, `Cookie`).
    pub headers: Vec<(String, String)>,
    /// The subprotocol to offer ([MQTT-6.0.0-3]: `mqtt`).
    pub subprotocol: String,
    /// Largest WebSocket message accepted.
    pub max_message_size: usize,
}

impl Default for WsConnectOptions {
    fn default() -> Self {
        WsConnectOptions {
            connect: ConnectOptions::default(),
            headers: Vec::new(),
            subprotocol: "mqtt".into(),
            max_message_size: 16 << 20,
        }
    }
}

fn header_error(what: &str) -> WsError {
    WsError::Transport(TransportError::InvalidAddress(format!(
        "invalid header {what}"
    )))
}

/// Connects to a `ws://` or `wss://` address.
pub async fn connect(addr: &ServerAddr, options: &WsConnectOptions) -> Result<Connection, WsError> {
    let underlying = match addr.scheme {
        Scheme::Ws => Scheme::Mqtt,
        Scheme::Wss => Scheme::Mqtts,
        _ => return Err(TransportError::UnsupportedScheme(addr.to_string()).into()),
    };
    let tcp_addr = ServerAddr {
        scheme: underlying,
        ..addr.clone()
    };
    let attempt = async {
        let conn = mqtt_transport_tcp::connect(&tcp_addr, &options.connect).await?;
        let mut info = conn.info().clone();
        info.kind = if addr.scheme == Scheme::Wss {
            TransportKind::SecureWebSocket
        } else {
            TransportKind::WebSocket
        };
        let mut request = addr.to_string().into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&options.subprotocol).map_err(|_| header_error("subprotocol"))?,
        );
        for (name, value) in &options.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| header_error(name))?,
                HeaderValue::from_str(value).map_err(|_| header_error(name))?,
            );
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(options.max_message_size))
            .max_frame_size(Some(options.max_message_size));
        let (ws, response) =
            tokio_tungstenite::client_async_with_config(request, conn, Some(config))
                .await
                .map_err(crate::handshake_error)?;
        let selected = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if !selected
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(&options.subprotocol))
        {
            return Err(WsError::Subprotocol(selected));
        }
        Ok(Connection::new(WsIo::new(ws), info))
    };
    tokio::time::timeout(options.connect.timeout, attempt)
        .await
        .map_err(|_| WsError::Timeout)?
}
