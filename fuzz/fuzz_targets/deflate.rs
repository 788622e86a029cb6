//! permessage-deflate decoding (RFC 7692), differential against zlib-rs, and round trips.
//!
//! Decoding: a sequence of compressed messages (any bytes) is inflated by a connection
//! chunk by chunk as the input splits them, by a second connection whole, and by zlib-rs
//! (raw inflate, sync flush, with the same context takeover).
//! Invariants: chunked and whole agree on every result and byte; the output never exceeds
//! `max_message_size` (bomb-safe); where zlib-rs inflates cleanly, sansock gives the same
//! bytes (or `MessageTooLarge` exactly when they exceed the limit, `InvalidUtf8` exactly
//! when text is not UTF-8).
//! Round trip: any payload compressed by one end under any parameters (window bits,
//! context takeover, freeing between messages) reads back identically on the other.
#![no_main]

use bytes::BytesMut;
use flate2::{Decompress, FlushDecompress, Status};
use libfuzzer_sys::fuzz_target;
use sansock::deflate::{DeflateConfig, DeflateParams};
use sansock::{Config, Connection, DataKind, Error, Instant, Message};
use sansock_fuzz::{Input, chunks};

const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];
const LIMITS: [u64; 6] = [0, 1, 100, 4096, 70_000, 1 << 20];

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mode = input.u8();
    let b = input.u8();
    let params = DeflateParams {
        server_no_context_takeover: b & 1 != 0,
        client_no_context_takeover: b & 2 != 0,
        server_max_window_bits: 8 + (b >> 2) % 8,
        client_max_window_bits: 8 + (b >> 5) % 8,
    };
    let mut dcfg = DeflateConfig::default();
    dcfg.free_between_messages = mode & 2 != 0;
    dcfg.level = input.u8() % 10;
    dcfg.threshold = usize::from(input.u8() % 8);
    let mut config = Config::default();
    config.max_message_size = LIMITS[usize::from(input.u8()) % LIMITS.len()];
    let kind = if mode & 4 != 0 {
        DataKind::Text
    } else {
        DataKind::Binary
    };
    match mode & 9 {
        0 => decode(params, &dcfg, config, kind, &mut input),
        8 => from_zlib(params, &dcfg, config, kind, &mut input),
        _ => round_trip(params, &dcfg, config, kind, &mut input),
    }
});

fn decode(
    params: DeflateParams,
    dcfg: &DeflateConfig,
    config: Config,
    kind: DataKind,
    input: &mut Input<'_>,
) {
    let limit = config.max_message_size as usize;
    let mut chunked = Connection::server(config.clone(), Instant::ZERO);
    let mut whole = Connection::server(config, Instant::ZERO);
    chunked.enable_deflate(params, dcfg);
    whole.enable_deflate(params, dcfg);
    // The server inflates what the client compressed.
    let reset = params.client_no_context_takeover;
    let mut zlib = Decompress::new(false);
    let mut zlib_usable = true;
    let sizes = input.splits();
    while !input.0.is_empty() {
        let len = usize::from(input.u16() % 4096);
        let msg = input.bytes(len);
        let mut out_c = BytesMut::new();
        let mut r_c = Ok(());
        let pieces = chunks(msg, &sizes);
        if pieces.is_empty() {
            r_c = chunked.decompress(kind, &[], true, &mut out_c);
        }
        for (i, piece) in pieces.iter().enumerate() {
            r_c = chunked.decompress(kind, piece, i + 1 == pieces.len(), &mut out_c);
            if r_c.is_err() {
                break;
            }
        }
        let mut out_w = BytesMut::new();
        let r_w = whole.decompress(kind, msg, true, &mut out_w);
        assert!(
            out_c.len() <= limit && out_w.len() <= limit,
            "inflated past the limit"
        );

        let zlib_says = zlib_usable.then(|| {
            if reset {
                zlib.reset(false);
            }
            let mut full = msg.to_vec();
            full.extend_from_slice(&TAIL);
            reference(&mut zlib, &full, limit)
        });
        if r_c != r_w {
            // Only a message that is too large *and* corrupt may fail either way,
            // depending on how much input the inflater had (see `Outcome::comparable`).
            let both = [&r_c, &r_w].map(|r| r.clone().err());
            assert!(
                both.contains(&Some(Error::MessageTooLarge))
                    && both.iter().all(|e| matches!(
                        e,
                        Some(
                            Error::MessageTooLarge
                                | Error::InvalidCompressedData
                                | Error::InvalidUtf8
                        )
                    )),
                "result depends on the split: {r_c:?} / {r_w:?}"
            );
            // (zlib-rs may even call it valid: miniz rejects some broken block headers
            // at once that zlib-rs only fails on later, so no zlib-rs check here.)
        } else if r_c.is_ok() {
            assert_eq!(out_c, out_w, "bytes depend on the split");
            if kind == DataKind::Text {
                assert!(core::str::from_utf8(&out_c).is_ok());
            }
        }

        match zlib_says {
            None => {}
            Some(Ref::Clean(expected)) => match &r_c {
                Ok(()) => assert_eq!(&out_c[..], &expected[..], "differs from zlib"),
                Err(Error::InvalidUtf8) => {
                    assert!(kind == DataKind::Text && core::str::from_utf8(&expected).is_err())
                }
                // miniz rejects some broken block headers (say, a code-length code
                // without codes) as soon as it reads them, where zlib waits for more
                // input: fine, as long as everything before was the same.
                Err(Error::InvalidCompressedData) if expected.starts_with(&out_c) => {
                    zlib_usable = false
                }
                Err(e) => panic!(
                    "zlib inflates {} bytes cleanly, sansock: {e:?}",
                    expected.len()
                ),
            },
            Some(Ref::TooLarge {
                corrupt_later,
                inflated,
            }) => match &r_c {
                Err(Error::MessageTooLarge) => {}
                Err(Error::InvalidCompressedData) if corrupt_later => {}
                // As above: miniz can reject a broken block header that zlib-rs is still
                // reading when the message ends, and miniz decodes ahead into its window,
                // so it may see that before it hands out the byte past the limit.
                Err(Error::InvalidCompressedData) if inflated.starts_with(&out_c) => {
                    zlib_usable = false
                }
                Err(Error::InvalidUtf8) if kind == DataKind::Text => {}
                other => panic!("zlib inflates past {limit}, sansock: {other:?}"),
            },
            Some(Ref::Unclear) => zlib_usable = false,
        }
        if r_c.is_err() {
            break;
        }
    }
}

enum Ref {
    /// Inflated without error, within the limit, stream not ended.
    Clean(Vec<u8>),
    /// Produced more than the limit; `corrupt_later`: and fails a little further on.
    TooLarge {
        corrupt_later: bool,
        /// What it inflated before it stopped.
        inflated: Vec<u8>,
    },
    /// An error, or a final block (after which the two may legitimately differ).
    Unclear,
}

fn reference(z: &mut Decompress, mut input: &[u8], limit: usize) -> Ref {
    let mut out = Vec::new();
    let mut too_large = false;
    loop {
        let mut buf = [0u8; 4096];
        let (in0, out0) = (z.total_in(), z.total_out());
        let status = z.decompress(input, &mut buf, FlushDecompress::Sync);
        let used = (z.total_in() - in0) as usize;
        let made = (z.total_out() - out0) as usize;
        input = &input[used..];
        out.extend_from_slice(&buf[..made]);
        too_large |= out.len() > limit;
        let corrupt = match status {
            Ok(Status::StreamEnd) | Err(_) => true,
            Ok(_) if input.is_empty() && made < buf.len() => false,
            Ok(_) if used == 0 && made == 0 => true,
            Ok(_) if out.len() > limit + (64 << 10) => false,
            Ok(_) => continue,
        };
        return match (too_large, corrupt) {
            (true, corrupt_later) => Ref::TooLarge {
                corrupt_later,
                inflated: out,
            },
            (false, true) => Ref::Unclear,
            (false, false) => Ref::Clean(out),
        };
    }
}

fn round_trip(
    params: DeflateParams,
    dcfg: &DeflateConfig,
    mut config: Config,
    kind: DataKind,
    input: &mut Input<'_>,
) {
    config.max_send_frame_size = 1 + usize::from(input.u16());
    config.max_message_size = 1 << 20;
    let mut server = Connection::server(config.clone(), Instant::ZERO);
    let mut client = Connection::client(config, |b: &mut [u8]| b.fill(0x3c), Instant::ZERO);
    server.enable_deflate(params, dcfg);
    client.enable_deflate(params, dcfg);
    while !input.0.is_empty() {
        let len = usize::from(input.u16() % 8192);
        let raw = input.bytes(len);
        let payload: Vec<u8> = match kind {
            DataKind::Text => String::from_utf8_lossy(raw).into_owned().into_bytes(),
            DataKind::Binary => raw.to_vec(),
        };
        // Server to client and client to server.
        let mut wire = BytesMut::new();
        server.encode_message(kind, &payload, &mut wire).unwrap();
        let got = client
            .read_message(&mut wire, Instant::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(payload_of(&got), &payload[..]);
        assert!(wire.is_empty());
        let mut wire = BytesMut::new();
        client.encode_message(kind, &payload, &mut wire).unwrap();
        let got = server
            .read_message(&mut wire, Instant::ZERO)
            .unwrap()
            .unwrap();
        assert_eq!(payload_of(&got), &payload[..]);
        assert!(wire.is_empty());
    }
}

/// Messages compressed by zlib-rs (sync flush, tail removed, one stream across messages
/// unless the client resets) must read back exactly: no false rejections.
fn from_zlib(
    params: DeflateParams,
    dcfg: &DeflateConfig,
    mut config: Config,
    kind: DataKind,
    input: &mut Input<'_>,
) {
    config.max_message_size = 1 << 20;
    let mut server = Connection::server(config, Instant::ZERO);
    server.enable_deflate(params, dcfg);
    let level = flate2::Compression::new(u32::from(input.u8() % 10));
    let mut z = flate2::Compress::new(level, false);
    let sizes = input.splits();
    while !input.0.is_empty() {
        let len = usize::from(input.u16() % 8192);
        let raw = input.bytes(len);
        let payload: Vec<u8> = match kind {
            DataKind::Text => String::from_utf8_lossy(raw).into_owned().into_bytes(),
            DataKind::Binary => raw.to_vec(),
        };
        if params.client_no_context_takeover {
            z.reset();
        }
        // Room for stored blocks and the flush, so one call always finishes.
        let mut wire = Vec::with_capacity(payload.len() + payload.len() / 16 + 1024);
        let in0 = z.total_in();
        z.compress_vec(&payload, &mut wire, flate2::FlushCompress::Sync)
            .unwrap();
        assert_eq!(z.total_in() - in0, payload.len() as u64);
        if wire.is_empty() {
            // zlib emits nothing for a second flush in a row: RFC 7692 §7.2.3.6 sends an
            // empty message as a single 0x00 (with the tail, an empty stored block).
            wire.extend_from_slice(&[0x00, 0, 0, 0xff, 0xff]);
        }
        assert!(wire.ends_with(&TAIL), "zlib's sync flush");
        wire.truncate(wire.len() - 4);
        let mut out = BytesMut::new();
        let pieces = chunks(&wire, &sizes);
        for (i, piece) in pieces.iter().enumerate() {
            server
                .decompress(kind, piece, i + 1 == pieces.len(), &mut out)
                .expect("zlib's message inflates");
        }
        if pieces.is_empty() {
            server.decompress(kind, &[], true, &mut out).unwrap();
        }
        assert_eq!(&out[..], &payload[..], "differs from what zlib compressed");
    }
}

fn payload_of(m: &Message) -> &[u8] {
    match m {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        other => panic!("{other:?}"),
    }
}
