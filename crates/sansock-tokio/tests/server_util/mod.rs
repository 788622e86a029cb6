//! Helpers shared by the `server_*` tests: a server on a loopback port, clients, raw
//! HTTP exchanges, bounded waits.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sansock_tokio::client::{ClientBuilder, ClientStream};
use sansock_tokio::server::{Server, ServerBuilder};
use sansock_tokio::{Message, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Everything in these tests happens within this bound.
pub const LIMIT: Duration = Duration::from_secs(20);

pub type Client = WebSocket<ClientStream>;

/// Build the server, serve it on a fresh loopback port.
pub async fn start(builder: ServerBuilder) -> (Server, SocketAddr, JoinHandle<()>) {
    let server = builder.build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    let join = tokio::spawn(async move { s.serve(listener).await });
    (server, addr, join)
}

pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

pub async fn connect(addr: SocketAddr, path: &str) -> Client {
    connect_with(ClientBuilder::new(&url(addr, path)).unwrap()).await
}

pub async fn connect_with(builder: ClientBuilder) -> Client {
    bounded(builder.connect()).await.expect("connects").0
}

/// The next message, within [`LIMIT`].
pub async fn recv(ws: &mut Client) -> Message {
    bounded(ws.recv())
        .await
        .expect("a message, not the end")
        .expect("no error")
}

pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("within the test's time bound")
}

/// Poll `cond` every 10 ms until it holds, within [`LIMIT`].
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    bounded(async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// A valid upgrade request for `path` with `extra` header lines (each ending in CRLF).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Send `request` on a new connection and read the answer's head (up to the blank
/// line); the stream is returned for more.
pub async fn exchange(addr: SocketAddr, request: &str) -> (String, TcpStream) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut s).await;
    (head, s)
}

pub async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    bounded(async {
        while !head.ends_with(b"\r\n\r\n") {
            // A reset (the server dropped the connection unread) ends it too.
            if !matches!(s.read(&mut byte).await, Ok(1)) {
                break;
            }
            head.push(byte[0]);
        }
    })
    .await;
    String::from_utf8(head).unwrap()
}

/// The status code of a response head.
pub fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Every value of header `name` in a response head.
pub fn header_values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Read to EOF (within [`LIMIT`]).
pub async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    bounded(s.read_to_end(&mut out)).await.ok();
    out
}
