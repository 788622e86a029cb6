//! Broadcast: 1,000 sessions, a stalled receiver under each overflow policy, targeted
//! sends.

#![allow(clippy::print_stderr)] // measurements are reported on stderr

mod server_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sansock_tokio::client::ClientBuilder;
use sansock_tokio::server::{
    CloseInfo, Overflow, SendQueue, Server, ServerBuilder, SessionId, handler_fn,
};
use sansock_tokio::{CloseCode, Message};
use server_util::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

fn quiet() -> ServerBuilder {
    Server::builder().route("/feed", handler_fn(|_, _| async {}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_1000_sessions() {
    let (server, addr, _) = start(quiet().max_handshakes(2000)).await;
    let mut clients = Vec::new();
    let t = Instant::now();
    for _ in 0..10 {
        clients.extend(join_all((0..100).map(|_| connect(addr, "/feed"))).await);
    }
    wait_until(|| server.session_count() == 1000).await;
    let connected = t.elapsed();

    // Every client waits for the broadcast in its own task.
    let receivers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let m = recv(&mut c).await;
                (m, Instant::now(), c)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let payload = "x".repeat(1000);
    let start = Instant::now();
    let delivery = server.broadcast(payload.as_str());
    let queued = start.elapsed();
    assert_eq!(delivery.queued, 1000);
    let mut last = start;
    let mut clients = Vec::new();
    for r in join_all(receivers).await {
        let (m, at, c) = r.unwrap();
        assert_eq!(m, Message::text(payload.as_str()));
        last = last.max(at);
        clients.push(c);
    }
    let all = last - start;
    eprintln!(
        "1000 sessions: connected in {connected:?}; broadcast of 1 KB queued in {queued:?}, \
         received by all in {all:?}"
    );
    assert!(all < LIMIT);

    // A broadcast to the path reaches the same 1000; to another path, none.
    assert_eq!(server.broadcast_to_path("/feed", "again").queued, 1000);
    assert_eq!(server.broadcast_to_path("/other", "nobody").queued, 0);
    for c in clients.iter_mut().take(10) {
        assert_eq!(recv(c).await, Message::text("again"));
    }
    drop(clients);
    wait_until(|| server.session_count() == 0).await;
}

/// A raw client that completes the handshake and then never reads, with a tiny
/// receive buffer so the server's writes stall quickly.
async fn stalled_client(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(upgrade_request(path, "").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert_eq!(status(&head), 101, "{head}");
    s
}

/// Fast readers that count what they receive.
fn spawn_readers(clients: Vec<Client>) -> Vec<Arc<AtomicUsize>> {
    clients
        .into_iter()
        .map(|mut c| {
            let count = Arc::new(AtomicUsize::new(0));
            let n = count.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = c.recv().await {
                    if m.is_data() {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            count
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_receiver_is_disconnected_and_never_holds_back_the_others() {
    let closes: Arc<Mutex<Vec<(SessionId, CloseInfo)>>> = Arc::default();
    let c = closes.clone();
    let handler = handler_fn(|_, _| async {}).on_close(move |s, info| {
        let c = c.clone();
        async move { c.lock().unwrap().push((s.id(), info)) }
    });
    let queue = SendQueue::new(
        64,
        1 << 20,
        Overflow::Disconnect(CloseCode::TRY_AGAIN_LATER),
    );
    let (server, addr, _) = start(
        Server::builder()
            .route("/feed", handler)
            .send_queue(queue)
            .close_timeout(Duration::from_millis(500)),
    )
    .await;
    let _stalled = stalled_client(addr, "/feed").await;
    wait_until(|| server.session_count() == 1).await;
    let stalled_id = server.sessions()[0].id();
    let mut fast = Vec::new();
    for _ in 0..4 {
        fast.push(connect(addr, "/feed").await);
    }
    wait_until(|| server.session_count() == 5).await;
    let counts = spawn_readers(fast);

    // Broadcast 128 KiB per round; each round must reach the fast readers promptly,
    // whatever the stalled one does.
    let payload = Message::binary(vec![7u8; 128 << 10]);
    let mut slowest = Duration::ZERO;
    let mut rounds = 0;
    let mut max_queued = 0;
    let t = Instant::now();
    while server.session(stalled_id).is_some() {
        assert!(rounds < 2000, "the stalled session was never disconnected");
        if let Some(s) = server.session(stalled_id) {
            max_queued = max_queued.max(s.queued().1);
        }
        rounds += 1;
        let started = Instant::now();
        server.broadcast(payload.clone());
        wait_until(|| counts.iter().all(|c| c.load(Ordering::Relaxed) >= rounds)).await;
        slowest = slowest.max(started.elapsed());
    }
    let gone = t.elapsed();
    // And the fast ones keep going after it left.
    for _ in 0..10 {
        rounds += 1;
        server.broadcast(payload.clone());
        wait_until(|| counts.iter().all(|c| c.load(Ordering::Relaxed) >= rounds)).await;
    }
    eprintln!(
        "stalled receiver disconnected after {rounds} rounds of 128 KiB in {gone:?}; \
         slowest round for the 4 fast readers: {slowest:?}; stalled queue peak {max_queued} bytes"
    );
    assert!(max_queued <= 1 << 20, "queue bound held: {max_queued}");
    assert!(slowest < Duration::from_secs(5), "{slowest:?}");
    assert_eq!(server.session_count(), 4);
    wait_until(|| !closes.lock().unwrap().is_empty()).await;
    let (id, info) = closes.lock().unwrap()[0].clone();
    assert_eq!(id, stalled_id);
    assert_eq!(info.code, CloseCode::TRY_AGAIN_LATER);
    assert!(info.by_server);
    assert!(!info.clean);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_policies_keep_the_slow_session_and_bound_its_queue() {
    for overflow in [Overflow::DropNewest, Overflow::DropOldest] {
        let queue = SendQueue::new(4, 1 << 20, overflow);
        let (server, addr, _) = start(
            quiet()
                .send_queue(queue)
                .close_timeout(Duration::from_millis(300)),
        )
        .await;
        let _stalled = stalled_client(addr, "/feed").await;
        wait_until(|| server.session_count() == 1).await;
        let stalled = server.sessions()[0].clone();
        let fast = vec![connect(addr, "/feed").await];
        wait_until(|| server.session_count() == 2).await;
        let counts = spawn_readers(fast);
        let payload = Message::binary(vec![1u8; 64 << 10]);
        let mut rounds = 0;
        while stalled.dropped() == 0 {
            assert!(rounds < 2000, "{overflow:?}: nothing was ever dropped");
            rounds += 1;
            let d = server.broadcast(payload.clone());
            assert_eq!(d.disconnected, 0);
            wait_until(|| counts[0].load(Ordering::Relaxed) >= rounds).await;
            let (messages, bytes) = stalled.queued();
            assert!(
                messages <= 4 && bytes <= 4 * (64 << 10) + 64,
                "{messages} {bytes}"
            );
        }
        // More rounds: still connected, still bounded, the fast one gets everything.
        for _ in 0..20 {
            rounds += 1;
            server.broadcast(payload.clone());
            wait_until(|| counts[0].load(Ordering::Relaxed) >= rounds).await;
        }
        assert!(!stalled.is_closed(), "{overflow:?}");
        assert!(stalled.queued().0 <= 4);
        eprintln!(
            "{overflow:?}: {} of {rounds} messages dropped for the stalled session",
            stalled.dropped()
        );
        // Disconnecting it works although it never reads: cut after the close timeout.
        assert!(server.disconnect(stalled.id(), CloseCode::NORMAL, "bye"));
        bounded(stalled.closed()).await;
        assert_eq!(server.session_count(), 1);
    }
}

#[tokio::test]
async fn send_to_one_identity_path_and_disconnect_with_code() {
    let (server, addr, _) = start(
        Server::builder()
            .route("/a", handler_fn(|_, _| async {}))
            .route("/b", handler_fn(|_, _| async {}))
            .auth(sansock_tokio::server::Auth::bearer(
                "t",
                |token| async move { Some(token) },
            )),
    )
    .await;
    let as_user = |path: &str, user: &str| {
        ClientBuilder::new(&url(addr, path))
            .unwrap()
            .header("Authorization", format!("Bearer {user}"))
    };
    let mut ada1 = connect_with(as_user("/a", "ada")).await;
    let mut ada2 = connect_with(as_user("/b", "ada")).await;
    let mut bob = connect_with(as_user("/b", "bob")).await;
    wait_until(|| server.session_count() == 3).await;

    let sessions = server.sessions();
    let bob_id = sessions
        .iter()
        .find(|s| s.identity() == Some("bob"))
        .unwrap()
        .id();
    assert!(
        sessions
            .iter()
            .all(|s| s.peer_addr().unwrap().ip().is_loopback())
    );
    assert_eq!(
        sessions.iter().map(|s| s.path()).collect::<Vec<_>>(),
        ["/a", "/b", "/b"]
    );

    assert_eq!(server.send_to_identity("ada", "for ada").queued, 2);
    assert_eq!(recv(&mut ada1).await, Message::text("for ada"));
    assert_eq!(recv(&mut ada2).await, Message::text("for ada"));
    assert_eq!(server.broadcast_to_path("/b", "for b").queued, 2);
    assert_eq!(recv(&mut ada2).await, Message::text("for b"));
    assert_eq!(recv(&mut bob).await, Message::text("for b"));
    server.send(bob_id, "for bob").unwrap();
    assert_eq!(recv(&mut bob).await, Message::text("for bob"));
    assert_eq!(
        server.send(bob_id, Message::Ping(Default::default())),
        Err(sansock_tokio::server::SendError::NotData)
    );
    let everyone_but_bob = server.broadcast_filter("not bob", |s| s.id() != bob_id);
    assert_eq!(everyone_but_bob.queued, 2);
    assert_eq!(recv(&mut ada1).await, Message::text("not bob"));

    assert!(server.disconnect(bob_id, CloseCode(4001), "kicked"));
    assert!(!server.disconnect(bob_id, CloseCode(4001), "twice"));
    match recv(&mut bob).await {
        Message::Close(Some(f)) => {
            assert_eq!((f.code, f.reason.as_str()), (CloseCode(4001), "kicked"))
        }
        other => panic!("{other:?}"),
    }
    assert!(bounded(bob.recv()).await.is_none());
    wait_until(|| server.session_count() == 2).await;
    assert_eq!(
        server.send(bob_id, "gone"),
        Err(sansock_tokio::server::SendError::NoSuchSession)
    );
}
