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
//! Arguments: `sansock | tungstenite | fastwebsockets`, message size, rounds of 64
//! messages. (Large messages mostly count `memcpy`, which callgrind counts per byte.)
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
    let (client, server) = tokio::io::duplex(1 << 20);
    let _guard = rt.enter();
    match lib.as_str() {
        "sansock" => {
            rt.spawn(async move {
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
            rt.spawn(async move {
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
            rt.spawn(async move {
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
