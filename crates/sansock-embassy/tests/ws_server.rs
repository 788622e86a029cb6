//! The `WsServer` pool: several clients at once, send to one, broadcast, disconnect with a
//! code, slot reuse, a client that vanishes, plain HTTP answered with the page.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::ws::{TestRng, config};
use common::{SERVER_IP, run_pair, spawn};
use embassy_futures::join::join3;
use embassy_net::Stack;
use embassy_net::tcp::TcpSocket;
use embedded_io_async::Write as _;
use sansock_embassy::{
    AcceptOptions, Buffers, ClientRequest, CloseCode, Error, Event, Request, ServerEvent, Storage,
    WsServer, connect,
};

const PORT: u16 = 80;
const PAGE: &[u8] = b"<!doctype html><title>led</title><p>hello";

fn deny(req: &Request<'_>) -> Result<(), u16> {
    if req.header("X-Deny").is_some() {
        Err(403)
    } else {
        Ok(())
    }
}

/// Runs a 3-slot server: echoes text, `broadcast` → broadcast "to all", `kick` →
/// disconnect with 4001. Logs what it sees.
fn start_server(stack: Stack<'static>, log: Rc<RefCell<Vec<String>>>) {
    let storage: &'static mut [Storage<2048, 1024, 1024>; 3] =
        Box::leak(Box::new(std::array::from_fn(|_| Storage::new())));
    let slots = storage.each_mut().map(|s| s.slot());
    let options = AcceptOptions::new()
        .path("/ws")
        .subprotocols(&["echo"])
        .check(&deny)
        .page("text/html; charset=utf-8", PAGE);
    let mut server = WsServer::new(stack, PORT, config(), options, slots).unwrap();
    spawn(async move {
        loop {
            let reply = match server.next_event().await {
                ServerEvent::Connected { id, subprotocol } => {
                    log.borrow_mut()
                        .push(format!("connected {} {subprotocol:?}", id.0));
                    None
                }
                ServerEvent::Disconnected { id, error } => {
                    log.borrow_mut()
                        .push(format!("disconnected {} {error:?}", id.0));
                    None
                }
                ServerEvent::Message {
                    id,
                    event: Event::Text(t),
                } => Some((id, t.to_owned())),
                ServerEvent::Message { .. } => None,
            };
            let Some((id, text)) = reply else { continue };
            match text.as_str() {
                "broadcast" => {
                    let n = server.broadcast_text("to all").await;
                    log.borrow_mut().push(format!("broadcast reached {n}"));
                }
                "kick" => server
                    .disconnect(id, CloseCode(4001), "kicked")
                    .await
                    .unwrap(),
                _ => server.send_text(id, &format!("echo {text}")).await.unwrap(),
            }
        }
    });
}

macro_rules! open_ws {
    ($stack:expr, $seed:expr, $socket:ident, $ws:ident) => {
        let (mut rx, mut tx, mut read, mut write) =
            ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
        let mut $socket = TcpSocket::new($stack, &mut rx, &mut tx);
        $socket.connect((SERVER_IP, PORT)).await.unwrap();
        let request = ClientRequest::new("10.0.0.1")
            .path("/ws")
            .subprotocols(&["echo"]);
        let (mut $ws, chosen) = connect(
            &mut $socket,
            &request,
            config(),
            TestRng($seed),
            Buffers::new(&mut read, &mut write),
        )
        .await
        .unwrap();
        assert_eq!(chosen, Some("echo"));
    };
}

/// The next text or close, as a line.
macro_rules! next_line {
    ($ws:ident) => {
        loop {
            match $ws.recv().await {
                Some(Ok(Event::Text(t))) => break t.to_owned(),
                Some(Ok(Event::Close(c))) => break format!("close {} {}", c.code.0, c.reason),
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("error {e}"),
                None => break "end".to_owned(),
            }
        }
    };
}

async fn wait_for(log: &Rc<RefCell<Vec<String>>>, what: &str, count: usize) {
    while log.borrow().iter().filter(|l| l.starts_with(what)).count() < count {
        embassy_time::Timer::after_millis(5).await;
    }
}

/// A raw HTTP exchange: sends `request`, returns the whole answer.
async fn http(stack: Stack<'static>, request: &str) -> String {
    let (mut rx, mut tx) = ([0u8; 2048], [0u8; 2048]);
    let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
    socket.connect((SERVER_IP, PORT)).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    socket.close();
    let _ = socket.flush().await;
    String::from_utf8(answer).unwrap()
}

#[test]
fn pool_serves_several_clients_broadcasts_and_disconnects() {
    let (log, a, b, c, d) = run_pair(|server, clients| async move {
        let log = Rc::new(RefCell::new(Vec::new()));
        start_server(server, log.clone());
        let a = async {
            open_ws!(clients, 1, socket, ws);
            ws.send_text("hello a").await.unwrap();
            let mut got = vec![next_line!(ws)];
            // Once all three are in, ask for a broadcast.
            wait_for(&log, "connected", 3).await;
            ws.send_text("broadcast").await.unwrap();
            got.push(next_line!(ws));
            wait_for(&log, "disconnected", 2).await;
            ws.close(CloseCode::NORMAL, "bye").await.unwrap();
            got
        };
        let b = async {
            open_ws!(clients, 2, socket, ws);
            ws.send_text("hello b").await.unwrap();
            let mut got = vec![next_line!(ws), next_line!(ws)];
            ws.send_text("kick").await.unwrap();
            got.push(next_line!(ws));
            got.push(next_line!(ws));
            got
        };
        let c = async {
            open_ws!(clients, 3, socket, ws);
            ws.send_text("hello c").await.unwrap();
            let got = vec![next_line!(ws), next_line!(ws)];
            wait_for(&log, "disconnected", 1).await;
            drop(ws);
            // Vanish without a closing handshake.
            socket.abort();
            let _ = socket.flush().await;
            got
        };
        let (a, b, c) = join3(a, b, c).await;
        wait_for(&log, "disconnected", 3).await;
        // A freed slot takes a new client.
        let d = async {
            open_ws!(clients, 4, socket, ws);
            ws.send_text("hello d").await.unwrap();
            let got = next_line!(ws);
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            got
        }
        .await;
        let d = vec![d];
        (log.take(), a, b, c, d)
    });
    assert_eq!(a, ["echo hello a", "to all"]);
    assert_eq!(b, ["echo hello b", "to all", "close 4001 kicked", "end"]);
    assert_eq!(c, ["echo hello c", "to all"]);
    assert_eq!(d, ["echo hello d"]);
    let count = |p: &str| log.iter().filter(|l| l.starts_with(p)).count();
    assert_eq!(count("connected"), 4, "{log:?}");
    assert!(
        log.iter()
            .all(|l| !l.starts_with("connected") || l.ends_with("Some(\"echo\")")),
        "{log:?}"
    );
    assert!(log.contains(&"broadcast reached 3".to_owned()), "{log:?}");
    // b (kicked, clean handshake), c (vanished: an error), a and d (clean close).
    assert_eq!(count("disconnected"), 4, "{log:?}");
    let clean = log
        .iter()
        .filter(|l| l.starts_with("disconnected") && l.ends_with("None"));
    assert_eq!(clean.count(), 3, "{log:?}");
}

#[test]
fn pool_answers_plain_http_with_the_page_and_refuses_by_status() {
    let (page, denied, wrong_path, bad_version, upgraded) =
        run_pair(|server, clients| async move {
            let log = Rc::new(RefCell::new(Vec::new()));
            start_server(server, log.clone());
            let page = http(clients, "GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n").await;
            let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
            let upgrade = format!("Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{key}");
            let denied = http(
                clients,
                &format!(
                    "GET /ws HTTP/1.1\r\n{upgrade}Sec-WebSocket-Version: 13\r\nX-Deny: 1\r\n\r\n"
                ),
            )
            .await;
            let wrong_path = http(
                clients,
                &format!("GET /x HTTP/1.1\r\n{upgrade}Sec-WebSocket-Version: 13\r\n\r\n"),
            )
            .await;
            let bad_version = http(
                clients,
                &format!("GET /ws HTTP/1.1\r\n{upgrade}Sec-WebSocket-Version: 8\r\n\r\n"),
            )
            .await;
            // And the pool still upgrades afterwards.
            let upgraded = async {
                open_ws!(clients, 5, socket, ws);
                ws.send_text("still here").await.unwrap();
                let got = next_line!(ws);
                ws.close(CloseCode::NORMAL, "").await.unwrap();
                got
            }
            .await;
            (page, denied, wrong_path, bad_version, upgraded)
        });
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(
        page.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{page}"
    );
    assert!(page.ends_with(std::str::from_utf8(PAGE).unwrap()), "{page}");
    assert!(denied.starts_with("HTTP/1.1 403 "), "{denied}");
    assert!(wrong_path.starts_with("HTTP/1.1 404 "), "{wrong_path}");
    assert!(bad_version.starts_with("HTTP/1.1 426 "), "{bad_version}");
    assert!(
        bad_version.contains("Sec-WebSocket-Version: 13\r\n"),
        "{bad_version}"
    );
    assert_eq!(upgraded, "echo still here");
}

#[test]
fn unknown_clients_are_reported() {
    run_pair(|server, _clients| async move {
        let mut storage: [Storage<512, 512, 0>; 1] = [Storage::new()];
        let slots = storage.each_mut().map(|s| s.slot());
        let mut pool = WsServer::new(server, PORT, config(), AcceptOptions::new(), slots).unwrap();
        assert_eq!(pool.client_count(), 0);
        assert_eq!(
            pool.send_text(sansock_embassy::ClientId(0), "x").await,
            Err(Error::UnknownClient)
        );
        assert_eq!(
            pool.send_text(sansock_embassy::ClientId(5), "x").await,
            Err(Error::UnknownClient)
        );
        assert_eq!(pool.broadcast_text("nobody").await, 0);
    });
}
