//! permessage-deflate (RFC 7692) on whole connections: negotiation results installed on
//! a client and a server, every rule of §6–§7 with its close code, and interop with an
//! independent inflater (zlib, via flate2/zlib-rs).

use bytes::BytesMut;
use proptest::prelude::*;
use sansock::conn::{DataKind, Event};
use sansock::deflate::{DeflateConfig, DeflateParams, check_response, negotiate};
use sansock::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, RSV1};
use sansock::handshake::ExtensionOffers;
use sansock::{CloseCode, Config, Connection, Error, Instant, Message, State};

const NOW: Instant = Instant::ZERO;

fn params(bits: u8, no_takeover: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: no_takeover,
        client_no_context_takeover: no_takeover,
        server_max_window_bits: bits,
        client_max_window_bits: bits,
    }
}

fn pair(
    p: DeflateParams,
    cfg: &DeflateConfig,
    config: Config,
) -> (Connection<impl sansock::RandomSource + use<>>, Connection) {
    let mut client = Connection::client(config.clone(), |b: &mut [u8]| b.fill(0x5a), NOW);
    let mut server = Connection::server(config, NOW);
    client.enable_deflate(p, cfg);
    server.enable_deflate(p, cfg);
    (client, server)
}

fn read_all<R: sansock::RandomSource>(
    conn: &mut Connection<R>,
    wire: &mut BytesMut,
) -> Result<Vec<Message>, Error> {
    let mut out = Vec::new();
    while let Some(m) = conn.read_message(wire, NOW)? {
        out.push(m);
    }
    Ok(out)
}

fn close_code_sent<R: sansock::RandomSource>(conn: &mut Connection<R>) -> u16 {
    let t = conn.poll_transmit().expect("a close frame is owed");
    assert_eq!(t.opcode(), OpCode::Close);
    let (h, n) = FrameHeader::decode(&t).unwrap().unwrap();
    let mut body = t[n..].to_vec();
    if let Some(key) = h.mask {
        sansock::mask::apply_mask(&mut body, key, 0);
    }
    u16::from_be_bytes([body[0], body[1]])
}

/// A raw server frame (unmasked) with explicit RSV bits.
fn raw_frame(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let h = FrameHeader {
        fin,
        rsv,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut hb = [0u8; MAX_HEADER_LEN];
    let n = h.encode(&mut hb);
    let mut v = hb[..n].to_vec();
    v.extend_from_slice(payload);
    v
}

fn deflate_raw(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    while out.capacity() == out.len() {
        out.reserve(1024);
        c.compress_vec(&[], &mut out, flate2::FlushCompress::Sync)
            .unwrap();
    }
    assert_eq!(&out[out.len() - 4..], &[0, 0, 0xff, 0xff]);
    out.truncate(out.len() - 4);
    out
}

#[test]
fn messages_round_trip_compressed_both_ways() {
    let cfg = DeflateConfig::default();
    for (bits, reset) in [(15, false), (15, true), (9, false), (12, true)] {
        let (mut client, mut server) = pair(params(bits, reset), &cfg, Config::default());
        let text = "sansock ".repeat(500);
        let mut wire = BytesMut::new();
        client
            .encode_message(DataKind::Text, text.as_bytes(), &mut wire)
            .unwrap();
        assert!(
            wire.len() < text.len() / 10,
            "compressed to {} bytes",
            wire.len()
        );
        assert_eq!(wire[0] & 0x40, 0x40, "RSV1 on the first frame");
        client
            .encode_message(DataKind::Binary, &[1, 2, 3], &mut wire)
            .unwrap(); // under threshold
        let msgs = read_all(&mut server, &mut wire).unwrap();
        assert_eq!(
            msgs,
            vec![
                Message::text(text.clone()),
                Message::binary(vec![1u8, 2, 3])
            ]
        );
        let mut back = BytesMut::new();
        server
            .encode_message(DataKind::Text, text.as_bytes(), &mut back)
            .unwrap();
        assert_eq!(
            read_all(&mut client, &mut back).unwrap(),
            vec![Message::text(text)]
        );
    }
}

#[test]
fn fragmented_compressed_message_has_rsv1_only_on_the_first_frame() {
    let mut config = Config::default();
    config.max_send_frame_size = 100;
    let (mut client, mut server) = pair(params(15, false), &DeflateConfig::default(), config);
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut wire = BytesMut::new();
    client
        .encode_message(DataKind::Binary, &data, &mut wire)
        .unwrap();
    // Walk the frames: the first has RSV1, continuations have none.
    let mut at = 0;
    let mut frames = 0;
    while at < wire.len() {
        let (h, n) = FrameHeader::decode(&wire[at..]).unwrap().unwrap();
        assert_eq!(h.rsv, if frames == 0 { RSV1 } else { 0 });
        at += n + h.payload_len as usize;
        frames += 1;
    }
    assert!(frames > 1);
    assert_eq!(
        read_all(&mut server, &mut wire).unwrap(),
        vec![Message::binary(data)]
    );
}

#[test]
fn rsv1_rules_fail_with_1002() {
    let cfg = DeflateConfig::default();
    // RSV1 on a continuation frame.
    let (mut client, _) = pair(params(15, false), &cfg, Config::default());
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&raw_frame(false, RSV1, OpCode::Text, &deflate_raw(b"he")));
    wire.extend_from_slice(&raw_frame(true, RSV1, OpCode::Continuation, b"x"));
    assert_eq!(
        read_all(&mut client, &mut wire),
        Err(Error::ReservedBitsSet)
    );
    assert_eq!(close_code_sent(&mut client), 1002);
    // RSV1 on a control frame.
    let (mut client, _) = pair(params(15, false), &cfg, Config::default());
    let mut wire = BytesMut::from(&raw_frame(true, RSV1, OpCode::Ping, b"")[..]);
    assert_eq!(
        read_all(&mut client, &mut wire),
        Err(Error::ReservedBitsSet)
    );
    assert_eq!(close_code_sent(&mut client), 1002);
    // RSV1 without permessage-deflate negotiated.
    let mut plain = Connection::client(Config::default(), |b: &mut [u8]| b.fill(1), NOW);
    let mut wire = BytesMut::from(&raw_frame(true, RSV1, OpCode::Text, &deflate_raw(b"hi"))[..]);
    assert_eq!(read_all(&mut plain, &mut wire), Err(Error::ReservedBitsSet));
    assert_eq!(close_code_sent(&mut plain), 1002);
    // RSV2 and RSV3 stay forbidden with deflate on.
    let (mut client, _) = pair(params(15, false), &cfg, Config::default());
    let mut wire = BytesMut::from(&raw_frame(true, 0b010, OpCode::Text, b"a")[..]);
    assert_eq!(
        read_all(&mut client, &mut wire),
        Err(Error::ReservedBitsSet)
    );
}

#[test]
fn a_real_deflate_bomb_gets_1009_with_bounded_memory() {
    let mut config = Config::default();
    config.max_message_size = 1 << 20;
    let (mut client, _) = pair(params(15, false), &DeflateConfig::default(), config);
    // 64 MiB of zeros compress to about 64 KiB: well under max_frame_size.
    let bomb = deflate_raw(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 100 << 10);
    let mut wire = BytesMut::from(&raw_frame(true, RSV1, OpCode::Binary, &bomb)[..]);
    assert_eq!(
        read_all(&mut client, &mut wire),
        Err(Error::MessageTooLarge)
    );
    assert_eq!(close_code_sent(&mut client), 1009);
    assert_eq!(client.state(), State::Closed);
}

#[test]
fn inflated_text_must_be_utf8_and_garbage_must_inflate() {
    let cfg = DeflateConfig::default();
    let (mut client, _) = pair(params(15, false), &cfg, Config::default());
    let mut wire =
        BytesMut::from(&raw_frame(true, RSV1, OpCode::Text, &deflate_raw(&[b'a', 0xff, b'b']))[..]);
    assert_eq!(read_all(&mut client, &mut wire), Err(Error::InvalidUtf8));
    assert_eq!(close_code_sent(&mut client), 1007);
    let (mut client, _) = pair(params(15, false), &cfg, Config::default());
    let mut wire = BytesMut::from(&raw_frame(true, RSV1, OpCode::Binary, &[0xff; 16])[..]);
    assert_eq!(
        read_all(&mut client, &mut wire),
        Err(Error::InvalidCompressedData)
    );
    assert_eq!(close_code_sent(&mut client), 1007);
}

#[test]
fn our_output_respects_the_negotiated_window_for_zlib() {
    // zlib refuses distances beyond its window ("invalid distance too far back"), so it
    // checks that a window-limited compressor never reaches further back.
    let data: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("{} ", i % 1777).into_bytes())
        .collect();
    for bits in 9..=15u8 {
        let (_, mut server) = pair(
            params(bits, false),
            &DeflateConfig::default(),
            Config::default(),
        );
        let mut wire = BytesMut::new();
        for _ in 0..2 {
            server
                .encode_message(DataKind::Binary, &data, &mut wire)
                .unwrap();
        }
        let mut z = flate2::Decompress::new_with_window_bits(false, bits);
        let mut at = 0;
        while at < wire.len() {
            let (h, n) = FrameHeader::decode(&wire[at..]).unwrap().unwrap();
            let mut payload = wire[at + n..at + n + h.payload_len as usize].to_vec();
            payload.extend_from_slice(&[0, 0, 0xff, 0xff]);
            let mut out = Vec::with_capacity(data.len() + 1024);
            z.decompress_vec(&payload, &mut out, flate2::FlushDecompress::Sync)
                .unwrap_or_else(|e| panic!("window {bits}: {e}"));
            assert_eq!(out, data, "window {bits}");
            at += n + h.payload_len as usize;
        }
    }
}

#[test]
fn negotiation_results_interoperate() {
    // What a browser offers, accepted by our server policy, checked by our client.
    let offer = DeflateConfig::default().offer();
    let mut policy = DeflateConfig::default();
    policy.server_max_window_bits = Some(12);
    policy.client_no_context_takeover = true;
    let (server_params, answer) = negotiate(ExtensionOffers::from_value(&offer), &policy)
        .unwrap()
        .unwrap();
    let client_params = check_response(
        ExtensionOffers::from_value(&answer),
        &DeflateConfig::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(server_params, client_params);
    assert_eq!(
        (
            client_params.server_max_window_bits,
            client_params.client_no_context_takeover
        ),
        (12, true)
    );
}

#[test]
fn close_and_control_frames_are_never_compressed() {
    let (mut client, mut server) = pair(
        params(15, false),
        &DeflateConfig::default(),
        Config::default(),
    );
    client.ping(&[7; 100], NOW).unwrap();
    client
        .close(CloseCode::NORMAL, &"r".repeat(100), NOW)
        .unwrap();
    let mut wire = BytesMut::new();
    while let Some(t) = client.poll_transmit() {
        assert_eq!(t[0] & 0x70, 0, "no RSV on control frames");
        wire.extend_from_slice(&t);
    }
    let msgs = read_all(&mut server, &mut wire).unwrap();
    assert_eq!(msgs.len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any split of a compressed stream gives the same messages, and borrowed events
    /// decompressed chunk by chunk give the same bytes.
    #[test]
    fn any_split_gives_the_same_messages(
        msgs in proptest::collection::vec((any::<bool>(), "[a-zé€ ]{0,300}"), 1..8),
        cuts in proptest::collection::vec(1usize..64, 1..40),
        frame in 20usize..400,
        reset in any::<bool>(),
    ) {
        let mut config = Config::default();
        config.max_send_frame_size = frame;
        let mut cfg = DeflateConfig::default();
        cfg.threshold = 10;
        let (mut client, mut server) = pair(params(15, reset), &cfg, config.clone());
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        for (binary, s) in &msgs {
            let kind = if *binary { DataKind::Binary } else { DataKind::Text };
            client.encode_message(kind, s.as_bytes(), &mut wire).unwrap();
            expected.push(if *binary { Message::binary(s.clone().into_bytes()) } else { Message::text(s.clone()) });
        }
        let whole = read_all(&mut server, &mut wire.clone()).unwrap();
        prop_assert_eq!(&whole, &expected);

        // Split reads through the owned API.
        let (_, mut server2) = pair(params(15, reset), &cfg, config.clone());
        let mut got = Vec::new();
        let mut buf = BytesMut::new();
        let mut at = 0;
        let mut i = 0;
        while at < wire.len() {
            let n = cuts[i % cuts.len()].min(wire.len() - at);
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            i += 1;
            got.extend(read_all(&mut server2, &mut buf).unwrap());
        }
        prop_assert_eq!(&got, &expected);

        // Borrowed events + decompress, one byte at a time.
        let (_, mut server3) = pair(params(15, reset), &cfg, config);
        let mut bytes = wire.to_vec();
        let mut out = BytesMut::new();
        let mut texts = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let end = pos + 1;
            let mut local = 0;
            loop {
                let r = server3.read(&mut bytes[pos + local..end], NOW).unwrap();
                local += r.consumed;
                match r.event {
                    Some(Event::Data(d)) => {
                        let (kind, compressed, end_of_msg) = (d.kind, d.compressed, d.message_end);
                        let payload = d.payload.to_vec();
                        if compressed {
                            server3.decompress(kind, &payload, end_of_msg, &mut out).unwrap();
                        } else {
                            out.extend_from_slice(&payload);
                        }
                        if end_of_msg {
                            texts.push(out.split().to_vec());
                        }
                    }
                    Some(_) => {}
                    None if r.consumed == 0 => break,
                    None => {}
                }
            }
            pos += local.max(1).min(end - pos);
        }
        let expected_bytes: Vec<Vec<u8>> = msgs.iter().map(|(_, s)| s.clone().into_bytes()).collect();
        prop_assert_eq!(texts, expected_bytes);
    }
}

/// Regression (found by `fuzz/deflate`): once a message's inflated size had reached
/// `max_message_size` exactly, later chunks went through a one-byte probe whose result
/// ignored unconsumed input, so data after a final block was accepted — but only when
/// the message arrived in pieces. Split or whole, it is the same error now.
#[test]
fn trailing_data_after_a_final_block_fails_at_the_limit_too() {
    // "0" in a final block, then bytes that can only be garbage.
    let mut msg = Vec::with_capacity(64);
    let mut z = flate2::Compress::new(flate2::Compression::default(), false);
    z.compress_vec(b"0", &mut msg, flate2::FlushCompress::Finish)
        .unwrap();
    assert_eq!(msg, [0x33, 0x00, 0x00]);
    msg.extend_from_slice(b"\x28\x33\x33garbage");
    for limit in [1, 1000] {
        let mut config = Config::default();
        config.max_message_size = limit;
        for piece in [1, 2, 3, msg.len()] {
            let mut server = Connection::server(config.clone(), NOW);
            server.enable_deflate(params(15, true), &DeflateConfig::default());
            let mut out = BytesMut::new();
            let chunks: Vec<&[u8]> = msg.chunks(piece).collect();
            let mut result = Ok(());
            for (i, chunk) in chunks.iter().enumerate() {
                result =
                    server.decompress(DataKind::Binary, chunk, i + 1 == chunks.len(), &mut out);
                if result.is_err() {
                    break;
                }
            }
            assert_eq!(
                result,
                Err(Error::InvalidCompressedData),
                "limit {limit}, pieces of {piece}"
            );
            assert_eq!(&out[..], b"0", "limit {limit}, pieces of {piece}");
        }
    }
}

/// RFC 7692 §7.2.3.4: a sender may flush with a final (BFINAL=1) block followed by one
/// byte that starts an empty stored block, so that the tail appended by the receiver
/// completes it. Regression: this was refused with 1007 as trailing data. Every split of
/// the message into two frames, and a normally compressed message after it on the same
/// context (the next message is a new DEFLATE stream), must read as the RFC says.
#[test]
fn rfc7692_final_block_flush_reads_as_hello() {
    const RFC_HELLO: [u8; 8] = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    for no_takeover in [false, true] {
        for split in 0..=RFC_HELLO.len() {
            let (mut client, _) = pair(
                params(15, no_takeover),
                &DeflateConfig::default(),
                Config::default(),
            );
            let mut wire = BytesMut::new();
            let (a, b) = RFC_HELLO.split_at(split);
            wire.extend_from_slice(&raw_frame(false, RSV1, OpCode::Text, a));
            wire.extend_from_slice(&raw_frame(true, 0, OpCode::Continuation, b));
            // The same message as one frame, then a sync-flushed one.
            wire.extend_from_slice(&raw_frame(true, RSV1, OpCode::Text, &RFC_HELLO));
            wire.extend_from_slice(&raw_frame(true, RSV1, OpCode::Text, &deflate_raw(b"again")));
            let got = read_all(&mut client, &mut wire).unwrap_or_else(|e| {
                panic!("split {split}, no_takeover {no_takeover}: {e}");
            });
            assert_eq!(
                got,
                [
                    Message::text("Hello"),
                    Message::text("Hello"),
                    Message::text("again")
                ],
                "split {split}, no_takeover {no_takeover}"
            );
            assert!(client.poll_transmit().is_none(), "nothing to answer");
        }
    }
}

/// A final block that is the whole payload (without the RFC's extra byte) leaves the
/// appended tail as the start of a stream that never ends: the message still reads,
/// and the next one starts clean instead of inheriting a half-parsed block header.
#[test]
fn final_block_without_the_extra_byte_does_not_poison_the_next_message() {
    let mut finished = Vec::with_capacity(64);
    let mut z = flate2::Compress::new(flate2::Compression::default(), false);
    z.compress_vec(b"Hello", &mut finished, flate2::FlushCompress::Finish)
        .unwrap();
    let (mut client, _) = pair(
        params(15, false),
        &DeflateConfig::default(),
        Config::default(),
    );
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&raw_frame(true, RSV1, OpCode::Text, &finished));
    wire.extend_from_slice(&raw_frame(true, RSV1, OpCode::Text, &deflate_raw(b"next")));
    assert_eq!(
        read_all(&mut client, &mut wire),
        Ok(vec![Message::text("Hello"), Message::text("next")])
    );
}

/// Fuzz finding (`deflate`, seed `corpus/deflate/miniz-early-header-reject`): a fixed
/// block inflating to 15 bytes, then a dynamic block header that the message ends in
/// the middle of. That is malformed (a sync-flushed message ends on a block boundary).
/// miniz_oxide rejects the header as soon as it reads it and decodes ahead into its
/// window, so even past the limit it may answer 1007 rather than 1009; zlib-rs is still
/// reading the header when the message ends. Either answer is right for a message that
/// is too large *and* broken; what must hold is that nothing is inflated past the limit
/// and the error is one of the two.
#[test]
fn broken_header_past_the_limit_fails_either_way_within_the_limit() {
    const MSG: [u8; 32] = [
        0x3a, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0xfb, 0xff, 0xce, 0xce, 0xce, 0xce, 0xce, 0xce, 0xce,
        0xff, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x20, 0xfa, 0xff, 0x6c,
        0xe0, 0x6f,
    ];
    const INFLATED: [u8; 15] = [
        0xc4, 0xe2, 0x26, 0x42, 0x42, 0x4b, 0xff, 0xb9, 0x89, 0x89, 0x89, 0x89, 0x89, 0x89, 0xff,
    ];
    for limit in [1, 2, 10, 14] {
        let mut config = Config::default();
        config.max_message_size = limit;
        let mut server = Connection::server(config, NOW);
        server.enable_deflate(params(8, false), &DeflateConfig::default());
        let mut out = BytesMut::new();
        let r = server.decompress(DataKind::Binary, &MSG, true, &mut out);
        assert!(
            matches!(
                r,
                Err(Error::MessageTooLarge | Error::InvalidCompressedData)
            ),
            "limit {limit}: {r:?}"
        );
        assert!(
            out.len() as u64 <= limit,
            "limit {limit}: inflated {}",
            out.len()
        );
        assert!(
            INFLATED.starts_with(&out),
            "limit {limit}: {:02x?}",
            &out[..]
        );
        assert_eq!(server.state(), State::Closed, "the connection failed");
    }
    if sansock::deflate::BACKEND == "miniz_oxide" {
        let mut server = Connection::server(Config::default(), NOW);
        server.enable_deflate(params(8, false), &DeflateConfig::default());
        let mut out = BytesMut::new();
        assert_eq!(
            server.decompress(DataKind::Binary, &MSG, true, &mut out),
            Err(Error::InvalidCompressedData)
        );
    }
}
