//! WebSocket connections through an HTTP CONNECT proxy started in the test, which
//! requires Basic credentials: `ws://` and `wss://` (TLS end to end inside the tunnel).
//!
//! `ClientBuilder::proxy_from_env` is not tested here: it would need the process
//! environment changed, which is unsafe in a multi-threaded test binary.

mod common;

use std::net::SocketAddr;

use common::{Ca, Pki, Proxy, TempDir, listener, within};
use sansock_tokio::auth::Credentials;
use sansock_tokio::proxy::ProxyConfig;
use sansock_tokio::tls::{self, TlsAcceptor, tls_acceptor_from_pem};
use sansock_tokio::{ClientBuilder, CloseCode, Error, Message};
use tokio::task::JoinHandle;

const USER: &str = "proxy-user";
const PASS: &str = "pr0xy pass";

/// An echo server for one connection: plain, or TLS when an acceptor is given. Returns
/// the request target and the number of data messages echoed.
async fn echo_server(tls: Option<TlsAcceptor>) -> (SocketAddr, JoinHandle<Vec<(String, usize)>>) {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let result = match tls {
            Some(acceptor) => {
                let stream = tls::accept_tls(&acceptor, tcp).await.unwrap();
                echo(stream).await
            }
            None => echo(tcp).await,
        };
        vec![result]
    });
    (addr, server)
}

async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: S,
) -> (String, usize) {
    let pending = sansock_tokio::read_request(stream, Default::default())
        .await
        .unwrap();
    let path = pending.request().target.to_owned();
    let mut ws = pending.accept(Default::default()).await.unwrap();
    let mut n = 0;
    while let Some(msg) = ws.recv().await {
        let msg = msg.unwrap();
        if msg.is_data() {
            ws.send(msg).await.unwrap();
            n += 1;
        }
    }
    (path, n)
}

fn proxy_config(proxy: &Proxy, creds: Option<(&str, &str)>) -> ProxyConfig {
    let p = ProxyConfig::new(&proxy.addr.ip().to_string(), proxy.addr.port()).unwrap();
    match creds {
        Some((u, pw)) => p.with_credentials(Credentials::new(u, pw).unwrap()),
        None => p,
    }
}

async fn exchange(ws: &mut sansock_tokio::WebSocket<sansock_tokio::ClientStream>) {
    for i in 0..3 {
        let text = format!("through the tunnel #{i}");
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(text));
    }
    let big = vec![0x5a; 100_000];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::binary(big));
    ws.close(CloseCode::NORMAL, "bye").await.unwrap();
}

#[tokio::test]
async fn ws_through_an_authenticating_proxy() {
    within(30, async {
        let proxy = Proxy::start(Some((USER, PASS))).await;
        let (addr, server) = echo_server(None).await;
        let url = format!("ws://127.0.0.1:{}/tunnelled?x=1", addr.port());
        let (mut ws, _) = ClientBuilder::new(&url)
            .unwrap()
            .proxy(proxy_config(&proxy, Some((USER, PASS))))
            .connect()
            .await
            .unwrap();
        exchange(&mut ws).await;
        let done = server.await.unwrap();
        assert_eq!(done, vec![("/tunnelled?x=1".to_owned(), 4)]);
        assert_eq!((proxy.tunnels(), proxy.refused()), (1, 0));
    })
    .await;
}

#[tokio::test]
async fn ws_proxy_configured_from_a_url_with_userinfo() {
    within(30, async {
        let proxy = Proxy::start(Some((USER, PASS))).await;
        let (addr, server) = echo_server(None).await;
        let config =
            ProxyConfig::parse(&format!("http://proxy-user:pr0xy%20pass@{}", proxy.addr)).unwrap();
        let (mut ws, _) = ClientBuilder::new(&format!("ws://127.0.0.1:{}/", addr.port()))
            .unwrap()
            .proxy(config)
            .connect()
            .await
            .unwrap();
        exchange(&mut ws).await;
        assert_eq!(server.await.unwrap()[0].1, 4);
        assert_eq!(proxy.tunnels(), 1);
    })
    .await;
}

#[tokio::test]
async fn ws_wrong_or_missing_proxy_credentials() {
    within(30, async {
        let proxy = Proxy::start(Some((USER, PASS))).await;
        let (addr, _server) = echo_server(None).await;
        let url = format!("ws://127.0.0.1:{}/", addr.port());

        let err = ClientBuilder::new(&url)
            .unwrap()
            .proxy(proxy_config(&proxy, Some((USER, "wrong"))))
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ProxyAuthRequired {
                    credentials_sent: true
                }
            ),
            "{err:?}"
        );

        let err = ClientBuilder::new(&url)
            .unwrap()
            .proxy(proxy_config(&proxy, None))
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ProxyAuthRequired {
                    credentials_sent: false
                }
            ),
            "{err:?}"
        );
        // The WebSocket server's credentials are not the proxy's: Basic credentials in
        // the WebSocket URL go to the server, never to the proxy.
        let with_userinfo = format!("ws://{USER}:pr0xy%20pass@127.0.0.1:{}/", addr.port());
        let err = ClientBuilder::new(&with_userinfo)
            .unwrap()
            .proxy(proxy_config(&proxy, None))
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ProxyAuthRequired {
                    credentials_sent: false
                }
            ),
            "{err:?}"
        );
        assert_eq!((proxy.tunnels(), proxy.refused()), (0, 3));
    })
    .await;
}

#[tokio::test]
async fn wss_through_an_authenticating_proxy() {
    within(30, async {
        let pki = Pki::new();
        let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, None).unwrap();
        let proxy = Proxy::start(Some((USER, PASS))).await;
        let (addr, server) = echo_server(Some(acceptor)).await;
        // The proxy resolves `localhost`; the certificate is checked against it end to end.
        let url = format!("wss://localhost:{}/secure", addr.port());
        let (mut ws, _) = ClientBuilder::new(&url)
            .unwrap()
            .tls_config(pki.client(&pki.ca_pem, false))
            .proxy(proxy_config(&proxy, Some((USER, PASS))))
            .connect()
            .await
            .unwrap();
        exchange(&mut ws).await;
        assert_eq!(server.await.unwrap(), vec![("/secure".to_owned(), 4)]);
        assert_eq!((proxy.tunnels(), proxy.refused()), (1, 0));
    })
    .await;
}

#[tokio::test]
async fn wss_through_a_proxy_still_checks_the_certificate() {
    within(30, async {
        let pki = Pki::new();
        // The client trusts another CA only.
        let other = TempDir::new();
        let other_ca = other.write("other-ca.pem", &Ca::new("other CA").cert.pem());
        let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, None).unwrap();
        let proxy = Proxy::start(Some((USER, PASS))).await;
        let (addr, _server) = echo_server(Some(acceptor)).await;
        let url = format!("wss://localhost:{}/secure", addr.port());
        let err = ClientBuilder::new(&url)
            .unwrap()
            .tls_config(pki.client(&other_ca, false))
            .proxy(proxy_config(&proxy, Some((USER, PASS))))
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
        assert_eq!(
            proxy.tunnels(),
            1,
            "the tunnel opened; TLS inside it failed"
        );
    })
    .await;
}

#[tokio::test]
async fn wss_wrong_proxy_credentials() {
    within(30, async {
        let pki = Pki::new();
        let acceptor = tls_acceptor_from_pem(&pki.server_cert, &pki.server_key, None).unwrap();
        let proxy = Proxy::start(Some((USER, PASS))).await;
        let (addr, _server) = echo_server(Some(acceptor)).await;
        let err = ClientBuilder::new(&format!("wss://localhost:{}/", addr.port()))
            .unwrap()
            .tls_config(pki.client(&pki.ca_pem, false))
            .proxy(proxy_config(&proxy, Some(("someone", "else"))))
            .connect()
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ProxyAuthRequired {
                    credentials_sent: true
                }
            ),
            "{err:?}"
        );
        assert_eq!((proxy.tunnels(), proxy.refused()), (0, 1));
    })
    .await;
}
