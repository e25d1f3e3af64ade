//! Security for the broker: who may connect, and what each client may
//! publish and subscribe to.
//!
//! - [`PasswordFile`]: `username:hash` lines, with argon2id hashes and
//!   SCRAM-SHA-256 entries (`examples/src/bin/passwd.rs` edits them).
//! - [`Acl`]: mosquitto's ACL file format (`topic`, `user`, `pattern` with
//!   `%c` and `%u`), default deny, `deny` rules winning.
//! - [`ScramServer`] and [`ScramClient`]: SCRAM-SHA-256 (RFC 5802, RFC
//!   7677) for MQTT 5 enhanced authentication.
//! - [`FileAuth`]: the [`Hooks`](crate::Hooks) built from these, TLS client
//!   certificates ([`CertIdentity`]) and WebSocket bearer tokens
//!   ([`WsTokens`]).
//!
//! ```no_run
//! use mqtt_broker_core::{Broker, BrokerConfig, ListenerConfig};
//! use mqtt_broker_core::auth::{Acl, FileAuth, PasswordFile};
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = FileAuth::builder()
//!     .password_file(PasswordFile::load("/etc/mqtt/passwords")?)
//!     .acl(Acl::load("/etc/mqtt/acl")?)
//!     .build();
//! let broker = Broker::new(BrokerConfig::default(), Arc::new(auth));
//! broker.listen(ListenerConfig::Tcp("0.0.0.0:1883".parse()?)).await?;
//! # Ok(())
//! # }
//! ```

mod acl;
mod certificate;
mod error;
mod file_auth;
mod filter;
mod password;
mod scram;
mod ws_token;

pub use acl::{Access, Acl};
pub use certificate::{CertIdentity, certificate_identity};
pub use error::{FileError, HashError};
pub use file_auth::{FileAuth, FileAuthBuilder};
pub use password::PasswordFile;
pub use scram::{
    MAX_ITERATIONS, MIN_ITERATIONS, SCRAM_SHA_256, ScramClient, ScramCredentials, ScramError,
    ScramServer, ScramSuccess,
};
pub use ws_token::{TOKEN_COOKIE, TokenCheck, WsTokens};
