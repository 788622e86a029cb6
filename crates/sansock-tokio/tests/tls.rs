//! TLS handshakes over loopback TCP with a PKI generated in the test.

mod common;

use std::sync::Arc;

use common::{Ca, Pki, TempDir};
use sansock_tokio::Error;
use sansock_tokio::tls::{
    self, ClientAuth, ClientConfig, ClientIdentity, accept_tls, client_config, connect_tls,
    root_store_from_pem, tls_acceptor_from_pem,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    let pki = Pki::issued_by(&ca);
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
    let pki = Pki::issued_by(&ca);
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
    let pki = Pki::issued_by(&ca);
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
    let pki = Pki::issued_by(&ca);
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
    let pki = Pki::issued_by(&ca);
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
    let pki = Pki::issued_by(&ca);
    // The client's certificate comes from a CA the server does not trust.
    let rogue = Pki::issued_by(&Ca::new("rogue CA"));
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
    let pki = Pki::issued_by(&ca);
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
    let pki = Pki::issued_by(&ca);
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
