//! Bearer tokens on the WebSocket upgrade request: an
//! `Authorization: Bearer TOKEN` header, or a `mqtt_token=TOKEN` cookie
//! (what a browser page can set, since the browser's WebSocket API cannot
//! add headers).

use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The cookie that carries a token.
pub const TOKEN_COOKIE: &str = "mqtt_token";

/// Tokens and the users they stand for. Kept as SHA-256 digests, so that
/// looking one up does not compare secrets byte by byte.
#[derive(Clone, Default)]
pub struct WsTokens {
    users: HashMap<[u8; 32], String>,
}

impl std::fmt::Debug for WsTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTokens")
            .field("tokens", &self.users.len())
            .finish()
    }
}

/// What the upgrade request said about tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenCheck<'a> {
    /// No token was presented.
    Absent,
    /// A known token: the client is this user.
    User(&'a str),
    /// A token was presented but is not known.
    Unknown,
}

impl WsTokens {
    /// No tokens.
    pub fn new() -> WsTokens {
        WsTokens::default()
    }

    /// Adds `token`, standing for `username`.
    pub fn insert(&mut self, token: &str, username: &str) {
        self.users.insert(digest(token), username.to_owned());
    }

    /// How many tokens.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The token of an upgrade request's headers (the `Authorization`
    /// header first, then the cookie), and whom it stands for.
    pub fn check(&self, headers: &[(String, String)]) -> TokenCheck<'_> {
        match presented(headers) {
            None => TokenCheck::Absent,
            Some(t) => self
                .users
                .get(&digest(t))
                .map_or(TokenCheck::Unknown, |u| TokenCheck::User(u)),
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token in the headers, if any.
fn presented(headers: &[(String, String)]) -> Option<&str> {
    let bearer = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .find_map(|(_, v)| {
            let v = v.trim();
            let (scheme, token) = v.split_once(' ')?;
            let token = token.trim();
            (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
        });
    bearer.or_else(|| {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .find_map(|c| {
                let (name, value) = c.trim().split_once('=')?;
                let value = value.trim().trim_matches('"');
                (name.trim() == TOKEN_COOKIE && !value.is_empty()).then_some(value)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn bearer_header_and_cookie() {
        let mut t = WsTokens::new();
        t.insert("tok-1", "alice");
        t.insert("tok-2", "bob");
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.check(&h(&[("Authorization", "Bearer tok-1")])),
            TokenCheck::User("alice")
        );
        assert_eq!(
            t.check(&h(&[("authorization", "bearer   tok-2 ")])),
            TokenCheck::User("bob")
        );
        assert_eq!(
            t.check(&h(&[("Cookie", "a=b; mqtt_token=tok-2; c=d")])),
            TokenCheck::User("bob")
        );
        assert_eq!(
            t.check(&h(&[("cookie", "x=1"), ("cookie", "mqtt_token=\"tok-1\"")])),
            TokenCheck::User("alice")
        );
        // The header wins over the cookie.
        assert_eq!(
            t.check(&h(&[
                ("Cookie", "mqtt_token=tok-2"),
                ("Authorization", "Bearer tok-1")
            ])),
            TokenCheck::User("alice")
        );
        assert_eq!(
            t.check(&h(&[("Authorization", "Bearer nope")])),
            TokenCheck::Unknown
        );
        for absent in [
            h(&[]),
            h(&[("Authorization", "Basic dXNlcjpwdw==")]),
            h(&[("Authorization", "Bearer ")]),
            h(&[("Cookie", "other_token=tok-1; mqtt_token=")]),
            h(&[("X-Token", "tok-1")]),
        ] {
            assert_eq!(t.check(&absent), TokenCheck::Absent, "{absent:?}");
        }
    }
}
