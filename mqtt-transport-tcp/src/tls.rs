//! TLS settings for both sides, built on rustls with the ring provider.

use crate::TransportError;
use rustls::{ClientConfig, RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::{path::Path, sync::Arc};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(e: impl std::fmt::Display) -> TransportError {
    TransportError::TlsConfig(e.to_string())
}

/// Certificates from PEM bytes.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(config_error)?;
    if certs.is_empty() {
        return Err(TransportError::TlsConfig("no certificate in PEM".into()));
    }
    Ok(certs)
}

/// A private key (PKCS#8, PKCS#1 or SEC1) from PEM bytes.
pub fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TransportError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(config_error)
}

fn read(path: &Path) -> Result<Vec<u8>, TransportError> {
    std::fs::read(path).map_err(|e| TransportError::TlsConfig(format!("{}: {e}", path.display())))
}

/// The system's trusted roots, read once per process (reading them is
/// blocking file IO).
fn platform_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// Which certificate authorities a client trusts.
#[derive(Clone, Debug)]
pub enum Roots {
    /// The operating system's trusted roots.
    Platform,
    /// These CA certificates only.
    Custom(Vec<CertificateDer<'static>>),
}

/// Client-side TLS settings.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// Trusted roots.
    pub roots: Roots,
    /// A client certificate chain and its key, for mutual TLS.
    pub identity: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    /// The name to verify the server's certificate against, when it differs
    /// from the host connected to.
    pub server_name: Option<String>,
    /// ALPN protocols to offer (e.g. `b"mqtt"`).
    pub alpn: Vec<Vec<u8>>,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls {
            roots: Roots::Platform,
            identity: None,
            server_name: None,
            alpn: Vec::new(),
        }
    }
}

impl ClientTls {
    /// Trusts the CA certificates in a PEM file.
    pub fn with_ca_file(mut self, path: impl AsRef<Path>) -> Result<ClientTls, TransportError> {
        self.roots = Roots::Custom(certs_from_pem(&read(path.as_ref())?)?);
        Ok(self)
    }

    /// Presents a client certificate (PEM chain and key files) for mutual TLS.
    pub fn with_identity_files(
        mut self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ClientTls, TransportError> {
        let certs = certs_from_pem(&read(cert.as_ref())?)?;
        let key = key_from_pem(&read(key.as_ref())?)?;
        self.identity = Some((certs, Arc::new(key)));
        Ok(self)
    }

    /// The rustls configuration.
    pub fn config(&self) -> Result<Arc<ClientConfig>, TransportError> {
        let mut roots = RootCertStore::empty();
        match &self.roots {
            Roots::Platform => {
                for cert in platform_roots() {
                    let _ = roots.add(cert.clone());
                }
                if roots.is_empty() {
                    return Err(TransportError::TlsConfig(
                        "no trusted roots found on this system".into(),
                    ));
                }
            }
            Roots::Custom(certs) => {
                for cert in certs {
                    roots.add(cert.clone()).map_err(config_error)?;
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .map_err(config_error)?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }
}

/// Server-side TLS settings.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The server's certificate chain, leaf first.
    pub certs: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: Arc<PrivateKeyDer<'static>>,
    /// When set, clients must present a certificate issued by one of these CAs.
    pub client_ca: Option<Vec<CertificateDer<'static>>>,
    /// ALPN protocols accepted, in preference order (e.g. `b"mqtt"`). A
    /// client offering ALPN with none of these is refused, so leave it empty
    /// (or include `http/1.1`) on a WSS listener that browsers use: they
    /// offer `h2` and `http/1.1`.
    pub alpn: Vec<Vec<u8>>,
}

impl ServerTls {
    /// From PEM files for the certificate chain and the key.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<ServerTls, TransportError> {
        Ok(ServerTls {
            certs: certs_from_pem(&read(cert.as_ref())?)?,
            key: Arc::new(key_from_pem(&read(key.as_ref())?)?),
            client_ca: None,
            alpn: Vec::new(),
        })
    }

    /// Requires client certificates issued by the CAs in a PEM file.
    pub fn with_client_ca_file(
        mut self,
        path: impl AsRef<Path>,
    ) -> Result<ServerTls, TransportError> {
        self.client_ca = Some(certs_from_pem(&read(path.as_ref())?)?);
        Ok(self)
    }

    /// The rustls configuration.
    pub fn config(&self) -> Result<Arc<ServerConfig>, TransportError> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?;
        let builder = match &self.client_ca {
            Some(cas) => {
                let mut roots = RootCertStore::empty();
                for ca in cas {
                    roots.add(ca.clone()).map_err(config_error)?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(config_error)?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(self.certs.clone(), self.key.clone_key())
            .map_err(config_error)?;
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }
}
