//! The adapter's client against the adapter's server, over two embassy-net stacks joined
//! in memory (no privileges): handshake, messages of every size, fragments, ping/pong,
//! closing both ways, keepalive, protocol errors.

mod common;

use std::time::Duration;

use common::ws::{Assembler, TestRng, binary_of, config, echo_server, text_of};
use common::{SERVER_IP, run_pair, spawn};
use embassy_futures::join::join;
use embassy_net::tcp::TcpSocket;
use embedded_io_async::Write as _;
use sansock_embassy::{
    AcceptOptions, Buffers, ClientRequest, CloseCode, Config, DataKind, Error, Event, Request,
    accept, connect,
};

const PORT: u16 = 8080;

#[test]
fn handshake_with_every_request_option() {
    fn check(req: &Request<'_>) -> Result<(), u16> {
        let auth = req.header("Authorization").unwrap_or_default();
        // "user:secret" in base64.
        if auth != b"Basic dXNlcjpzZWNyZXQ=" || req.header("X-Device") != Some(&b"test"[..]) {
            return Err(401);
        }
        if req.query != Some("room=1") {
            return Err(400);
        }
        Ok(())
    }
    let (server_side, client_side) = run_pair(|server, client| async move {
        let server = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
            let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
            socket.accept(PORT).await.unwrap();
            let options = AcceptOptions::new()
                .path("/chat")
                .origins(&["http://example.test"])
                .subprotocols(&["chat", "superchat"])
                .require_subprotocol(true)
                .check(&check)
                .headers(&[("X-Server", "sansock-embassy")]);
            let (mut ws, chosen) = accept(
                &mut socket,
                &options,
                config(),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            let first = match ws.recv().await {
                Some(Ok(Event::Text(t))) => t.to_owned(),
                other => panic!("{other:?}"),
            };
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            (chosen, first)
        };
        let client = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
            let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
            socket.connect((SERVER_IP, PORT)).await.unwrap();
            let request = ClientRequest::new("10.0.0.1")
                .port(PORT)
                .path("/chat?room=1")
                .origin("http://example.test")
                .subprotocols(&["superchat", "chat"])
                .headers(&[("X-Device", "test")])
                .basic_auth("user", "secret");
            let (mut ws, chosen) = connect(
                &mut socket,
                &request,
                config(),
                TestRng(7),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            ws.send_text("hello").await.unwrap();
            let end = match ws.recv().await {
                Some(Ok(Event::Close(c))) => c.code,
                other => panic!("{other:?}"),
            };
            assert!(ws.recv().await.is_none());
            (chosen, end)
        };
        join(server, client).await
    });
    // The client's preference wins among the protocols both speak.
    assert_eq!(server_side, (Some("superchat"), "hello".to_owned()));
    assert_eq!(client_side, (Some("superchat"), CloseCode::NORMAL));
}

#[test]
fn refused_handshakes_report_the_status() {
    fn deny(req: &Request<'_>) -> Result<(), u16> {
        if req.header("X-Deny").is_some() {
            Err(403)
        } else {
            Ok(())
        }
    }
    let statuses = run_pair(|server, client| async move {
        let server = async move {
            let mut seen = Vec::new();
            for _ in 0..4 {
                let (mut rx, mut tx, mut read, mut write) =
                    ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
                let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
                socket.accept(PORT).await.unwrap();
                let options = AcceptOptions::new()
                    .path("/ws")
                    .origins(&["http://good.test"])
                    .check(&deny);
                match accept(
                    &mut socket,
                    &options,
                    config(),
                    Buffers::new(&mut read, &mut write),
                )
                .await
                {
                    Ok((mut ws, _)) => {
                        while let Some(event) = ws.recv().await {
                            event.unwrap();
                        }
                        seen.push(None);
                    }
                    Err(e) => seen.push(Some(e)),
                }
            }
            seen
        };
        let client = async move {
            let mut seen = Vec::new();
            let requests = [
                ClientRequest::new("h").path("/elsewhere"),
                ClientRequest::new("h")
                    .path("/ws")
                    .origin("http://evil.test"),
                ClientRequest::new("h")
                    .path("/ws")
                    .headers(&[("X-Deny", "1")]),
                ClientRequest::new("h").path("/ws"),
            ];
            for request in requests {
                let (mut rx, mut tx, mut read, mut write) =
                    ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
                let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
                socket.connect((SERVER_IP, PORT)).await.unwrap();
                let r = connect(
                    &mut socket,
                    &request,
                    config(),
                    TestRng(1),
                    Buffers::new(&mut read, &mut write),
                )
                .await;
                match r {
                    Ok((mut ws, _)) => {
                        ws.close(CloseCode::NORMAL, "").await.unwrap();
                        seen.push(None);
                    }
                    Err(e) => seen.push(Some(e)),
                }
                socket.abort();
                let _ = socket.flush().await;
            }
            seen
        };
        join(server, client).await
    });
    let (server_seen, client_seen) = statuses;
    assert_eq!(
        client_seen,
        vec![
            Some(Error::Rejected { status: 404 }),
            Some(Error::Rejected { status: 403 }),
            Some(Error::Rejected { status: 403 }),
            None,
        ]
    );
    assert_eq!(
        server_seen,
        vec![
            Some(Error::NotUpgraded { status: 404 }),
            Some(Error::NotUpgraded { status: 403 }),
            Some(Error::NotUpgraded { status: 403 }),
            None,
        ]
    );
}

/// Sizes from empty to several times every buffer (read 2 KiB, write 512 B, message 2 KiB).
const SIZES: &[usize] = &[
    0, 1, 125, 126, 127, 999, 1000, 1001, 2048, 2049, 5000, 65535, 65536, 100_000,
];

#[test]
fn text_and_binary_messages_of_every_size_round_trip() {
    run_pair(|server, client| async move {
        spawn(async move {
            assert_eq!(echo_server(server, PORT, config(), 4096).await, None);
        });
        let (mut rx, mut tx, mut read, mut write, mut message) = (
            [0u8; 4096],
            [0u8; 4096],
            [0u8; 2048],
            [0u8; 512],
            [0u8; 2048],
        );
        let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
        socket.connect((SERVER_IP, PORT)).await.unwrap();
        let buffers = Buffers::new(&mut read, &mut write).with_message(&mut message);
        let request = ClientRequest::new("10.0.0.1");
        let (mut ws, _) = connect(&mut socket, &request, config(), TestRng(3), buffers)
            .await
            .unwrap();
        let mut asm = Assembler::default();
        for &len in SIZES {
            for kind in [DataKind::Text, DataKind::Binary] {
                let data = match kind {
                    DataKind::Text => text_of(len).into_bytes(),
                    DataKind::Binary => binary_of(len),
                };
                ws.send(kind, &data).await.unwrap();
                let got = loop {
                    let event = ws.recv().await.expect("open").expect("no error");
                    if let Some(m) = asm.feed(event) {
                        break m;
                    }
                };
                assert_eq!((got.kind, got.data.len()), (kind, len));
                assert!(got.data == data, "{kind:?} message of {len} bytes changed");
                if len <= 2048 {
                    assert_eq!(got.pieces, 1, "{len} bytes fit the message buffer: whole");
                } else {
                    assert!(got.pieces > 1, "{len} bytes do not fit: fragments");
                }
            }
        }
        ws.close(CloseCode::NORMAL, "done").await.unwrap();
    });
}

#[test]
fn fragmented_receive_without_a_message_buffer_and_streamed_send() {
    run_pair(|server, client| async move {
        let server = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 4096], [0u8; 4096], [0u8; 600], [0u8; 300]);
            let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
            socket.accept(PORT).await.unwrap();
            // No message buffer: anything not in one read is handed out in fragments.
            let (mut ws, _) = accept(
                &mut socket,
                &AcceptOptions::new(),
                config(),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            let mut fragments = Vec::new();
            while let Some(event) = ws.recv().await {
                match event.unwrap() {
                    Event::Fragment(f) => {
                        assert!(f.data.len() <= 600);
                        fragments.push((f.kind, f.data.to_vec(), f.first, f.last));
                    }
                    Event::Binary(b) => fragments.push((DataKind::Binary, b.to_vec(), true, true)),
                    Event::Text(t) => {
                        fragments.push((DataKind::Text, t.as_bytes().to_vec(), true, true))
                    }
                    _ => {}
                }
            }
            fragments
        };
        let client = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 4096], [0u8; 4096], [0u8; 1024], [0u8; 512]);
            let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
            socket.connect((SERVER_IP, PORT)).await.unwrap();
            let (mut ws, _) = connect(
                &mut socket,
                &ClientRequest::new("h"),
                config(),
                TestRng(5),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            // 5000 bytes in 1000-byte frames through a 512-byte write buffer.
            ws.send_binary(&binary_of(5000)).await.unwrap();
            // A text message streamed in three parts, the middle one splitting a code point.
            let text = "héllo wörld, ünïcode ✓".as_bytes();
            ws.send_fragment(DataKind::Text, &text[..2], false)
                .await
                .unwrap();
            ws.send_fragment(DataKind::Text, &text[2..10], false)
                .await
                .unwrap();
            ws.send_fragment(DataKind::Text, &text[10..], true)
                .await
                .unwrap();
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            text.to_vec()
        };
        let (fragments, text) = join(server, client).await;
        let binary: Vec<u8> = fragments
            .iter()
            .filter(|f| f.0 == DataKind::Binary)
            .flat_map(|f| f.1.clone())
            .collect();
        assert_eq!(binary, binary_of(5000));
        let bin: Vec<_> = fragments
            .iter()
            .filter(|f| f.0 == DataKind::Binary)
            .collect();
        assert!(bin.len() > 1 && bin[0].2 && !bin[0].3 && bin[bin.len() - 1].3);
        assert!(bin[1..].iter().all(|f| !f.2));
        let streamed: Vec<u8> = fragments
            .iter()
            .filter(|f| f.0 == DataKind::Text)
            .flat_map(|f| f.1.clone())
            .collect();
        assert_eq!(streamed, text);
    });
}

#[test]
fn ping_pong_both_ways() {
    run_pair(|server, client| async move {
        let server = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
            let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
            socket.accept(PORT).await.unwrap();
            let (mut ws, _) = accept(
                &mut socket,
                &AcceptOptions::new(),
                config(),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            let mut log = Vec::new();
            ws.ping(b"from server").await.unwrap();
            while let Some(event) = ws.recv().await {
                match event.unwrap() {
                    Event::Ping(p) => log.push(format!("ping {}", String::from_utf8_lossy(p))),
                    Event::Pong(p) => log.push(format!("pong {}", String::from_utf8_lossy(p))),
                    Event::Close(c) => log.push(format!("close {}", c.code.0)),
                    other => panic!("{other:?}"),
                }
            }
            assert!(ws.rtt().is_some());
            log
        };
        let client = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
            let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
            socket.connect((SERVER_IP, PORT)).await.unwrap();
            let (mut ws, _) = connect(
                &mut socket,
                &ClientRequest::new("h"),
                config(),
                TestRng(9),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            let mut log = Vec::new();
            // The server's ping arrives (and is answered by recv itself).
            match ws.recv().await {
                Some(Ok(Event::Ping(p))) => {
                    log.push(format!("ping {}", String::from_utf8_lossy(p)))
                }
                other => panic!("{other:?}"),
            }
            ws.ping(b"from client").await.unwrap();
            match ws.recv().await {
                Some(Ok(Event::Pong(p))) => {
                    log.push(format!("pong {}", String::from_utf8_lossy(p)))
                }
                other => panic!("{other:?}"),
            }
            assert!(ws.rtt().is_some());
            ws.close(CloseCode::NORMAL, "").await.unwrap();
            log
        };
        let (server_log, client_log) = join(server, client).await;
        assert_eq!(
            server_log,
            ["pong from server", "ping from client", "close 1000"]
        );
        assert_eq!(client_log, ["ping from server", "pong from client"]);
    });
}

#[test]
fn close_started_by_the_client_and_by_the_server() {
    for server_closes in [false, true] {
        let (server_log, client_log) = run_pair(move |server, client| async move {
            let server = async move {
                let (mut rx, mut tx, mut read, mut write) =
                    ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
                let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
                socket.accept(PORT).await.unwrap();
                let (mut ws, _) = accept(
                    &mut socket,
                    &AcceptOptions::new(),
                    config(),
                    Buffers::new(&mut read, &mut write),
                )
                .await
                .unwrap();
                if server_closes {
                    ws.start_close(CloseCode(4000), "server done")
                        .await
                        .unwrap();
                }
                let mut log = Vec::new();
                while let Some(event) = ws.recv().await {
                    if let Event::Close(c) = event.unwrap() {
                        log.push((c.code.0, c.reason.to_owned()));
                    }
                }
                assert_eq!(ws.state(), sansock_embassy::State::Closed);
                assert!(ws.send_text("late").await.is_err());
                log
            };
            let client = async move {
                let (mut rx, mut tx, mut read, mut write) =
                    ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
                let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
                socket.connect((SERVER_IP, PORT)).await.unwrap();
                let (mut ws, _) = connect(
                    &mut socket,
                    &ClientRequest::new("h"),
                    config(),
                    TestRng(11),
                    Buffers::new(&mut read, &mut write),
                )
                .await
                .unwrap();
                let mut log = Vec::new();
                if server_closes {
                    while let Some(event) = ws.recv().await {
                        if let Event::Close(c) = event.unwrap() {
                            log.push((c.code.0, c.reason.to_owned()));
                        }
                    }
                } else {
                    ws.close(CloseCode::GOING_AWAY, "client done")
                        .await
                        .unwrap();
                }
                assert!(ws.is_ended());
                assert!(ws.recv().await.is_none());
                log
            };
            join(server, client).await
        });
        if server_closes {
            // The server sees the client's echo (same code, no reason).
            assert_eq!(server_log, [(4000, String::new())]);
            assert_eq!(client_log, [(4000, "server done".to_owned())]);
        } else {
            assert_eq!(server_log, [(1001, "client done".to_owned())]);
            assert!(client_log.is_empty());
        }
    }
}

#[test]
fn a_silent_peer_is_dropped_by_keepalive() {
    run_pair(|server, client| async move {
        let server = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
            let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
            socket.accept(PORT).await.unwrap();
            let mut cfg = config();
            cfg.keepalive_interval = Some(Duration::from_millis(200));
            cfg.pong_timeout = Duration::from_millis(300);
            let (mut ws, _) = accept(
                &mut socket,
                &AcceptOptions::new(),
                cfg,
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            let start = embassy_time::Instant::now();
            let end = ws.recv().await;
            let took = start.elapsed();
            let end = end.map(|r| r.map(|_| ()));
            assert!(ws.recv().await.is_none());
            (end, took)
        };
        let client = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
            let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
            socket.connect((SERVER_IP, PORT)).await.unwrap();
            let (ws, _) = connect(
                &mut socket,
                &ClientRequest::new("h"),
                config(),
                TestRng(13),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            // Connected, then silent: never reads, so the keepalive ping is never answered.
            embassy_time::Timer::after_millis(1500).await;
            drop(ws);
        };
        let ((end, took), ()) = join(server, client).await;
        assert_eq!(
            end,
            Some(Err(Error::Protocol(sansock::Error::PeerUnresponsive)))
        );
        assert!(
            took >= embassy_time::Duration::from_millis(450)
                && took < embassy_time::Duration::from_millis(1200),
            "dropped after {took:?}"
        );
    });
}

#[test]
fn a_malformed_frame_gets_close_1002() {
    run_pair(|server, client| async move {
        let server = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
            let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
            socket.accept(PORT).await.unwrap();
            let (mut ws, _) = accept(
                &mut socket,
                &AcceptOptions::new(),
                config(),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            let first = ws.recv().await.map(|r| r.map(|e| format!("{e:?}")));
            let second = ws.recv().await.map(|r| r.map(|e| format!("{e:?}")));
            (first, second)
        };
        let client = async move {
            let (mut rx, mut tx, mut read, mut write) =
                ([0u8; 2048], [0u8; 2048], [0u8; 1024], [0u8; 512]);
            let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
            socket.connect((SERVER_IP, PORT)).await.unwrap();
            let (mut ws, _) = connect(
                &mut socket,
                &ClientRequest::new("h"),
                config(),
                TestRng(17),
                Buffers::new(&mut read, &mut write),
            )
            .await
            .unwrap();
            // Opcode 0x3 is reserved (RFC 6455 §5.2): masked, empty.
            ws.transport_mut()
                .write_all(&[0x83, 0x80, 1, 2, 3, 4])
                .await
                .unwrap();
            let close = match ws.recv().await {
                Some(Ok(Event::Close(c))) => c.code,
                other => panic!("{other:?}"),
            };
            let end = ws.recv().await.map(|r| r.map(|_| ()));
            (close, end)
        };
        let ((first, second), (close, end)) = join(server, client).await;
        assert_eq!(
            first,
            Some(Err(Error::Protocol(sansock::Error::UnknownOpcode(3))))
        );
        assert_eq!(second, None);
        assert_eq!(close, CloseCode::PROTOCOL_ERROR);
        assert_eq!(end, None);
    });
}

#[test]
fn buffers_too_small_are_refused_up_front() {
    run_pair(|_server, client| async move {
        let (mut rx, mut tx, mut read, mut write) = ([0u8; 256], [0u8; 256], [0u8; 64], [0u8; 64]);
        let socket = TcpSocket::new(client, &mut rx, &mut tx);
        let r = connect(
            socket,
            &ClientRequest::new("h"),
            Config::microcontroller(),
            TestRng(1),
            Buffers::new(&mut read, &mut write),
        )
        .await;
        assert_eq!(
            r.err(),
            Some(Error::BufferTooSmall {
                buffer: "write",
                needed: sansock_embassy::MIN_WRITE_BUFFER
            })
        );
    });
}
