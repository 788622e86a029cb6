//! Prints the memory the connection types take, for the numbers in the README.
//!
//! `cargo run --release -p sansock-examples --example sizes`
#![allow(clippy::print_stdout)]

use sansock::conn::DataKind;
use sansock::deflate::{DeflateConfig, DeflateParams};
use sansock::{Config, Connection, Instant};

fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    println!(
        "sansock::Connection (server): {} B",
        std::mem::size_of::<Connection>()
    );
    println!(
        "sansock_tokio::WebSocket<TcpStream>: {} B (the connection state and buffers, by value)",
        std::mem::size_of::<sansock_tokio::WebSocket<tokio::net::TcpStream>>()
    );
    let fut = async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let mut ws = sansock_tokio::accept(s).await.unwrap();
        while let Some(Ok(m)) = ws.recv().await {
            let _ = ws.send(m).await;
        }
    };
    println!("echo task future: {} B", std::mem::size_of_val(&fut));

    // permessage-deflate state per connection, by window size, measured as RSS growth
    // over many connections that each compressed and inflated one message.
    let text = "permessage-deflate memory probe ".repeat(200);
    println!("permessage-deflate backend: {}", sansock::deflate::BACKEND);
    // Everything stays alive to the end, so freed memory is never reused by the next row.
    let mut all = Vec::new();
    for (bits, no_takeover, free) in [
        (15u8, false, false),
        (12, false, false),
        (10, false, false),
        (9, false, false),
        (15, true, true),
    ] {
        const N: usize = 300;
        let before = rss_kib();
        let mut keep = Vec::with_capacity(N);
        for _ in 0..N {
            let params = DeflateParams {
                server_no_context_takeover: no_takeover,
                client_no_context_takeover: no_takeover,
                server_max_window_bits: bits,
                client_max_window_bits: bits,
            };
            let mut cfg = DeflateConfig::default();
            cfg.free_between_messages = free;
            let mut a = Connection::server(Config::default(), Instant::ZERO);
            let mut b =
                Connection::client(Config::default(), |k: &mut [u8]| k.fill(3), Instant::ZERO);
            a.enable_deflate(params, &cfg);
            b.enable_deflate(params, &cfg);
            let mut wire = bytes::BytesMut::new();
            a.encode_message(DataKind::Text, text.as_bytes(), &mut wire)
                .unwrap();
            b.read_message(&mut wire, Instant::ZERO).unwrap().unwrap();
            keep.push((a, b));
        }
        let per_pair = (rss_kib() - before) as f64 / N as f64;
        all.push(keep);
        println!(
            "permessage-deflate, window {bits}, no_context_takeover {no_takeover}, \
             free_between_messages {free}: {per_pair:.0} KiB per connection pair after one message each way"
        );
    }
}
