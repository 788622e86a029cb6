//! A plain hyper 1.x server with a page at `/` and a WebSocket echo at `/ws`, on one port.
//!
//! `cargo run --release -p sansock-examples --example hyper-server -- --listen 127.0.0.1:8080`
//!
//! Open `http://127.0.0.1:8080/` in a browser: the page opens a WebSocket to `/ws`,
//! sends what you type and prints what comes back. Any other path is a 404.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "util/args.rs"]
mod args;
use args::arg;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sansock_tokio::upgrade::{HyperWebSocket, is_upgrade_request, upgrade};
use sansock_tokio::{Config, Error, Message};
use tokio::net::TcpListener;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>sansock + hyper echo</title>
<style>body { font: 15px system-ui, sans-serif; margin: 2em; } #log { white-space: pre-wrap; }</style>
<h1>sansock + hyper echo</h1>
<form id="form"><input id="text" autocomplete="off" autofocus placeholder="say something"> <button>send</button></form>
<div id="log"></div>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
const ws = new WebSocket(new URL("/ws", location.href).href.replace(/^http/, "ws"));
ws.onopen = () => { log("open"); ws.send("hello from the page"); };
ws.onmessage = (e) => log("echo: " + e.data);
ws.onclose = (e) => log("closed: " + e.code + " " + e.reason);
ws.onerror = () => log("error");
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  log("sent: " + input.value);
  input.value = "";
};
</script>
</html>
"#;

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "text/plain; charset=utf-8".parse().unwrap());
    response
}

async fn handle(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.uri().path() {
        "/" => {
            let mut response = Response::new(Full::from(PAGE));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, "text/html; charset=utf-8".parse().unwrap());
            response
        }
        "/ws" if !is_upgrade_request(&req) => {
            let mut response = text(StatusCode::UPGRADE_REQUIRED, "WebSocket endpoint\n");
            response
                .headers_mut()
                .insert(UPGRADE, "websocket".parse().unwrap());
            response
        }
        "/ws" => match upgrade(&mut req, Config::default()) {
            Ok((response, websocket)) => {
                tokio::spawn(async move {
                    if let Err(e) = echo(websocket).await {
                        eprintln!("hyper-server: WebSocket ended with {e}");
                    }
                });
                response
            }
            // 400, 405, or 426 with `Sec-WebSocket-Version: 13`.
            Err(refused) => {
                eprintln!("hyper-server: {refused}: {}", refused.error());
                refused.to_response()
            }
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    })
}

async fn echo(websocket: HyperWebSocket) -> Result<(), Error> {
    let mut ws = websocket.await?;
    while let Some(msg) = ws.recv().await {
        // Pings and the close are answered by the connection itself.
        if let msg @ (Message::Text(_) | Message::Binary(_)) = msg? {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    eprintln!("hyper-server: page at http://{addr}/, WebSocket echo at ws://{addr}/ws");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, _) = accepted?;
                tcp.set_nodelay(true)?;
                tokio::spawn(async move {
                    let served = http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service_fn(handle))
                        .with_upgrades()
                        .await;
                    if let Err(e) = served {
                        eprintln!("hyper-server: connection error: {e}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("hyper-server: stopping");
                return Ok(());
            }
        }
    }
}
