//! Interoperability with an independent implementation, tokio-tungstenite, over loopback:
//! its client against a sansock server, and a sansock client against its server. Text,
//! binary up to 1 MiB, fragmented messages, ping/pong, and close codes and reasons seen
//! by the other side, whichever side closes.

mod common;

use bytes::Bytes;
use common::{listener, within};
use futures_util::{SinkExt, StreamExt};
use sansock_tokio::handshake::Accept;
use sansock_tokio::{ClientBuilder, CloseCode, Config, DataKind, Message};
use tokio_tungstenite::tungstenite::Message as TMessage;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame as TCloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCloseCode;

fn one_mib() -> Vec<u8> {
    (0..1u32 << 20)
        .map(|i| (i * 31 + (i >> 10)) as u8)
        .collect()
}

/// The next message that is not a pong-on-the-side, from a tungstenite stream.
async fn t_next<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Option<TMessage>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.next().await.map(|m| m.expect("tungstenite read"))
}

// ---------------------------------------------------------------------------
// tokio-tungstenite client ↔ sansock server
// ---------------------------------------------------------------------------

/// A sansock echo server for one connection; returns every message it received (data,
/// pings, the close) in order.
async fn sansock_echo_server() -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<(Vec<Message>, String)>,
) {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let pending = sansock_tokio::read_request(tcp, Config::default())
            .await
            .unwrap();
        let path = pending.request().target.to_owned();
        let offered: Vec<String> = pending
            .request()
            .subprotocols()
            .map(str::to_owned)
            .collect();
        let mut accept = Accept::default();
        if offered.iter().any(|p| p == "echo.v1") {
            accept = accept.subprotocol("echo.v1");
        }
        let mut ws = pending.accept(accept).await.unwrap();
        let mut seen = Vec::new();
        while let Some(msg) = ws.recv().await {
            let msg = msg.unwrap();
            if msg.is_data() {
                ws.send(msg.clone()).await.unwrap();
            }
            seen.push(msg);
        }
        (seen, path)
    });
    (addr, server)
}

#[tokio::test]
async fn tungstenite_client_sansock_server_echo_and_client_close() {
    within(60, async {
        let (addr, server) = sansock_echo_server().await;
        let url = format!("ws://127.0.0.1:{}/echo?from=tungstenite", addr.port());
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                url.as_str(),
            )
            .unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", "echo.v1".parse().unwrap());
        let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.status(), 101);
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            "echo.v1"
        );

        ws.send(TMessage::text("héllo from tungstenite"))
            .await
            .unwrap();
        assert_eq!(
            t_next(&mut ws).await,
            Some(TMessage::text("héllo from tungstenite"))
        );

        let big = Bytes::from(one_mib());
        ws.send(TMessage::Binary(big.clone())).await.unwrap();
        assert_eq!(t_next(&mut ws).await, Some(TMessage::Binary(big.clone())));

        ws.send(TMessage::Ping(Bytes::from_static(b"are you there")))
            .await
            .unwrap();
        assert_eq!(
            t_next(&mut ws).await,
            Some(TMessage::Pong(Bytes::from_static(b"are you there")))
        );

        ws.close(Some(TCloseFrame {
            code: TCloseCode::from(4001),
            reason: "bye from tungstenite".into(),
        }))
        .await
        .unwrap();
        // The server echoes the code; then the stream ends.
        match t_next(&mut ws).await {
            Some(TMessage::Close(Some(f))) => assert_eq!(u16::from(f.code), 4001),
            other => panic!("expected the close echo, got {other:?}"),
        }
        assert!(ws.next().await.is_none());

        let (seen, path) = server.await.unwrap();
        assert_eq!(path, "/echo?from=tungstenite");
        assert_eq!(
            seen,
            [
                Message::text("héllo from tungstenite"),
                Message::Binary(big),
                Message::Ping(Bytes::from_static(b"are you there")),
                Message::Close(Some(sansock_tokio::OwnedCloseFrame {
                    code: CloseCode(4001),
                    reason: "bye from tungstenite".into(),
                })),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn sansock_server_pings_fragments_and_closes_a_tungstenite_client() {
    within(60, async {
        let (l, addr) = listener().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut ws = sansock_tokio::accept(tcp).await.unwrap();
            // A message in three frames, the text split inside a code point.
            let text = "fragmented: ünïcödé €";
            let bytes = text.as_bytes();
            let cut = text.find('€').unwrap() + 1;
            ws.send_chunk(DataKind::Text, &bytes[..5], false)
                .await
                .unwrap();
            ws.send_chunk(DataKind::Text, &bytes[5..cut], false)
                .await
                .unwrap();
            ws.send_chunk(DataKind::Text, &bytes[cut..], true)
                .await
                .unwrap();
            ws.send(Message::binary(one_mib())).await.unwrap();
            ws.send(Message::Ping(Bytes::from_static(b"server ping")))
                .await
                .unwrap();
            // The client answers the ping while it reads on.
            let pong = ws.recv().await.unwrap().unwrap();
            assert_eq!(pong, Message::Pong(Bytes::from_static(b"server ping")));
            assert!(ws.rtt().is_some());
            ws.close(CloseCode::GOING_AWAY, "server shutting down")
                .await
                .unwrap();
            ws.state()
        });

        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/", addr.port()))
                .await
                .unwrap();
        assert_eq!(
            t_next(&mut ws).await,
            Some(TMessage::text("fragmented: ünïcödé €"))
        );
        assert_eq!(
            t_next(&mut ws).await,
            Some(TMessage::Binary(Bytes::from(one_mib())))
        );
        assert_eq!(
            t_next(&mut ws).await,
            Some(TMessage::Ping(Bytes::from_static(b"server ping")))
        );
        match t_next(&mut ws).await {
            Some(TMessage::Close(Some(f))) => {
                assert_eq!(f.code, TCloseCode::Away);
                assert_eq!(f.reason.as_str(), "server shutting down");
            }
            other => panic!("expected the server's close, got {other:?}"),
        }
        // tungstenite answered the close while reading; the server ends the TCP
        // connection and the stream ends.
        assert!(ws.next().await.is_none());
        assert_eq!(server.await.unwrap(), sansock_tokio::State::Closed);
    })
    .await;
}

// ---------------------------------------------------------------------------
// sansock client ↔ tokio-tungstenite server
// ---------------------------------------------------------------------------

/// A tungstenite echo server for one connection that picks the subprotocol `chat` and
/// returns the request target and every message it received.
async fn tungstenite_echo_server() -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<(String, Vec<TMessage>)>,
) {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let mut target = String::new();
        // The signature is tungstenite's `Callback`, large error type included.
        #[allow(clippy::result_large_err)]
        let callback = |req: &Request, mut resp: Response| {
            target = req.uri().to_string();
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
            Ok(resp)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .unwrap();
        let mut seen = Vec::new();
        while let Some(msg) = ws.next().await {
            let msg = msg.unwrap();
            if msg.is_text() || msg.is_binary() {
                ws.send(msg.clone()).await.unwrap();
            }
            seen.push(msg);
        }
        (target, seen)
    });
    (addr, server)
}

#[tokio::test]
async fn sansock_client_tungstenite_server_echo_and_client_close() {
    within(60, async {
        let (addr, server) = tungstenite_echo_server().await;
        let url = format!("ws://127.0.0.1:{}/chat?room=1", addr.port());
        let (mut ws, response) = ClientBuilder::new(&url)
            .unwrap()
            .subprotocols(["chat"])
            .connect()
            .await
            .unwrap();
        assert_eq!(response.subprotocol.as_deref(), Some("chat"));

        ws.send("héllo from sansock").await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::text("héllo from sansock")
        );

        let big = Bytes::from(one_mib());
        ws.send(Message::Binary(big.clone())).await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::Binary(big.clone())
        );

        // A fragmented binary message, streamed.
        for (k, part) in big.chunks(300_000).enumerate() {
            let last = (k + 1) * 300_000 >= big.len();
            ws.send_chunk(DataKind::Binary, part, last).await.unwrap();
        }
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::Binary(big.clone())
        );

        ws.send(Message::Ping(Bytes::from_static(b"client ping")))
            .await
            .unwrap();
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::Pong(Bytes::from_static(b"client ping"))
        );
        assert!(ws.rtt().is_some());

        ws.close(CloseCode(4002), "bye from sansock").await.unwrap();
        assert_eq!(ws.state(), sansock_tokio::State::Closed);

        let (target, seen) = server.await.unwrap();
        assert_eq!(target, "/chat?room=1");
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(seen[0], TMessage::text("héllo from sansock"));
        assert_eq!(seen[1], TMessage::Binary(big.clone()));
        assert_eq!(seen[2], TMessage::Binary(big));
        assert_eq!(seen[3], TMessage::Ping(Bytes::from_static(b"client ping")));
        match &seen[4] {
            TMessage::Close(Some(f)) => {
                assert_eq!(u16::from(f.code), 4002);
                assert_eq!(f.reason.as_str(), "bye from sansock");
            }
            other => panic!("expected the client's close, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn tungstenite_server_closes_a_sansock_client() {
    within(60, async {
        let (l, addr) = listener().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            ws.send(TMessage::text("about to close")).await.unwrap();
            ws.close(Some(TCloseFrame {
                code: TCloseCode::Restart,
                reason: "restarting".into(),
            }))
            .await
            .unwrap();
            // Read the client's answer to the close, then the end.
            let mut after = Vec::new();
            while let Some(msg) = ws.next().await {
                after.push(msg.unwrap());
            }
            after
        });

        let url = format!("ws://127.0.0.1:{}/", addr.port());
        let (mut ws, _) = ClientBuilder::new(&url).unwrap().connect().await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::text("about to close")
        );
        match ws.recv().await.unwrap().unwrap() {
            Message::Close(Some(f)) => {
                assert_eq!(f.code, CloseCode(1012));
                assert_eq!(f.reason.as_str(), "restarting");
            }
            other => panic!("expected the server's close, got {other:?}"),
        }
        assert!(ws.recv().await.is_none(), "the connection ends cleanly");
        assert_eq!(ws.state(), sansock_tokio::State::Closed);

        let after = server.await.unwrap();
        match &after[..] {
            [TMessage::Close(Some(f))] => assert_eq!(f.code, TCloseCode::Restart),
            other => panic!("expected the echoed close, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn sansock_client_refused_by_a_tungstenite_server() {
    within(60, async {
        let (l, addr) = listener().await;
        tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            #[allow(clippy::result_large_err)] // tungstenite's `Callback` signature
            let callback = |_: &Request, _: Response| {
                let mut refusal =
                    tokio_tungstenite::tungstenite::handshake::server::ErrorResponse::new(Some(
                        "no entry".to_owned(),
                    ));
                *refusal.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::FORBIDDEN;
                Err(refusal)
            };
            let _ = tokio_tungstenite::accept_hdr_async(tcp, callback).await;
        });
        let url = format!("ws://127.0.0.1:{}/", addr.port());
        let err = ClientBuilder::new(&url)
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        match err {
            sansock_tokio::Error::Rejected(r) => {
                assert_eq!(r.status, 403);
                assert_eq!(&r.body[..], b"no entry");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    })
    .await;
}
