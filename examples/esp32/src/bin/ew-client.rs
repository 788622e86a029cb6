//! The `ws-client` firmware written with the `embedded-websocket` crate (0.9) instead of
//! sansock, for the footprint comparison: same WiFi bring-up, same TCP buffers, same
//! WebSocket buffer sizes, same behaviour (a text message every 10 s, print the replies,
//! answer pings). embedded-websocket's low-level API (`WebSocketClient`) over
//! embassy-net's `TcpSocket`, since its async framer wants `futures` streams.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::Write as _;
use embedded_websocket::{
    WebSocketClient, WebSocketCloseStatusCode, WebSocketOptions, WebSocketReceiveMessageType,
    WebSocketSendMessageType,
};
use esp_backtrace as _;
use esp_hal::rng::Rng;
use esp_println::println;
use sansock_esp32::net;
use static_cell::StaticCell;

esp_bootloader_esp_idf::esp_app_desc!();

const MESSAGE: &str = "hello from sansock ws-client";

/// The same sizes as ws-client: read 1024, write 512, message 1024 bytes.
struct WsBuffers {
    read: [u8; 1024],
    write: [u8; 512],
    message: [u8; 1024],
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let p = net::init_board();
    let stack = net::wifi_dhcp(spawner, p.TIMG0, p.FROM_CPU_INTR0, p.WIFI).await;
    let server = net::server_addr();
    let host = net::SERVER_ADDR.split(':').next().unwrap_or("");

    static BUFFERS: StaticCell<WsBuffers> = StaticCell::new();
    let bufs = BUFFERS.init(WsBuffers {
        read: [0; 1024],
        write: [0; 512],
        message: [0; 1024],
    });
    let mut rx_buffer = [0u8; 1536];
    let mut tx_buffer = [0u8; 1536];
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx_buffer, &mut tx_buffer);
        socket.set_timeout(Some(Duration::from_secs(60)));
        println!("ws: connecting to ws://{}/", server);
        match socket.connect(server).await {
            Ok(()) => {
                if let Err(e) = session(&mut socket, host, bufs).await {
                    println!("ws: {}", e);
                }
            }
            Err(e) => println!("tcp: connect failed: {:?}", e),
        }
        socket.abort();
        let _ = socket.flush().await;
        drop(socket);
        Timer::after(Duration::from_secs(10)).await;
    }
}

async fn session(
    socket: &mut TcpSocket<'_>,
    host: &str,
    bufs: &mut WsBuffers,
) -> Result<(), &'static str> {
    let mut ws = WebSocketClient::new_client(Rng::new());
    let options = WebSocketOptions {
        path: "/",
        host,
        origin: "",
        sub_protocols: None,
        additional_headers: None,
    };
    let (len, key) = ws
        .client_connect(&options, &mut bufs.write)
        .map_err(|_| "request")?;
    socket
        .write_all(&bufs.write[..len])
        .await
        .map_err(|_| "write")?;
    // Read until the response head is complete.
    let mut have = 0;
    loop {
        let n = socket
            .read(&mut bufs.read[have..])
            .await
            .map_err(|_| "read")?;
        if n == 0 {
            return Err("closed during the handshake");
        }
        have += n;
        match ws.client_accept(&key, &bufs.read[..have]) {
            Ok((used, _)) => {
                bufs.read.copy_within(used..have, 0);
                have -= used;
                break;
            }
            Err(embedded_websocket::Error::HttpHeaderIncomplete) => {}
            Err(_) => return Err("handshake refused"),
        }
    }
    println!("ws: open");
    let mut next_send = Instant::now();
    loop {
        // Frames already buffered first.
        while have > 0 {
            let r = ws
                .read(&bufs.read[..have], &mut bufs.message)
                .map_err(|_| "protocol")?;
            bufs.read.copy_within(r.len_from..have, 0);
            have -= r.len_from;
            match r.message_type {
                WebSocketReceiveMessageType::Text => {
                    let text = core::str::from_utf8(&bufs.message[..r.len_to]).unwrap_or("?");
                    println!("ws: got {:?}", text);
                }
                WebSocketReceiveMessageType::Ping => {
                    let n = ws
                        .write(
                            WebSocketSendMessageType::Pong,
                            true,
                            &bufs.message[..r.len_to],
                            &mut bufs.write,
                        )
                        .map_err(|_| "pong")?;
                    socket
                        .write_all(&bufs.write[..n])
                        .await
                        .map_err(|_| "write")?;
                }
                WebSocketReceiveMessageType::CloseMustReply => {
                    let n = ws
                        .close(WebSocketCloseStatusCode::NormalClosure, None, &mut bufs.write)
                        .map_err(|_| "close")?;
                    socket
                        .write_all(&bufs.write[..n])
                        .await
                        .map_err(|_| "write")?;
                    return Ok(());
                }
                WebSocketReceiveMessageType::CloseCompleted => return Ok(()),
                _ => {}
            }
            if r.len_from == 0 {
                break;
            }
        }
        match select(socket.read(&mut bufs.read[have..]), Timer::at(next_send)).await {
            Either::First(Ok(0)) => return Err("peer closed"),
            Either::First(Ok(n)) => have += n,
            Either::First(Err(_)) => return Err("read"),
            Either::Second(()) => {
                next_send += Duration::from_secs(10);
                let n = ws
                    .write(
                        WebSocketSendMessageType::Text,
                        true,
                        MESSAGE.as_bytes(),
                        &mut bufs.write,
                    )
                    .map_err(|_| "encode")?;
                socket
                    .write_all(&bufs.write[..n])
                    .await
                    .map_err(|_| "write")?;
            }
        }
    }
}
