//! SCRAM-SHA-256 ([RFC 5802], [RFC 7677]) for MQTT 5 enhanced
//! authentication, Authentication Method `SCRAM-SHA-256`.
//!
//! The exchange over MQTT 5 (section 4.12):
//!
//! 1. CONNECT carries the client-first message as Authentication Data.
//! 2. The server answers AUTH 0x18 Continue authentication with the
//!    server-first message ([`ScramServer::start`]).
//! 3. The client answers AUTH 0x18 with the client-final message.
//! 4. The server checks the proof ([`ScramServer::finish`]) and accepts
//!    with a CONNACK whose Authentication Data is the server-final message
//!    (`v=` signature), which the client checks
//!    ([`ScramClient::verify_server`]).
//!
//! No channel binding (the `-PLUS` variant) is offered. User names are
//! escaped as the RFC says (`=2C`, `=3D`); names and passwords are used as
//! given, without SASLprep normalisation (which changes nothing for ASCII).
//!
//! [RFC 5802]: https://www.rfc-editor.org/rfc/rfc5802
//! [RFC 7677]: https://www.rfc-editor.org/rfc/rfc7677

use base64::{
    Engine,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose::STANDARD},
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::{fmt, sync::OnceLock};
use subtle::ConstantTimeEq;

/// The MQTT 5 Authentication Method name of this mechanism.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The fewest iterations [`ScramCredentials::generate`] uses (RFC 7677
/// section 4 asks for at least 4096).
pub const MIN_ITERATIONS: u32 = 4096;

/// The most iterations accepted from a password file or a server-first
/// message: more would let a file or a server make a login take minutes.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// Length of the salts [`ScramCredentials::generate`] makes.
const SALT_LEN: usize = 16;
/// Random bytes in a nonce (base64: 24 printable characters).
const NONCE_BYTES: usize = 18;
/// Longest SCRAM message handled (user names are at most 65,535 bytes in
/// MQTT; this leaves room for escaping and the other attributes).
const MAX_MESSAGE: usize = 256 * 1024;

/// Base64 that decodes with or without padding, encodes with it.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type HmacSha256 = Hmac<Sha256>;

/// Why a SCRAM exchange failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// A message did not follow RFC 5802's grammar.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding (`p=`), which is not offered.
    #[error("channel binding is not supported")]
    ChannelBinding,
    /// The client asked to act as another identity (`a=`).
    #[error("an authorization identity other than the user name is not supported")]
    AuthorizationIdentity,
    /// The user has no SCRAM-SHA-256 credentials.
    #[error("unknown user")]
    UnknownUser,
    /// The client's proof is wrong: a wrong password.
    #[error("invalid client proof (wrong password)")]
    InvalidProof,
    /// The nonce does not continue the exchange's.
    #[error("the nonce does not continue the exchange")]
    NonceMismatch,
    /// An iteration count outside 1..=[`MAX_ITERATIONS`].
    #[error("iteration count {0} out of range (1 to {MAX_ITERATIONS})")]
    Iterations(u64),
    /// The server answered with an error (`e=`).
    #[error("the server refused: {0}")]
    Server(String),
    /// The server's signature is wrong: it does not know the password.
    #[error("the server's signature is wrong")]
    InvalidServerSignature,
    /// A step was taken out of order.
    #[error("SCRAM step out of order: {0}")]
    OutOfOrder(&'static str),
    /// The operating system's random generator failed.
    #[error("the operating system's random generator failed")]
    Random,
}

/// What a server keeps for a SCRAM-SHA-256 user: never the password, only
/// the salt, iteration count, StoredKey and ServerKey (RFC 5802 section 3).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: [u8; 32],
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: [u8; 32],
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("salt", &B64.encode(&self.salt))
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The prefix of [`ScramCredentials::to_phc`] strings.
pub(crate) const PHC_PREFIX: &str = "$scram-sha-256$";

impl ScramCredentials {
    /// Derives the credentials of `password` with `salt` and `iterations`
    /// (clamped to 1..=[`MAX_ITERATIONS`]).
    pub fn new(password: &[u8], salt: &[u8], iterations: u32) -> ScramCredentials {
        let iterations = iterations.clamp(1, MAX_ITERATIONS);
        let salted = salted_password(password, salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        ScramCredentials {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha256(&client_key),
            server_key: hmac(&salted, b"Server Key"),
        }
    }

    /// New credentials for `password` with a random 16-byte salt from the
    /// operating system and `iterations` (raised to at least
    /// [`MIN_ITERATIONS`], at most [`MAX_ITERATIONS`]).
    pub fn generate(password: &[u8], iterations: u32) -> Result<ScramCredentials, ScramError> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|_| ScramError::Random)?;
        Ok(ScramCredentials::new(
            password,
            &salt,
            iterations.max(MIN_ITERATIONS),
        ))
    }

    /// Whether `password` is the one these credentials were made from
    /// (for a plain User Name / Password login), in constant time.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let salted = salted_password(password, &self.salt, self.iterations);
        let stored = sha256(&hmac(&salted, b"Client Key"));
        bool::from(stored.ct_eq(&self.stored_key))
    }

    /// The password-file form:
    /// `$scram-sha-256$i=ITERATIONS$SALT$STOREDKEY:SERVERKEY`, each value in
    /// standard base64.
    pub fn to_phc(&self) -> String {
        format!(
            "{PHC_PREFIX}i={}${}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }

    /// Reads the form [`to_phc`](Self::to_phc) writes.
    pub fn from_phc(s: &str) -> Result<ScramCredentials, &'static str> {
        let rest = s
            .strip_prefix(PHC_PREFIX)
            .ok_or("a SCRAM entry starts with $scram-sha-256$")?;
        let mut parts = rest.split('$');
        let (Some(params), Some(salt), Some(keys), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("a SCRAM entry is $scram-sha-256$i=N$SALT$STOREDKEY:SERVERKEY");
        };
        let iterations = params
            .strip_prefix("i=")
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or("the SCRAM iteration count is not i=NUMBER")?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err("the SCRAM iteration count is out of range (1 to 10000000)");
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| "the SCRAM salt is not base64")?;
        if salt.is_empty() {
            return Err("the SCRAM salt is empty");
        }
        let (stored, server) = keys
            .split_once(':')
            .ok_or("the SCRAM keys are STOREDKEY:SERVERKEY")?;
        let key = |k: &str| -> Result<[u8; 32], &'static str> {
            B64.decode(k)
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v).ok())
                .ok_or("a SCRAM key is not 32 bytes of base64")
        };
        Ok(ScramCredentials {
            salt,
            iterations,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }
}

fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: this never fails.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return [0u8; 32];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// A fresh nonce: random bytes from the operating system in base64
/// (printable, without `,`).
fn random_nonce() -> Result<String, ScramError> {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| ScramError::Random)?;
    Ok(STANDARD.encode(bytes))
}

/// A nonce is printable ASCII except `,` (RFC 5802 section 7).
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// `saslname` escaping of a user name: `,` as `=2C`, `=` as `=3D`.
fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn unescape_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if after.starts_with("=2C") {
            out.push(',');
        } else if after.starts_with("=3D") {
            out.push('=');
        } else {
            return Err(ScramError::Malformed("bad escape in the user name"));
        }
        rest = &after[3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("empty user name"));
    }
    Ok(out)
}

fn text(message: &[u8]) -> Result<&str, ScramError> {
    if message.len() > MAX_MESSAGE {
        return Err(ScramError::Malformed("message too long"));
    }
    std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))
}

/// The value of attribute `name` (`name=value`).
fn attribute(part: Option<&str>, name: char) -> Result<&str, ScramError> {
    part.and_then(|p| p.strip_prefix(name))
        .and_then(|p| p.strip_prefix('='))
        .ok_or(ScramError::Malformed("missing or misplaced attribute"))
}

/// `letter=value`.
fn is_attribute(part: &str) -> bool {
    let b = part.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b'='
}

/// A per-process secret for made-up salts of unknown users, so that a
/// server-first message does not tell whether a user exists.
fn unknown_user_secret() -> Result<&'static [u8; 32], ScramError> {
    static SECRET: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    SECRET
        .get_or_init(|| {
            let mut s = [0u8; 32];
            getrandom::fill(&mut s).ok().map(|()| s)
        })
        .as_ref()
        .ok_or(ScramError::Random)
}

/// The server side of one SCRAM-SHA-256 exchange, kept between the
/// client-first and the client-final message (e.g. in the connection's
/// [`AuthState`](crate::AuthState)).
pub struct ScramServer {
    username: String,
    /// `None` for an unknown user: the exchange goes on with made-up
    /// values and fails at the end, as RFC 5802 section 9 suggests.
    credentials: Option<ScramCredentials>,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A successful SCRAM exchange, seen from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramSuccess {
    /// The user the client proved to be.
    pub username: String,
    /// The server-final message (`v=` and the server's signature), for
    /// the CONNACK's Authentication Data.
    pub server_final: Vec<u8>,
}

impl ScramServer {
    /// Handles the client-first message: looks the user up with
    /// `credentials` and returns the exchange's state and the server-first
    /// message. An unknown user gets a server-first message like a known
    /// one's (same salt every time) and fails in [`finish`](Self::finish).
    pub fn start(
        client_first: &[u8],
        credentials: impl FnOnce(&str) -> Option<ScramCredentials>,
    ) -> Result<(ScramServer, Vec<u8>), ScramError> {
        ScramServer::start_with_nonce(client_first, credentials, &random_nonce()?)
    }

    /// [`start`](Self::start) with the server's part of the nonce given
    /// (printable ASCII without `,`): for reproducing test vectors. A real
    /// exchange needs a fresh random nonce every time.
    pub fn start_with_nonce(
        client_first: &[u8],
        credentials: impl FnOnce(&str) -> Option<ScramCredentials>,
        server_nonce: &str,
    ) -> Result<(ScramServer, Vec<u8>), ScramError> {
        if !valid_nonce(server_nonce) {
            return Err(ScramError::Malformed("invalid server nonce"));
        }
        let message = text(client_first)?;
        // gs2-header: cbind-flag "," [authzid] ","
        let mut gs2 = message.splitn(3, ',');
        let (Some(flag), Some(authzid), Some(bare)) = (gs2.next(), gs2.next(), gs2.next()) else {
            return Err(ScramError::Malformed("client-first has no GS2 header"));
        };
        match flag {
            // "y": the client could bind but thinks we cannot, which is true.
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("bad channel binding flag")),
        }
        let gs2_header = format!("{flag},{authzid},");
        let mut parts = bare.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            // A mandatory extension we do not know (RFC 5802 section 5.1).
            return Err(ScramError::Malformed("unsupported mandatory extension"));
        }
        let username = unescape_name(attribute(first, 'n')?)?;
        if !authzid.is_empty() {
            let authzid = unescape_name(
                authzid
                    .strip_prefix("a=")
                    .ok_or(ScramError::Malformed("bad authorization identity"))?,
            )?;
            if authzid != username {
                return Err(ScramError::AuthorizationIdentity);
            }
        }
        let client_nonce = attribute(parts.next(), 'r')?;
        if !valid_nonce(client_nonce) {
            return Err(ScramError::Malformed("invalid client nonce"));
        }
        // Further attributes are extensions, ignored, but well-formed.
        if !parts.all(is_attribute) {
            return Err(ScramError::Malformed("malformed extension"));
        }
        let known = credentials(&username);
        let (salt, iterations) = match &known {
            Some(c) => (c.salt.clone(), c.iterations),
            None => {
                let salt = hmac(unknown_user_secret()?, username.as_bytes());
                (salt[..SALT_LEN].to_vec(), MIN_ITERATIONS)
            }
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        let server = ScramServer {
            username,
            credentials: known,
            gs2_header,
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok((server, server_first.into_bytes()))
    }

    /// The user name the client gave.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Handles the client-final message: checks the channel binding echo,
    /// the nonce and the proof. On success, the user and the server-final
    /// message.
    pub fn finish(self, client_final: &[u8]) -> Result<ScramSuccess, ScramError> {
        let message = text(client_final)?;
        let (without_proof, proof) = message
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("client-final has no proof"))?;
        let mut parts = without_proof.split(',');
        let binding = attribute(parts.next(), 'c')?;
        let binding = B64
            .decode(binding)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        if binding != self.gs2_header.as_bytes() {
            return Err(ScramError::Malformed(
                "channel binding does not repeat the GS2 header",
            ));
        }
        let nonce = attribute(parts.next(), 'r')?;
        if nonce.as_bytes().ct_eq(self.nonce.as_bytes()).unwrap_u8() != 1 {
            return Err(ScramError::NonceMismatch);
        }
        let proof: [u8; 32] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed("the proof is not 32 bytes of base64"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let Some(credentials) = &self.credentials else {
            return Err(ScramError::UnknownUser);
        };
        let client_signature = hmac(&credentials.stored_key, auth_message.as_bytes());
        let client_key = xor(&proof, &client_signature);
        if sha256(&client_key)
            .ct_eq(&credentials.stored_key)
            .unwrap_u8()
            != 1
        {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hmac(&credentials.server_key, auth_message.as_bytes());
        Ok(ScramSuccess {
            username: self.username,
            server_final: format!("v={}", B64.encode(server_signature)).into_bytes(),
        })
    }
}

/// The client side of a SCRAM-SHA-256 exchange: for tests, and for users
/// of `mqtt-client` (the first message goes in
/// `ClientBuilder::authentication`, the final one in `Client::auth`).
pub struct ScramClient {
    username: String,
    password: Vec<u8>,
    nonce: String,
    server_signature: Option<[u8; 32]>,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A client for `username` and `password` with a random nonce from the
    /// operating system.
    pub fn new(username: &str, password: &[u8]) -> Result<ScramClient, ScramError> {
        ScramClient::with_nonce(username, password, &random_nonce()?)
    }

    /// A client with the given nonce (printable ASCII without `,`): for
    /// reproducing test vectors. A real exchange needs a fresh random nonce.
    pub fn with_nonce(
        username: &str,
        password: &[u8],
        nonce: &str,
    ) -> Result<ScramClient, ScramError> {
        if !valid_nonce(nonce) {
            return Err(ScramError::Malformed("invalid client nonce"));
        }
        if username.is_empty() {
            return Err(ScramError::Malformed("empty user name"));
        }
        Ok(ScramClient {
            username: username.to_owned(),
            password: password.to_vec(),
            nonce: nonce.to_owned(),
            server_signature: None,
        })
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", escape_name(&self.username), self.nonce)
    }

    /// The client-first message (for CONNECT's Authentication Data).
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare()).into_bytes()
    }

    /// Answers the server-first message with the client-final message (for
    /// the client's AUTH), computing the proof from the password.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let message = text(server_first)?;
        let mut parts = message.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            return Err(ScramError::Malformed("unsupported mandatory extension"));
        }
        let nonce = attribute(first, 'r')?;
        if !valid_nonce(nonce) || nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce)
        {
            return Err(ScramError::NonceMismatch);
        }
        let salt = B64
            .decode(attribute(parts.next(), 's')?)
            .map_err(|_| ScramError::Malformed("the salt is not base64"))?;
        if salt.is_empty() {
            return Err(ScramError::Malformed("empty salt"));
        }
        let iterations = attribute(parts.next(), 'i')?;
        let iterations: u64 = iterations
            .parse()
            .map_err(|_| ScramError::Malformed("the iteration count is not a number"))?;
        let iterations = u32::try_from(iterations)
            .ok()
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or(ScramError::Iterations(iterations))?;
        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = sha256(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{message},{without_proof}", self.client_first_bare());
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let proof = xor(&client_key, &client_signature);
        let server_key = hmac(&salted, b"Server Key");
        self.server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (the CONNACK's Authentication Data):
    /// the server proves it knows the password too.
    pub fn verify_server(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let expected = self
            .server_signature
            .ok_or(ScramError::OutOfOrder("verify_server before client_final"))?;
        let message = text(server_final)?;
        let first = message.split(',').next();
        if let Some(e) = first.and_then(|p| p.strip_prefix("e=")) {
            return Err(ScramError::Server(e.to_owned()));
        }
        let signature: [u8; 32] = B64
            .decode(attribute(first, 'v')?)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(ScramError::Malformed(
                "the signature is not 32 bytes of base64",
            ))?;
        if signature.ct_eq(&expected).unwrap_u8() == 1 {
            Ok(())
        } else {
            Err(ScramError::InvalidServerSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    // RFC 7677 section 3.
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn pencil() -> ScramCredentials {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        ScramCredentials::new(b"pencil", &salt, 4096)
    }

    #[test]
    fn rfc7677_client_side() {
        let mut c = ScramClient::with_nonce("user", b"pencil", "rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(c.client_first(), CLIENT_FIRST.as_bytes());
        let fin = c.client_final(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(fin).unwrap(), CLIENT_FINAL);
        c.verify_server(SERVER_FINAL.as_bytes()).unwrap();
        assert_eq!(
            c.verify_server(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(ScramError::InvalidServerSignature)
        );
        assert_eq!(
            c.verify_server(b"e=invalid-proof"),
            Err(ScramError::Server("invalid-proof".into()))
        );
    }

    #[test]
    fn rfc7677_server_side() {
        let (server, first) = ScramServer::start_with_nonce(
            CLIENT_FIRST.as_bytes(),
            |u| (u == "user").then(pencil),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(String::from_utf8(first).unwrap(), SERVER_FIRST);
        assert_eq!(server.username(), "user");
        let ok = server.finish(CLIENT_FINAL.as_bytes()).unwrap();
        assert_eq!(ok.username, "user");
        assert_eq!(String::from_utf8(ok.server_final).unwrap(), SERVER_FINAL);
    }

    #[test]
    fn credentials_round_trip_and_verify_plain_passwords() {
        let c = pencil();
        let phc = c.to_phc();
        assert!(phc.starts_with("$scram-sha-256$i=4096$W22ZaJ0SNY7soEsUEjb6gQ==$"));
        assert_eq!(ScramCredentials::from_phc(&phc).unwrap(), c);
        assert!(c.verify_password(b"pencil"));
        assert!(!c.verify_password(b"pencil2"));
        let g = ScramCredentials::generate(b"x", 1).unwrap();
        assert_eq!(g.iterations, MIN_ITERATIONS);
        assert_eq!(g.salt.len(), SALT_LEN);
        for bad in [
            "$scram-sha-256$i=0$AAAA$AAAA:AAAA",
            "$scram-sha-256$i=4096$AAAA$AAAA",
            "$scram-sha-256$n=4096$AAAA$a:b",
            "$scram-sha-256$i=4096$$a:b",
            "$scram-sha-256$i=4096$!!$a:b",
            "$scram-sha-256$i=99999999999$AAAA$a:b",
            "$scram-sha-256$i=4096$AAAA$AAAA:AAAA$x",
        ] {
            assert!(ScramCredentials::from_phc(bad).is_err(), "{bad}");
        }
    }

    fn exchange(user: &str, password: &[u8]) -> Result<ScramSuccess, ScramError> {
        let mut c = ScramClient::new(user, password).unwrap();
        let creds = ScramCredentials::new(b"right", b"salt", 4096);
        let (s, first) =
            ScramServer::start(&c.client_first(), |u| (u == "a,b=c").then(|| creds.clone()))?;
        let fin = c.client_final(&first)?;
        let ok = s.finish(&fin)?;
        c.verify_server(&ok.server_final)?;
        Ok(ok)
    }

    #[test]
    fn random_nonces_escaped_names_and_failures() {
        assert_eq!(exchange("a,b=c", b"right").unwrap().username, "a,b=c");
        assert_eq!(exchange("a,b=c", b"wrong"), Err(ScramError::InvalidProof));
        assert_eq!(exchange("nobody", b"right"), Err(ScramError::UnknownUser));
    }

    #[test]
    fn unknown_users_get_a_stable_made_up_salt() {
        let first = |nonce: &str| {
            let msg = format!("n,,n=ghost,r={nonce}");
            let (_, f) = ScramServer::start(msg.as_bytes(), |_| None).unwrap();
            let f = String::from_utf8(f).unwrap();
            f.split(',').nth(1).unwrap().to_owned()
        };
        assert_eq!(first("abc"), first("def"));
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let creds = |_: &str| Some(pencil());
        for bad in [
            &b""[..],
            b"n",
            b"n,,",
            b"x,,n=user,r=abc",
            b"n,,r=abc,n=user",
            b"n,,n=,r=abc",
            b"n,,n=us=er,r=abc",
            b"n,,n=user,r=",
            b"n,,n=user,r=a,b",
            b"n,,m=ext,n=user,r=abc",
            b"n,a=other,n=user,r=abc",
            b"\xff,,n=user,r=abc",
        ] {
            assert!(ScramServer::start(bad, creds).is_err(), "{bad:?}");
        }
        assert_eq!(
            ScramServer::start(b"p=tls-unique,,n=user,r=abc", creds).unwrap_err(),
            ScramError::ChannelBinding
        );
        // "y" and a matching authzid are fine.
        assert!(ScramServer::start(b"y,a=user,n=user,r=abc", creds).is_ok());
        let server = || {
            ScramServer::start_with_nonce(CLIENT_FIRST.as_bytes(), creds, "srv")
                .unwrap()
                .0
        };
        for bad in [
            &b""[..],
            b"c=biws,r=rOprNGfwEbeRWgbNEkqOsrv",
            b"c=biws,r=rOprNGfwEbeRWgbNEkqOsrv,p=",
            b"c=biws,r=rOprNGfwEbeRWgbNEkqOsrv,p=!!!",
            b"c=eSws,r=rOprNGfwEbeRWgbNEkqOsrv,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            b"r=rOprNGfwEbeRWgbNEkqOsrv,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        ] {
            assert!(server().finish(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            server()
                .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqOxxx,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
                .unwrap_err(),
            ScramError::NonceMismatch
        );
        let mut c = ScramClient::with_nonce("user", b"pencil", "abc").unwrap();
        assert!(c.verify_server(SERVER_FINAL.as_bytes()).is_err());
        for bad in [
            &b"r=abc,s=AAAA,i=4096"[..],
            b"r=xyzdef,s=AAAA,i=4096",
            b"r=abcdef,s=,i=4096",
            b"r=abcdef,s=AAAA,i=0",
            b"r=abcdef,s=AAAA,i=4294967296",
            b"r=abcdef,s=AAAA,i=x",
            b"r=abcdef,s=AAAA",
            b"m=x,r=abcdef,s=AAAA,i=1",
        ] {
            assert!(c.client_final(bad).is_err(), "{bad:?}");
        }
        assert!(ScramClient::with_nonce("user", b"p", "a,b").is_err());
        assert!(ScramClient::with_nonce("", b"p", "ab").is_err());
    }
}
