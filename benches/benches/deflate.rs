//! Choosing the permessage-deflate codec: `miniz_oxide` (pure safe Rust, `no_std` +
//! `alloc`: the core's `deflate` feature) against zlib-rs through `flate2` (std only: the
//! core's `deflate-zlib` feature, used by the tokio adapter), on WebSocket-sized
//! messages: compress with a sync flush and inflate, as permessage-deflate does for every
//! message. Then the whole compressed-message path of a `Connection` with the backend
//! this build selected (`--features sansock/deflate-zlib` for zlib-rs).
//!
//! `cargo bench -p sansock-benches --bench deflate`

// criterion_group! and criterion_main! generate undocumented functions.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZFlush};

fn json(len: usize) -> Vec<u8> {
    let mut s = String::new();
    let mut i = 0u32;
    while s.len() < len {
        s.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"price\":{}.{:02},\"tags\":[\"a\",\"b{}\"]}},",
            i % 97,
            i * 13 % 1000,
            i % 100,
            i % 7
        ));
        i += 1;
    }
    s.truncate(len);
    s.into_bytes()
}

fn miniz_round(
    tx: &mut CompressorOxide,
    rx: &mut InflateState,
    data: &[u8],
    wire: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    wire.resize(data.len() + data.len() / 64 + 64, 0);
    let r = miniz_oxide::deflate::stream::deflate(tx, data, wire, MZFlush::Sync);
    wire.truncate(r.bytes_written);
    out.resize(data.len() + 64, 0);
    let r = miniz_oxide::inflate::stream::inflate(rx, wire, out, MZFlush::Sync);
    assert_eq!(r.bytes_written, data.len());
}

fn zlib_round(
    tx: &mut flate2::Compress,
    rx: &mut flate2::Decompress,
    data: &[u8],
    wire: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    wire.clear();
    wire.reserve(data.len() + data.len() / 64 + 64);
    tx.compress_vec(data, wire, flate2::FlushCompress::Sync)
        .unwrap();
    out.clear();
    out.reserve(data.len() + 64);
    rx.decompress_vec(wire, out, flate2::FlushDecompress::Sync)
        .unwrap();
    assert_eq!(out.len(), data.len());
}

fn codecs(c: &mut Criterion) {
    let mut group = c.benchmark_group("permessage-deflate round trip (level 3, context takeover)");
    for len in [128usize, 1024, 16 << 10, 256 << 10] {
        let data = json(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("miniz_oxide", len), &data, |b, data| {
            let mut tx = Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(
                3, -15, 0,
            )));
            let mut rx = InflateState::new_boxed(DataFormat::Raw);
            let (mut wire, mut out) = (Vec::new(), Vec::new());
            b.iter(|| miniz_round(&mut tx, &mut rx, data, &mut wire, &mut out));
        });
        group.bench_with_input(
            BenchmarkId::new("zlib-rs (flate2)", len),
            &data,
            |b, data| {
                let mut tx = flate2::Compress::new(flate2::Compression::new(3), false);
                let mut rx = flate2::Decompress::new(false);
                let (mut wire, mut out) = (Vec::new(), Vec::new());
                b.iter(|| zlib_round(&mut tx, &mut rx, data, &mut wire, &mut out));
            },
        );
    }
    group.finish();

    let mut group =
        c.benchmark_group("sansock Connection: compressed message encode + read_message");
    for len in [1024usize, 64 << 10] {
        let data = json(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &data, |b, data| {
            use sansock::conn::DataKind;
            use sansock::deflate::{DeflateConfig, DeflateParams};
            use sansock::{Config, Connection, Instant};
            let params = DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            };
            let mut server = Connection::server(Config::default(), Instant::ZERO);
            let mut client =
                Connection::client(Config::default(), |k: &mut [u8]| k.fill(9), Instant::ZERO);
            server.enable_deflate(params, &DeflateConfig::default());
            client.enable_deflate(params, &DeflateConfig::default());
            let mut wire = bytes::BytesMut::new();
            b.iter(|| {
                server
                    .encode_message(DataKind::Binary, data, &mut wire)
                    .unwrap();
                client
                    .read_message(&mut wire, Instant::ZERO)
                    .unwrap()
                    .unwrap()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
