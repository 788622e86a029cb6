//! A server and a client on loopback in one process, printing their exchange: text,
//! binary, a fragmented 1 MiB message, ping/pong with the measured round trip, and the
//! closing handshake.
//!
//! `cargo run --release -p sansock-examples --example demo`
#![allow(clippy::print_stdout)]

use bytes::Bytes;
use sansock_tokio::{CloseCode, DataKind, Message};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("server: listening on ws://{addr}");

    let server = tokio::spawn(async move {
        let (stream, peer) = listener.accept().await?;
        let pending = sansock_tokio::read_request(stream, Default::default()).await?;
        let req = pending.request();
        println!(
            "server: upgrade from {peer} for {} (subprotocols offered: {:?})",
            req.path,
            req.subprotocols().collect::<Vec<_>>()
        );
        let mut ws = pending
            .accept(sansock_tokio::Accept::default().subprotocol("demo.v1"))
            .await?;
        while let Some(msg) = ws.recv().await {
            match msg? {
                Message::Text(t) => {
                    println!("server: got text {:?}, echoing", t.as_str());
                    ws.send(Message::text(format!("echo: {t}"))).await?;
                }
                Message::Binary(b) => {
                    println!("server: got {} bytes of binary, echoing", b.len());
                    ws.send(Message::Binary(b)).await?;
                }
                Message::Ping(p) => println!("server: got ping {p:?} (pong sent automatically)"),
                Message::Close(c) => {
                    println!("server: got close {c:?}, echoing it and closing TCP")
                }
                _ => {}
            }
        }
        Ok::<_, sansock_tokio::Error>(())
    });

    let (mut ws, response) =
        sansock_tokio::ClientBuilder::new(&format!("ws://{addr}/chat?room=demo"))?
            .subprotocols(["demo.v1"])
            .connect()
            .await?;
    println!(
        "client: connected, server chose subprotocol {:?}",
        response.subprotocol
    );

    ws.send("hello, sansock").await?;
    if let Some(reply) = ws.recv().await {
        println!("client: got {:?}", reply?.as_text().unwrap_or_default());
    }

    ws.send(Message::Binary(Bytes::from_static(&[
        0xde, 0xad, 0xbe, 0xef,
    ])))
    .await?;
    println!(
        "client: binary echoed back: {:?}",
        ws.recv().await.transpose()?
    );

    // A 1 MiB message streamed as 16 frames of 64 KiB.
    let big = vec![b'x'; 1 << 20];
    ws.send_from_reader(DataKind::Binary, &big[..], 64 << 10)
        .await?;
    match ws.recv().await.transpose()? {
        Some(Message::Binary(b)) => println!(
            "client: 1 MiB message sent in 16 frames came back whole ({} bytes)",
            b.len()
        ),
        other => println!("client: unexpected {other:?}"),
    }

    ws.send(Message::Ping(Bytes::from_static(b"rtt"))).await?;
    if let Some(Ok(Message::Pong(p))) = ws.recv().await {
        println!(
            "client: pong {:?}, round trip {:?}",
            p,
            ws.rtt().unwrap_or_default()
        );
    }

    ws.close(CloseCode::NORMAL, "demo done").await?;
    println!("client: closing handshake complete, state {:?}", ws.state());
    server.await??;
    println!("demo: done");
    Ok(())
}
