//! WebSocket server: join WiFi, serve a web page on port 80 and a WebSocket on `/ws` for
//! up to three browsers. The page switches an LED (GPIO7, active high: wire an LED with a
//! resistor to it) and shows the chip's temperature sensor, which the server pushes to
//! every client every 2 s — the ESP32 cousin of nanoFramework's RGB LED WebSocket sample.
//!
//! Commands from the page (text): `on`, `off`, `toggle`. Pushed to every client (text):
//! `{"led":true,"temp":31.5}`.
#![no_std]
#![no_main]

use core::fmt::Write as _;

use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Instant, Timer};
use esp_backtrace as _;
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_hal::tsens::{self, TemperatureSensor};
use esp_println::println;
use sansock_embassy::{AcceptOptions, Config, Event, ServerEvent, Storage, WsServer};
use sansock_esp32::net;
use static_cell::StaticCell;

esp_bootloader_esp_idf::esp_app_desc!();

/// Clients served at once (the stack has 4 sockets: DHCP and these).
const CLIENTS: usize = 3;

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>sansock LED</title>
<style>body{font-family:sans-serif;margin:2em}button{font-size:1.5em;margin:.3em}</style>
</head><body>
<h1>sansock on ESP32</h1>
<p>LED: <b id="led">?</b> &nbsp; Temperature: <b id="temp">?</b> &deg;C</p>
<button onclick="ws.send('on')">On</button>
<button onclick="ws.send('off')">Off</button>
<button onclick="ws.send('toggle')">Toggle</button>
<p id="status">connecting&hellip;</p>
<script>
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onopen = () => status.textContent = 'connected';
ws.onclose = () => status.textContent = 'disconnected (reload to retry)';
ws.onmessage = (e) => {
  const s = JSON.parse(e.data);
  led.textContent = s.led ? 'on' : 'off';
  temp.textContent = s.temp.toFixed(1);
};
</script></body></html>
"#;

/// A small text buffer for the JSON status (no heap).
struct Line {
    buf: [u8; 64],
    len: usize,
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `{"led":true,"temp":31.5}` without float formatting.
fn status(led: bool, tenths: i32) -> Line {
    let mut line = Line {
        buf: [0; 64],
        len: 0,
    };
    let sign = if tenths < 0 { "-" } else { "" };
    let t = tenths.unsigned_abs();
    let _ = write!(
        line,
        r#"{{"led":{},"temp":{}{}.{}}}"#,
        led,
        sign,
        t / 10,
        t % 10
    );
    line
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let p = net::init_board();
    let mut led = Output::new(p.GPIO7, Level::Low, OutputConfig::default());
    let sensor = TemperatureSensor::new(p.TSENS, tsens::Config::default()).expect("TSENS");
    let stack = net::wifi_dhcp(spawner, p.TIMG0, p.FROM_CPU_INTR0, p.WIFI).await;

    // TCP 1024 + 1024, WebSocket read 512, write 512, message 256 per client.
    static STORAGE: StaticCell<[Storage<1024, 512, 256>; CLIENTS]> = StaticCell::new();
    let storage = STORAGE.init_with(|| core::array::from_fn(|_| Storage::new()));
    let options = AcceptOptions::new()
        .path("/ws")
        .page("text/html; charset=utf-8", PAGE.as_bytes());
    let mut server = WsServer::new(
        stack,
        80,
        Config::microcontroller(),
        options,
        storage.each_mut().map(|s| s.slot()),
    )
    .expect("server");
    if let Some(config) = stack.config_v4() {
        println!("http: open http://{}/", config.address.address());
    }

    let read_tenths = || (sensor.get_temperature().to_celsius() * 10.0) as i32;
    let mut next_push = Instant::now();
    loop {
        let changed = match select(server.next_event(), Timer::at(next_push)).await {
            Either::First(ServerEvent::Connected { id, .. }) => {
                println!("ws: client {} connected", id.0);
                let line = status(led.is_set_high(), read_tenths());
                let _ = server
                    .send_text(id, core::str::from_utf8(&line.buf[..line.len]).unwrap_or(""))
                    .await;
                false
            }
            Either::First(ServerEvent::Message {
                id,
                event: Event::Text(command),
            }) => {
                println!("ws: client {}: {:?}", id.0, command);
                match command {
                    "on" => led.set_high(),
                    "off" => led.set_low(),
                    "toggle" => led.toggle(),
                    _ => {}
                }
                true
            }
            Either::First(ServerEvent::Message { .. }) => false,
            Either::First(ServerEvent::Disconnected { id, error }) => {
                println!("ws: client {} gone ({:?})", id.0, error);
                false
            }
            Either::Second(()) => {
                next_push += Duration::from_secs(2);
                true
            }
        };
        if changed {
            let line = status(led.is_set_high(), read_tenths());
            let text = core::str::from_utf8(&line.buf[..line.len]).unwrap_or("");
            server.broadcast_text(text).await;
        }
    }
}
