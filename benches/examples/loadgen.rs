//! The load generator of `benches/compare.sh`: many WebSocket clients on one
//! current-thread runtime (one core), each sending a binary message and waiting for its
//! echo, again and again.
//!
//! It has to stay cheaper than the servers it measures, so it speaks the protocol as
//! little as it can: the opening handshake by hand, one masked frame encoded once and
//! written again and again, and the echo only parsed for frame boundaries and counted,
//! never unmasked, copied or validated (`--check` compares the echoed bytes too).
//!
//! `loadgen --url ws://127.0.0.1:9101 --conns 100 --size 1024 --secs 5 [--warmup 1]`
//! prints one line: `msgs=… secs=… msgs_per_s=… mb_per_s=… p50_us=… p99_us=… cpu=…`
//! (`cpu`: this process's CPU time over the measured wall time; near 1.0 means the
//! load generator, not the server, may be the bottleneck).
//!
//! `loadgen --url … --idle 10000 --hold 20` opens that many connections, prints
//! `open N` once all are up, and keeps them idle for `--hold` seconds.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "../../examples/examples/util/args.rs"]
mod args;
use args::arg;

fn num(name: &str, default: u64) -> u64 {
    arg(name).map_or(default, |v| v.parse().expect(name))
}

/// CPU time (user + system) of this process, from /proc (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ')'.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = arg("--url").unwrap_or_else(|| "ws://127.0.0.1:9101".into());
    if let Some(n) = arg("--idle") {
        return idle(&url, n.parse()?, Duration::from_secs(num("--hold", 20))).await;
    }
    let conns = num("--conns", 1) as usize;
    let size = num("--size", 16) as usize;
    let secs = Duration::from_secs(num("--secs", 5));
    let warmup = Duration::from_secs(num("--warmup", 1));

    let check = args::flag("--check");
    let frame: Arc<[u8]> = masked_frame(size).into();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        let stream = open(&url)
            .await
            .map_err(|e| format!("connection {i}: {e}"))?;
        clients.push(stream);
    }
    let mut tasks = Vec::with_capacity(conns);
    for stream in clients {
        let frame = frame.clone();
        let measuring = measuring.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut stream, mut buf) = stream;
            let mut lat_us: Vec<u32> = Vec::new();
            let mut echo = Echo::default();
            let mut rx = vec![0u8; 64 << 10];
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                stream.write_all(&frame).await.map_err(|e| e.to_string())?;
                loop {
                    // Bytes that came with the handshake answer first.
                    let data = if buf.is_empty() {
                        let n = stream.read(&mut rx).await.map_err(|e| e.to_string())?;
                        if n == 0 {
                            return Err("connection closed".into());
                        }
                        &rx[..n]
                    } else {
                        buf.as_slice()
                    };
                    let done = echo.feed(data, size, check)?;
                    buf.clear();
                    if done {
                        break;
                    }
                }
                if measuring.load(Ordering::Relaxed) {
                    lat_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
            }
            // A close frame (masked, code 1000), then the connection goes.
            let _ = stream
                .write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])
                .await;
            Ok::<_, String>(lat_us)
        }));
    }
    tokio::time::sleep(warmup).await;
    let (cpu0, t0) = (cpu_time(), Instant::now());
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(secs).await;
    measuring.store(false, Ordering::Relaxed);
    let (cpu1, wall) = (cpu_time(), t0.elapsed());
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    lat.sort_unstable();
    let n = lat.len();
    let pct = |p: f64| {
        lat.get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
            .copied()
    };
    let secs = wall.as_secs_f64();
    println!(
        "msgs={n} secs={secs:.3} msgs_per_s={:.0} mb_per_s={:.2} p50_us={} p99_us={} cpu={:.2}",
        n as f64 / secs,
        // Payload bytes both ways.
        2.0 * (n * size) as f64 / secs / 1e6,
        pct(0.50).unwrap_or(0),
        pct(0.99).unwrap_or(0),
        (cpu1 - cpu0).as_secs_f64() / secs,
    );
    Ok(())
}

/// The mask key of every frame: the server must unmask whatever the key.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// The payload byte: the echo must carry it back.
const BYTE: u8 = 0xa5;

/// One masked binary frame of `size` payload bytes.
fn masked_frame(size: usize) -> Vec<u8> {
    let mut f = vec![0x82];
    match size {
        0..=125 => f.push(0x80 | size as u8),
        126..=0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(size as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&KEY);
    f.extend((0..size).map(|i| BYTE ^ KEY[i % 4]));
    f
}

/// The opening handshake by hand: a TCP connection upgraded, and any bytes that came
/// after the server's answer.
async fn open(url: &str) -> Result<(TcpStream, Vec<u8>), String> {
    let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::with_capacity(512);
    loop {
        if stream
            .read_buf(&mut head)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err("closed during the handshake".into());
        }
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            // The accept value of the key above, RFC 6455 §1.3.
            let ok = head.starts_with(b"HTTP/1.1 101")
                && head[..end]
                    .windows(28)
                    .any(|w| w == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
            if !ok {
                return Err(String::from_utf8_lossy(&head[..end]).into_owned());
            }
            return Ok((stream, head.split_off(end + 4)));
        }
        if head.len() > 8192 {
            return Err("handshake answer too long".into());
        }
    }
}

/// Where the reader is in the server's frames: the echo is complete once a final data
/// frame's payload has been counted. Control frames (a ping) are skipped.
#[derive(Default)]
struct Echo {
    header: Vec<u8>,
    /// The header is parsed and `left` payload bytes of the frame are still to come.
    in_frame: bool,
    left: u64,
    control: bool,
    fin: bool,
    got: usize,
}

impl Echo {
    /// Count `data`; true once the whole echo of `size` bytes is in.
    fn feed(&mut self, mut data: &[u8], size: usize, check: bool) -> Result<bool, String> {
        loop {
            if !self.in_frame {
                let need = match self.header.get(1).map(|b| b & 0x7f) {
                    Some(126) => 4,
                    Some(127) => 10,
                    _ => 2,
                };
                if self.header.len() < need {
                    if data.is_empty() {
                        return Ok(false);
                    }
                    let n = (need - self.header.len()).min(data.len());
                    self.header.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    continue;
                }
                let h = &self.header;
                if h[1] & 0x80 != 0 {
                    return Err("the server masked a frame".into());
                }
                if h[0] & 0x0f == 0x8 {
                    return Err("the server closed the connection".into());
                }
                self.left = match h[1] & 0x7f {
                    126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
                    127 => u64::from_be_bytes(h[2..10].try_into().expect("8 bytes")),
                    n => u64::from(n),
                };
                self.control = h[0] & 0x08 != 0;
                if !self.control {
                    self.fin = h[0] & 0x80 != 0;
                }
                self.header.clear();
                self.in_frame = true;
            }
            if self.left > 0 {
                if data.is_empty() {
                    return Ok(false);
                }
                let n = self.left.min(data.len() as u64) as usize;
                if !self.control {
                    if check && data[..n].iter().any(|&b| b != BYTE) {
                        return Err("echo differs from what was sent".into());
                    }
                    self.got += n;
                }
                self.left -= n as u64;
                data = &data[n..];
                if self.left > 0 {
                    continue;
                }
            }
            self.in_frame = false;
            if !self.control && self.fin {
                if self.got != size || !data.is_empty() {
                    return Err(format!(
                        "echo of {} bytes (and {} more), sent {size}",
                        self.got,
                        data.len()
                    ));
                }
                self.got = 0;
                self.fin = false;
                return Ok(true);
            }
        }
    }
}

async fn idle(url: &str, n: usize, hold: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let (ws, _) = sansock_tokio::connect(url)
            .await
            .map_err(|e| format!("connection {i}: {e}"))?;
        conns.push(ws);
    }
    println!("open {n}");
    tokio::time::sleep(hold).await;
    Ok(())
}
