//! Echoes every message back with its own type. Autobahn-ready.
//!
//! `cargo run --release -p sansock-examples --example echo-server -- --listen 127.0.0.1:9001 [--deflate] [--tls-cert cert.pem --tls-key key.pem]`
//!
//! `--deflate` accepts permessage-deflate (RFC 7692) offers.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "util/args.rs"]
mod args;
use args::arg;

use sansock_tokio::{Config, Message};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

async fn echo<S: AsyncRead + AsyncWrite + Unpin>(stream: S, config: Config) {
    let Ok(mut ws) = sansock_tokio::accept_with_config(stream, config).await else {
        return;
    };
    while let Some(msg) = ws.recv().await {
        let msg = match msg {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(error = %e, "connection ended with an error");
                break;
            }
        };
        if matches!(msg, Message::Text(_) | Message::Binary(_))
            && let Err(e) = ws.send(msg).await
        {
            tracing::debug!(error = %e, "send failed");
            break;
        }
    }
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
    let mut config = Config::with_protocol(protocol);
    if args::flag("--deflate") {
        config.deflate = Some(Default::default());
    }
    let tls = match (arg("--tls-cert"), arg("--tls-key")) {
        (Some(cert), Some(key)) => {
            Some(sansock_tokio::tls::tls_acceptor_from_pem(cert, key, None)?)
        }
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    eprintln!(
        "echo-server listening on {scheme}://{}",
        listener.local_addr()?
    );
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stream.set_nodelay(true)?;
                let config = config.clone();
                // One task type per transport: a task holding both would be as large as
                // the TLS one (9.3 KB instead of 1.9 KB) even for plain connections.
                match tls.clone() {
                    Some(acceptor) => {
                        tokio::spawn(async move {
                            if let Ok(stream) = sansock_tokio::tls::accept_tls(&acceptor, stream).await {
                                echo(stream, config).await;
                            }
                        });
                    }
                    None => {
                        tokio::spawn(echo(stream, config));
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("echo-server: stopping");
                return Ok(());
            }
        }
    }
}
