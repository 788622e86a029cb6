//! Interoperability with the tokio adapter through the host kernel's TCP stack: the
//! embassy client against `sansock_tokio::accept`, and `sansock_tokio::connect` against
//! the embassy server, over a TAP device in a throw-away network namespace. Skips itself
//! (saying why) where `/dev/net/tun` or `unshare -n` is not available.

mod common;

use std::time::Duration;

use common::tuntap;
use common::ws::{Assembler, TestRng, binary_of, config, text_of};
use embassy_net::tcp::TcpSocket;
use sansock_embassy::{
    AcceptOptions, Buffers, ClientRequest, CloseCode, DataKind, Event, accept, connect,
};
use sansock_tokio::Message;

const SIZES: &[usize] = &[0, 1, 125, 126, 5000, 65536, 70_000];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn embassy_client_against_tokio_server() {
    tuntap::netns_test("embassy_client_against_tokio_server", || {
        let tap = tuntap::open_tap();
        let listener = std::net::TcpListener::bind((tuntap::HOST_IP, 0)).expect("bind");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();

        // The tokio server: echo data, report the close it saw.
        let server = std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let (stream, _) = listener.accept().await.unwrap();
                let mut ws = sansock_tokio::accept(stream).await.expect("tokio accept");
                let mut echoed = 0;
                let mut close = None;
                while let Some(msg) = ws.recv().await {
                    match msg.expect("tokio recv") {
                        m @ (Message::Text(_) | Message::Binary(_)) => {
                            ws.send(m).await.unwrap();
                            echoed += 1;
                        }
                        Message::Close(c) => close = c.map(|c| (c.code.0, c.reason.to_string())),
                        _ => {}
                    }
                }
                (echoed, close)
            })
        });

        let received = tuntap::run_on_tap(tap, move |stack| async move {
            let (mut rx, mut tx) = (vec![0u8; 4096], vec![0u8; 4096]);
            let (mut read, mut write, mut message) =
                (vec![0u8; 2048], vec![0u8; 512], vec![0u8; 2048]);
            let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
            socket
                .connect((tuntap::HOST_IP, port))
                .await
                .expect("connect to the kernel");
            let request = ClientRequest::new("10.0.0.1").port(port).path("/interop");
            let buffers = Buffers::new(&mut read, &mut write).with_message(&mut message);
            let (mut ws, _) = connect(&mut socket, &request, config(), TestRng(21), buffers)
                .await
                .expect("handshake with tokio");
            let mut asm = Assembler::default();
            let mut ok = 0;
            for &len in SIZES {
                for kind in [DataKind::Text, DataKind::Binary] {
                    let data = match kind {
                        DataKind::Text => text_of(len).into_bytes(),
                        DataKind::Binary => binary_of(len),
                    };
                    ws.send(kind, &data).await.unwrap();
                    let got = loop {
                        if let Some(m) = asm.feed(ws.recv().await.unwrap().unwrap()) {
                            break m;
                        }
                    };
                    assert_eq!((got.kind, got.data == data), (kind, true), "{len} bytes");
                    ok += 1;
                }
            }
            ws.ping(b"embassy").await.unwrap();
            match ws.recv().await {
                Some(Ok(Event::Pong(p))) => assert_eq!(p, b"embassy"),
                other => panic!("{other:?}"),
            }
            ws.close(CloseCode::NORMAL, "interop done")
                .await
                .expect("clean close");
            ok
        });
        let (echoed, close) = server.join().expect("tokio server");
        assert_eq!(received, 2 * SIZES.len());
        assert_eq!(echoed, 2 * SIZES.len());
        assert_eq!(close, Some((1000, "interop done".to_owned())));
    });
}

#[test]
fn tokio_client_against_embassy_server() {
    tuntap::netns_test("tokio_client_against_embassy_server", || {
        let tap = tuntap::open_tap();
        const PORT: u16 = 8080;

        let client = std::thread::spawn(|| {
            runtime().block_on(async {
                let url = format!("ws://{}:{PORT}/", tuntap::STACK_IP);
                // The embassy stack comes up in parallel: retry until it listens.
                let mut tries = 0;
                let (mut ws, _) = loop {
                    match sansock_tokio::connect(&url).await {
                        Ok(ok) => break ok,
                        Err(e) if tries < 100 => {
                            tries += 1;
                            let _ = e;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("tokio connect: {e}"),
                    }
                };
                let mut ok = 0;
                for &len in SIZES {
                    for msg in [Message::text(text_of(len)), Message::binary(binary_of(len))] {
                        ws.send(msg.clone()).await.unwrap();
                        loop {
                            let m = ws.recv().await.expect("open").expect("recv");
                            if m.is_data() {
                                assert!(m == msg, "{len} bytes changed");
                                ok += 1;
                                break;
                            }
                        }
                    }
                }
                ws.send(Message::Ping(bytes::Bytes::from_static(b"tokio")))
                    .await
                    .unwrap();
                loop {
                    if let Message::Pong(p) = ws.recv().await.unwrap().unwrap() {
                        assert_eq!(&p[..], b"tokio");
                        break;
                    }
                }
                ws.close(CloseCode::GOING_AWAY, "tokio done")
                    .await
                    .expect("clean close");
                ok
            })
        });

        let (echoed, close) = tuntap::run_on_tap(tap, move |stack| async move {
            let (mut rx, mut tx) = (vec![0u8; 4096], vec![0u8; 4096]);
            let (mut read, mut write, mut message) =
                (vec![0u8; 2048], vec![0u8; 512], vec![0u8; 2048]);
            let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
            socket.accept(PORT).await.expect("accept");
            let buffers = Buffers::new(&mut read, &mut write).with_message(&mut message);
            let (mut ws, _) = accept(&mut socket, &AcceptOptions::new(), config(), buffers)
                .await
                .expect("handshake with tokio");
            let mut asm = Assembler::default();
            let (mut echoed, mut close) = (0, None);
            while let Some(event) = ws.recv().await {
                let event = event.expect("embassy recv");
                if let Event::Close(c) = event {
                    close = Some((c.code.0, c.reason.to_owned()));
                } else if let Some(m) = asm.feed(event) {
                    ws.send(m.kind, &m.data).await.unwrap();
                    echoed += 1;
                }
            }
            (echoed, close)
        });
        let received = client.join().expect("tokio client");
        assert_eq!(received, 2 * SIZES.len());
        assert_eq!(echoed, 2 * SIZES.len());
        assert_eq!(close, Some((1001, "tokio done".to_owned())));
    });
}
