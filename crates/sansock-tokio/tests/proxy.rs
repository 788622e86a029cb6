//! CONNECT tunnels through a small proxy started in the test, all on loopback.

use std::net::SocketAddr;

use sansock_tokio::Error;
use sansock_tokio::auth::{Credentials, verify_basic};
use sansock_tokio::proxy::{MAX_RESPONSE_HEAD, ProxyConfig, connect_via_proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// Reads an HTTP request head; returns it and any bytes read past it.
async fn read_head(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8(buf).ok()?, rest));
        }
        if buf.len() > 16 * 1024 {
            return None;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A CONNECT proxy; when `required` is set, only those credentials get through.
async fn connect_proxy(required: Option<(&'static str, &'static str)>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some((head, early)) = read_head(&mut client).await else {
                    return;
                };
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap_or_default();
                let mut parts = request_line.split(' ');
                let (Some("CONNECT"), Some(target), Some("HTTP/1.1")) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                    return;
                };
                let auth = lines.find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("proxy-authorization")
                        .then(|| value.trim().to_owned())
                });
                if let Some((user, pass)) = required
                    && !auth.is_some_and(|v| verify_basic(&v, user, pass))
                {
                    let _ = client
                        .write_all(
                            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                                  Proxy-Authenticate: Basic realm=\"test\"\r\n\
                                  Content-Length: 0\r\n\r\n",
                        )
                        .await;
                    return;
                }
                let Ok(mut upstream) = TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                if upstream.write_all(&early).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    addr
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
