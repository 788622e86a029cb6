//! Opens many WebSocket connections and keeps them idle, to measure a server's memory
//! per idle connection.
//!
//! `cargo run --release -p sansock-examples --example idle-clients -- --url ws://127.0.0.1:9001 --count 10000 --hold-secs 30`
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "util/args.rs"]
mod args;
use args::arg;

use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = arg("--url").unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let count: usize = arg("--count")
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(10_000);
    let hold = Duration::from_secs(
        arg("--hold-secs")
            .map(|c| c.parse())
            .transpose()?
            .unwrap_or(30),
    );
    let mut conns = Vec::with_capacity(count);
    for i in 0..count {
        let (ws, _) = sansock_tokio::connect(&url)
            .await
            .map_err(|e| format!("connection {i}: {e}"))?;
        conns.push(ws);
    }
    println!("open {count}");
    tokio::time::sleep(hold).await;
    Ok(())
}
