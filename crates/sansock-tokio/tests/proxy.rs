//! CONNECT tunnels through a small proxy started in the test, all on loopback.

mod common;

use std::net::SocketAddr;

use common::{Proxy, read_head};

use sansock_tokio::Error;
use sansock_tokio::auth::Credentials;
use sansock_tokio::proxy::{MAX_RESPONSE_HEAD, ProxyConfig, connect_via_proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An echo server; each connection echoes until the peer closes.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A CONNECT proxy; when `required` is set, only those credentials get through.
async fn connect_proxy(required: Option<(&'static str, &'static str)>) -> SocketAddr {
    Proxy::start(required).await.addr
}

/// A fake proxy that answers every connection with `answer` (after reading the
/// request head), then sends `later` and keeps the connection open briefly.
async fn scripted_proxy(answer: Vec<u8>, later: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                if read_head(&mut s).await.is_none() {
                    return;
                }
                let _ = s.write_all(&answer).await;
                if !later.is_empty() {
                    let _ = s.write_all(later).await;
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

fn proxy_at(addr: SocketAddr) -> ProxyConfig {
    ProxyConfig::new(&addr.ip().to_string(), addr.port()).unwrap()
}

async fn echo_through(mut stream: impl AsyncReadExt + AsyncWriteExt + Unpin) {
    stream.write_all(b"ping through the tunnel").await.unwrap();
    let mut back = [0u8; 23];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping through the tunnel");
}

#[tokio::test]
async fn tunnel_without_credentials() {
    let echo = echo_server().await;
    let proxy = connect_proxy(None).await;
    let stream = connect_via_proxy(&proxy_at(proxy), "127.0.0.1", echo.port())
        .await
        .unwrap();
    assert!(stream.prefix().is_empty());
    echo_through(stream).await;
}

#[tokio::test]
async fn tunnel_with_required_credentials() {
    let echo = echo_server().await;
    let proxy = connect_proxy(Some(("alice", "s3cret"))).await;

    let good = proxy_at(proxy).with_credentials(Credentials::new("alice", "s3cret").unwrap());
    let stream = connect_via_proxy(&good, "127.0.0.1", echo.port())
        .await
        .unwrap();
    echo_through(stream).await;

    // The same, configured from a proxy URL with percent-encoded userinfo.
    let from_url = ProxyConfig::parse(&format!("http://alice:s3cr%65t@{proxy}")).unwrap();
    let stream = connect_via_proxy(&from_url, "127.0.0.1", echo.port())
        .await
        .unwrap();
    echo_through(stream).await;
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_407() {
    let echo = echo_server().await;
    let proxy = connect_proxy(Some(("alice", "s3cret"))).await;

    let wrong = proxy_at(proxy).with_credentials(Credentials::new("alice", "guess").unwrap());
    let err = connect_via_proxy(&wrong, "127.0.0.1", echo.port())
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

    let err = connect_via_proxy(&proxy_at(proxy), "127.0.0.1", echo.port())
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
}

#[tokio::test]
async fn bytes_after_the_response_head_are_kept() {
    // The head and the first tunnelled bytes arrive in one segment.
    let proxy = scripted_proxy(
        b"HTTP/1.1 200 OK\r\nVia: test\r\n\r\nEARLY".to_vec(),
        b"LATE",
    )
    .await;
    let mut stream = connect_via_proxy(&proxy_at(proxy), "example.test", 80)
        .await
        .unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"EARLYLATE");
}

#[tokio::test]
async fn refusals_and_broken_proxies() {
    let proxy = scripted_proxy(b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec(), b"").await;
    let err = connect_via_proxy(&proxy_at(proxy), "example.test", 80)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ProxyRefused { status: 403, reason } if reason == "Forbidden"),
        "{err:?}"
    );

    let proxy = scripted_proxy(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec(), b"").await;
    let err = connect_via_proxy(&proxy_at(proxy), "example.test", 80)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ProxyMalformedResponse), "{err:?}");

    let proxy = scripted_proxy(b"HTTP/1.1 200 OK\r\nX: ".to_vec(), b"").await;
    let err = connect_via_proxy(&proxy_at(proxy), "example.test", 80)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ProxyClosed), "{err:?}");

    // A head that never ends is cut off at the limit instead of growing forever.
    let mut endless = b"HTTP/1.1 200 OK\r\nX-Padding: ".to_vec();
    endless.resize(MAX_RESPONSE_HEAD + 1024, b'a');
    let proxy = scripted_proxy(endless, b"").await;
    let err = connect_via_proxy(&proxy_at(proxy), "example.test", 80)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ProxyResponseTooLarge { limit } if limit == MAX_RESPONSE_HEAD),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_target_is_a_refusal() {
    // Bind then drop a listener to get a loopback port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = connect_proxy(None).await;
    let err = connect_via_proxy(&proxy_at(proxy), "127.0.0.1", closed.port())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ProxyRefused { status: 502, .. }),
        "{err:?}"
    );
}
