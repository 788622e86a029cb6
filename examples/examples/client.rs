//! Sends each line of stdin as a text message and prints what comes back.
//!
//! `cargo run --release -p sansock-examples --example client -- --url ws://127.0.0.1:9001`
#![allow(clippy::print_stdout, clippy::print_stderr)]

use sansock_tokio::{CloseCode, Message};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let mut args = std::env::args().skip_while(|a| a != "--url").skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let (ws, response) = sansock_tokio::connect(&url).await?;
    eprintln!(
        "connected to {url} (subprotocol: {:?})",
        response.subprotocol
    );
    let (mut rd, mut wr) = ws.split();
    let printer = tokio::spawn(async move {
        while let Some(msg) = rd.recv().await {
            match msg {
                Ok(Message::Text(t)) => println!("< {t}"),
                Ok(Message::Binary(b)) => println!("< [{} bytes]", b.len()),
                Ok(Message::Close(c)) => println!("< close {c:?}"),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("error: {e}");
                    break;
                }
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        wr.send(Message::text(line)).await?;
    }
    wr.close(CloseCode::NORMAL, "stdin closed").await?;
    printer.await?;
    Ok(())
}
