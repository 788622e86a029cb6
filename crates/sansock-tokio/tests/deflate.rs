//! permessage-deflate end to end over loopback: negotiation by configuration on both
//! sides, compressed echo of many sizes, fallback when one side does not offer it.
#![cfg(feature = "deflate")]

use bytes::Bytes;
use sansock::deflate::DeflateConfig;
use sansock_tokio::{ClientBuilder, Config, Message};
use tokio::net::TcpListener;

fn random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn echo_server(config: Config) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let config = config.clone();
            tokio::spawn(async move {
                let mut ws = sansock_tokio::accept_with_config(s, config).await.unwrap();
                while let Some(msg) = ws.recv().await {
                    let msg = msg.expect("server recv");
                    if msg.is_data() {
                        ws.send(msg).await.expect("server send");
                    }
                }
            });
        }
    });
    addr
}

fn with_deflate() -> Config {
    let mut c = Config::default();
    c.deflate = Some(DeflateConfig::default());
    c
}

#[tokio::test]
async fn compressed_echo_of_many_sizes() {
    let addr = echo_server(with_deflate()).await;
    let (mut ws, resp) = ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(with_deflate())
        .connect()
        .await
        .unwrap();
    assert_eq!(resp.extensions.as_deref(), Some("permessage-deflate"));
    assert!(ws.is_deflate_enabled());
    for (i, n) in [0usize, 1, 63, 64, 1000, 65536, 65536, 300_000]
        .into_iter()
        .enumerate()
    {
        let data = Bytes::from(random(n, i as u64));
        ws.send(Message::Binary(data.clone())).await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::Binary(data),
            "size {n}"
        );
        let text = "compress me ".repeat(n / 12 + 1);
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(text));
    }
}

#[tokio::test]
async fn falls_back_when_only_one_side_wants_it() {
    let addr = echo_server(Config::default()).await;
    let (mut ws, resp) = ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(with_deflate())
        .connect()
        .await
        .unwrap();
    assert_eq!(resp.extensions, None);
    assert!(!ws.is_deflate_enabled());
    ws.send("plain").await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("plain"));

    let addr = echo_server(with_deflate()).await;
    let (mut ws, resp) = ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(resp.extensions, None);
    ws.send("plain").await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("plain"));
}
