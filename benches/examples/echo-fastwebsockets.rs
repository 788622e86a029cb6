//! A fastwebsockets echo server, the peer of `examples/echo-server` in
//! `benches/compare.sh`: current-thread runtime, fragments collected, every text or
//! binary message sent back.
//!
//! fastwebsockets' own upgrade needs hyper; the opening handshake here is answered with
//! sansock's sans-IO handshake instead (it is not what the comparison measures), then
//! the stream is handed to `fastwebsockets::WebSocket::after_handshake`.
//!
//! `echo-fastwebsockets --listen 127.0.0.1:9103`
#![allow(clippy::print_stderr)]

use fastwebsockets::{FragmentCollector, Frame, OpCode, Role, WebSocket};
use sansock::handshake::{ServerHandshake, write_accept};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../../examples/examples/util/args.rs"]
mod args;
use args::arg;

/// Answer the opening handshake; the client sends nothing before the 101.
async fn handshake(stream: &mut TcpStream) -> Option<()> {
    let hs = ServerHandshake::new(&sansock::Config::default(), sansock::Instant::ZERO);
    let mut buf = Vec::with_capacity(1024);
    let mut answer = Vec::with_capacity(256);
    loop {
        if stream.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
        if let Some(req) = hs.parse_request(&buf).ok()? {
            write_accept(req.key, None, None, &[], &mut answer).ok()?;
            break;
        }
    }
    stream.write_all(&answer).await.ok()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:9103".into());
    let listener = TcpListener::bind(&listen).await?;
    eprintln!(
        "echo-fastwebsockets listening on ws://{}",
        listener.local_addr()?
    );
    loop {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            if handshake(&mut stream).await.is_none() {
                return;
            }
            let mut ws = WebSocket::after_handshake(stream, Role::Server);
            // The same limit as examples/echo-server; automatic pongs and close echo.
            ws.set_max_message_size(16 << 20);
            let mut ws = FragmentCollector::new(ws);
            while let Ok(frame) = ws.read_frame().await {
                match frame.opcode {
                    OpCode::Close => break,
                    OpCode::Text | OpCode::Binary => {
                        let out = Frame::new(true, frame.opcode, None, frame.payload);
                        if ws.write_frame(out).await.is_err() {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        });
    }
}
