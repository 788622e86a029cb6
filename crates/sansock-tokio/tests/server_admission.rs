//! Admission: client limit, Origin allow-list, subprotocols, routes, handshake timeout,
//! header size, handshake limit, and plain HTTP beside the WebSocket.

mod server_util;

use std::time::{Duration, Instant};

use sansock_tokio::client::ClientBuilder;
use sansock_tokio::server::{HttpResponse, Server, ServerBuilder, handler_fn};
use sansock_tokio::{Error, Message};
use server_util::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn echo() -> ServerBuilder {
    Server::builder().route(
        "/echo",
        handler_fn(|s, m| async move {
            let _ = s.send(m);
        }),
    )
}

fn rejected_status(e: Error) -> u16 {
    match e {
        Error::Rejected(r) => r.status,
        other => panic!("expected a rejection, got {other}"),
    }
}

async fn try_connect(builder: ClientBuilder) -> Result<Client, Error> {
    bounded(builder.connect()).await.map(|(ws, _)| ws)
}

#[tokio::test]
async fn max_clients_rejects_with_503_and_frees_places() {
    let (server, addr, _) = start(echo().max_clients(2)).await;
    let mut a = connect(addr, "/echo").await;
    let _b = connect(addr, "/echo").await;
    let third = try_connect(ClientBuilder::new(&url(addr, "/echo")).unwrap()).await;
    assert_eq!(rejected_status(third.unwrap_err()), 503);
    let (head, _) = exchange(addr, &upgrade_request("/echo", "")).await;
    assert_eq!(status(&head), 503);
    assert_eq!(header_values(&head, "Retry-After"), ["5"]);
    assert_eq!(server.session_count(), 2);

    a.close(sansock_tokio::CloseCode::NORMAL, "").await.unwrap();
    wait_until(|| server.session_count() == 1).await;
    let mut c = connect(addr, "/echo").await;
    c.send("still works").await.unwrap();
    assert_eq!(recv(&mut c).await, Message::text("still works"));
}

#[tokio::test]
async fn origin_allow_list() {
    let (_, addr, _) = start(echo().allowed_origins(["https://good.example"])).await;
    let with = |o: &str| ClientBuilder::new(&url(addr, "/echo")).unwrap().origin(o);
    assert!(try_connect(with("https://good.example")).await.is_ok());
    assert!(try_connect(with("HTTPS://GOOD.EXAMPLE")).await.is_ok());
    let e = try_connect(with("https://evil.example")).await.unwrap_err();
    assert_eq!(rejected_status(e), 403);
    // Not from a browser: no Origin, accepted.
    assert!(
        try_connect(ClientBuilder::new(&url(addr, "/echo")).unwrap())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn subprotocol_selection_by_server_preference() {
    let (server, addr, _) = start(echo().subprotocols(["chat.v2", "chat.v1"])).await;
    let offer = |p: &[&str]| {
        ClientBuilder::new(&url(addr, "/echo"))
            .unwrap()
            .subprotocols(p.iter().copied())
    };
    let (_ws, resp) = bounded(offer(&["chat.v1", "chat.v2"]).connect())
        .await
        .unwrap();
    assert_eq!(resp.subprotocol.as_deref(), Some("chat.v2"));
    wait_until(|| server.session_count() == 1).await;
    assert_eq!(server.sessions()[0].subprotocol(), Some("chat.v2"));
    let (_ws, resp) = bounded(offer(&["chat.v1"]).connect()).await.unwrap();
    assert_eq!(resp.subprotocol.as_deref(), Some("chat.v1"));
    // Nothing in common: accepted without a subprotocol (the client decides).
    let (_ws, resp) = bounded(offer(&["mqtt"]).connect()).await.unwrap();
    assert_eq!(resp.subprotocol, None);

    let (_, addr, _) = start(echo().subprotocols(["chat.v1"]).require_subprotocol(true)).await;
    let e = try_connect(
        ClientBuilder::new(&url(addr, "/echo"))
            .unwrap()
            .subprotocols(["mqtt"]),
    )
    .await
    .unwrap_err();
    assert_eq!(rejected_status(e), 400);
}

#[tokio::test]
async fn unknown_path_is_404() {
    let (_, addr, _) = start(echo()).await;
    let e = try_connect(ClientBuilder::new(&url(addr, "/nope")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(rejected_status(e), 404);
}

#[tokio::test]
async fn slow_clients_get_408_and_are_cut_off() {
    let (server, addr, _) = start(echo().handshake_timeout(Duration::from_millis(300))).await;
    let t = Instant::now();
    // Half a request, then silence.
    let (head, mut s) = exchange(addr, "GET /echo HTTP/1.1\r\nHost: x\r\n").await;
    assert_eq!(status(&head), 408, "{head}");
    read_to_end(&mut s).await;
    let elapsed = t.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    // Nothing at all.
    let (head, _) = exchange(addr, "").await;
    assert_eq!(status(&head), 408);
    assert_eq!(server.session_count(), 0);
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let (_, addr, _) = start(echo().max_header_bytes(1024)).await;
    let big = format!("X-Big: {}\r\n", "a".repeat(2000));
    let (head, _) = exchange(addr, &upgrade_request("/echo", &big)).await;
    assert_eq!(status(&head), 431, "{head}");
    // Endless headers never finishing a head: cut at the limit too.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /echo HTTP/1.1\r\n").await.unwrap();
    let mut refused = false;
    for _ in 0..100 {
        if s.write_all(b"X-More: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
            .await
            .is_err()
        {
            refused = true;
            break;
        }
    }
    let head = read_head(&mut s).await;
    assert!(refused || status(&head) == 431, "{head}");
}

#[tokio::test]
async fn handshakes_in_progress_are_bounded() {
    let (_, addr, _) = start(
        echo()
            .max_handshakes(2)
            .handshake_timeout(Duration::from_millis(500)),
    )
    .await;
    let _idle1 = TcpStream::connect(addr).await.unwrap();
    let _idle2 = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The third is closed at once, without an answer.
    let (head, _) = exchange(addr, &upgrade_request("/echo", "")).await;
    assert_eq!(head, "");
    // Once the idle ones time out, places are free again.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut ws = connect(addr, "/echo").await;
    ws.send("ok").await.unwrap();
    assert_eq!(recv(&mut ws).await, Message::text("ok"));
}

#[tokio::test]
async fn plain_http_beside_the_websocket() {
    let (_, addr, _) = start(echo().http_fallback(|req| match req.path() {
        "/" => HttpResponse::html("<h1>hi</h1>"),
        _ => HttpResponse::text(404, "not found"),
    }))
    .await;
    let (head, mut s) = exchange(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status(&head), 200);
    assert_eq!(
        header_values(&head, "Content-Type"),
        ["text/html; charset=utf-8"]
    );
    assert_eq!(header_values(&head, "Content-Length"), ["11"]);
    assert_eq!(read_to_end(&mut s).await, b"<h1>hi</h1>");
    let (head, mut s) = exchange(addr, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status(&head), 200);
    assert_eq!(read_to_end(&mut s).await, b"");
    let (head, _) = exchange(addr, "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status(&head), 404);
    // The WebSocket on the same port.
    let mut ws = connect(addr, "/echo").await;
    ws.send("same port").await.unwrap();
    assert_eq!(recv(&mut ws).await, Message::text("same port"));

    // Without a fallback, a plain request is a bad upgrade.
    let (_, addr, _) = start(echo()).await;
    let (head, _) = exchange(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status(&head), 400);
}
