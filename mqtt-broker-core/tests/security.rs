//! The broker runtime with `FileAuth`: password logins (argon2id and
//! SCRAM-SHA-256 entries), MQTT 5 SCRAM-SHA-256 enhanced authentication,
//! TLS client certificates, WebSocket bearer tokens and the ACL, checked
//! with our mqtt-client, raw packets and Debian's mosquitto_pub /
//! mosquitto_sub.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mqtt_broker_core::{
    Broker, BrokerConfig, ListenerConfig, ServerTls,
    auth::{Acl, CertIdentity, FileAuth, PasswordFile, SCRAM_SHA_256, ScramClient},
};
use mqtt_client::{
    ClientBuilder, ClientTls, ConnectionEvent, Message, ProtocolVersion, QoS, Roots,
};
use mqtt_codec::{
    Auth, AuthProperties, AuthReason, Bytes, BytesMut, Connect, ConnectReason, Encode, MqttStr,
    PubAckReason, Publish, SubAckReason,
};
use mqtt_test_support::tls::{Ca, Leaf};
use std::{path::PathBuf, process::Output, sync::Arc, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);
const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

const ACL: &str = "
# Anonymous clients: nothing.

user alice
topic readwrite alice/#
topic write news/#
topic write public/open/#

user bob
topic read public/#
topic read news/public/#
topic read alice/+/out
topic write bob/#

user device-1
topic readwrite devices/device-1/#

user carol
topic readwrite carol/#

# Each client has its own corner.
pattern readwrite clients/%c/#
";

/// alice: argon2id (the real default parameters); bob and carol:
/// SCRAM-SHA-256 entries, which serve plain logins too.
fn password_file() -> PasswordFile {
    let text = format!(
        "# test users\nalice:{}\n\nbob:{}\ncarol:{}\n",
        PasswordFile::hash_argon2(b"alice-pw").unwrap(),
        PasswordFile::hash_scram(b"bob-pw", 4096).unwrap(),
        PasswordFile::hash_scram(b"carol-pw", 4096).unwrap(),
    );
    PasswordFile::parse(&text).unwrap()
}

fn file_auth() -> mqtt_broker_core::auth::FileAuthBuilder {
    FileAuth::builder()
        .password_file(password_file())
        .acl(Acl::parse(ACL).unwrap())
}

struct Running {
    broker: Broker,
    tcp: u16,
    ws: u16,
    /// TLS that requires a client certificate from `ca`.
    mtls: u16,
    ca: Ca,
}

async fn start(auth: FileAuth) -> Running {
    if let Ok(level) = std::env::var("MQTT_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_max_level(level.parse().unwrap_or(tracing::Level::DEBUG))
            .with_test_writer()
            .try_init();
    }
    let ca = Ca::new("security test CA");
    let leaf = ca.issue("localhost", &["localhost"]);
    let tls = ServerTls {
        certs: leaf.chain.clone(),
        key: Arc::new(leaf.key.clone_key()),
        client_ca: Some(vec![ca.cert()]),
        alpn: Vec::new(),
    };
    let broker = Broker::new(BrokerConfig::default(), Arc::new(auth));
    let any = "127.0.0.1:0".parse().unwrap();
    let tcp = broker
        .listen(ListenerConfig::Tcp(any))
        .await
        .unwrap()
        .port();
    let ws = broker.listen(ListenerConfig::Ws(any)).await.unwrap().port();
    let mtls = broker
        .listen(ListenerConfig::Tls(any, tls))
        .await
        .unwrap()
        .port();
    Running {
        broker,
        tcp,
        ws,
        mtls,
        ca,
    }
}

impl Running {
    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.tcp)
    }

    fn client(&self, url: &str, v: ProtocolVersion, id: &str) -> ClientBuilder {
        ClientBuilder::new(url)
            .unwrap()
            .version(v)
            .client_id(id)
            .tls(ClientTls {
                roots: Roots::Custom(vec![self.ca.cert()]),
                ..ClientTls::default()
            })
            .reconnect(mqtt_client::Reconnect::off())
    }

    fn user(&self, v: ProtocolVersion, id: &str, user: &str, password: &str) -> ClientBuilder {
        self.client(&self.url(), v, id)
            .credentials(user, password.as_bytes().to_vec())
    }

    fn mtls_client(&self, v: ProtocolVersion, id: &str, leaf: &Leaf) -> ClientBuilder {
        ClientBuilder::new(&format!("mqtts://localhost:{}", self.mtls))
            .unwrap()
            .version(v)
            .client_id(id)
            .connect_timeout(WAIT)
            .connack_timeout(WAIT)
            .tls(ClientTls {
                roots: Roots::Custom(vec![self.ca.cert()]),
                identity: Some((leaf.chain.clone(), Arc::new(leaf.key.clone_key()))),
                ..ClientTls::default()
            })
            .reconnect(mqtt_client::Reconnect::off())
    }
}

/// Sends a CONNECT on a raw connection; returns the CONNACK's reason
/// code byte (3.1.1: the return code) after checking that the server then
/// closed the connection.
async fn refusal(port: u16, v: ProtocolVersion, user: Option<&str>, pw: Option<&[u8]>) -> u8 {
    let mut c = Connect::new(v, MqttStr::try_from("raw").unwrap());
    c.username = user.map(|u| MqttStr::try_from(u).unwrap());
    c.password = pw.map(Bytes::copy_from_slice);
    let mut buf = BytesMut::new();
    c.encode(v, &mut buf).unwrap();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(&buf).await.unwrap();
    let mut reply = Vec::new();
    // [MQTT-3.1.4-2], [MQTT-3.2.2-7] (3.1.1 [MQTT-3.2.2-5]): refused, then closed.
    tokio::time::timeout(WAIT, s.read_to_end(&mut reply))
        .await
        .expect("the server closes a refused connection")
        .unwrap();
    assert!(reply.len() >= 4 && reply[0] == 0x20, "{reply:?}");
    // [MQTT-3.2.2-6] (3.1.1 [MQTT-3.2.2-4]): Session Present 0 with a non-zero code.
    assert_eq!(reply[2], 0, "{reply:?}");
    reply[3]
}

async fn recv(m: &mut mqtt_client::Messages) -> Publish {
    tokio::time::timeout(WAIT, m.recv())
        .await
        .expect("a message in time")
        .expect("stream open")
}

async fn none_within(m: &mut mqtt_client::Messages, d: Duration) {
    if let Ok(Some(p)) = tokio::time::timeout(d, m.recv()).await {
        panic!("unexpected message on {}", p.topic());
    }
}

fn refused_with(e: &mqtt_client::Error) -> Option<ConnectReason> {
    e.connect_reason()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_logins_in_both_versions() {
    let b = start(file_auth().build()).await;
    for v in VERSIONS {
        let tag = u8::from(v.is_v5());
        // argon2id and SCRAM entries both take a plain password.
        for (user, pw) in [("alice", "alice-pw"), ("bob", "bob-pw")] {
            let (c, _) = b
                .user(v, &format!("{user}{tag}"), user, pw)
                .connect()
                .await
                .unwrap();
            // [MQTT-3.1.4-5] (3.1.1 [MQTT-3.1.4-4])
            assert_eq!(c.connack().unwrap().reason, ConnectReason::Success);
            c.disconnect().await.unwrap();
        }
        let (bad, unknown, anonymous) = if v.is_v5() {
            (0x86, 0x86, 0x87)
        } else {
            (4, 4, 5)
        };
        // [MQTT-3.1.4-2]: a wrong password, an unknown user, a user name
        // without password, a password without user name (MQTT 5 only).
        assert_eq!(refusal(b.tcp, v, Some("alice"), Some(b"wrong")).await, bad);
        assert_eq!(refusal(b.tcp, v, Some("bob"), Some(b"alice-pw")).await, bad);
        assert_eq!(
            refusal(b.tcp, v, Some("mallory"), Some(b"x")).await,
            unknown
        );
        assert_eq!(refusal(b.tcp, v, Some("alice"), None).await, bad);
        if v.is_v5() {
            assert_eq!(refusal(b.tcp, v, None, Some(b"alice-pw")).await, bad);
        }
        // Anonymous clients are refused unless allowed.
        assert_eq!(refusal(b.tcp, v, None, None).await, anonymous);
        // Our client reports the reason.
        let e = b
            .user(v, "wrong", "alice", "nope")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(refused_with(&e), Some(ConnectReason::BadUserNameOrPassword));
        let e = b.client(&b.url(), v, "anon").connect().await.unwrap_err();
        assert_eq!(refused_with(&e), Some(ConnectReason::NotAuthorized));
    }
    b.broker.shutdown().await;

    let open = start(file_auth().allow_anonymous(true).build()).await;
    for v in VERSIONS {
        let (c, _) = open.client(&open.url(), v, "anon").connect().await.unwrap();
        assert_eq!(c.connack().unwrap().reason, ConnectReason::Success);
        c.disconnect().await.unwrap();
        // Credentials are still checked when given.
        assert_eq!(
            refusal(open.tcp, v, Some("alice"), Some(b"wrong")).await,
            if v.is_v5() { 0x86 } else { 4 }
        );
    }
    open.broker.shutdown().await;
}

/// Runs the SCRAM-SHA-256 exchange with our client: CONNECT with the
/// client-first message, the server's AUTH, our AUTH, then CONNACK.
/// (`Client::events`' first call sees the events since the client started,
/// so the server's AUTH is never missed, on any runtime.)
async fn scram_login(
    b: &Running,
    id: &str,
    user: &str,
    password: &[u8],
) -> Result<mqtt_client::Client, Arc<mqtt_client::Error>> {
    let mut scram = ScramClient::new(user, password).unwrap();
    let (client, _) = b
        .client(&b.url(), ProtocolVersion::V5, id)
        .authentication(SCRAM_SHA_256, Some(scram.client_first().into()))
        .start();
    let mut events = client.events();
    loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("an event in time")
            .expect("events open");
        match event {
            ConnectionEvent::Auth(auth) => {
                // [MQTT-4.12.0-2], [MQTT-4.12.0-5]
                assert_eq!(auth.reason, AuthReason::ContinueAuthentication);
                assert_eq!(
                    auth.properties
                        .authentication_method
                        .as_ref()
                        .map(MqttStr::as_str),
                    Some(SCRAM_SHA_256)
                );
                let server_first = auth.properties.authentication_data.unwrap_or_default();
                let client_final = scram.client_final(&server_first).unwrap();
                // [MQTT-4.12.0-3]
                client
                    .auth(Auth {
                        reason: AuthReason::ContinueAuthentication,
                        properties: AuthProperties {
                            authentication_method: MqttStr::from_static(SCRAM_SHA_256).ok(),
                            authentication_data: Some(client_final.into()),
                            ..AuthProperties::default()
                        },
                    })
                    .await
                    .unwrap();
            }
            ConnectionEvent::Connected(connack) => {
                assert_eq!(connack.reason, ConnectReason::Success);
                // The server-final message belongs in the CONNACK
                // ([MQTT-4.12.0-5] with RFC 5802's last step). The broker
                // cannot send it yet (hooks cannot set CONNACK data); when
                // it does, the client checks the server's signature.
                if let Some(server_final) = &connack.properties.authentication_data {
                    scram.verify_server(server_final).unwrap();
                }
                return Ok(client);
            }
            ConnectionEvent::Disconnected(e) => return Err(e),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_256_enhanced_authentication() {
    let b = start(file_auth().build()).await;
    let carol = scram_login(&b, "scram-ok", "carol", b"carol-pw")
        .await
        .unwrap();
    // The SCRAM identity is the user the ACL sees.
    let (probe, mut messages) = b
        .user(ProtocolVersion::V5, "scram-probe", "carol", "carol-pw")
        .connect()
        .await
        .unwrap();
    probe.subscribe("carol/#", QoS::AtLeastOnce).await.unwrap();
    carol
        .publish(Message::new("carol/x", "hi").unwrap().qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    assert_eq!(recv(&mut messages).await.topic(), "carol/x");
    let suback = carol.subscribe("alice/#", QoS::AtLeastOnce).await.unwrap();
    assert_eq!(suback.reasons, [SubAckReason::NotAuthorized]);
    carol.disconnect().await.unwrap();
    probe.disconnect().await.unwrap();

    // A wrong password, an unknown user, a user without a SCRAM entry.
    for (user, pw) in [
        ("carol", &b"wrong"[..]),
        ("mallory", b"x"),
        ("alice", b"alice-pw"),
    ] {
        let e = scram_login(&b, "scram-bad", user, pw).await.unwrap_err();
        // [MQTT-4.12.0-4]
        assert_eq!(
            refused_with(&e),
            Some(ConnectReason::BadUserNameOrPassword),
            "{user}"
        );
    }
    // [MQTT-4.12.0-1]: a method the server does not know.
    let e = b
        .client(&b.url(), ProtocolVersion::V5, "other-method")
        .authentication("GS2-KRB5", None)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        refused_with(&e),
        Some(ConnectReason::BadAuthenticationMethod)
    );
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificate_common_name_is_the_user_name() {
    let b = start(
        file_auth()
            .certificate_identity(CertIdentity::CommonName)
            .build(),
    )
    .await;
    let leaf = b.ca.issue("device-1", &["device-1.example"]);
    for v in VERSIONS {
        let tag = u8::from(v.is_v5());
        // No user name or password: the certificate is the credential.
        let (c, mut messages) = b
            .mtls_client(v, &format!("dev{tag}"), &leaf)
            .connect()
            .await
            .unwrap();
        let suback = c
            .subscribe_with(
                vec![
                    subscription("devices/device-1/#"),
                    subscription("devices/device-2/#"),
                ],
                Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(suback.reasons[0], SubAckReason::GrantedQoS1);
        assert_eq!(suback.reasons[1], denied(v));
        c.publish(
            Message::new("devices/device-1/state", "on")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
        let m = recv(&mut messages).await;
        assert_eq!(m.topic(), "devices/device-1/state");
        c.disconnect().await.unwrap();
    }
    // A certificate for another name gets that user's rules (none here).
    let other = b.ca.issue("device-2", &[]);
    let (c, _) = b
        .mtls_client(ProtocolVersion::V5, "dev2", &other)
        .connect()
        .await
        .unwrap();
    let suback = c
        .subscribe("devices/device-1/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(suback.reasons, [SubAckReason::NotAuthorized]);
    c.disconnect().await.unwrap();
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_expired_and_missing_client_certificates_fail_the_handshake() {
    let b = start(
        file_auth()
            .certificate_identity(CertIdentity::CommonName)
            .build(),
    )
    .await;
    let stranger = Ca::new("another CA").issue("device-1", &["device-1"]);
    let expired = b.ca.issue_expired("device-1");
    // Refused in the TLS handshake, before any CONNECT; the server's alert
    // says why.
    for (what, leaf, alert) in [
        ("untrusted", Some(&stranger), "UnknownCA"),
        ("expired", Some(&expired), "CertificateExpired"),
        ("none", None, "CertificateRequired"),
    ] {
        let builder = match leaf {
            Some(l) => b.mtls_client(ProtocolVersion::V5, what, l),
            None => b
                .client(
                    &format!("mqtts://localhost:{}", b.mtls),
                    ProtocolVersion::V5,
                    what,
                )
                .connack_timeout(WAIT),
        };
        let e = builder.connect().await.expect_err(what);
        assert!(
            matches!(e, mqtt_client::Error::Transport(_)) && format!("{e:?}").contains(alert),
            "{what}: {e:?}"
        );
    }
    assert_eq!(b.broker.sessions(), 0);
    b.broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_bearer_token_and_cookie() {
    let b = start(
        file_auth()
            .ws_token("tok-alice", "alice")
            .ws_token("tok-bob", "bob")
            .build(),
    )
    .await;
    let url = format!("ws://127.0.0.1:{}/mqtt", b.ws);
    for v in VERSIONS {
        let tag = u8::from(v.is_v5());
        let (bob, mut messages) = b
            .client(&url, v, &format!("ws-bob{tag}"))
            .ws_header("Cookie", "theme=dark; mqtt_token=tok-bob")
            .connect()
            .await
            .unwrap();
        // The token's user is the one the ACL sees.
        let suback = bob
            .subscribe_with(
                vec![subscription("alice/+/out"), subscription("alice/#")],
                Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(suback.reasons[0], SubAckReason::GrantedQoS1);
        assert_eq!(suback.reasons[1], denied(v));
        let (alice, _) = b
            .client(&url, v, &format!("ws-alice{tag}"))
            .ws_header("Authorization", "Bearer tok-alice")
            .connect()
            .await
            .unwrap();
        alice
            .publish(
                Message::new("alice/1/out", "x")
                    .unwrap()
                    .qos(QoS::AtLeastOnce),
            )
            .await
            .unwrap();
        assert_eq!(recv(&mut messages).await.topic(), "alice/1/out");
        alice.disconnect().await.unwrap();
        bob.disconnect().await.unwrap();
        // An unknown token is refused; no token and no credentials too.
        let e = b
            .client(&url, v, "ws-bad")
            .ws_header("Authorization", "Bearer forged")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(refused_with(&e), Some(ConnectReason::BadUserNameOrPassword));
        let e = b.client(&url, v, "ws-none").connect().await.unwrap_err();
        assert_eq!(refused_with(&e), Some(ConnectReason::NotAuthorized));
        // A password login still works over WebSocket.
        let (c, _) = b
            .client(&url, v, "ws-pw")
            .credentials("bob", b"bob-pw".to_vec())
            .connect()
            .await
            .unwrap();
        c.disconnect().await.unwrap();
    }
    b.broker.shutdown().await;
}

fn subscription(filter: &str) -> mqtt_codec::Subscription {
    mqtt_codec::Subscription::new(
        mqtt_codec::TopicFilter::try_from(filter).unwrap(),
        QoS::AtLeastOnce,
    )
}

/// A refused subscription: 0x87 in MQTT 5, 0x80 in 3.1.1.
fn denied(v: ProtocolVersion) -> SubAckReason {
    if v.is_v5() {
        SubAckReason::NotAuthorized
    } else {
        SubAckReason::UnspecifiedError
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_refuses_publishes_subscriptions_and_retained_messages() {
    let b = start(file_auth().build()).await;
    for v in VERSIONS {
        let tag = u8::from(v.is_v5());
        let (bob, mut messages) = b
            .user(v, &format!("bob{tag}"), "bob", "bob-pw")
            .connect()
            .await
            .unwrap();
        let (alice, _) = b
            .user(v, &format!("alice{tag}"), "alice", "alice-pw")
            .connect()
            .await
            .unwrap();
        // Subscriptions: a read rule must cover the whole filter
        // ([MQTT-3.8.4-6], [MQTT-3.9.3-1], [MQTT-3.9.3-2]: 0x87 per filter;
        // 3.1.1 [MQTT-3.8.4-5]: 0x80).
        let suback = bob
            .subscribe_with(
                vec![
                    subscription("public/#"),
                    subscription("news/#"),
                    subscription("alice/x/out"),
                    subscription("alice/#"),
                    subscription("bob/#"),
                ],
                Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            suback.reasons,
            [
                SubAckReason::GrantedQoS1,
                denied(v),
                SubAckReason::GrantedQoS1,
                denied(v),
                denied(v),
            ]
        );
        // Publishes: alice may not write public/closed/..., nor bob's
        // topics. 3.1.1 [MQTT-3.3.5-2]: acknowledged normally and
        // dropped; the connection goes on.
        for topic in ["public/closed/x", "bob/x"] {
            let r = alice
                .publish(Message::new(topic, "denied").unwrap().qos(QoS::AtLeastOnce))
                .await;
            if v.is_v5() {
                // Today the broker answers Success; see
                // `refused_publish_gets_puback_not_authorized`.
                assert!(
                    matches!(
                        r,
                        Ok(PubAckReason::Success)
                            | Err(mqtt_client::Error::Refused(PubAckReason::NotAuthorized))
                    ),
                    "{r:?}"
                );
            } else {
                assert_eq!(r.unwrap(), PubAckReason::Success);
            }
        }
        alice
            .publish(
                Message::new("public/open/x", "allowed")
                    .unwrap()
                    .qos(QoS::AtLeastOnce),
            )
            .await
            .unwrap();
        let m = recv(&mut messages).await;
        assert_eq!(m.topic(), "public/open/x");
        assert_eq!(m.payload(), b"allowed");
        none_within(&mut messages, Duration::from_millis(200)).await;
        bob.disconnect().await.unwrap();

        // Retained messages: alice writes news/public/a and news/secret/a.
        for topic in ["news/public/a", "news/secret/a"] {
            alice
                .publish(
                    Message::new(topic, format!("r{tag}"))
                        .unwrap()
                        .qos(QoS::AtLeastOnce)
                        .retain(true),
                )
                .await
                .unwrap();
        }
        let (bob, mut messages) = b
            .user(v, &format!("bob{tag}"), "bob", "bob-pw")
            .connect()
            .await
            .unwrap();
        // `news/#` would match news/secret/a: refused whole, so its retained
        // message is never sent; `news/+/a` likewise; `news/public/#` is
        // allowed and gets only news/public/a.
        let suback = bob
            .subscribe_with(
                vec![
                    subscription("news/#"),
                    subscription("news/+/a"),
                    subscription("news/public/#"),
                ],
                Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            suback.reasons,
            [denied(v), denied(v), SubAckReason::GrantedQoS1]
        );
        let m = recv(&mut messages).await;
        assert_eq!(m.topic(), "news/public/a");
        assert!(m.retain);
        none_within(&mut messages, Duration::from_millis(300)).await;
        alice.disconnect().await.unwrap();
        bob.disconnect().await.unwrap();
    }
    b.broker.shutdown().await;
}

/// The broker checks each retained message's topic with
/// `authorize_subscribe`; FileAuth answers a topic name as a filter
/// without wildcards, the same as `Acl::can_read`.
#[test]
fn retained_topics_are_judged_like_reads() {
    use mqtt_broker_core::{ClientInfo, Hooks};
    let acl = Acl::parse(ACL).unwrap();
    let auth = file_auth().build();
    let a = "127.0.0.1:1".parse().unwrap();
    let client = ClientInfo {
        client_id: "c1".into(),
        username: Some("bob".into()),
        version: ProtocolVersion::V5,
        connection: Arc::new(mqtt_transport_tcp::ConnectionInfo::tcp(a, a)),
    };
    for topic in [
        "news/public/a",
        "news/secret/a",
        "public/x",
        "alice/1/out",
        "alice/1/in",
        "clients/c1/x",
        "clients/c2/x",
    ] {
        let filter = mqtt_codec::TopicFilter::try_from(topic).unwrap();
        assert_eq!(
            auth.authorize_subscribe(&client, &filter),
            acl.can_read("c1", Some("bob"), topic),
            "{topic}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_read_another_clients_pattern_topics() {
    let b = start(file_auth().build()).await;
    for v in VERSIONS {
        let tag = u8::from(v.is_v5());
        let c1 = format!("c1-{tag}");
        let c2 = format!("c2-{tag}");
        let (one, mut ones) = b.user(v, &c1, "bob", "bob-pw").connect().await.unwrap();
        let (two, mut twos) = b.user(v, &c2, "bob", "bob-pw").connect().await.unwrap();
        let own = one
            .subscribe(&format!("clients/{c1}/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        assert_eq!(own.reasons, [SubAckReason::GrantedQoS1]);
        // The same user under another client id: not c1's corner, nor a
        // wildcard over every client's.
        let suback = two
            .subscribe_with(
                vec![
                    subscription(&format!("clients/{c1}/#")),
                    subscription("clients/+/inbox"),
                    subscription(&format!("clients/{c2}/#")),
                ],
                Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            suback.reasons,
            [denied(v), denied(v), SubAckReason::GrantedQoS1]
        );
        // c2 cannot write into c1's corner either.
        let _ = two
            .publish(
                Message::new(&format!("clients/{c1}/inbox"), "from c2")
                    .unwrap()
                    .qos(QoS::AtLeastOnce),
            )
            .await;
        one.publish(
            Message::new(&format!("clients/{c1}/inbox"), "own")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
        let m = recv(&mut ones).await;
        assert_eq!(m.payload(), b"own");
        none_within(&mut ones, Duration::from_millis(200)).await;
        none_within(&mut twos, Duration::from_millis(50)).await;
        one.disconnect().await.unwrap();
        two.disconnect().await.unwrap();
    }
    b.broker.shutdown().await;
}

/// MQTT 5: a PUBLISH the ACL refuses gets PUBACK 0x87 Not authorized
/// (section 3.4.2.1), and a QoS 2 one PUBREC 0x87, which ends its flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_publish_gets_puback_not_authorized() {
    let b = start(file_auth().build()).await;
    let (alice, _) = b
        .user(ProtocolVersion::V5, "alice-puback", "alice", "alice-pw")
        .connect()
        .await
        .unwrap();
    let r = alice
        .publish(Message::new("bob/x", "no").unwrap().qos(QoS::AtLeastOnce))
        .await;
    assert!(
        matches!(
            r,
            Err(mqtt_client::Error::Refused(PubAckReason::NotAuthorized))
        ),
        "{r:?}"
    );
    let r = alice
        .publish(Message::new("bob/x", "no").unwrap().qos(QoS::ExactlyOnce))
        .await;
    assert!(
        matches!(
            r,
            Err(mqtt_client::Error::Refused(PubAckReason::NotAuthorized))
        ),
        "{r:?}"
    );
    // Allowed messages still go through on the same connection.
    alice
        .publish(
            Message::new("alice/x", "yes")
                .unwrap()
                .qos(QoS::ExactlyOnce),
        )
        .await
        .unwrap();
    b.broker.shutdown().await;
}

// ---- Debian's mosquitto clients as the peer ----

struct Mosquitto {
    publish: PathBuf,
    subscribe: PathBuf,
}

fn mosquitto(test: &str) -> Option<Mosquitto> {
    Some(Mosquitto {
        publish: mqtt_test_support::program(test, "mosquitto_pub")?,
        subscribe: mqtt_test_support::program(test, "mosquitto_sub")?,
    })
}

/// Runs mosquitto_pub with `args` after the port and version.
async fn mosquitto_pub(m: &Mosquitto, port: u16, v: &str, args: &[&str]) -> Output {
    tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(&m.publish)
            .args(["-p", &port.to_string(), "-V", v])
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("mosquitto_pub ends in time")
    .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_check_passwords_and_the_acl() {
    let Some(m) = mosquitto("security_mosquitto_clients") else {
        return;
    };
    let b = start(file_auth().build()).await;
    for v in ["mqttv311", "mqttv5"] {
        // A good password, a wrong one, an unknown user, no credentials.
        let ok = mosquitto_pub(
            &m,
            b.tcp,
            v,
            &["-u", "alice", "-P", "alice-pw", "-t", "alice/x", "-m", "hi"],
        )
        .await;
        assert!(ok.status.success(), "{v}: {}", stderr(&ok));
        for (user, pw) in [("alice", "wrong"), ("mallory", "x")] {
            let no = mosquitto_pub(
                &m,
                b.tcp,
                v,
                &["-u", user, "-P", pw, "-t", "alice/x", "-m", "hi"],
            )
            .await;
            assert!(!no.status.success(), "{v} {user}");
            assert!(
                stderr(&no).contains("password"),
                "{v} {user}: {}",
                stderr(&no)
            );
        }
        let anon = mosquitto_pub(&m, b.tcp, v, &["-t", "alice/x", "-m", "hi"]).await;
        assert!(!anon.status.success(), "{v}");
        assert!(stderr(&anon).contains("authori"), "{v}: {}", stderr(&anon));

        // bob reads public/#; alice may write public/open/# only.
        let sub = tokio::process::Command::new(&m.subscribe)
            .args([
                "-p",
                &b.tcp.to_string(),
                "-V",
                v,
                "-u",
                "bob",
                "-P",
                "bob-pw",
            ])
            .args(["-i", &format!("mosq-bob-{v}"), "-t", "public/#", "-q", "1"])
            .args(["-C", "1", "-v", "-W", "10"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let subscribed = b.broker.subscriptions() + 1;
        tokio::time::timeout(WAIT, async {
            while b.broker.subscriptions() < subscribed {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("mosquitto_sub subscribed");
        // Refused by the ACL: 3.1.1 acknowledges and drops it
        // (3.1.1 [MQTT-3.3.5-2]), so mosquitto_pub succeeds either way.
        let denied = mosquitto_pub(
            &m,
            b.tcp,
            v,
            &[
                "-u",
                "alice",
                "-P",
                "alice-pw",
                "-q",
                "1",
                "-t",
                "public/closed/x",
                "-m",
                "denied",
            ],
        )
        .await;
        if v == "mqttv311" {
            assert!(denied.status.success(), "{}", stderr(&denied));
        }
        let allowed = mosquitto_pub(
            &m,
            b.tcp,
            v,
            &[
                "-u",
                "alice",
                "-P",
                "alice-pw",
                "-q",
                "1",
                "-t",
                "public/open/x",
                "-m",
                "allowed",
            ],
        )
        .await;
        assert!(allowed.status.success(), "{}", stderr(&allowed));
        let out = tokio::time::timeout(WAIT, sub.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        // -C 1: the first message it got is the allowed one.
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "public/open/x allowed",
            "{v}"
        );

        // A subscription no read rule covers, and another client's %c topic.
        for (id, filter) in [("mosq-news", "news/#"), ("mosq-c2", "clients/mosq-c1/#")] {
            let out = tokio::time::timeout(
                WAIT,
                tokio::process::Command::new(&m.subscribe)
                    .args([
                        "-p",
                        &b.tcp.to_string(),
                        "-V",
                        v,
                        "-u",
                        "bob",
                        "-P",
                        "bob-pw",
                    ])
                    .args(["-i", id, "-t", filter, "-W", "2"])
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .unwrap()
            .unwrap();
            assert!(
                stderr(&out).contains("denied"),
                "{v} {filter}: {}",
                stderr(&out)
            );
        }
    }
    b.broker.shutdown().await;
}

/// A session belongs to its user: another user reusing the client id is
/// refused (0x87), and cannot kick the owner off or read what the session
/// is owed. Rights withdrawn (a reloaded ACL) also withdraw a resumed
/// session's subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_belong_to_their_user_and_follow_the_acl() {
    let auth = Arc::new(file_auth().build());
    let broker = Broker::new(BrokerConfig::default(), auth.clone());
    let port = broker
        .listen(ListenerConfig::Tcp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap()
        .port();
    let client = |id: &str, user: &str, pw: &str| {
        ClientBuilder::new(&format!("mqtt://127.0.0.1:{port}"))
            .unwrap()
            .version(ProtocolVersion::V5)
            .client_id(id)
            .clean_start(false)
            .session_expiry(Duration::from_secs(600))
            .reconnect(mqtt_client::Reconnect::off())
            .credentials(user, pw.as_bytes().to_vec())
    };
    let (alice, _) = client("alice-phone", "alice", "alice-pw")
        .connect()
        .await
        .unwrap();
    alice
        .subscribe("alice/inbox/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let e = client("alice-phone", "bob", "bob-pw")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        e.connect_reason(),
        Some(ConnectReason::NotAuthorized),
        "{e}"
    );
    // Alice is still connected and served.
    alice
        .publish(
            Message::new("alice/x", "still")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    alice.disconnect().await.unwrap();
    // Offline too: Bob cannot resume her session.
    let e = client("alice-phone", "bob", "bob-pw")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        e.connect_reason(),
        Some(ConnectReason::NotAuthorized),
        "{e}"
    );

    // The ACL is reloaded without alice/#: her resumed session no longer
    // gets alice/inbox messages.
    auth.set_acl(Some(
        Acl::parse("user alice\ntopic readwrite other/#\n").unwrap(),
    ));
    let (alice, mut messages) = client("alice-phone", "alice", "alice-pw")
        .connect()
        .await
        .unwrap();
    assert!(alice.connack().unwrap().session_present);
    auth.set_acl(Some(Acl::parse(ACL).unwrap()));
    let (writer, _) = client("alice-laptop", "alice", "alice-pw")
        .connect()
        .await
        .unwrap();
    writer
        .publish(
            Message::new("alice/inbox/1", "x")
                .unwrap()
                .qos(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), messages.recv())
            .await
            .is_err(),
        "the withdrawn subscription was removed on resume"
    );
    writer.disconnect().await.unwrap();
    alice.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// A Will must be a message its client may publish: checked by the broker
/// when the client connects (0x87 otherwise), with the client id it ends up
/// with (the assigned one when the CONNECT's is empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_the_acl_does_not_allow_is_refused_at_connect() {
    let b = start(file_auth().build()).await;
    let will = |topic: &str| {
        mqtt_codec::Will::new(
            mqtt_codec::TopicName::try_from(topic).unwrap(),
            Bytes::new(),
        )
    };
    // alice may write alice/#, not bob/#.
    let (ok, _) = b
        .user(ProtocolVersion::V5, "alice-will", "alice", "alice-pw")
        .will(will("alice/gone"))
        .connect()
        .await
        .unwrap();
    ok.disconnect().await.unwrap();
    let e = b
        .user(ProtocolVersion::V5, "alice-will2", "alice", "alice-pw")
        .will(will("bob/gone"))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        e.connect_reason(),
        Some(ConnectReason::NotAuthorized),
        "{e}"
    );
    // A client whose id the server assigns is judged the same way.
    let e = b
        .user(ProtocolVersion::V5, "", "alice", "alice-pw")
        .will(will("clients/someone-else/gone"))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        e.connect_reason(),
        Some(ConnectReason::NotAuthorized),
        "{e}"
    );
    b.broker.shutdown().await;
}
