//! The connection layer over real loopback TCP, without the HTTP handshake.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sansock::{CloseCode, DataKind, Message, Role};
use sansock_tokio::{Config, Error, WebSocket};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

async fn pair(
    server_cfg: Config,
    client_cfg: Config,
) -> (WebSocket<TcpStream>, WebSocket<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    let server = WebSocket::from_upgraded(s.unwrap().0, Role::Server, server_cfg, Bytes::new());
    let client = WebSocket::from_upgraded(c.unwrap(), Role::Client, client_cfg, Bytes::new());
    (server, client)
}

#[tokio::test]
async fn echo_text_binary_and_close() {
    let (mut server, mut client) = pair(Config::default(), Config::default()).await;
    let echo = tokio::spawn(async move {
        while let Some(msg) = server.recv().await {
            let msg = msg.unwrap();
            if msg.is_data() {
                server.send(msg).await.unwrap();
            }
        }
        server
    });
    client.send(Message::text("héllo")).await.unwrap();
    assert_eq!(
        client.recv().await.unwrap().unwrap(),
        Message::text("héllo")
    );
    let big = Bytes::from(vec![7u8; 300_000]);
    client.send(Message::Binary(big.clone())).await.unwrap();
    assert_eq!(client.recv().await.unwrap().unwrap(), Message::Binary(big));
    client.close(CloseCode::NORMAL, "done").await.unwrap();
    let server = echo.await.unwrap();
    assert_eq!(server.state(), sansock::State::Closed);
}

#[tokio::test]
async fn split_reader_answers_pings_while_writer_idle() {
    let (server, mut client) = pair(Config::default(), Config::default()).await;
    let (mut rd, _wr) = server.split();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(m) = rd.recv().await {
            seen.push(m.unwrap());
        }
        seen
    });
    client
        .send(Message::Ping(Bytes::from_static(b"p1")))
        .await
        .unwrap();
    assert_eq!(
        client.recv().await.unwrap().unwrap(),
        Message::Pong(Bytes::from_static(b"p1"))
    );
    assert!(client.rtt().is_some());
    client.close(CloseCode::GOING_AWAY, "").await.unwrap();
    let seen = reader.await.unwrap();
    assert_eq!(seen[0], Message::Ping(Bytes::from_static(b"p1")));
    assert!(matches!(&seen[1], Message::Close(Some(c)) if c.code == CloseCode::GOING_AWAY));
}

#[tokio::test]
async fn sink_and_stream() {
    let (mut server, mut client) = pair(Config::default(), Config::default()).await;
    tokio::spawn(async move {
        while let Some(Ok(m)) = server.next().await {
            if m.is_data() {
                server.send(m).await.unwrap();
            }
        }
    });
    for i in 0..100 {
        client.feed(Message::text(format!("m{i}"))).await.unwrap();
    }
    client.flush().await.unwrap();
    for i in 0..100 {
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::text(format!("m{i}"))
        );
    }
    SinkExt::close(&mut client).await.unwrap();
}

#[tokio::test]
async fn protocol_error_gets_close_1002() {
    // A "client" that writes an unmasked frame: the server must answer 1002 and close.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    let mut raw = c.unwrap();
    let mut server =
        WebSocket::from_upgraded(s.unwrap().0, Role::Server, Config::default(), Bytes::new());
    tokio::io::AsyncWriteExt::write_all(&mut raw, &[0x81, 0x02, b'h', b'i'])
        .await
        .unwrap();
    let err = server.recv().await.unwrap().unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol(sansock::Error::UnmaskedFrame)
    ));
    assert_eq!(err.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    let mut got = Vec::new();
    raw.read_to_end(&mut got).await.unwrap();
    assert_eq!(
        got,
        [0x88, 0x02, 0x03, 0xea],
        "close 1002, then the server closed TCP"
    );
}

/// A server connection with a 5 s keepalive and a 3 s pong deadline, and the raw TCP
/// stream of its peer.
async fn keepalive_server() -> (WebSocket<TcpStream>, TcpStream) {
    let mut cfg = Config::default();
    cfg.protocol.keepalive_interval = Some(Duration::from_secs(5));
    cfg.protocol.pong_timeout = Duration::from_secs(3);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    let server = WebSocket::from_upgraded(s.unwrap().0, Role::Server, cfg, Bytes::new());
    (server, c.unwrap())
}

#[tokio::test(start_paused = true)]
async fn keepalive_drops_silent_peer() {
    let (mut server, mut silent) = keepalive_server().await; // the peer answers nothing
    let started = tokio::time::Instant::now();
    let err = server.recv().await.unwrap().unwrap_err();
    assert!(
        matches!(err, Error::Protocol(sansock::Error::PeerUnresponsive)),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_secs(8));
    let mut got = Vec::new();
    silent.read_to_end(&mut got).await.unwrap();
    assert_eq!(got[0], 0x89, "a keepalive ping went out first");
}

#[tokio::test]
async fn streamed_chunks_round_trip() {
    let (server, client) = pair(Config::default(), Config::default()).await;
    let (mut srd, _swr) = server.split();
    let (_crd, mut cwr) = client.split();
    let sender = tokio::spawn(async move {
        let data = vec![b'x'; 1 << 20];
        cwr.send_from_reader(DataKind::Text, &data[..], 64 << 10)
            .await
            .unwrap();
        cwr
    });
    let mut total = 0;
    let mut ends = 0;
    while let Some(chunk) = srd.recv_chunk().await {
        let chunk = chunk.unwrap();
        assert!(chunk.data.len() <= 64 << 10);
        total += chunk.data.len();
        if chunk.message_end {
            ends += 1;
            break;
        }
    }
    assert_eq!((total, ends), (1 << 20, 1));
    sender.await.unwrap();
}

#[tokio::test]
async fn send_waits_when_the_write_buffer_is_full() {
    // The peer never reads: the kernel buffers fill, then our write buffer; from then on
    // `feed` must wait instead of growing memory.
    let mut cfg = Config::default();
    cfg.max_write_buffer = 64 << 10;
    let (mut server, _silent_client) = pair(cfg, Config::default()).await;
    let msg = Message::Binary(Bytes::from(vec![1u8; 16 << 10]));
    let mut fed = 0usize;
    let blocked = loop {
        match tokio::time::timeout(Duration::from_millis(300), server.feed(msg.clone())).await {
            Ok(r) => {
                r.unwrap();
                fed += 1;
                assert!(
                    server.buffered_amount() <= (64 << 10) + (16 << 10) + 16,
                    "buffer grew to {}",
                    server.buffered_amount()
                );
                assert!(fed < 10_000, "feed never waited");
            }
            Err(_) => break true,
        }
    };
    assert!(blocked);
    assert!(fed > 4, "some messages went to the socket first ({fed})");
}

/// The keepalive timer is only ever moved earlier (re-arming it on every message cost
/// more than the rest of a small message's receive path); when it fires before the
/// current deadline it must just re-arm. Messages at 0, 2, 4 and 6 s push the deadline
/// along: the ping goes out at 11 s and the peer is declared dead at 14 s, not earlier.
#[tokio::test(start_paused = true)]
async fn keepalive_deadline_follows_traffic() {
    use tokio::io::AsyncWriteExt;
    let (mut server, mut peer) = keepalive_server().await;
    let started = tokio::time::Instant::now();
    let peer_task = tokio::spawn(async move {
        // A masked one-byte binary message ("x" under the key 01 02 03 04).
        let frame = [0x82, 0x81, 1, 2, 3, 4, b'x' ^ 1];
        for i in 0..4 {
            if i > 0 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            peer.write_all(&frame).await.unwrap();
        }
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut messages = 0;
    let err = loop {
        match server.recv().await.unwrap() {
            Ok(m) => {
                assert_eq!(m, Message::binary(&b"x"[..]));
                messages += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, Error::Protocol(sansock::Error::PeerUnresponsive)),
        "{err}"
    );
    assert_eq!(messages, 4);
    let at = started.elapsed();
    assert!(
        at >= Duration::from_secs(14) && at < Duration::from_secs(15),
        "declared dead at {at:?}"
    );
    let got = peer_task.await.unwrap();
    assert_eq!(got[0], 0x89, "the keepalive ping first");
    let ping_len = 2 + usize::from(got[1]);
    assert_eq!(got[ping_len], 0x88, "then the close, no second ping");
}

/// The keepalive timer is polled only once per arming (it keeps the waker and wakes the
/// task when it fires). A connection whose `recv` was first polled in one task and is
/// then moved to another must register the new task, or the ping would wake a task
/// that no longer polls it and the silent peer would never be found out.
#[tokio::test(start_paused = true)]
async fn keepalive_follows_the_connection_into_another_task() {
    let (mut server, mut silent) = keepalive_server().await;
    let started = tokio::time::Instant::now();
    // Task A polls `recv` (arming and registering the timer), then gives up.
    let mut server = tokio::spawn(async move {
        let r = tokio::time::timeout(Duration::from_secs(1), server.recv()).await;
        assert!(r.is_err(), "nothing to receive yet");
        server
    })
    .await
    .unwrap();
    // Task B takes over.
    let task_b = tokio::spawn(async move { server.recv().await.unwrap().unwrap_err() });
    let err = tokio::time::timeout(Duration::from_secs(60), task_b)
        .await
        .expect("the keepalive timer never woke the new task")
        .unwrap();
    assert!(
        matches!(err, Error::Protocol(sansock::Error::PeerUnresponsive)),
        "{err}"
    );
    let at = started.elapsed();
    assert!(
        at >= Duration::from_secs(8) && at < Duration::from_secs(9),
        "declared dead at {at:?}"
    );
    let mut got = Vec::new();
    silent.read_to_end(&mut got).await.unwrap();
    assert_eq!(got[0], 0x89, "a keepalive ping went out at 5 s");
}

/// Long server payloads are queued without copying and written after their headers in
/// vectored writes: fragmented or not, mixed with small messages fed into the write
/// buffer and with pongs, everything arrives whole and in order.
#[tokio::test]
async fn long_server_messages_keep_their_order_and_bytes() {
    let mut server_cfg = Config::default();
    server_cfg.protocol.max_send_frame_size = 10_000;
    let (mut server, mut client) = pair(server_cfg, Config::default()).await;
    let big = |seed: u8, len: usize| -> Bytes { (0..len).map(|i| seed ^ i as u8).collect() };
    let expected = vec![
        Message::Binary(big(1, 50_000)),
        Message::text("small"),
        Message::Binary(big(2, 16 << 10)),
        Message::Binary(big(3, 100_003)),
        Message::text("x".repeat(40_000)),
    ];
    client
        .send(Message::Ping(Bytes::from_static(b"p")))
        .await
        .unwrap();
    for m in &expected {
        server.feed(m.clone()).await.unwrap();
    }
    server.flush().await.unwrap();
    let reader = tokio::spawn(async move {
        // Answers the client's ping while the messages are still queued.
        while let Some(m) = server.recv().await {
            if m.is_err() {
                break;
            }
        }
    });
    let mut got = Vec::new();
    while got.len() < expected.len() {
        match client.recv().await.unwrap().unwrap() {
            Message::Pong(p) => assert_eq!(&p[..], b"p"),
            m => got.push(m),
        }
    }
    assert_eq!(got, expected);
    client.close(CloseCode::NORMAL, "").await.unwrap();
    reader.await.unwrap();
}
