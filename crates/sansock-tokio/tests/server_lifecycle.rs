//! A session's life and the server's: handler callbacks, keepalive, graceful shutdown,
//! connections upgraded elsewhere (the mounting path), TLS.

#![allow(clippy::print_stderr)] // measurements are reported on stderr

mod server_util;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sansock_tokio::client::ClientBuilder;
use sansock_tokio::handshake::Accept;
use sansock_tokio::server::{
    CloseInfo, ConnectionInfo, Handler, HttpRequest, Server, Session, handler_fn,
};
use sansock_tokio::{CloseCode, Config, Error, Message};
use server_util::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

type Events = Arc<Mutex<Vec<String>>>;

/// Records every callback; its state counts the session's messages.
struct Recorder(Events);

impl Recorder {
    fn push(&self, e: String) {
        self.0.lock().unwrap().push(e);
    }
}

impl Handler for Recorder {
    type State = usize;

    async fn on_open(&self, session: &Session) -> usize {
        self.push(format!("open {}", session.path()));
        session.send("welcome").unwrap();
        0
    }

    async fn on_message(&self, session: &Session, count: &mut usize, message: Message) {
        *count += 1;
        let text = message.as_text().unwrap_or("?").to_owned();
        if text == "panic" {
            panic!("the handler panics");
        }
        self.push(format!("message {count} {text}"));
        session.send(format!("{count}")).unwrap();
    }

    async fn on_error(&self, _: &Session, count: &mut usize, error: Error) {
        let what = match error {
            Error::Protocol(sansock::Error::PeerUnresponsive) => "peer unresponsive".to_owned(),
            other => other.to_string(),
        };
        self.push(format!("error {count} {what}"));
    }

    async fn on_close(&self, _: &Session, count: usize, c: CloseInfo) {
        self.push(format!(
            "close {count} {} {} clean={} by_server={}",
            c.code.0, c.reason, c.clean, c.by_server
        ));
    }
}

fn recorder() -> (Events, Recorder) {
    let events = Events::default();
    (events.clone(), Recorder(events))
}

#[tokio::test]
async fn handler_sees_open_messages_and_close_in_order_with_state() {
    let (events, rec) = recorder();
    let (server, addr, _) = start(Server::builder().route("/rec", rec)).await;
    let mut ws = connect(addr, "/rec").await;
    assert_eq!(recv(&mut ws).await, Message::text("welcome"));
    for (i, m) in ["a", "b", "c"].into_iter().enumerate() {
        ws.send(m).await.unwrap();
        assert_eq!(recv(&mut ws).await, Message::text((i + 1).to_string()));
    }
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    wait_until(|| events.lock().unwrap().len() == 5).await;
    assert_eq!(
        *events.lock().unwrap(),
        [
            "open /rec",
            "message 1 a",
            "message 2 b",
            "message 3 c",
            "close 3 1000 done clean=true by_server=false",
        ]
    );
    assert_eq!(server.session_count(), 0);
}

#[tokio::test]
async fn a_panicking_handler_leaves_the_registry_clean() {
    let (_, rec) = recorder();
    let (server, addr, _) = start(Server::builder().route("/rec", rec).max_clients(1)).await;
    let mut ws = connect(addr, "/rec").await;
    assert_eq!(recv(&mut ws).await, Message::text("welcome"));
    ws.send("panic").await.unwrap();
    assert!(matches!(bounded(ws.recv()).await, None | Some(Err(_))));
    wait_until(|| server.session_count() == 0).await;
    // Its place among max_clients was given back.
    let mut ws = connect(addr, "/rec").await;
    assert_eq!(recv(&mut ws).await, Message::text("welcome"));
}

#[tokio::test]
async fn keepalive_removes_dead_peers_and_keeps_live_ones() {
    let (events, rec) = recorder();
    let (server, addr, _) = start(
        Server::builder()
            .route("/rec", rec)
            .keepalive(Some(Duration::from_millis(200)), Duration::from_millis(300)),
    )
    .await;
    // A live client answers pings while it waits for messages.
    let mut live = connect(addr, "/rec").await;
    assert_eq!(recv(&mut live).await, Message::text("welcome"));
    let live_task = tokio::spawn(async move { while let Some(Ok(_)) = live.recv().await {} });
    // A dead one: handshake, then silence.
    let (head, _dead) = exchange(addr, &upgrade_request("/rec", "")).await;
    assert_eq!(status(&head), 101);
    wait_until(|| server.session_count() == 2).await;
    let t = Instant::now();
    wait_until(|| server.session_count() == 1).await;
    let removed = t.elapsed();
    assert!(removed < Duration::from_secs(3), "{removed:?}");
    wait_until(|| {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("close"))
    })
    .await;
    let ev = events.lock().unwrap().clone();
    assert!(
        ev.contains(&"error 0 peer unresponsive".to_owned()),
        "{ev:?}"
    );
    // The live one is still there well after several keepalive periods.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(server.session_count(), 1);
    assert!(!live_task.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_session_with_1001_and_returns() {
    let (events, rec) = recorder();
    let (server, addr, serving) = start(Server::builder().route("/rec", rec)).await;
    let clients = join_all((0..20).map(|_| connect(addr, "/rec"))).await;
    wait_until(|| server.session_count() == 20).await;
    let closes: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                loop {
                    match c.recv().await {
                        Some(Ok(Message::Close(f))) => return f.map(|f| f.code),
                        Some(Ok(_)) => {}
                        _ => return None,
                    }
                }
            })
        })
        .collect();
    let t = Instant::now();
    let report = bounded(server.shutdown()).await;
    let took = t.elapsed();
    eprintln!("shutdown of 20 sessions took {took:?}");
    assert_eq!((report.sessions, report.forced), (20, 0));
    for c in join_all(closes).await {
        assert_eq!(c.unwrap(), Some(CloseCode::GOING_AWAY));
    }
    bounded(serving).await.unwrap();
    assert_eq!(server.session_count(), 0);
    assert!(server.is_shutting_down());
    let ev = events.lock().unwrap().clone();
    assert_eq!(
        ev.iter()
            .filter(|e| e.ends_with("1001 server shutting down clean=true by_server=true"))
            .count(),
        20,
        "{ev:?}"
    );
    // Not accepting any more; a second shutdown returns the same report.
    assert!(TcpStream::connect(addr).await.is_err());
    assert_eq!(bounded(server.shutdown()).await, report);
}

#[tokio::test]
async fn shutdown_is_bounded_when_peers_never_answer() {
    let (server, addr, serving) = start(
        Server::builder()
            .route("/feed", handler_fn(|_, _| async {}))
            .close_timeout(Duration::from_secs(30))
            .shutdown_timeout(Duration::from_millis(500)),
    )
    .await;
    // Two peers that never read nor answer the close.
    let (h1, _s1) = exchange(addr, &upgrade_request("/feed", "")).await;
    let (h2, _s2) = exchange(addr, &upgrade_request("/feed", "")).await;
    assert_eq!((status(&h1), status(&h2)), (101, 101));
    let mut polite = connect(addr, "/feed").await;
    let polite_close = tokio::spawn(async move {
        match polite.recv().await {
            Some(Ok(Message::Close(Some(f)))) => Some(f.code),
            _ => None,
        }
    });
    // A handshake in progress is dropped too.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /feed HTTP/1.1\r\n").await.unwrap();
    wait_until(|| server.session_count() == 3).await;
    let t = Instant::now();
    let report = bounded(server.shutdown()).await;
    let took = t.elapsed();
    eprintln!("shutdown with 2 unresponsive peers took {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!((report.sessions, report.forced), (3, 2));
    assert_eq!(polite_close.await.unwrap(), Some(CloseCode::GOING_AWAY));
    assert!(read_to_end(&mut half).await.is_empty());
    bounded(serving).await.unwrap();
    assert_eq!(server.session_count(), 0);
}

#[tokio::test]
async fn connections_upgraded_elsewhere_join_the_registry() {
    let server = Server::builder()
        .route("/chat", handler_fn(|_, _| async {}))
        .auth(sansock_tokio::server::Auth::bearer("app", |t| async move {
            (t == "good").then(|| "mounted-user".to_owned())
        }))
        .build();
    // The application's own listener and upgrade (here the crate's `read_request`;
    // hyper's upgrade works the same way).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server.clone();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let app = app.clone();
            tokio::spawn(async move {
                let pending = sansock_tokio::read_request(stream, Config::default())
                    .await
                    .unwrap();
                let request = HttpRequest::from_request(&pending.request());
                match app.admit(&request, Some(peer)).await {
                    Err(resp) => {
                        let headers: Vec<(&str, &str)> = resp.headers().collect();
                        pending
                            .reject(resp.status(), &headers, resp.body())
                            .await
                            .unwrap();
                    }
                    Ok(admission) => {
                        let accept = Accept {
                            subprotocol: admission.subprotocol().map(str::to_owned),
                            ..Accept::default()
                        };
                        let ws = pending.accept(accept).await.unwrap();
                        let info = admission.into_connection_info(Some(peer));
                        app.serve_connection(ws, info).await;
                    }
                }
            });
        }
    });
    let e = bounded(ClientBuilder::new(&url(addr, "/chat")).unwrap().connect())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Rejected(r) if r.status == 401));
    let mut ws = connect_with(
        ClientBuilder::new(&url(addr, "/chat"))
            .unwrap()
            .header("Authorization", "Bearer good"),
    )
    .await;
    wait_until(|| server.session_count() == 1).await;
    let s = &server.sessions()[0];
    assert_eq!((s.path(), s.identity()), ("/chat", Some("mounted-user")));
    assert!(s.peer_addr().is_some());
    assert_eq!(server.broadcast("to the mounted one").queued, 1);
    assert_eq!(recv(&mut ws).await, Message::text("to the mounted one"));

    // Without an admission: the route table applies, refusal by close frame.
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr2 = l2.local_addr().unwrap();
    let app = server.clone();
    tokio::spawn(async move {
        let (stream, _) = l2.accept().await.unwrap();
        let ws = sansock_tokio::accept(stream).await.unwrap();
        app.serve_connection(ws, ConnectionInfo::new("/nowhere"))
            .await;
    });
    let mut ws = connect(addr2, "/whatever").await;
    match recv(&mut ws).await {
        Message::Close(Some(f)) => assert_eq!(f.code, CloseCode::POLICY_VIOLATION),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn serves_tls() {
    let dir = std::env::temp_dir().join(format!("sansock-server-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let acceptor = sansock_tokio::tls::tls_acceptor_from_pem(&cert_path, &key_path, None).unwrap();
    let roots = sansock_tokio::tls::root_store_from_pem(&cert_path).unwrap();
    let client_tls = Arc::new(sansock_tokio::tls::client_config(roots, None).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();

    let server = Server::builder()
        .route(
            "/echo",
            handler_fn(|s, m| async move {
                let _ = s.send(m);
            }),
        )
        .handshake_timeout(Duration::from_millis(500))
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    let serving = tokio::spawn(async move { s.serve_tls(listener, acceptor).await });
    let mut ws = connect_with(
        ClientBuilder::new(&format!("wss://{addr}/echo"))
            .unwrap()
            .tls_config(client_tls),
    )
    .await;
    ws.send("over tls").await.unwrap();
    assert_eq!(recv(&mut ws).await, Message::text("over tls"));
    // A client that never starts TLS is cut at the handshake timeout.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let t = Instant::now();
    assert!(read_to_end(&mut idle).await.is_empty());
    assert!(t.elapsed() < Duration::from_secs(3));
    let (report, close) = tokio::join!(server.shutdown(), recv(&mut ws));
    assert!(matches!(close, Message::Close(Some(f)) if f.code == CloseCode::GOING_AWAY));
    assert_eq!(report.forced, 0);
    bounded(serving).await.unwrap();
}
