//! The protocol core, side by side with tokio-tungstenite (tungstenite) and
//! fastwebsockets on the same inputs where they expose the same step.
//!
//! `cargo bench -p sansock-benches --bench core` (add `-- --warm-up-time 0.5
//! --measurement-time 1` for a quick look, or a group name to filter, e.g. `unmask`).
//!
//! | group | sansock | tungstenite | fastwebsockets |
//! |---|---|---|---|
//! | `header decode` / `header encode` | `FrameHeader::decode` / `encode` | `FrameHeader::parse` / `format` | – / `Frame::fmt_head` |
//! | `unmask` (1 KiB, 64 KiB, 1 MiB; aligned and at +1, +3) | `mask::apply_mask` | (private) | `unmask` |
//! | `utf8` (ASCII and mixed text) | `Utf8Validator` | `core::str::from_utf8` | `simdutf8` |
//! | `handshake parse` | `ServerHandshake::parse_request` | – (httparse alone as the floor) | – |
//! | `receive` (16 B, 1 KiB, 64 KiB, 1 MiB messages, masked, bytes in → message out) | `Connection::read_message` and `read_raw` | `WebSocket::read` | `FragmentCollector::read_frame` |
//! | `echo in memory` (16 B, 1 KiB, 64 KiB; the adapters' echo loop over `tokio::io::duplex`) | `sansock_tokio::WebSocket` | `tokio_tungstenite::WebSocketStream` | `FragmentCollector` |
//!
//! The receive group feeds each library the same wire bytes (a batch of whole client
//! frames) from memory, so it measures parsing, unmasking, UTF-8 and assembly, not I/O.

// criterion_group! and criterion_main! generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io::{Cursor, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sansock::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use sansock::handshake::ServerHandshake;
use sansock::mask::apply_mask;
use sansock::utf8::Utf8Validator;
use sansock::{Config, Connection, DataKind, Instant, Message};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn header(len: u64, masked: bool) -> FrameHeader {
    FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask: masked.then_some(KEY),
        payload_len: len,
    }
}

fn headers(c: &mut Criterion) {
    let cases = [
        ("2 B (server, 100 B)", header(100, false)),
        ("6 B (client, 100 B)", header(100, true)),
        ("8 B (client, 1 KiB)", header(1024, true)),
        ("14 B (client, 1 MiB)", header(1 << 20, true)),
    ];
    let mut g = c.benchmark_group("header decode");
    for (name, h) in &cases {
        let mut wire = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut wire);
        let wire = wire[..n].to_vec();
        g.bench_with_input(BenchmarkId::new("sansock", name), &wire, |b, wire| {
            b.iter(|| FrameHeader::decode(black_box(wire)).unwrap().unwrap())
        });
        g.bench_with_input(BenchmarkId::new("tungstenite", name), &wire, |b, wire| {
            b.iter(|| {
                let mut cur = Cursor::new(black_box(&wire[..]));
                tungstenite::protocol::frame::FrameHeader::parse(&mut cur)
                    .unwrap()
                    .unwrap()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("header encode");
    for (name, h) in &cases {
        g.bench_with_input(BenchmarkId::new("sansock", name), h, |b, h| {
            let mut out = [0u8; MAX_HEADER_LEN];
            b.iter(|| black_box(h).encode(&mut out))
        });
        g.bench_with_input(BenchmarkId::new("tungstenite", name), h, |b, h| {
            let th = tungstenite::protocol::frame::FrameHeader {
                is_final: true,
                rsv1: false,
                rsv2: false,
                rsv3: false,
                opcode: tungstenite::protocol::frame::coding::OpCode::Data(
                    tungstenite::protocol::frame::coding::Data::Binary,
                ),
                mask: h.mask,
            };
            let mut out = Vec::with_capacity(MAX_HEADER_LEN);
            b.iter(|| {
                out.clear();
                black_box(&th)
                    .format(black_box(h.payload_len), &mut out)
                    .unwrap();
            })
        });
        let payload = vec![0u8; h.payload_len as usize];
        g.bench_with_input(BenchmarkId::new("fastwebsockets", name), h, |b, h| {
            let mut frame = fastwebsockets::Frame::new(
                true,
                fastwebsockets::OpCode::Binary,
                h.mask,
                fastwebsockets::Payload::Borrowed(&payload),
            );
            let mut out = [0u8; 16];
            b.iter(|| black_box(&mut frame).fmt_head(&mut out))
        });
    }
    g.finish();
}

fn unmask(c: &mut Criterion) {
    let mut g = c.benchmark_group("unmask");
    for len in [1usize << 10, 64 << 10, 1 << 20] {
        g.throughput(Throughput::Bytes(len as u64));
        for start in [0usize, 1, 3] {
            let id = format!("{} @+{start}", size_name(len));
            let mut buf = vec![0x5au8; len + 8];
            g.bench_function(BenchmarkId::new("sansock", &id), |b| {
                b.iter(|| apply_mask(black_box(&mut buf[start..start + len]), KEY, 0))
            });
            g.bench_function(BenchmarkId::new("fastwebsockets", &id), |b| {
                b.iter(|| fastwebsockets::unmask(black_box(&mut buf[start..start + len]), KEY))
            });
        }
    }
    g.finish();
}

fn ascii(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"hello, websocket world! "[i % 24])
        .collect()
}

fn mixed(len: usize) -> Vec<u8> {
    let unit = "κόσμε 🎉 — naïve café, 中文 and plain ASCII words; ";
    let mut s = String::new();
    while s.len() < len {
        s.push_str(unit);
    }
    let mut end = len;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.into_bytes()
}

fn utf8(c: &mut Criterion) {
    let mut g = c.benchmark_group("utf8");
    for len in [1usize << 10, 64 << 10, 1 << 20] {
        for (kind, text) in [("ascii", ascii(len)), ("mixed", mixed(len))] {
            g.throughput(Throughput::Bytes(text.len() as u64));
            let id = format!("{kind} {}", size_name(len));
            g.bench_with_input(BenchmarkId::new("sansock", &id), &text, |b, t| {
                b.iter(|| {
                    let mut v = Utf8Validator::new();
                    v.feed(black_box(t)).unwrap();
                    v.finish().unwrap()
                })
            });
            g.bench_with_input(
                BenchmarkId::new("sansock (4 KiB reads)", &id),
                &text,
                |b, t| {
                    b.iter(|| {
                        let mut v = Utf8Validator::new();
                        for chunk in black_box(t).chunks(4096) {
                            v.feed(chunk).unwrap();
                        }
                        v.finish().unwrap()
                    })
                },
            );
            g.bench_with_input(
                BenchmarkId::new("core::str (tungstenite)", &id),
                &text,
                |b, t| b.iter(|| core::str::from_utf8(black_box(t)).is_ok()),
            );
            g.bench_with_input(
                BenchmarkId::new("simdutf8 (fastwebsockets)", &id),
                &text,
                |b, t| b.iter(|| simdutf8::basic::from_utf8(black_box(t)).is_ok()),
            );
        }
    }
    g.finish();
}

const BROWSER_REQUEST: &[u8] = b"GET /chat?room=lobby HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=0123456789abcdef; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake parse");
    g.throughput(Throughput::Bytes(BROWSER_REQUEST.len() as u64));
    let hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
    g.bench_function("sansock parse_request (browser request)", |b| {
        b.iter(|| {
            hs.parse_request(black_box(BROWSER_REQUEST))
                .unwrap()
                .unwrap()
                .consumed
        })
    });
    g.bench_function("httparse alone (the floor)", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            req.parse(black_box(BROWSER_REQUEST)).unwrap()
        })
    });
    g.finish();
}

// ------------------------------------------------------------------------ receive path

/// `count` masked client frames of `len` bytes each (binary, or text when `text`).
fn client_frames(len: usize, count: usize, text: bool) -> Vec<u8> {
    let payload = if text { ascii(len) } else { vec![0xa5u8; len] };
    let mut wire = Vec::with_capacity(count * (len + MAX_HEADER_LEN));
    for i in 0..count {
        let key = [i as u8, 0x11, 0x22, 0x33];
        let h = FrameHeader {
            opcode: if text { OpCode::Text } else { OpCode::Binary },
            mask: Some(key),
            ..header(len as u64, true)
        };
        let mut hb = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut hb);
        wire.extend_from_slice(&hb[..n]);
        let at = wire.len();
        wire.extend_from_slice(&payload);
        apply_mask(&mut wire[at..], key, 0);
    }
    wire
}

/// An in-memory stream: reads come from `data`, writes are dropped.
struct Mem {
    data: Vec<u8>,
    pos: usize,
}

impl Read for Mem {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tokio::io::AsyncRead for Mem {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = buf.remaining().min(self.data.len() - self.pos);
        let pos = self.pos;
        buf.put_slice(&self.data[pos..pos + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Mem {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn receive(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("receive");
    for (len, count) in [
        (16usize, 1024usize),
        (1 << 10, 256),
        (64 << 10, 8),
        (1 << 20, 2),
    ] {
        for text in [false, true] {
            let wire = client_frames(len, count, text);
            let kind = if text { "text" } else { "binary" };
            let id = format!("{kind} {} x{count}", size_name(len));
            g.throughput(Throughput::Bytes((len * count) as u64));
            let mut config = Config::default();
            config.max_message_size = 16 << 20;

            g.bench_function(BenchmarkId::new("sansock read_message", &id), |b| {
                b.iter_batched(
                    || BytesMut::from(&wire[..]),
                    |mut input| {
                        let mut conn = Connection::server(config.clone(), Instant::ZERO);
                        for _ in 0..count {
                            let m = conn.read_message(&mut input, Instant::ZERO).unwrap();
                            assert!(matches!(m, Some(Message::Binary(_) | Message::Text(_))));
                        }
                    },
                    BatchSize::LargeInput,
                )
            });
            g.bench_function(BenchmarkId::new("sansock read_raw (borrowed)", &id), |b| {
                b.iter_batched(
                    || wire.clone(),
                    |mut input| {
                        let mut conn = Connection::server(config.clone(), Instant::ZERO);
                        let mut at = 0;
                        let mut got = 0;
                        while at < input.len() {
                            let (n, ev) = conn.read_raw(&mut input[at..], Instant::ZERO).unwrap();
                            at += n;
                            if let Some(sansock::conn::RawEvent::Data { kind, range, .. }) = ev {
                                black_box((kind == DataKind::Text, range));
                                got += 1;
                            }
                        }
                        assert_eq!(got, count);
                    },
                    BatchSize::LargeInput,
                )
            });
            g.bench_function(BenchmarkId::new("tungstenite", &id), |b| {
                let tconfig = tungstenite::protocol::WebSocketConfig::default()
                    .max_message_size(Some(16 << 20))
                    .max_frame_size(Some(16 << 20));
                b.iter_batched(
                    || Mem {
                        data: wire.clone(),
                        pos: 0,
                    },
                    |stream| {
                        let mut ws = tungstenite::WebSocket::from_raw_socket(
                            stream,
                            tungstenite::protocol::Role::Server,
                            Some(tconfig),
                        );
                        for _ in 0..count {
                            let m = ws.read().unwrap();
                            assert!(m.is_binary() || m.is_text());
                        }
                    },
                    BatchSize::LargeInput,
                )
            });
            g.bench_function(BenchmarkId::new("fastwebsockets", &id), |b| {
                b.iter_batched(
                    || Mem {
                        data: wire.clone(),
                        pos: 0,
                    },
                    |stream| {
                        rt.block_on(async {
                            let mut ws = fastwebsockets::WebSocket::after_handshake(
                                stream,
                                fastwebsockets::Role::Server,
                            );
                            ws.set_max_message_size(16 << 20);
                            let mut ws = fastwebsockets::FragmentCollector::new(ws);
                            for _ in 0..count {
                                let f = ws.read_frame().await.unwrap();
                                black_box(f.payload.len());
                            }
                        })
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

/// The adapters' whole echo path in memory: a server task per library on one end of a
/// `tokio::io::duplex`, the bench writing a batch of masked client frames into the
/// other end and reading every echo back. One thread, no sockets: what it measures is
/// each library's CPU per echoed message (read, unmask, validate, frame, write).
fn echo(c: &mut Criterion) {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("echo in memory");
    for (len, count) in [(16usize, 64usize), (1 << 10, 64), (64 << 10, 4)] {
        let wire = client_frames(len, count, false);
        let echo_len = count * (header(len as u64, false).encoded_len() + len);
        g.throughput(Throughput::Elements(count as u64));
        let id = format!("{} x{count}", size_name(len));
        for lib in ["sansock", "tokio-tungstenite", "fastwebsockets"] {
            let (client, server) = tokio::io::duplex(1 << 20);
            let _guard = rt.enter();
            match lib {
                "sansock" => {
                    let mut config = sansock_tokio::Config::default();
                    config.protocol.max_message_size = 16 << 20;
                    rt.spawn(async move {
                        let mut ws = sansock_tokio::WebSocket::from_upgraded(
                            server,
                            sansock::Role::Server,
                            config,
                            bytes::Bytes::new(),
                        );
                        while let Some(Ok(msg)) = ws.recv().await {
                            if msg.is_data() && ws.send(msg).await.is_err() {
                                break;
                            }
                        }
                    });
                }
                "tokio-tungstenite" => {
                    rt.spawn(async move {
                        let config = tungstenite::protocol::WebSocketConfig::default()
                            .max_message_size(Some(16 << 20))
                            .max_frame_size(Some(16 << 20));
                        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                            server,
                            tungstenite::protocol::Role::Server,
                            Some(config),
                        )
                        .await;
                        while let Some(Ok(msg)) = ws.next().await {
                            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                                break;
                            }
                        }
                    });
                }
                _ => {
                    rt.spawn(async move {
                        let mut ws = fastwebsockets::WebSocket::after_handshake(
                            server,
                            fastwebsockets::Role::Server,
                        );
                        ws.set_max_message_size(16 << 20);
                        let mut ws = fastwebsockets::FragmentCollector::new(ws);
                        while let Ok(frame) = ws.read_frame().await {
                            match frame.opcode {
                                fastwebsockets::OpCode::Close => break,
                                fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                                    let out = fastwebsockets::Frame::new(
                                        true,
                                        frame.opcode,
                                        None,
                                        frame.payload,
                                    );
                                    if ws.write_frame(out).await.is_err() {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                        }
                    });
                }
            }
            let (mut rd, mut wr) = tokio::io::split(client);
            let mut back = vec![0u8; echo_len];
            g.bench_function(BenchmarkId::new(lib, &id), |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let (w, r) = tokio::join!(wr.write_all(&wire), rd.read_exact(&mut back));
                        w.unwrap();
                        r.unwrap();
                    })
                })
            });
        }
    }
    g.finish();
}

fn size_name(len: usize) -> String {
    match len {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

criterion_group!(benches, headers, unmask, utf8, handshake, receive, echo);
criterion_main!(benches);
