//! WebSocket upgrades inside a plain hyper 1.x server on loopback: the page and the
//! echo share one port, as in `examples/hyper-server.rs`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sansock_tokio::upgrade::{is_upgrade_request, offered_subprotocols, upgrade_with};
use sansock_tokio::{Accept, ClientBuilder, CloseCode, Config, Error, Message, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PAGE: &str = "<!doctype html><title>echo</title><script>new WebSocket('/ws')</script>";
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const LIMIT: Duration = Duration::from_secs(10);

/// How each server-side WebSocket ended.
type Outcomes = mpsc::UnboundedSender<Result<(), String>>;

async fn handle(
    mut req: Request<Incoming>,
    outcomes: Outcomes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match req.uri().path() {
        "/" => Ok(Response::builder()
            .header("Content-Type", "text/html; charset=utf-8")
            .body(Full::from(PAGE))
            .unwrap()),
        "/ws" if !is_upgrade_request(&req) => Ok(Response::builder()
            .status(StatusCode::UPGRADE_REQUIRED)
            .header("Upgrade", "websocket")
            .body(Full::from("WebSocket only\n"))
            .unwrap()),
        "/ws" => {
            let accept = match offered_subprotocols(&req).find(|p| *p == "echo") {
                Some(p) => Accept::default().subprotocol(p),
                None => Accept::default(),
            };
            match upgrade_with(&mut req, Config::default(), accept) {
                Ok((response, websocket)) => {
                    tokio::spawn(async move {
                        let outcome = echo(websocket).await.map_err(|e| e.to_string());
                        let _ = outcomes.send(outcome);
                    });
                    Ok(response)
                }
                Err(refused) => Ok(refused.to_response()),
            }
        }
        _ => Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::from("not found\n"))
            .unwrap()),
    }
}

async fn echo(websocket: sansock_tokio::upgrade::HyperWebSocket) -> Result<(), Error> {
    let mut ws = websocket.await?;
    while let Some(msg) = ws.recv().await {
        let msg = msg?;
        if msg.is_data() {
            ws.send(msg).await?;
        }
    }
    assert_eq!(ws.state(), State::Closed);
    Ok(())
}

/// A hyper server on an ephemeral loopback port, and how its WebSockets ended.
async fn server() -> (SocketAddr, mpsc::UnboundedReceiver<Result<(), String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let service = service_fn(move |req| handle(req, tx.clone()));
            tokio::spawn(
                http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades(),
            );
        }
    });
    (addr, rx)
}

/// Reads one response head (and whatever followed it in the same reads).
async fn read_response(tcp: &mut TcpStream) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut buf = Vec::new();
    loop {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut slots);
        if let httparse::Status::Complete(n) = resp.parse(&buf).unwrap() {
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            return (resp.code.unwrap(), headers, buf[n..].to_vec());
        }
        let mut chunk = [0u8; 4096];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn upgrade_request(version: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    )
}

/// A masked client frame (FIN set, payload under 126 bytes).
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

#[tokio::test]
async fn page_and_404_over_plain_http() {
    let (addr, _) = server().await;
    for (path, status, body) in [("/", 200, PAGE), ("/nope", 404, "not found\n")] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut all = Vec::new();
        tokio::time::timeout(LIMIT, tcp.read_to_end(&mut all))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8(all).unwrap();
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{path}: {text}"
        );
        assert!(text.ends_with(body), "{path}: {text}");
        if status == 200 {
            assert!(text.contains("content-type: text/html"), "{text}");
        }
    }
}

#[tokio::test]
async fn client_echoes_text_and_binary_and_closes_cleanly() {
    let (addr, mut outcomes) = server().await;
    let url = format!("ws://{addr}/ws");
    let (mut ws, response) = tokio::time::timeout(LIMIT, sansock_tokio::connect(&url))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.subprotocol, None);
    ws.send(Message::text("héllo, hyper")).await.unwrap();
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::text("héllo, hyper")
    );
    let big = Bytes::from((0..200_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    ws.send(Message::Binary(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::Binary(big));
    // `close` waits for the server's answer and the end of the transport.
    tokio::time::timeout(LIMIT, ws.close(CloseCode::NORMAL, "bye"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ws.peer_close().map(|(c, _)| c), Some(CloseCode::NORMAL));
    assert!(ws.recv().await.is_none());
    assert_eq!(ws.state(), State::Closed);
    let server_side = tokio::time::timeout(LIMIT, outcomes.recv()).await.unwrap();
    assert_eq!(server_side, Some(Ok(())));
}

#[tokio::test]
async fn chosen_subprotocol_is_answered() {
    let (addr, _) = server().await;
    let (mut ws, response) = ClientBuilder::new(&format!("ws://{addr}/ws"))
        .unwrap()
        .subprotocols(["chat", "echo"])
        .connect()
        .await
        .unwrap();
    assert_eq!(response.subprotocol.as_deref(), Some("echo"));
    ws.send(Message::text("x")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("x"));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

#[tokio::test]
async fn bad_requests_get_the_rfc_status() {
    let (addr, _) = server().await;
    let v13 = upgrade_request("13");
    let cases = [
        // (request, status, header that must be there)
        (
            upgrade_request("8"),
            426,
            Some(("sec-websocket-version", "13")),
        ),
        (v13.replacen("GET", "POST", 1), 405, Some(("allow", "GET"))),
        (v13.replace(KEY, "short"), 400, None),
        (
            v13.replace(
                "Upgrade: websocket\r\n",
                "Upgrade: websocket\r\nHost: again\r\n",
            ),
            400,
            None,
        ),
        // Not an upgrade request at all: the application's own 426.
        (
            "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
            426,
            Some(("upgrade", "websocket")),
        ),
    ];
    for (request, status, must_have) in cases {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(request.as_bytes()).await.unwrap();
        let (got, headers, _) = tokio::time::timeout(LIMIT, read_response(&mut tcp))
            .await
            .unwrap();
        assert_eq!(got, status, "{request}");
        if let Some((name, value)) = must_have {
            assert_eq!(header(&headers, name), Some(value), "{request}");
        }
    }
}

#[tokio::test]
async fn absolute_form_target_is_accepted() {
    let (addr, _) = server().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = upgrade_request("13").replacen("/ws", "ws://localhost/ws", 1);
    tcp.write_all(request.as_bytes()).await.unwrap();
    let (status, _, _) = tokio::time::timeout(LIMIT, read_response(&mut tcp))
        .await
        .unwrap();
    assert_eq!(status, 101);
}

#[tokio::test]
async fn frames_sent_with_the_request_are_not_lost() {
    let (addr, mut outcomes) = server().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The request head, a text frame and a close frame, all in one write.
    let mut burst = upgrade_request("13").into_bytes();
    burst.extend(masked_frame(0x1, b"early bird"));
    burst.extend(masked_frame(0x8, &1000u16.to_be_bytes()));
    tcp.write_all(&burst).await.unwrap();

    let (status, headers, mut rest) = tokio::time::timeout(LIMIT, read_response(&mut tcp))
        .await
        .unwrap();
    assert_eq!(status, 101);
    assert_eq!(
        header(&headers, "sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    // Everything the server sends after the head: the echo, then its close, then EOF.
    tokio::time::timeout(LIMIT, tcp.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    let mut expected = vec![0x81, 10];
    expected.extend_from_slice(b"early bird");
    expected.extend_from_slice(&[0x88, 2, 0x03, 0xe8]);
    assert_eq!(rest, expected);
    let server_side = tokio::time::timeout(LIMIT, outcomes.recv()).await.unwrap();
    assert_eq!(server_side, Some(Ok(())));
}

#[tokio::test]
async fn request_not_served_by_hyper_fails_the_future() {
    let mut req = Request::get("/ws")
        .header("Host", "localhost")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", KEY)
        .header("Sec-WebSocket-Version", "13")
        .body(())
        .unwrap();
    assert!(is_upgrade_request(&req));
    let (response, websocket) =
        sansock_tokio::upgrade::upgrade::<_, Full<Bytes>>(&mut req, Config::default()).unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(matches!(websocket.await, Err(Error::Io(_))));
}

#[test]
fn refusals_carry_status_headers_and_body() {
    let mut req = Request::get("/ws")
        .header("Host", "localhost")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", KEY)
        .body(())
        .unwrap();
    let refused =
        sansock_tokio::upgrade::upgrade::<_, Full<Bytes>>(&mut req, Config::default()).unwrap_err();
    assert_eq!(refused.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(refused.error(), &sansock::Error::UnsupportedVersion);
    let response = refused.to_response::<Full<Bytes>>();
    assert_eq!(response.status(), 426);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    let err: Error = refused.into();
    assert!(matches!(
        err,
        Error::Protocol(sansock::Error::UnsupportedVersion)
    ));
    // A bad accept is the application's fault.
    let mut req = Request::get("/ws")
        .header("Host", "localhost")
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Key", KEY)
        .header("Sec-WebSocket-Version", "13")
        .body(())
        .unwrap();
    let bad = Accept::default().header("Sec-WebSocket-Accept", "forged");
    let refused = upgrade_with::<_, Full<Bytes>>(&mut req, Config::default(), bad).unwrap_err();
    assert_eq!(refused.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
