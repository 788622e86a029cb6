//! TLS for `wss://`, both roles, on rustls.
//!
//! Every configuration built here names its crypto provider explicitly (*ring*),
//! so nothing depends on a process-wide default provider being installed and
//! nothing panics when none is. *ring* rather than aws-lc-rs because it builds
//! with only a C compiler — aws-lc-rs wants cmake and a longer build.
//!
//! The default client trust store is the Mozilla root program as shipped by
//! `webpki-roots`: it is compiled in, so it behaves the same on every machine,
//! in minimal containers without `/etc/ssl`, and needs no file I/O. Deployments
//! that must trust a private or enterprise CA build their own
//! [`ClientConfig`] (for instance with [`client_config`] and
//! [`root_store_from_pem`]) and pass it in.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::Error;

pub use rustls::{ClientConfig, ServerConfig};
pub use tokio_rustls::client::TlsStream as ClientTlsStream;
pub use tokio_rustls::server::TlsStream as ServerTlsStream;
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The ALPN id for HTTP/1.1, the only HTTP the RFC 6455 handshake runs over.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider every configuration here is built with (*ring*).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration used when the caller gives none: webpki roots, no
/// client certificate, TLS 1.2 and 1.3, ALPN `http/1.1`.
///
/// Built once and shared, so TLS session resumption works across connections.
pub fn default_client_config() -> Result<Arc<ClientConfig>, Error> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(config.clone());
    }
    let roots: RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    let config = Arc::new(client_config(roots, None)?);
    Ok(DEFAULT.get_or_init(|| config).clone())
}

/// A client configuration trusting `roots`, optionally presenting a client
/// certificate (mutual TLS), with ALPN `http/1.1`.
///
/// For anything else (custom verification, pinning, other ALPN) build a
/// [`ClientConfig`] directly, starting from
/// `ClientConfig::builder_with_provider(crypto_provider())`.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<ClientIdentity>,
) -> Result<ClientConfig, Error> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => builder.with_client_auth_cert(id.cert_chain, id.key)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(config)
}

/// A certificate chain and its private key, presented by a client for mutual TLS.
pub struct ClientIdentity {
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// Wraps an already-decoded chain (leaf first) and key.
    pub fn new(cert_chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        ClientIdentity { cert_chain, key }
    }

    /// Reads the chain (leaf first) and the key from PEM files.
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        Ok(ClientIdentity {
            cert_chain: load_certs(cert_path)?,
            key: load_private_key(key_path)?,
        })
    }
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        ClientIdentity {
            cert_chain: self.cert_chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.cert_chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Reads every certificate in a PEM file; fails if there is none.
pub fn load_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>, Error> {
    let path = path.as_ref();
    let pem_err = |source| Error::Pem {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if certs.is_empty() {
        return Err(Error::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, Error> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path).map_err(|source| Error::Pem {
        path: path.to_owned(),
        source,
    })
}

/// A trust store holding every certificate of a PEM file (a private CA bundle).
///
/// Fails if the file holds no certificate or one that is not a usable trust anchor.
pub fn root_store_from_pem(path: impl AsRef<Path>) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// Turns a host (domain name or IP literal, IPv6 with or without brackets) into
/// the name TLS checks the server certificate against.
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare)
        .map(|n| n.to_owned())
        .map_err(|_| Error::InvalidServerName(host.to_owned()))
}

/// Runs the client side of a TLS handshake over `stream`.
///
/// `server_name` is the host the certificate must be valid for (what
/// [`WsUrl::host`](crate::url::WsUrl::host) returns). Pass
/// [`default_client_config`] or a custom configuration (own roots or verifier, a
/// client certificate for mutual TLS). Certificate and handshake failures come
/// back as [`Error::Tls`].
pub async fn connect_tls<S>(
    stream: S,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> Result<ClientTlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = self::server_name(server_name)?;
    let tls = TlsConnector::from(config).connect(name, stream).await?;
    tracing::debug!(
        server_name,
        version = ?tls.get_ref().1.protocol_version(),
        "TLS client handshake complete"
    );
    Ok(tls)
}

/// Client-certificate checking for a server (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    ca_path: PathBuf,
    required: bool,
}

impl ClientAuth {
    /// Every client must present a certificate issued by a CA in `ca_path` (PEM).
    pub fn required(ca_path: impl Into<PathBuf>) -> Self {
        ClientAuth {
            ca_path: ca_path.into(),
            required: true,
        }
    }

    /// Clients may present no certificate; one that is presented must chain to a
    /// CA in `ca_path` (PEM).
    pub fn optional(ca_path: impl Into<PathBuf>) -> Self {
        ClientAuth {
            ca_path: ca_path.into(),
            required: false,
        }
    }

    /// The PEM file of trusted client CAs.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// Whether anonymous clients are turned away.
    pub fn is_required(&self) -> bool {
        self.required
    }
}

/// A server configuration from a PEM certificate chain (leaf first) and a PEM
/// private key, with optional client-certificate checking, TLS 1.2 and 1.3,
/// and ALPN `http/1.1`.
pub fn server_config_from_pem(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
    client_auth: Option<ClientAuth>,
) -> Result<ServerConfig, Error> {
    let provider = crypto_provider();
    let chain = load_certs(cert_path)?;
    let key = load_private_key(key_path)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_auth {
        None => builder.with_no_client_auth(),
        Some(auth) => {
            let roots = Arc::new(root_store_from_pem(&auth.ca_path)?);
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            if !auth.required {
                verifier = verifier.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(verifier.build().map_err(Error::ClientVerifier)?)
        }
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(config)
}

/// [`server_config_from_pem`] wrapped in a ready-to-use acceptor.
pub fn tls_acceptor_from_pem(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
    client_auth: Option<ClientAuth>,
) -> Result<TlsAcceptor, Error> {
    server_config_from_pem(cert_path, key_path, client_auth)
        .map(|config| TlsAcceptor::from(Arc::new(config)))
}

/// Runs the server side of a TLS handshake over `stream`; failures (including a
/// missing or untrusted client certificate) come back as [`Error::Tls`].
pub async fn accept_tls<S>(acceptor: &TlsAcceptor, stream: S) -> Result<ServerTlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let tls = acceptor.accept(stream).await?;
    tracing::debug!(
        version = ?tls.get_ref().1.protocol_version(),
        client_certificate = tls.get_ref().1.peer_certificates().is_some(),
        "TLS server handshake complete"
    );
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_needs_no_process_provider() {
        // Nothing in this test binary installs a process-default provider, so this
        // would panic if any builder fell back to it.
        assert!(CryptoProvider::get_default().is_none());
        let a = default_client_config().unwrap();
        let b = default_client_config().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the default config is shared");
        assert_eq!(a.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(CryptoProvider::get_default().is_none());
    }

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("example.com").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name("[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("::1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("bad name"),
            Err(Error::InvalidServerName(_))
        ));
        assert!(server_name("").is_err());
    }

    #[test]
    fn missing_files_are_reported_with_their_path() {
        let err = load_certs("/nonexistent/cert.pem").unwrap_err();
        assert!(matches!(&err, Error::Pem { path, .. } if path.ends_with("cert.pem")));
        assert!(err.to_string().contains("/nonexistent/cert.pem"));
        assert!(matches!(
            server_config_from_pem("/nonexistent/c.pem", "/nonexistent/k.pem", None),
            Err(Error::Pem { .. })
        ));
    }
}
