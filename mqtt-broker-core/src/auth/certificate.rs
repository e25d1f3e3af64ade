//! The user name a TLS client certificate gives.

use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

/// Where [`FileAuth`](super::FileAuth) takes a user name from a verified
/// TLS client certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CertIdentity {
    /// Client certificates give no user name (the default).
    #[default]
    Off,
    /// The subject's Common Name (as mosquitto's `use_identity_as_username`).
    CommonName,
    /// The first DNS name or e-mail address among the Subject Alternative
    /// Names.
    SubjectAltName,
}

/// The user name `which` takes from the DER certificate `der`; `None` when
/// it cannot be parsed or has no such name (or `which` is
/// [`CertIdentity::Off`]).
pub fn certificate_identity(der: &[u8], which: CertIdentity) -> Option<String> {
    if which == CertIdentity::Off {
        return None;
    }
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let name = match which {
        CertIdentity::Off => None,
        CertIdentity::CommonName => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned),
        CertIdentity::SubjectAltName => {
            cert.subject_alternative_name()
                .ok()
                .flatten()
                .and_then(|san| {
                    san.value.general_names.iter().find_map(|n| match n {
                        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) => {
                            Some((*s).to_owned())
                        }
                        _ => None,
                    })
                })
        }
    };
    name.filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use mqtt_test_support::tls::Ca;

    #[test]
    fn common_name_and_subject_alt_name() {
        let ca = Ca::new("unit CA");
        let leaf = ca.issue("device-7", &["dev7.example", "10.0.0.7"]);
        let der = leaf.chain[0].as_ref();
        assert_eq!(
            certificate_identity(der, CertIdentity::CommonName).as_deref(),
            Some("device-7")
        );
        assert_eq!(
            certificate_identity(der, CertIdentity::SubjectAltName).as_deref(),
            Some("dev7.example")
        );
        assert_eq!(certificate_identity(der, CertIdentity::Off), None);
        // Only an IP address: no SAN name.
        let ip = ca.issue("ip-only", &["10.0.0.8"]);
        assert_eq!(
            certificate_identity(ip.chain[0].as_ref(), CertIdentity::SubjectAltName),
            None
        );
    }

    #[test]
    fn garbage_is_no_identity() {
        for der in [&b""[..], b"\x30\x03\x02\x01\x01", &[0xff; 64]] {
            assert_eq!(certificate_identity(der, CertIdentity::CommonName), None);
            assert_eq!(
                certificate_identity(der, CertIdentity::SubjectAltName),
                None
            );
        }
    }
}
