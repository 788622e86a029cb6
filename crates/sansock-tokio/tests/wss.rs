//! `wss://` end to end over loopback: a WebSocket server behind tokio-rustls with
//! certificates from a CA generated in the test, and `ClientBuilder` clients.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{Ca, Pki, TempDir, listener, within};
use sansock_tokio::tls::{self, ClientAuth, ClientConfig, TlsAcceptor, tls_acceptor_from_pem};
use sansock_tokio::{ClientBuilder, CloseCode, Error, Message};
use tokio::task::JoinHandle;

/// What the server saw on one connection.
#[derive(Debug)]
struct Seen {
    client_certificate: bool,
    path: String,
    messages: Vec<Message>,
}

/// A `wss://` echo server for one connection: TLS, then the WebSocket handshake, then
/// every data message echoed until the peer closes.
async fn wss_echo_once(acceptor: TlsAcceptor) -> (SocketAddr, JoinHandle<Result<Seen, Error>>) {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = tls::accept_tls(&acceptor, tcp).await?;
        let client_certificate = tls.get_ref().1.peer_certificates().is_some();
        let pending = sansock_tokio::read_request(tls, Default::default()).await?;
        let path = pending.request().path.to_owned();
        let mut ws = pending.accept(Default::default()).await?;
        let mut messages = Vec::new();
        while let Some(msg) = ws.recv().await {
            let msg = msg?;
            if msg.is_data() {
                ws.send(msg.clone()).await?;
            }
            messages.push(msg);
        }
        Ok(Seen {
            client_certificate,
            path,
            messages,
        })
    });
    (addr, server)
}

async fn connect(
    host: &str,
    addr: SocketAddr,
    tls: Arc<ClientConfig>,
) -> Result<sansock_tokio::WebSocket<sansock_tokio::ClientStream>, Error> {
    let url = format!("wss://{host}:{}/secure/echo", addr.port());
    let (ws, _) = ClientBuilder::new(&url)?.tls_config(tls).connect().await?;
    Ok(ws)
}

#[tokio::test]
async fn wss_exchanges_messages_with_a_trusted_ca() {
    within(30, async {
        let pki = Pki::new();
        let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, None).unwrap();
        // By name and by IP address: the certificate has both.
        for host in ["localhost", "127.0.0.1"] {
            let (addr, server) = wss_echo_once(acceptor.clone()).await;
            let mut ws = connect(host, addr, pki.client(&pki.ca_pem, false))
                .await
                .unwrap();
            ws.send(Message::text("hello over TLS")).await.unwrap();
            assert_eq!(
                ws.recv().await.unwrap().unwrap(),
                Message::text("hello over TLS")
            );
            let big = Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<_>>());
            ws.send(Message::Binary(big.clone())).await.unwrap();
            assert_eq!(ws.recv().await.unwrap().unwrap(), Message::Binary(big));
            ws.close(CloseCode::NORMAL, "done").await.unwrap();

            let seen = server.await.unwrap().unwrap();
            assert!(!seen.client_certificate);
            assert_eq!(seen.path, "/secure/echo");
            assert_eq!(seen.messages.len(), 3, "{:?}", seen.messages);
            assert!(matches!(
                &seen.messages[2],
                Message::Close(Some(c)) if c.code == CloseCode::NORMAL && c.reason.as_str() == "done"
            ));
        }
    })
    .await;
}

#[tokio::test]
async fn wss_untrusted_ca_is_a_tls_error() {
    within(30, async {
        let pki = Pki::new();
        let other = TempDir::new();
        let other_ca = other.write("other-ca.pem", &Ca::new("other CA").cert.pem());
        let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, None).unwrap();
        let (addr, server) = wss_echo_once(acceptor).await;
        let err = connect("localhost", addr, pki.client(&other_ca, false))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Tls(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "{err:?}"
        );
        // The server's TLS handshake failed too: the client sent an alert and left.
        let server_err = server.await.unwrap().unwrap_err();
        assert!(matches!(server_err, Error::Tls(_)), "{server_err:?}");
    })
    .await;
}

#[tokio::test]
async fn wss_with_the_default_webpki_roots_rejects_a_private_ca() {
    within(30, async {
        let pki = Pki::new();
        let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, None).unwrap();
        let (addr, _server) = wss_echo_once(acceptor).await;
        let url = format!("wss://localhost:{}/", addr.port());
        let err = ClientBuilder::new(&url)
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Tls(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer
                ))
            ),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn wss_mutual_tls_rejects_a_client_without_certificate() {
    within(30, async {
        let pki = Pki::new();
        let acceptor = tls_acceptor_from_pem(
            &pki.server_cert,
            &pki.server_key,
            Some(ClientAuth::required(&pki.ca_pem)),
        )
        .unwrap();
        let (addr, server) = wss_echo_once(acceptor).await;
        let client = connect("localhost", addr, pki.client(&pki.ca_pem, false)).await;

        let server_err = server.await.unwrap().unwrap_err();
        assert!(
            matches!(
                server_err,
                Error::Tls(rustls::Error::NoCertificatesPresented)
            ),
            "{server_err:?}"
        );
        // With TLS 1.3 the client finishes its side of the handshake first and learns of
        // the refusal from the server's alert when it reads the HTTP answer.
        let err = client.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Tls(rustls::Error::AlertReceived(
                    rustls::AlertDescription::CertificateRequired
                ))
            ),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn wss_mutual_tls_accepts_a_client_certificate() {
    within(30, async {
        let pki = Pki::new();
        let acceptor = tls_acceptor_from_pem(
            &pki.server_cert,
            &pki.server_key,
            Some(ClientAuth::required(&pki.ca_pem)),
        )
        .unwrap();
        let (addr, server) = wss_echo_once(acceptor).await;
        let mut ws = connect("localhost", addr, pki.client(&pki.ca_pem, true))
            .await
            .unwrap();
        ws.send(Message::text("authenticated")).await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::text("authenticated")
        );
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        let seen = server.await.unwrap().unwrap();
        assert!(
            seen.client_certificate,
            "the server saw the client certificate"
        );
        assert_eq!(seen.messages[0], Message::text("authenticated"));
    })
    .await;
}
