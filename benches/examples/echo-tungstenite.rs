//! A tokio-tungstenite echo server, the peer of `examples/echo-server` in
//! `benches/compare.sh`: current-thread runtime, every text or binary message sent back.
//!
//! `echo-tungstenite --listen 127.0.0.1:9102`
#![allow(clippy::print_stderr)]

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[path = "../../examples/examples/util/args.rs"]
mod args;
use args::arg;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = arg("--listen").unwrap_or_else(|| "127.0.0.1:9102".into());
    let listener = TcpListener::bind(&listen).await?;
    eprintln!(
        "echo-tungstenite listening on ws://{}",
        listener.local_addr()?
    );
    // The same limits as examples/echo-server.
    let config = WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    break;
                }
            }
        });
    }
}
