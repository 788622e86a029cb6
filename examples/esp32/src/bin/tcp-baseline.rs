//! Plain-TCP baseline: join WiFi, get an address by DHCP, connect to `SERVER_ADDR`, send one
//! line, print the answer, repeat every 10 s. The WebSocket firmware is measured against this
//! image (same bring-up, same embassy-net, no WebSocket).
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Timer};
use embedded_io_async::Write as _;
use esp_backtrace as _;
use esp_println::println;
use sansock_esp32::net;

esp_bootloader_esp_idf::esp_app_desc!();

const REQUEST: &[u8] = b"hello from sansock tcp-baseline\n";

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let p = net::init_board();
    let stack = net::wifi_dhcp(spawner, p.TIMG0, p.FROM_CPU_INTR0, p.WIFI).await;
    let server = net::server_addr();

    let mut rx_buffer = [0u8; 1536];
    let mut tx_buffer = [0u8; 1536];
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx_buffer, &mut tx_buffer);
        socket.set_timeout(Some(Duration::from_secs(10)));
        println!("tcp: connecting to {}", server);
        match socket.connect(server).await {
            Ok(()) => match exchange(&mut socket).await {
                Ok(answer) => println!("tcp: answer: {:?}", answer),
                Err(e) => println!("tcp: exchange failed: {:?}", e),
            },
            Err(e) => println!("tcp: connect failed: {:?}", e),
        }
        socket.close();
        let _ = socket.flush().await;
        drop(socket);
        Timer::after(Duration::from_secs(10)).await;
    }
}

/// Sends [`REQUEST`] and reads until a newline, the end of the stream or a full buffer.
async fn exchange(
    socket: &mut TcpSocket<'_>,
) -> Result<heapless_line::Line, embassy_net::tcp::Error> {
    socket.write_all(REQUEST).await?;
    socket.flush().await?;
    let mut line = heapless_line::Line::new();
    loop {
        let n = socket.read(line.spare()).await?;
        if n == 0 || line.advance(n) {
            return Ok(line);
        }
    }
}

/// A fixed buffer holding one answer line.
mod heapless_line {
    /// Up to 128 bytes of the peer's answer.
    pub struct Line {
        buf: [u8; 128],
        len: usize,
    }

    impl Line {
        pub fn new() -> Self {
            Self {
                buf: [0; 128],
                len: 0,
            }
        }

        /// Free space to read into.
        pub fn spare(&mut self) -> &mut [u8] {
            &mut self.buf[self.len..]
        }

        /// Accounts for `n` bytes read into [`Self::spare`]; true when the line is complete
        /// (newline seen or buffer full).
        pub fn advance(&mut self, n: usize) -> bool {
            let start = self.len;
            self.len += n;
            self.len == self.buf.len() || self.buf[start..self.len].contains(&b'\n')
        }
    }

    impl core::fmt::Debug for Line {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match core::str::from_utf8(&self.buf[..self.len]) {
                Ok(text) => core::fmt::Debug::fmt(text, f),
                Err(_) => core::fmt::Debug::fmt(&self.buf[..self.len], f),
            }
        }
    }
}
