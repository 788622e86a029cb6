//! WebSocket client: join WiFi, get an address by DHCP, connect to `SERVER_ADDR`
//! (`ws://SERVER_ADDR/`), send a text message every 10 s and print what comes back. The
//! same behaviour as `tcp-baseline` and `ew-client`, so their images can be compared.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Instant, Timer};
use esp_backtrace as _;
use esp_hal::rng::Rng;
use esp_println::println;
use sansock_embassy::{Buffers, ClientRequest, Config, Event, connect};
use sansock_esp32::net;
use static_cell::StaticCell;

esp_bootloader_esp_idf::esp_app_desc!();

const MESSAGE: &str = "hello from sansock ws-client";

/// The WebSocket's buffers: read 1024, write 512, message 1024 bytes (static, so they
/// show in `.bss`).
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
    // The same TCP buffers as tcp-baseline.
    let mut rx_buffer = [0u8; 1536];
    let mut tx_buffer = [0u8; 1536];
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx_buffer, &mut tx_buffer);
        socket.set_timeout(Some(Duration::from_secs(60)));
        println!("ws: connecting to ws://{}/", server);
        if let Err(e) = socket.connect(server).await {
            println!("tcp: connect failed: {:?}", e);
        } else {
            let request = ClientRequest::new(host).port(server.port()).path("/");
            let buffers =
                Buffers::new(&mut bufs.read, &mut bufs.write).with_message(&mut bufs.message);
            match connect(&mut socket, &request, Config::microcontroller(), Rng::new(), buffers)
                .await
            {
                Ok((mut ws, _)) => {
                    println!("ws: open");
                    let mut next_send = Instant::now();
                    loop {
                        match select(ws.recv(), Timer::at(next_send)).await {
                            Either::First(Some(Ok(Event::Text(text)))) => {
                                println!("ws: got {:?}", text)
                            }
                            Either::First(Some(Ok(Event::Close(close)))) => {
                                println!("ws: peer closed: {} {:?}", close.code, close.reason)
                            }
                            Either::First(Some(Ok(_))) => {}
                            Either::First(Some(Err(e))) => {
                                println!("ws: {}", e);
                                break;
                            }
                            Either::First(None) => break,
                            Either::Second(()) => {
                                next_send += Duration::from_secs(10);
                                if let Err(e) = ws.send_text(MESSAGE).await {
                                    println!("ws: send failed: {}", e);
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => println!("ws: handshake failed: {}", e),
            }
        }
        socket.abort();
        let _ = socket.flush().await;
        drop(socket);
        Timer::after(Duration::from_secs(10)).await;
    }
}
