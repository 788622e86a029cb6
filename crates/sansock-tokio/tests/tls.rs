//! TLS handshakes over loopback TCP with a PKI generated in the test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use sansock_tokio::Error;
use sansock_tokio::tls::{
    self, ClientAuth, ClientConfig, ClientIdentity, accept_tls, client_config, connect_tls,
    root_store_from_pem, tls_acceptor_from_pem,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sansock-tokio-tls-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// Issues a leaf certificate; returns (certificate PEM, key PEM).
    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "sansock test leaf");
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Files for one server and one client, all issued by `ca`.
struct Pki {
    dir: TempDir,
    ca_pem: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new(ca: &Ca) -> Self {
        let dir = TempDir::new();
        let (server_cert, server_key) = ca.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) =
            ca.issue(&["client.test"], ExtendedKeyUsagePurpose::ClientAuth);
        Pki {
            ca_pem: dir.write("ca.pem", &ca.cert.pem()),
            server_cert: dir.write("server.pem", &server_cert),
            server_key: dir.write("server.key", &server_key),
            client_cert: dir.write("client.pem", &client_cert),
            client_key: dir.write("client.key", &client_key),
            dir,
        }
    }

    fn client(&self, trust: &Path, with_identity: bool) -> Arc<ClientConfig> {
        let identity = with_identity
            .then(|| ClientIdentity::from_pem_files(&self.client_cert, &self.client_key).unwrap());
        Arc::new(client_config(root_store_from_pem(trust).unwrap(), identity).unwrap())
    }
}

/// Runs one handshake: the server accepts, writes "hello" and reads "bye"; the
/// client connects, reads and answers. Returns both sides' outcomes.
async fn handshake(
    acceptor: tls::TlsAcceptor,
    client: Arc<ClientConfig>,
    server_name: &str,
) -> (Result<bool, Error>, Result<Vec<u8>, Error>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = accept_tls(&acceptor, tcp).await?;
        let had_client_cert = tls.get_ref().1.peer_certificates().is_some();
        tls.write_all(b"hello").await?;
        let mut bye = [0u8; 3];
        tls.read_exact(&mut bye).await?;
        assert_eq!(&bye, b"bye");
        tls.shutdown().await?;
        Ok::<_, Error>(had_client_cert)
    };
    let client = async move {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = connect_tls(tcp, server_name, client).await?;
        let mut hello = [0u8; 5];
        tls.read_exact(&mut hello).await?;
        tls.write_all(b"bye").await?;
        tls.flush().await?;
        Ok::<_, Error>(hello.to_vec())
    };
    tokio::join!(server, client)
}

#[tokio::test]
async fn handshake_succeeds_when_the_ca_is_trusted() {
    let ca = Ca::new("test CA");
    let pki = Pki::new(&ca);
    let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, None).unwrap();

    for name in ["localhost", "127.0.0.1"] {
        let (server, client) =
            handshake(acceptor.clone(), pki.client(&pki.ca_pem, false), name).await;
        assert!(!server.unwrap(), "no client certificate was requested");
        assert_eq!(client.unwrap(), b"hello");
    }
}

#[tokio::test]
async fn handshake_fails_with_an_untrusted_ca() {
    let ca = Ca::new("test CA");
    let pki = Pki::new(&ca);
    let other = TempDir::new();
    let other_ca = other.write("other-ca.pem", &Ca::new("other CA").cert.pem());
    let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, None).unwrap();

    let (server, client) = handshake(acceptor, pki.client(&other_ca, false), "localhost").await;
    let err = client.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{err:?}"
    );
    assert!(server.is_err());
}

#[tokio::test]
async fn handshake_fails_for_the_wrong_name() {
    let ca = Ca::new("test CA");
    let pki = Pki::new(&ca);
    let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, None).unwrap();
    let (_, client) = handshake(acceptor, pki.client(&pki.ca_pem, false), "other.test").await;
    assert!(
        matches!(
            client,
            Err(Error::Tls(rustls::Error::InvalidCertificate(_)))
        ),
        "{client:?}"
    );
}

#[tokio::test]
async fn mutual_tls_required_rejects_a_client_without_certificate() {
    let ca = Ca::new("test CA");
    let pki = Pki::new(&ca);
    let acceptor = tls_acceptor_from_pem(
        &pki.server_cert,
        &pki.server_key,
        Some(ClientAuth::required(&pki.ca_pem)),
    )
    .unwrap();

    let (server, client) = handshake(acceptor, pki.client(&pki.ca_pem, false), "localhost").await;
    let server_err = server.unwrap_err();
    assert!(
        matches!(
            server_err,
            Error::Tls(rustls::Error::NoCertificatesPresented)
        ),
        "{server_err:?}"
    );
    // In TLS 1.3 the client finishes its handshake first and learns of the
    // rejection from the alert on its first read; either way it gets no data.
    assert!(client.is_err(), "{client:?}");
}

#[tokio::test]
async fn mutual_tls_required_accepts_a_client_certificate() {
    let ca = Ca::new("test CA");
    let pki = Pki::new(&ca);
    let acceptor = tls_acceptor_from_pem(
        &pki.server_cert,
        &pki.server_key,
        Some(ClientAuth::required(&pki.ca_pem)),
    )
    .unwrap();
    let (server, client) = handshake(acceptor, pki.client(&pki.ca_pem, true), "localhost").await;
    assert!(server.unwrap(), "the server saw the client certificate");
    assert_eq!(client.unwrap(), b"hello");
}

#[tokio::test]
async fn mutual_tls_rejects_a_client_certificate_from_another_ca() {
    let ca = Ca::new("test CA");
    let pki = Pki::new(&ca);
    // The client's certificate comes from a CA the server does not trust.
    let rogue = Pki::new(&Ca::new("rogue CA"));
    let acceptor = tls_acceptor_from_pem(
        &pki.server_cert,
        &pki.server_key,
        Some(ClientAuth::required(&pki.ca_pem)),
    )
    .unwrap();
    let identity = ClientIdentity::from_pem_files(&rogue.client_cert, &rogue.client_key).unwrap();
    let client_cfg =
        Arc::new(client_config(root_store_from_pem(&pki.ca_pem).unwrap(), Some(identity)).unwrap());
    let (server, client) = handshake(acceptor, client_cfg, "localhost").await;
    assert!(
        matches!(
            server,
            Err(Error::Tls(rustls::Error::InvalidCertificate(_)))
        ),
        "{server:?}"
    );
    assert!(client.is_err());
}

#[tokio::test]
async fn mutual_tls_optional_accepts_both() {
    let ca = Ca::new("test CA");
    let pki = Pki::new(&ca);
    let auth = ClientAuth::optional(&pki.ca_pem);
    assert!(!auth.is_required());
    let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, Some(auth)).unwrap();

    let (server, client) = handshake(
        acceptor.clone(),
        pki.client(&pki.ca_pem, false),
        "localhost",
    )
    .await;
    assert!(!server.unwrap());
    assert_eq!(client.unwrap(), b"hello");

    let (server, client) = handshake(acceptor, pki.client(&pki.ca_pem, true), "localhost").await;
    assert!(server.unwrap());
    assert_eq!(client.unwrap(), b"hello");
}

#[test]
fn bad_pem_files_are_reported() {
    let ca = Ca::new("test CA");
    let pki = Pki::new(&ca);
    let empty = pki.dir.write("empty.pem", "no PEM here\n");

    assert!(matches!(
        tls::server_config_from_pem(&empty, &pki.server_key, None),
        Err(Error::NoCertificates { .. })
    ));
    // A certificate file given where the key belongs holds no key.
    assert!(matches!(
        tls::server_config_from_pem(&pki.server_cert, &pki.server_cert, None),
        Err(Error::Pem { .. })
    ));
    // A key that does not match the certificate.
    assert!(matches!(
        tls::server_config_from_pem(&pki.server_cert, &pki.client_key, None),
        Err(Error::Tls(_))
    ));
    assert!(matches!(
        tls::server_config_from_pem(
            &pki.server_cert,
            &pki.server_key,
            Some(ClientAuth::required(&empty))
        ),
        Err(Error::NoCertificates { .. })
    ));
    let truncated = pki
        .dir
        .write("truncated.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    assert!(matches!(
        tls::load_certs(&truncated),
        Err(Error::Pem { .. })
    ));
}
