//! Drives the Autobahn fuzzingserver as a client: getCaseCount, runCase (echo) for each
//! case, updateReports.
//!
//! `cargo run --release -p sansock-examples --example autobahn-client -- --url ws://127.0.0.1:9001 --agent sansock [--deflate]`
//!
//! `--deflate` offers permessage-deflate (RFC 7692).
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "util/args.rs"]
mod args;
use args::arg;

use sansock_tokio::{ClientBuilder, Config, Message};

fn config() -> Config {
    let mut protocol = sansock::Config::default();
    protocol.max_message_size = 16 << 20;
    protocol.max_frame_size = 16 << 20;
    let mut config = Config::with_protocol(protocol);
    if args::flag("--deflate") {
        config.deflate = Some(Default::default());
    }
    config
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let base = arg("--url")
        .or_else(|| std::env::var("AB_URL").ok())
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = arg("--agent").unwrap_or_else(|| "sansock".into());

    let (mut ws, _) = ClientBuilder::new(&format!("{base}/getCaseCount"))?
        .config(config())
        .connect()
        .await?;
    let mut count = 0u32;
    while let Some(msg) = ws.recv().await {
        if let Message::Text(t) = msg? {
            count = t.as_str().trim().parse()?;
        }
    }
    eprintln!("autobahn-client: {count} cases");

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let (mut ws, _) = match ClientBuilder::new(&url)?.config(config()).connect().await {
            Ok(ok) => ok,
            Err(e) => {
                eprintln!("case {case}: connect failed: {e}");
                continue;
            }
        };
        while let Some(msg) = ws.recv().await {
            match msg {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(case, error = %e, "case ended with an error");
                    break;
                }
            }
        }
    }

    let (mut ws, _) = ClientBuilder::new(&format!("{base}/updateReports?agent={agent}"))?
        .connect()
        .await?;
    while let Some(msg) = ws.recv().await {
        msg?;
    }
    eprintln!("autobahn-client: reports updated");
    Ok(())
}
