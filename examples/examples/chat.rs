//! A chat room for browsers: an HTML page and its WebSocket on the same port; every
//! message a browser sends goes to every browser.
//!
//! `cargo run -p sansock-examples --example chat -- --listen 127.0.0.1:8080`, then open
//! <http://127.0.0.1:8080/> in two windows. Ctrl-C shuts down gracefully (every browser
//! is sent close 1001). `RUST_LOG=info` shows the session events.
#![allow(clippy::print_stderr)]

#[path = "util/args.rs"]
mod args;
use args::arg;

use std::time::Duration;

use sansock_tokio::server::{CloseInfo, Handler, HttpResponse, Server, Session};
use sansock_tokio::{Config, Message};
use tokio::net::TcpListener;

const PAGE: &str = include_str!("chat.html");

/// The room: each session gets a name; what it says is broadcast to everyone on /chat.
struct Room;

impl Handler for Room {
    type State = String;

    async fn on_open(&self, session: &Session) -> String {
        let name = format!("guest{}", session.id());
        let _ = session.send(format!("* you are {name}"));
        session
            .server()
            .broadcast_filter(format!("* {name} joined"), |s| s.id() != session.id());
        name
    }

    async fn on_message(&self, session: &Session, name: &mut String, message: Message) {
        if let Message::Text(text) = message {
            session
                .server()
                .broadcast_to_path("/chat", format!("{name}: {text}"));
        }
    }

    async fn on_close(&self, session: &Session, name: String, _: CloseInfo) {
        session
            .server()
            .broadcast_to_path("/chat", format!("* {name} left"));
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;

    let mut protocol = sansock::Config::default();
    protocol.max_message_size = 64 << 10;
    protocol.max_frame_size = 64 << 10;
    let server = Server::builder()
        .route("/chat", Room)
        .connection_config(Config::with_protocol(protocol))
        .handshake_timeout(Duration::from_secs(5))
        // Only pages served from here may open the WebSocket (cross-site WebSocket
        // hijacking); clients that are not browsers send no Origin and are let in.
        .allowed_origins([
            format!("http://{addr}"),
            format!("http://localhost:{}", addr.port()),
        ])
        .keepalive(Some(Duration::from_secs(20)), Duration::from_secs(10))
        .max_clients(1000)
        .shutdown_timeout(Duration::from_secs(3))
        .http_fallback(|req| match req.path() {
            "/" | "/index.html" => HttpResponse::html(PAGE),
            _ => HttpResponse::text(404, "not found\n"),
        })
        .build();

    let handle = server.clone();
    let stopper = tokio::spawn(async move {
        tokio::signal::ctrl_c().await.ok()?;
        eprintln!("chat: shutting down");
        Some(handle.shutdown().await)
    });
    eprintln!("chat listening on http://{addr}/");
    // Returns once a shutdown is complete.
    server.serve(listener).await;
    if let Ok(Some(report)) = stopper.await {
        eprintln!(
            "chat: {} sessions closed ({} cut)",
            report.sessions, report.forced
        );
    }
    Ok(())
}
