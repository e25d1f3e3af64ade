//! URL-style broker addresses.

use crate::TransportError;
use core::fmt;

/// How to reach a broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `mqtt://`: plain TCP, default port 1883.
    Mqtt,
    /// `mqtts://`: TLS, default port 8883.
    Mqtts,
    /// `ws://`: WebSocket, default port 80.
    Ws,
    /// `wss://`: WebSocket over TLS, default port 443.
    Wss,
}

impl Scheme {
    /// The scheme's default port.
    pub const fn default_port(self) -> u16 {
        match self {
            Scheme::Mqtt => 1883,
            Scheme::Mqtts => 8883,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        }
    }

    /// Whether the scheme runs over TLS.
    pub const fn is_tls(self) -> bool {
        matches!(self, Scheme::Mqtts | Scheme::Wss)
    }

    /// Whether the scheme is a WebSocket one.
    pub const fn is_websocket(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }
}

/// A broker address: `mqtt://host:1883`, `mqtts://host:8883`,
/// `ws://host:8080/mqtt`, `wss://host:8443/mqtt`. IPv6 hosts go in
/// brackets (`mqtt://[::1]:1883`). Without a path, WebSocket addresses use
/// `/mqtt`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path, for WebSocket addresses (always starts with `/`).
    pub path: String,
}

impl ServerAddr {
    /// Parses an address.
    pub fn parse(url: &str) -> Result<ServerAddr, TransportError> {
        let bad = |why: &str| TransportError::InvalidAddress(format!("{url}: {why}"));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("missing scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => Scheme::Mqtt,
            "mqtts" | "ssl" | "tls" => Scheme::Mqtts,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            other => return Err(bad(&format!("unknown scheme {other:?}"))),
        };
        // The authority ends at the path, query or fragment; a fragment is dropped.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let tail = tail.split('#').next().unwrap_or("");
        if authority.contains('@') {
            return Err(bad(
                "credentials in the address are not supported; give them in the CONNECT options",
            ));
        }
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (host, rest) = after.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match rest.strip_prefix(':') {
                Some(p) => Some(p),
                None if rest.is_empty() => None,
                None => return Err(bad("unexpected text after ']'")),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                // An IPv6 address must be in brackets.
                Some((h, _)) if h.contains(':') => {
                    return Err(bad("IPv6 addresses go in brackets"));
                }
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad("invalid port"))?,
            None => scheme.default_port(),
        };
        let path = match tail {
            "" if scheme.is_websocket() => "/mqtt".to_string(),
            query if query.starts_with('?') && scheme.is_websocket() => format!("/mqtt{query}"),
            other => other.to_string(),
        };
        Ok(ServerAddr {
            scheme,
            host: host.to_string(),
            port,
            path,
        })
    }
}

impl core::str::FromStr for ServerAddr {
    type Err = TransportError;
    fn from_str(s: &str) -> Result<Self, TransportError> {
        ServerAddr::parse(s)
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Mqtt => "mqtt",
            Scheme::Mqtts => "mqtts",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme_with_defaults() {
        let a = ServerAddr::parse("mqtt://broker.local").unwrap();
        assert_eq!(
            (a.scheme, a.host.as_str(), a.port),
            (Scheme::Mqtt, "broker.local", 1883)
        );
        let a = ServerAddr::parse("mqtts://10.0.0.1:9999").unwrap();
        assert_eq!((a.scheme, a.port), (Scheme::Mqtts, 9999));
        let a = ServerAddr::parse("ws://h:8080").unwrap();
        assert_eq!(
            (a.scheme, a.port, a.path.as_str()),
            (Scheme::Ws, 8080, "/mqtt")
        );
        let a = ServerAddr::parse("WSS://h/custom/path").unwrap();
        assert_eq!(
            (a.scheme, a.port, a.path.as_str()),
            (Scheme::Wss, 443, "/custom/path")
        );
        let a = ServerAddr::parse("mqtt://[::1]:1884").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 1884));
        assert_eq!(a.to_string(), "mqtt://[::1]:1884");
    }

    #[test]
    fn query_and_fragment_end_the_host() {
        let a = ServerAddr::parse("ws://h:8080?token=x").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.path.as_str()),
            ("h", 8080, "/mqtt?token=x")
        );
        let a = ServerAddr::parse("wss://h/mqtt?token=x#frag").unwrap();
        assert_eq!((a.host.as_str(), a.path.as_str()), ("h", "/mqtt?token=x"));
        let a = ServerAddr::parse("mqtt://h#frag").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("h", 1883));
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in ["mqtt://fe80::1", "mqtt://::1", "mqtt://user:pw@broker:1883"] {
            assert!(ServerAddr::parse(bad).is_err(), "{bad}");
        }
        for bad in [
            "broker:1883",
            "http://h",
            "mqtt://",
            "mqtt://h:99999",
            "mqtt://[::1",
            "mqtt://h:x",
        ] {
            assert!(ServerAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
