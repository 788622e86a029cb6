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

/// A Python with the `websockets` package: `SANSOCK_PYTHON` (CI points it at a venv),
/// else `python3` if it can import `websockets`.
fn python_with_websockets() -> Option<String> {
    let candidates = std::env::var("SANSOCK_PYTHON")
        .into_iter()
        .chain(["python3".to_owned()]);
    for py in candidates {
        let ok = std::process::Command::new(&py)
            .args(["-c", "import websockets"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(py);
        }
    }
    None
}

const PY_SERVER: &str = r#"
import asyncio, sys, websockets
async def echo(ws):
    sys.stderr.write("extensions: %r\n" % [type(e).__name__ for e in ws.protocol.extensions]); sys.stderr.flush()
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"#;

const PY_CLIENT: &str = r#"
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], max_size=None) as ws:
        names = [type(e).__name__ for e in ws.protocol.extensions]
        assert names == ["PerMessageDeflate"], names
        for m in ["hello", "x" * 100000, b"\x00\x01" * 40000, "é€𝄞" * 1000, ""]:
            await ws.send(m)
            back = await ws.recv()
            assert back == m, (len(back), len(m))
    print("ok", flush=True)
asyncio.run(main())
"#;

#[tokio::test]
#[allow(clippy::print_stderr)] // the skip message is for the person running the tests
async fn interop_with_python_websockets_default_compression() {
    let Some(py) = python_with_websockets() else {
        // CI sets SANSOCK_REQUIRE_PYTHON so that a missing peer fails instead of skipping.
        assert!(
            std::env::var_os("SANSOCK_REQUIRE_PYTHON").is_none(),
            "no Python with `websockets`"
        );
        eprintln!(
            "SKIPPED interop_with_python_websockets_default_compression: no Python with `websockets` (set SANSOCK_PYTHON)"
        );
        return;
    };
    // sansock client -> Python server.
    let mut server = tokio::process::Command::new(&py)
        .args(["-c", PY_SERVER])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut line = String::new();
    {
        use tokio::io::AsyncBufReadExt;
        let stdout = server.stdout.take().unwrap();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .unwrap();
    }
    let port: u16 = line.trim().parse().unwrap();
    let (mut ws, resp) = ClientBuilder::new(&format!("ws://127.0.0.1:{port}/"))
        .unwrap()
        .config(with_deflate())
        .connect()
        .await
        .unwrap();
    let ext = resp.extensions.unwrap_or_default();
    assert!(ext.starts_with("permessage-deflate"), "{ext}");
    assert!(ws.is_deflate_enabled());
    for msg in [
        Message::text("hello"),
        Message::text("y".repeat(200_000)),
        Message::Binary(Bytes::from(random(100_000, 7))),
        Message::Binary(Bytes::from(vec![0u8; 1 << 20])),
    ] {
        ws.send(msg.clone()).await.unwrap();
        assert_eq!(ws.recv().await.unwrap().unwrap(), msg);
    }
    ws.close(sansock::CloseCode::NORMAL, "").await.unwrap();
    drop(server);

    // Python client -> sansock server.
    let addr = echo_server(with_deflate()).await;
    let out = tokio::process::Command::new(&py)
        .args(["-c", PY_CLIENT, &format!("ws://{addr}/")])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[tokio::test]
async fn interop_with_tokio_tungstenite_falls_back_to_no_compression() {
    use futures_util::{SinkExt, StreamExt};
    // tokio-tungstenite server, sansock client offering deflate.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
        while let Some(Ok(m)) = ws.next().await {
            if m.is_text() || m.is_binary() {
                ws.send(m).await.unwrap();
            }
        }
    });
    let (mut ws, resp) = ClientBuilder::new(&format!("ws://{addr}/"))
        .unwrap()
        .config(with_deflate())
        .connect()
        .await
        .unwrap();
    assert_eq!(resp.extensions, None);
    assert!(!ws.is_deflate_enabled());
    let big = "z".repeat(100_000);
    ws.send(Message::text(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(big));

    // sansock server accepting deflate, tokio-tungstenite client (offers nothing).
    let addr = echo_server(with_deflate()).await;
    let (mut client, resp) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    assert!(resp.headers().get("sec-websocket-extensions").is_none());
    client
        .send(tokio_tungstenite::tungstenite::Message::text(
            "w".repeat(50_000),
        ))
        .await
        .unwrap();
    let back = client.next().await.unwrap().unwrap();
    assert_eq!(back.into_text().unwrap().len(), 50_000);
}

#[tokio::test]
async fn ready_made_server_negotiates_deflate_from_its_connection_config() {
    use sansock_tokio::server::{Server, handler_fn};
    let server = Server::builder()
        .route(
            "/echo",
            handler_fn(|session, msg| async move {
                if msg.is_data() {
                    let _ = session.send(msg);
                }
            }),
        )
        .connection_config(with_deflate())
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = server.clone();
    tokio::spawn(async move { s.serve(listener).await });
    let (mut ws, resp) = ClientBuilder::new(&format!("ws://{addr}/echo"))
        .unwrap()
        .config(with_deflate())
        .connect()
        .await
        .unwrap();
    assert_eq!(resp.extensions.as_deref(), Some("permessage-deflate"));
    let text = "broadcast me ".repeat(1000);
    ws.send(Message::text(text.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text(text));
}
