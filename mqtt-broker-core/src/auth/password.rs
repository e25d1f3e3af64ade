//! Password files: one `username:hash` line per user.
//!
//! ```text
//! # Comments and blank lines are allowed.
//! alice:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$...
//! bob:$scram-sha-256$i=4096$W22ZaJ0SNY7soEsUEjb6gQ==$...:...
//! ```
//!
//! Two kinds of hash:
//!
//! - argon2id [PHC strings](https://github.com/P-H-C/phc-string-format)
//!   (`$argon2id$v=19$m=...,t=...,p=...$SALT$HASH`), for User Name /
//!   Password logins; made by [`PasswordFile::hash_argon2`].
//! - SCRAM-SHA-256 entries,
//!   `$scram-sha-256$i=ITERATIONS$SALT$STOREDKEY:SERVERKEY` (standard
//!   base64), which serve both User Name / Password logins and MQTT 5
//!   SCRAM-SHA-256 enhanced authentication; made by
//!   [`PasswordFile::hash_scram`].
//!
//! The user name is everything before the first `:`, so it cannot contain
//! one. `examples/src/bin/passwd.rs` edits these files as `mosquitto_passwd`
//! does mosquitto's.

use super::{
    error::{FileError, HashError, read},
    scram::{MAX_ITERATIONS, PHC_PREFIX, ScramCredentials},
};
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::try_generate_salt,
};
use std::{collections::HashMap, fmt, path::Path, sync::OnceLock};

/// Largest argon2 memory cost accepted from a file, in KiB (1 GiB): more
/// would let one login take the machine's memory.
const MAX_M_COST: u32 = 1 << 20;
/// Largest argon2 time cost accepted from a file.
const MAX_T_COST: u32 = 64;
/// Largest argon2 parallelism accepted from a file.
const MAX_P_COST: u32 = 64;

#[derive(Clone)]
enum Entry {
    Argon2(Box<PasswordHash>),
    Scram(ScramCredentials),
}

impl Entry {
    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Entry::Argon2(hash) => Argon2::default()
                .verify_password(password, hash.as_ref())
                .is_ok(),
            Entry::Scram(c) => c.verify_password(password),
        }
    }
}

/// The users of a password file and their hashes.
#[derive(Clone, Default)]
pub struct PasswordFile {
    users: HashMap<String, Entry>,
    /// The first user's entry: what a dummy hash for unknown users is made
    /// like, so that they take as long as a known one.
    model: Option<String>,
    dummy: OnceLock<Option<Entry>>,
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&str> = self.users().collect();
        users.sort_unstable();
        f.debug_struct("PasswordFile")
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

impl PasswordFile {
    /// Reads a password file.
    pub fn load(path: impl AsRef<Path>) -> Result<PasswordFile, FileError> {
        let path = path.as_ref();
        PasswordFile::parse(&read(path)?).map_err(|e| e.in_file(path.to_owned()))
    }

    /// Parses a password file's text; an error names the line.
    pub fn parse(text: &str) -> Result<PasswordFile, FileError> {
        let mut file = PasswordFile::default();
        let mut lines_of: HashMap<String, usize> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(FileError::syntax(
                    n,
                    "expected `username:hash` (no `:` on the line)",
                ));
            };
            if user.is_empty() {
                return Err(FileError::syntax(n, "empty user name"));
            }
            let entry = parse_hash(hash).map_err(|m| FileError::syntax(n, m))?;
            if let Some(first) = lines_of.insert(user.to_owned(), n) {
                return Err(FileError::syntax(
                    n,
                    format!("user `{user}` is already on line {first}"),
                ));
            }
            if file.model.is_none() {
                file.model = Some(user.to_owned());
            }
            file.users.insert(user.to_owned(), entry);
        }
        Ok(file)
    }

    /// Whether `password` is `user`'s. An unknown user is checked against
    /// a dummy hash like the file's first entry, so that the answer takes
    /// about as long as for a known user.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(entry) => entry.verify(password),
            None => {
                if let Some(dummy) = self.dummy() {
                    let _ = dummy.verify(password);
                }
                false
            }
        }
    }

    /// `user`'s SCRAM-SHA-256 credentials, if the user has a SCRAM entry.
    pub fn scram_credentials(&self, user: &str) -> Option<ScramCredentials> {
        match self.users.get(user)? {
            Entry::Scram(c) => Some(c.clone()),
            Entry::Argon2(_) => None,
        }
    }

    /// Whether `user` has an entry.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// The user names, in no particular order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// How many users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// An argon2id hash of `password` (default parameters: 19 MiB, 2
    /// passes, 1 lane) with a random salt from the operating system, as a
    /// PHC string for a password file.
    pub fn hash_argon2(password: &[u8]) -> Result<String, HashError> {
        let salt = try_generate_salt().map_err(|e| HashError(e.to_string()))?;
        Argon2::default()
            .hash_password_with_salt(password, &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// A SCRAM-SHA-256 entry for `password` with a random salt and
    /// `iterations` (at least 4096, RFC 7677 section 4: fewer are raised
    /// to 4096), for a password file.
    pub fn hash_scram(password: &[u8], iterations: u32) -> Result<String, HashError> {
        ScramCredentials::generate(password, iterations)
            .map(|c| c.to_phc())
            .map_err(|e| HashError(e.to_string()))
    }

    fn dummy(&self) -> Option<&Entry> {
        self.dummy
            .get_or_init(|| {
                let model = self.model.as_ref().and_then(|u| self.users.get(u));
                dummy_like(model)
            })
            .as_ref()
    }
}

/// An entry no password matches in practice, costing what `model` costs.
fn dummy_like(model: Option<&Entry>) -> Option<Entry> {
    const SALT: &[u8] = b"unknown-user-salt";
    const PASSWORD: &[u8] = b"\0unknown user\0";
    match model {
        Some(Entry::Scram(c)) => Some(Entry::Scram(ScramCredentials::new(
            PASSWORD,
            SALT,
            c.iterations,
        ))),
        Some(Entry::Argon2(h)) => {
            let params = Params::try_from(h.as_ref()).ok()?;
            let algorithm = Algorithm::try_from(h.algorithm.as_str()).ok()?;
            Argon2::new(algorithm, Version::V0x13, params)
                .hash_password_with_salt(PASSWORD, SALT)
                .ok()
                .map(|h| Entry::Argon2(Box::new(h)))
        }
        None => Argon2::default()
            .hash_password_with_salt(PASSWORD, SALT)
            .ok()
            .map(|h| Entry::Argon2(Box::new(h))),
    }
}

fn parse_hash(hash: &str) -> Result<Entry, String> {
    if hash.starts_with(PHC_PREFIX) {
        return ScramCredentials::from_phc(hash)
            .map(Entry::Scram)
            .map_err(str::to_owned);
    }
    if hash.starts_with("$argon2id$") {
        let parsed = PasswordHash::new(hash).map_err(|e| format!("bad argon2id hash: {e}"))?;
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err("the argon2id hash has no salt or no output".into());
        }
        if parsed
            .version
            .is_some_and(|v| Version::try_from(v).is_err())
        {
            return Err("unknown argon2 version".into());
        }
        let params = Params::try_from(&parsed).map_err(|e| format!("bad argon2id hash: {e}"))?;
        if params.m_cost() > MAX_M_COST
            || params.t_cost() > MAX_T_COST
            || params.p_cost() > MAX_P_COST
        {
            return Err(format!(
                "argon2id parameters too costly (at most m={MAX_M_COST}, t={MAX_T_COST}, p={MAX_P_COST})"
            ));
        }
        return Ok(Entry::Argon2(Box::new(parsed)));
    }
    if hash.starts_with("$6$") || hash.starts_with("$7$") {
        return Err(
            "mosquitto_passwd hashes ($6$, $7$) are not supported: set the password again with `passwd`"
                .into(),
        );
    }
    if hash.is_empty() {
        return Err("empty hash".into());
    }
    Err(format!(
        "unknown hash (expected $argon2id$ or {PHC_PREFIX}); a plain-text password is not accepted"
    ))
}

// Iteration counts beyond this are refused by `ScramCredentials::from_phc`.
const _: () = assert!(MAX_ITERATIONS >= 4096);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A cheap argon2id hash (m=64 KiB, t=1) so that debug-build tests
    /// stay fast; verification uses the parameters in the hash.
    fn cheap_argon2(password: &[u8]) -> String {
        let params = Params::new(64, 1, 1, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(password, b"saltsaltsalt")
            .unwrap()
            .to_string()
    }

    #[test]
    fn argon2_and_scram_entries_verify() {
        let scram = PasswordFile::hash_scram(b"s3cret", 4096).unwrap();
        let text = format!(
            "# users\n\nalice:{}\n  bob:{scram}  \r\n",
            cheap_argon2(b"wonderland")
        );
        let f = PasswordFile::parse(&text).unwrap();
        assert_eq!(f.len(), 2);
        assert!(f.contains("alice") && f.contains("bob"));
        assert!(f.verify("alice", b"wonderland"));
        assert!(!f.verify("alice", b"Wonderland"));
        assert!(f.verify("bob", b"s3cret"));
        assert!(!f.verify("bob", b"wonderland"));
        assert!(!f.verify("carol", b"wonderland"));
        assert!(f.scram_credentials("alice").is_none());
        let c = f.scram_credentials("bob").unwrap();
        assert!(c.verify_password(b"s3cret"));
        assert!(f.scram_credentials("carol").is_none());
        assert!(format!("{f:?}").contains("alice"));
        assert!(!format!("{f:?}").contains("argon2"));
    }

    #[test]
    fn hash_argon2_makes_salted_argon2id_phc_strings() {
        let a = PasswordFile::hash_argon2(b"pw").unwrap();
        let b = PasswordFile::hash_argon2(b"pw").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "random salts");
        let f = PasswordFile::parse(&format!("u:{a}")).unwrap();
        assert!(f.verify("u", b"pw"));
        assert!(!f.verify("u", b"pw2"));
    }

    #[test]
    fn unknown_users_are_checked_against_a_dummy_like_the_first_entry() {
        let f = PasswordFile::parse(&format!("a:{}", cheap_argon2(b"x"))).unwrap();
        assert!(!f.verify("nobody", b"x"));
        assert!(
            matches!(f.dummy(), Some(Entry::Argon2(h)) if h.params.get_decimal("m") == Some(64))
        );
        let s = PasswordFile::parse(&format!(
            "a:{}",
            PasswordFile::hash_scram(b"x", 5000).unwrap()
        ))
        .unwrap();
        assert!(!s.verify("nobody", b"x"));
        assert!(matches!(s.dummy(), Some(Entry::Scram(c)) if c.iterations == 5000));
        assert!(!PasswordFile::default().verify("nobody", b""));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let good = cheap_argon2(b"x");
        for (text, line, what) in [
            ("nocolon".to_owned(), 1, "no `:`"),
            (format!("# c\n:{good}"), 2, "empty user"),
            (format!("a:{good}\n\nb:\n"), 3, "empty hash"),
            ("a:plaintext".to_owned(), 1, "plain-text"),
            ("a:$7$101$abc$def".to_owned(), 1, "mosquitto_passwd"),
            ("a:$argon2id$v=19$m=64,t=1,p=1$".to_owned(), 1, "argon2id"),
            ("a:$argon2id$garbage".to_owned(), 1, "argon2id"),
            (
                "a:$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
                1,
                "too costly",
            ),
            (
                "a:$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(),
                1,
                "unknown hash",
            ),
            ("a:$scram-sha-256$i=4096$AAAA".to_owned(), 1, "SCRAM"),
            (format!("a:{good}\na:{good}"), 2, "already on line 1"),
        ] {
            match PasswordFile::parse(&text) {
                Err(FileError::Syntax {
                    line: l, message, ..
                }) => {
                    assert_eq!(l, line, "{text:?}: {message}");
                    assert!(message.contains(what), "{text:?}: {message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("mqtt-passwd-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("passwords");
        let ok = PasswordFile::hash_scram(b"x", 4096).unwrap();
        std::fs::write(&path, format!("ok:{ok}\nbad\n")).unwrap();
        let e = PasswordFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("passwords: line 2: expected"), "{e}");
        std::fs::write(&path, format!("ok:{ok}\n")).unwrap();
        assert!(PasswordFile::load(&path).unwrap().verify("ok", b"x"));
        assert!(matches!(
            PasswordFile::load(dir.join("missing")),
            Err(FileError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
