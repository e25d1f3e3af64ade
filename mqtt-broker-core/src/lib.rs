//! Building blocks for MQTT 3.1.1 and 5.0 brokers, and a ready broker
//! runtime assembled from them.
//!
//! - [`subscriptions`]: the subscription tree (a trie over topic levels):
//!   `+` and `#`, `$`-topics, shared subscriptions with a pluggable
//!   member-picking strategy, subscription options and identifiers.
//! - [`retained`]: retained messages by topic, with wildcard lookup and
//!   Message Expiry.
//! - [`hooks`]: the policy trait (authentication, enhanced authentication,
//!   authorization, message interception) with an allow-all default.
//! - [`Broker`]: the runtime. Each connection runs an
//!   [`mqtt_session::ServerSession`] on its own task over any transport
//!   (TCP, TLS, WebSocket, WSS); routed messages share their payload
//!   `Bytes` with the received packet, and every queue has a bound.
//!
//! ```no_run
//! use mqtt_broker_core::{AllowAll, Broker, BrokerConfig, ListenerConfig};
//! use std::sync::Arc;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let broker = Broker::new(BrokerConfig::default(), Arc::new(AllowAll));
//!     let tcp = broker.listen(ListenerConfig::Tcp("127.0.0.1:1883".parse()?)).await?;
//!     let ws = broker.listen(ListenerConfig::Ws("127.0.0.1:8080".parse()?)).await?;
//!     println!("MQTT on {tcp}, MQTT over WebSocket on ws://{ws}/mqtt");
//!     tokio::signal::ctrl_c().await?;
//!     broker.shutdown().await;
//!     Ok(())
//! }
//! ```

pub mod auth;
mod broker;
mod connection;
pub mod hooks;
mod http;
mod mailbox;
mod metrics;
mod persist;
pub mod retained;
mod signal;
mod spin;
mod state;
pub mod store;
pub mod subscriptions;
mod sys;

pub use auth::{Acl, CertIdentity, FileAuth, PasswordFile};
pub use broker::{Broker, BrokerConfig, Limits, ListenerConfig, RESERVED_DESCRIPTORS, Stats};
pub use hooks::{AllowAll, AuthState, AuthStep, ClientInfo, Hooks};
pub use mqtt_session::ServerOptions;
pub use mqtt_transport_tcp::ServerTls;
pub use mqtt_transport_ws::WsServerOptions;
pub use spin::spin_before_park;

/// Feeds `data` to one of the broker's parsers of outside input (ACL and
/// password files, SCRAM messages, stored records and journal files, HTTP
/// paths), chosen by its first byte; for the fuzz targets in `fuzz/`.
/// Whatever `data` is, it must return without panicking.
#[doc(hidden)]
pub fn fuzz_parsers(data: &[u8]) {
    use std::sync::OnceLock;
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(rest).ok();
    match kind % 5 {
        0 => {
            if let Some(Ok(acl)) = text.map(auth::Acl::parse) {
                let _ = acl.can_subscribe("c", Some("u"), "a/+/b");
                let _ = acl.can_publish("c", None, "a/b");
                let _ = acl.can_read("c", Some("u"), "$SYS/x");
            }
        }
        1 => {
            if let Some(Ok(file)) = text.map(auth::PasswordFile::parse) {
                let _ = file.scram_credentials("u");
            }
        }
        2 => {
            static CREDENTIALS: OnceLock<auth::ScramCredentials> = OnceLock::new();
            let credentials =
                CREDENTIALS.get_or_init(|| auth::ScramCredentials::new(b"pencil", b"salt", 4096));
            let cut = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
            let (first, last) = rest.split_at(cut);
            if let Ok((server, _)) =
                auth::ScramServer::start_with_nonce(first, |_| Some(credentials.clone()), "srv")
            {
                let _ = server.finish(last.get(1..).unwrap_or_default());
            }
        }
        3 => {
            let _ = store::codec::decode_message(rest);
            let _ = store::codec::decode_session(rest);
            let _ = store::codec::decode_retained(rest);
            let _ = store::codec::split_key(rest);
            // A journal file's records, whatever the file holds.
            let _ = store::journal::read_records(rest, 1);
        }
        _ => {
            if let Some(path) = text {
                let _ = http::file_path(std::path::Path::new("/srv/web"), path);
            }
        }
    }
}
