//! [`FileAuth`]: the broker's [`Hooks`] from a password file, an ACL, TLS
//! client certificates, WebSocket bearer tokens and SCRAM-SHA-256.

use super::{
    acl::Acl,
    certificate::{CertIdentity, certificate_identity},
    password::PasswordFile,
    scram::{SCRAM_SHA_256, ScramError, ScramServer},
    ws_token::{TokenCheck, WsTokens},
};
use crate::hooks::{AuthState, AuthStep, ClientInfo, Hooks};
use mqtt_codec::{
    Auth, AuthProperties, AuthReason, Bytes, Connect, ConnectReason, MqttStr, Publish, TopicFilter,
};
use mqtt_transport_tcp::ConnectionInfo;
use std::sync::{Arc, RwLock};
use tracing::{debug, info};

/// Authentication and authorization from files, as mosquitto's
/// `password_file`, `acl_file`, `allow_anonymous` and
/// `use_identity_as_username` do, plus WebSocket bearer tokens and MQTT 5
/// SCRAM-SHA-256 enhanced authentication.
///
/// A CONNECT is decided in this order:
///
/// 1. An Authentication Method: `SCRAM-SHA-256` runs the exchange against
///    the password file's SCRAM entries; any other is refused with 0x8C
///    Bad authentication method ([MQTT-4.12.0-1]).
/// 2. A verified TLS client certificate, when
///    [`certificate_identity`](FileAuthBuilder::certificate_identity) is
///    on: its name is the user, no password needed (a User Name in the
///    CONNECT is ignored); a certificate without such a name is refused
///    (0x87).
/// 3. A WebSocket bearer token (header or cookie), when tokens are set: a
///    known one is its user; an unknown one is refused (0x86).
/// 4. A User Name: checked against the password file (0x86 Bad User Name
///    or Password, 3.1.1 return code 4, when wrong, unknown or when there is
///    no password file).
/// 5. No credentials: accepted only with
///    [`allow_anonymous`](FileAuthBuilder::allow_anonymous), else 0x87 Not
///    authorized (3.1.1 return code 5).
///
/// With an ACL, every PUBLISH, SUBSCRIBE and retained message delivered on
/// subscribing is checked, and so is a client's Will when it connects (the
/// broker asks [`Hooks::authorize_publish`] with the client id it assigned:
/// 0x87 when the Will topic is not writable); without one, everything is
/// allowed.
///
/// Password checks run on the connection's task: an argon2id check with
/// the default parameters takes tens of milliseconds of CPU (release
/// build).
#[derive(Debug)]
pub struct FileAuth {
    passwords: RwLock<Option<Arc<PasswordFile>>>,
    acl: RwLock<Option<Arc<Acl>>>,
    allow_anonymous: bool,
    cert_identity: CertIdentity,
    ws_tokens: WsTokens,
}

/// Builds a [`FileAuth`].
#[derive(Debug, Default)]
pub struct FileAuthBuilder {
    passwords: Option<PasswordFile>,
    acl: Option<Acl>,
    allow_anonymous: bool,
    cert_identity: CertIdentity,
    ws_tokens: WsTokens,
}

impl FileAuthBuilder {
    /// Users and their password hashes (argon2id and SCRAM-SHA-256).
    pub fn password_file(mut self, file: PasswordFile) -> Self {
        self.passwords = Some(file);
        self
    }

    /// The access control list; without one every client may publish and
    /// subscribe to anything.
    pub fn acl(mut self, acl: Acl) -> Self {
        self.acl = Some(acl);
        self
    }

    /// Whether clients without credentials are let in (default: no).
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }

    /// Take the user name from the verified TLS client certificate
    /// (default: [`CertIdentity::Off`]). The listener must ask for client
    /// certificates (`ServerTls::client_ca`).
    pub fn certificate_identity(mut self, which: CertIdentity) -> Self {
        self.cert_identity = which;
        self
    }

    /// A WebSocket bearer token standing for `username`, accepted from an
    /// `Authorization: Bearer TOKEN` header or a `mqtt_token=TOKEN` cookie
    /// on the upgrade request.
    pub fn ws_token(mut self, token: &str, username: &str) -> Self {
        self.ws_tokens.insert(token, username);
        self
    }

    /// Every WebSocket bearer token at once (replacing those given before).
    pub fn ws_tokens(mut self, tokens: WsTokens) -> Self {
        self.ws_tokens = tokens;
        self
    }

    /// The hooks.
    pub fn build(self) -> FileAuth {
        FileAuth {
            passwords: RwLock::new(self.passwords.map(Arc::new)),
            acl: RwLock::new(self.acl.map(Arc::new)),
            allow_anonymous: self.allow_anonymous,
            cert_identity: self.cert_identity,
            ws_tokens: self.ws_tokens,
        }
    }
}

fn get<T>(lock: &RwLock<Option<Arc<T>>>) -> Option<Arc<T>> {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn set<T>(lock: &RwLock<Option<Arc<T>>>, value: Option<T>) {
    *lock.write().unwrap_or_else(|e| e.into_inner()) = value.map(Arc::new);
}

/// Refuses `connect` with `reason`, logging why (never a password).
fn refuse(connect: &Connect, reason: ConnectReason, why: &str) -> AuthStep {
    info!(
        client_id = connect.client_id.as_str(),
        username = ?connect.username.as_ref().map(MqttStr::as_str),
        ?reason,
        why,
        "authentication refused"
    );
    AuthStep::Refuse(reason)
}

impl FileAuth {
    /// A builder with nothing set: no users, no ACL, no anonymous clients.
    pub fn builder() -> FileAuthBuilder {
        FileAuthBuilder::default()
    }

    /// Replaces the password file (e.g. after it changed on disk); `None`
    /// removes it. Connections made before keep their login.
    pub fn set_password_file(&self, file: Option<PasswordFile>) {
        set(&self.passwords, file);
    }

    /// Replaces the ACL; `None` allows everything. Applies to every later
    /// check, of connected clients too.
    pub fn set_acl(&self, acl: Option<Acl>) {
        set(&self.acl, acl);
    }

    fn passwords(&self) -> Option<Arc<PasswordFile>> {
        get(&self.passwords)
    }

    fn current_acl(&self) -> Option<Arc<Acl>> {
        get(&self.acl)
    }

    /// Lets the client in as `identity`. (Its Will topic is checked by the
    /// broker through `authorize_publish`, with the client id it gets.)
    fn accept(
        &self,
        connect: &Connect,
        state: &mut AuthState,
        identity: Option<&str>,
        how: &str,
    ) -> AuthStep {
        debug!(client_id = connect.client_id.as_str(), user = ?identity, how, "authenticated");
        state.identity = identity.map(Arc::from);
        AuthStep::Accept
    }

    fn start_scram(&self, connect: &Connect, state: &mut AuthState) -> AuthStep {
        let Some(passwords) = self.passwords() else {
            return refuse(
                connect,
                ConnectReason::BadAuthenticationMethod,
                "SCRAM-SHA-256 needs a password file",
            );
        };
        let data = connect
            .properties
            .authentication_data
            .as_deref()
            .unwrap_or_default();
        match ScramServer::start(data, |user| passwords.scram_credentials(user)) {
            Ok((server, server_first)) => {
                state.set(server);
                // [MQTT-4.12.0-2], [MQTT-4.12.0-5]
                AuthStep::Continue(scram_auth(server_first))
            }
            Err(e) => refuse(connect, ConnectReason::NotAuthorized, &e.to_string()),
        }
    }
}

/// An AUTH 0x18 Continue authentication carrying SCRAM data.
fn scram_auth(data: Vec<u8>) -> Auth {
    Auth {
        reason: AuthReason::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: MqttStr::from_static(SCRAM_SHA_256).ok(),
            authentication_data: Some(Bytes::from(data)),
            ..AuthProperties::default()
        },
    }
}

impl Hooks for FileAuth {
    /// Password hashes and SCRAM key derivation are slow on purpose.
    fn slow_authentication(&self) -> bool {
        self.passwords().is_some()
    }

    fn authenticate(
        &self,
        connect: &Connect,
        connection: &ConnectionInfo,
        state: &mut AuthState,
    ) -> AuthStep {
        if let Some(method) = &connect.properties.authentication_method {
            if method.as_str() == SCRAM_SHA_256 {
                return self.start_scram(connect, state);
            }
            // [MQTT-4.12.0-1]
            return refuse(
                connect,
                ConnectReason::BadAuthenticationMethod,
                "unknown authentication method",
            );
        }
        if self.cert_identity != CertIdentity::Off
            && let Some(leaf) = connection.peer_certificates().first()
        {
            // The transport verified the chain against the listener's CAs.
            return match certificate_identity(leaf.as_ref(), self.cert_identity) {
                Some(name) => self.accept(connect, state, Some(&name), "client certificate"),
                None => refuse(
                    connect,
                    ConnectReason::NotAuthorized,
                    "the client certificate has no name to use as user name",
                ),
            };
        }
        if !self.ws_tokens.is_empty() {
            match self.ws_tokens.check(connection.http_headers()) {
                TokenCheck::User(user) => {
                    return self.accept(connect, state, Some(user), "WebSocket token");
                }
                TokenCheck::Unknown => {
                    return refuse(
                        connect,
                        ConnectReason::BadUserNameOrPassword,
                        "unknown WebSocket token",
                    );
                }
                TokenCheck::Absent => {}
            }
        }
        if connect.username.is_some() || connect.password.is_some() {
            // [MQTT-3.1.4-2]: failed authentication is refused and closed.
            let Some(user) = &connect.username else {
                return refuse(
                    connect,
                    ConnectReason::BadUserNameOrPassword,
                    "a password without a user name",
                );
            };
            let Some(passwords) = self.passwords() else {
                return refuse(
                    connect,
                    ConnectReason::BadUserNameOrPassword,
                    "no password file to check the user name against",
                );
            };
            let Some(password) = &connect.password else {
                return refuse(connect, ConnectReason::BadUserNameOrPassword, "no password");
            };
            return if passwords.verify(user.as_str(), password) {
                self.accept(connect, state, Some(user.as_str()), "password")
            } else {
                refuse(
                    connect,
                    ConnectReason::BadUserNameOrPassword,
                    "wrong password or unknown user",
                )
            };
        }
        if self.allow_anonymous {
            self.accept(connect, state, None, "anonymous")
        } else {
            refuse(
                connect,
                ConnectReason::NotAuthorized,
                "anonymous clients are not allowed",
            )
        }
    }

    fn authenticate_continue(
        &self,
        connect: &Connect,
        auth: &Auth,
        state: &mut AuthState,
    ) -> AuthStep {
        let Some(server) = state.take::<ScramServer>() else {
            return refuse(
                connect,
                ConnectReason::ProtocolError,
                "AUTH without an exchange in progress",
            );
        };
        // [MQTT-4.12.0-5]: the same method in every AUTH.
        let method = auth.properties.authentication_method.as_ref();
        if method.map(MqttStr::as_str) != Some(SCRAM_SHA_256) {
            return refuse(
                connect,
                ConnectReason::ProtocolError,
                "AUTH with another authentication method",
            );
        }
        // [MQTT-4.12.0-3]
        if auth.reason != AuthReason::ContinueAuthentication {
            return refuse(
                connect,
                ConnectReason::ProtocolError,
                "AUTH reason is not Continue authentication",
            );
        }
        let data = auth
            .properties
            .authentication_data
            .as_deref()
            .unwrap_or_default();
        match server.finish(data) {
            Ok(success) => {
                // The server-final message goes in the CONNACK's
                // Authentication Data: the client checks the server with it.
                state.connack_data = Some(success.server_final.into());
                self.accept(connect, state, Some(&success.username), "SCRAM-SHA-256")
            }
            Err(e @ (ScramError::UnknownUser | ScramError::InvalidProof)) => refuse(
                connect,
                ConnectReason::BadUserNameOrPassword,
                &format!("SCRAM-SHA-256: {e}"),
            ),
            Err(e) => refuse(
                connect,
                ConnectReason::NotAuthorized,
                &format!("SCRAM-SHA-256: {e}"),
            ),
        }
    }

    fn authorize_publish(&self, client: &ClientInfo, publish: &Publish) -> bool {
        let Some(acl) = self.current_acl() else {
            return true;
        };
        let allowed = acl.can_publish(
            &client.client_id,
            client.username.as_deref(),
            publish.topic(),
        );
        if !allowed {
            info!(
                client_id = %client.client_id,
                username = ?client.username,
                topic = publish.topic(),
                "publish refused by the ACL"
            );
        }
        allowed
    }

    /// `filter` is a subscription's filter, or the topic of a retained
    /// message about to be delivered on subscribing: a topic is a filter
    /// without wildcards, and the ACL answers both alike.
    fn authorize_subscribe(&self, client: &ClientInfo, filter: &TopicFilter) -> bool {
        let Some(acl) = self.current_acl() else {
            return true;
        };
        let allowed = acl.can_subscribe(
            &client.client_id,
            client.username.as_deref(),
            filter.as_str(),
        );
        if !allowed {
            info!(
                client_id = %client.client_id,
                username = ?client.username,
                filter = filter.as_str(),
                "subscription (or retained message) refused by the ACL"
            );
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::auth::ScramClient;
    use mqtt_codec::ProtocolVersion;
    use mqtt_transport_tcp::TransportKind;

    fn info() -> ConnectionInfo {
        let a = "127.0.0.1:1".parse().unwrap();
        ConnectionInfo::tcp(a, a)
    }

    fn connect(v: ProtocolVersion, user: Option<&str>, password: Option<&[u8]>) -> Connect {
        let mut c = Connect::new(v, MqttStr::try_from("c1").unwrap());
        c.username = user.map(|u| MqttStr::try_from(u).unwrap());
        c.password = password.map(Bytes::copy_from_slice);
        c
    }

    fn users() -> PasswordFile {
        let scram = PasswordFile::hash_scram(b"pw", 4096).unwrap();
        PasswordFile::parse(&format!("alice:{scram}\n")).unwrap()
    }

    fn auth(a: &FileAuth, c: &Connect, i: &ConnectionInfo) -> (AuthStep, AuthState) {
        let mut s = AuthState::default();
        (a.authenticate(c, i, &mut s), s)
    }

    #[test]
    fn passwords_and_anonymous_clients() {
        let a = FileAuth::builder().password_file(users()).build();
        let v = ProtocolVersion::V5;
        let (step, s) = auth(&a, &connect(v, Some("alice"), Some(b"pw")), &info());
        assert_eq!(step, AuthStep::Accept);
        assert_eq!(s.identity.as_deref(), Some("alice"));
        for (user, pw) in [
            (Some("alice"), Some(&b"bad"[..])),
            (Some("bob"), Some(b"pw")),
            (Some("alice"), None),
            (None, Some(b"pw")),
        ] {
            let (step, _) = auth(&a, &connect(v, user, pw), &info());
            assert_eq!(
                step,
                AuthStep::Refuse(ConnectReason::BadUserNameOrPassword),
                "{user:?}"
            );
        }
        let (step, _) = auth(&a, &connect(v, None, None), &info());
        assert_eq!(step, AuthStep::Refuse(ConnectReason::NotAuthorized));
        let open = FileAuth::builder().allow_anonymous(true).build();
        let (step, s) = auth(&open, &connect(v, None, None), &info());
        assert_eq!(step, AuthStep::Accept);
        assert!(s.identity.is_none());
        // A user name with nothing to check it against.
        let (step, _) = auth(&open, &connect(v, Some("alice"), Some(b"pw")), &info());
        assert_eq!(step, AuthStep::Refuse(ConnectReason::BadUserNameOrPassword));
    }

    #[test]
    fn scram_rounds_through_the_hooks() {
        let a = FileAuth::builder().password_file(users()).build();
        for (password, expect) in [
            (&b"pw"[..], AuthStep::Accept),
            (
                b"nope",
                AuthStep::Refuse(ConnectReason::BadUserNameOrPassword),
            ),
        ] {
            let mut client = ScramClient::new("alice", password).unwrap();
            let mut c = connect(ProtocolVersion::V5, None, None);
            c.properties.authentication_method = MqttStr::from_static(SCRAM_SHA_256).ok();
            c.properties.authentication_data = Some(client.client_first().into());
            let (step, mut s) = auth(&a, &c, &info());
            let AuthStep::Continue(first) = step else {
                panic!("{step:?}")
            };
            assert_eq!(first.reason, AuthReason::ContinueAuthentication);
            let fin = client
                .client_final(first.properties.authentication_data.as_deref().unwrap())
                .unwrap();
            let answer = scram_auth(fin);
            assert_eq!(a.authenticate_continue(&c, &answer, &mut s), expect);
            if expect == AuthStep::Accept {
                assert_eq!(s.identity.as_deref(), Some("alice"));
            }
            // Nothing in progress any more.
            assert_eq!(
                a.authenticate_continue(&c, &answer, &mut s),
                AuthStep::Refuse(ConnectReason::ProtocolError)
            );
        }
        let mut c = connect(ProtocolVersion::V5, None, None);
        c.properties.authentication_method = MqttStr::from_static("KERBEROS").ok();
        assert_eq!(
            auth(&a, &c, &info()).0,
            AuthStep::Refuse(ConnectReason::BadAuthenticationMethod)
        );
    }

    #[test]
    fn tokens_from_websocket_headers() {
        let a = FileAuth::builder().ws_token("t0k", "carol").build();
        let mut i = info();
        i.kind = TransportKind::WebSocket;
        i.details_mut().http_headers = vec![("Cookie".into(), "mqtt_token=t0k".into())];
        let (step, s) = auth(&a, &connect(ProtocolVersion::V3_1_1, None, None), &i);
        assert_eq!(step, AuthStep::Accept);
        assert_eq!(s.identity.as_deref(), Some("carol"));
        i.details_mut().http_headers = vec![("Authorization".into(), "Bearer bad".into())];
        let (step, _) = auth(&a, &connect(ProtocolVersion::V3_1_1, None, None), &i);
        assert_eq!(step, AuthStep::Refuse(ConnectReason::BadUserNameOrPassword));
    }
}
