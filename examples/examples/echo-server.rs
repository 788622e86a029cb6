//! Echoes every message back with its own type. Autobahn-ready.
//!
//! `cargo run --release -p sansock-examples --example echo-server -- --listen 127.0.0.1:9001`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use sansock_tokio::{Config, Message};
use tokio::net::TcpListener;

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&listen).await?;
    let mut protocol = sansock::Config::default();
    protocol.max_message_size = 16 << 20;
    protocol.max_frame_size = 16 << 20;
    let config = Config::with_protocol(protocol);
    eprintln!("echo-server listening on ws://{}", listener.local_addr()?);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stream.set_nodelay(true)?;
                let config = config.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = sansock_tokio::accept_with_config(stream, config).await else { return };
                    while let Some(Ok(msg)) = ws.recv().await {
                        if matches!(msg, Message::Text(_) | Message::Binary(_)) && ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("echo-server: stopping");
                return Ok(());
            }
        }
    }
}
