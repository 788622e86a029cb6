//! The in-memory echo of `benches/benches/core.rs` (group `echo in memory`) as a plain
//! program, to count instructions per echoed message under callgrind — a number that,
//! unlike wall time, does not move when other jobs share the machine:
//!
//! ```sh
//! cargo build --release -p sansock-benches --example echo-cost
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg target/release/examples/echo-cost sansock 16 1000
//! # "Collected : N" / (1000 × 64) = instructions per message; callgrind_annotate /tmp/cg for where
//! ```
//!
//! Arguments: `sansock | tungstenite | fastwebsockets`, message size, rounds, and
//! connections (default 1: rounds of 64 messages on one connection; N > 1: rounds of one
//! message on each of N connections, to see the cost of per-connection state falling
//! out of cache:
//! `valgrind --tool=callgrind --cache-sim=yes … echo-cost sansock 16 20 1000`).
//! (Large messages mostly count `memcpy`, which callgrind counts per byte.)
#![allow(clippy::print_stdout)]

use futures_util::{SinkExt, StreamExt};
use sansock::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn header(len: usize, mask: Option<[u8; 4]>) -> FrameHeader {
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask,
        payload_len: len as u64,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let lib = args.next().unwrap_or_else(|| "sansock".into());
    let len: usize = args.next().map_or(16, |a| a.parse().expect("size"));
    let rounds: usize = args.next().map_or(1000, |a| a.parse().expect("rounds"));
    let conns: usize = args.next().map_or(1, |a| a.parse().expect("connections"));
    let count = 64;
    let mut wire = Vec::new();
    for i in 0..count {
        let key = [i as u8, 1, 2, 3];
        let mut hb = [0u8; MAX_HEADER_LEN];
        let n = header(len, Some(key)).encode(&mut hb);
        wire.extend_from_slice(&hb[..n]);
        let at = wire.len();
        wire.resize(at + len, 0xa5);
        sansock::mask::apply_mask(&mut wire[at..], key, 0);
    }
    let echo_len = count * (header(len, None).encoded_len() + len);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    if conns > 1 {
        // Many connections, one message each per round (as `loadgen --conns N`): the
        // per-connection state no longer stays in cache between messages.
        let one = &wire[..wire.len() / count];
        let echo_one = echo_len / count;
        let mut clients = Vec::new();
        for _ in 0..conns {
            let (client, server) = tokio::io::duplex(1 << 16);
            spawn_server(&lib, server);
            clients.push(tokio::io::split(client));
        }
        let mut back = vec![0u8; echo_one];
        rt.block_on(async {
            for _ in 0..rounds {
                for (_, wr) in clients.iter_mut() {
                    wr.write_all(one).await.unwrap();
                }
                for (rd, _) in clients.iter_mut() {
                    rd.read_exact(&mut back).await.unwrap();
                }
            }
        });
        println!(
            "{lib}: {} messages of {len} B echoed on {conns} connections",
            rounds * conns
        );
        return;
    }
    let (client, server) = tokio::io::duplex(1 << 20);
    spawn_server(&lib, server);
    let (mut rd, mut wr) = tokio::io::split(client);
    let mut back = vec![0u8; echo_len];
    rt.block_on(async {
        for _ in 0..rounds {
            let (w, r) = tokio::join!(wr.write_all(&wire), rd.read_exact(&mut back));
            w.unwrap();
            r.unwrap();
        }
    });
    println!("{lib}: {} messages of {len} B echoed", rounds * count);
}

fn spawn_server(lib: &str, server: tokio::io::DuplexStream) {
    match lib {
        "sansock" => {
            tokio::spawn(async move {
                let mut ws = sansock_tokio::WebSocket::from_upgraded(
                    server,
                    sansock::Role::Server,
                    sansock_tokio::Config::default(),
                    bytes::Bytes::new(),
                );
                while let Some(Ok(m)) = ws.recv().await {
                    if m.is_data() && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
        "tungstenite" => {
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    server,
                    tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                while let Some(Ok(m)) = ws.next().await {
                    if (m.is_binary() || m.is_text()) && ws.send(m).await.is_err() {
                        break;
                    }
                }
            });
        }
        _ => {
            tokio::spawn(async move {
                let ws = fastwebsockets::WebSocket::after_handshake(
                    server,
                    fastwebsockets::Role::Server,
                );
                let mut ws = fastwebsockets::FragmentCollector::new(ws);
                while let Ok(f) = ws.read_frame().await {
                    if matches!(f.opcode, fastwebsockets::OpCode::Binary) {
                        let out = fastwebsockets::Frame::new(true, f.opcode, None, f.payload);
                        if ws.write_frame(out).await.is_err() {
                            break;
                        }
                    }
                }
            });
        }
    }
}
