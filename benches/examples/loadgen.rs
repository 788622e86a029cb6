//! The load generator of `benches/compare.sh`: many WebSocket clients on one
//! current-thread runtime (one core), each sending a binary message and waiting for its
//! echo, again and again.
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

use bytes::Bytes;
use sansock_tokio::Message;

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args();
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

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

    let payload = Bytes::from(vec![0xa5u8; size]);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        let (ws, _) = sansock_tokio::connect(&url)
            .await
            .map_err(|e| format!("connection {i}: {e}"))?;
        clients.push(ws);
    }
    let mut tasks = Vec::with_capacity(conns);
    for mut ws in clients {
        let payload = payload.clone();
        let measuring = measuring.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat_us: Vec<u32> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                ws.send(Message::Binary(payload.clone()))
                    .await
                    .map_err(|e| e.to_string())?;
                loop {
                    match ws.recv().await {
                        Some(Ok(Message::Binary(b))) if b.len() == payload.len() => break,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(other)) => return Err(format!("unexpected {other:?}")),
                        Some(Err(e)) => return Err(e.to_string()),
                        None => return Err("connection closed".into()),
                    }
                }
                if measuring.load(Ordering::Relaxed) {
                    lat_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
            }
            let _ = ws.close(sansock_tokio::CloseCode::NORMAL, "").await;
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
