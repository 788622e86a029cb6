//! One input per RFC 6455 rule, checked through the public API of `Connection`: the
//! exact `Error`, the exact close code that goes out on the wire, and the state.
//!
//! Frames are built byte by byte here (and masked with a naive XOR), independently of
//! the encoder and the masking code under test.

use std::time::Duration;

use bytes::BytesMut;
use sansock::conn::{Event, Read};
use sansock::frame::{OpCode, RSV1};
use sansock::{
    CloseCode, Config, Connection, DataKind, Error, Instant, Message, OwnedCloseFrame,
    RandomSource, Role, State,
};

// ---------------------------------------------------------------------------- helpers

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// The masking key of the RFC 6455 §5.7 examples.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Deterministic masking keys for client connections.
struct Keys(u32);

impl RandomSource for Keys {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *b = (self.0 >> 16) as u8;
        }
    }
}

fn server() -> Connection {
    Connection::server(Config::default(), t(0))
}

fn client() -> Connection<Keys> {
    Connection::client(Config::default(), Keys(1), t(0))
}

fn server_with(c: Config) -> Connection {
    Connection::server(c, t(0))
}

fn client_with(c: Config) -> Connection<Keys> {
    Connection::client(c, Keys(1), t(0))
}

fn xor(buf: &mut [u8], key: [u8; 4]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// The bytes of a frame header: `b0` verbatim (FIN, RSV, any opcode including the
/// reserved ones), then the 7-bit length `len7` and the extended length bytes `ext`
/// exactly as given (so non-minimal encodings can be written), then the key.
fn header(b0: u8, len7: u8, ext: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut v = vec![b0, len7 | if mask.is_some() { 0x80 } else { 0 }];
    v.extend_from_slice(ext);
    if let Some(k) = mask {
        v.extend_from_slice(&k);
    }
    v
}

/// A whole frame with a minimally encoded length.
fn frame(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let n = payload.len();
    let mut v = match n {
        0..=125 => header(b0, n as u8, &[], mask),
        126..=0xffff => header(b0, 126, &(n as u16).to_be_bytes(), mask),
        _ => header(b0, 127, &(n as u64).to_be_bytes(), mask),
    };
    let at = v.len();
    v.extend_from_slice(payload);
    if let Some(k) = mask {
        xor(&mut v[at..], k);
    }
    v
}

/// A frame as a client sends it (masked).
fn cf(b0: u8, payload: &[u8]) -> Vec<u8> {
    frame(b0, payload, Some(KEY))
}

/// A frame as a server sends it (unmasked).
fn sf(b0: u8, payload: &[u8]) -> Vec<u8> {
    frame(b0, payload, None)
}

/// A frame as the peer of a connection with `role` must send it.
fn peer_frame(role: Role, b0: u8, payload: &[u8]) -> Vec<u8> {
    match role {
        Role::Server => cf(b0, payload),
        Role::Client => sf(b0, payload),
    }
}

fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
    [&code.to_be_bytes()[..], reason].concat()
}

/// An owned copy of an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data {
        text: bool,
        payload: Vec<u8>,
        start: bool,
        end: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
}

fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Data(d) => Ev::Data {
            text: d.kind == DataKind::Text,
            payload: d.payload.to_vec(),
            start: d.message_start,
            end: d.message_end,
        },
        Event::Ping(p) => Ev::Ping(p.as_bytes().to_vec()),
        Event::Pong(p) => Ev::Pong(p.as_bytes().to_vec()),
        Event::Close(c) => Ev::Close(c.code().0, c.reason().to_owned()),
    }
}

fn text(payload: &[u8], start: bool, end: bool) -> Ev {
    Ev::Data {
        text: true,
        payload: payload.to_vec(),
        start,
        end,
    }
}

fn binary(payload: &[u8], start: bool, end: bool) -> Ev {
    Ev::Data {
        text: false,
        payload: payload.to_vec(),
        start,
        end,
    }
}

/// Feed `bytes` as one read from the transport: call `read` until it asks for more.
/// Returns every event, or the first error.
fn feed<R: RandomSource>(
    c: &mut Connection<R>,
    bytes: &[u8],
    now: Instant,
) -> Result<Vec<Ev>, Error> {
    let mut buf = bytes.to_vec();
    let mut at = 0;
    let mut events = Vec::new();
    loop {
        let Read { consumed, event } = c.read(&mut buf[at..], now)?;
        let event = event.map(own);
        if consumed == 0 && event.is_none() {
            break;
        }
        at += consumed;
        events.extend(event);
    }
    assert_eq!(at, bytes.len(), "every byte is consumed");
    Ok(events)
}

/// Feed `bytes` through `read_message`; the input must be drained.
fn messages<R: RandomSource>(c: &mut Connection<R>, bytes: &[u8]) -> Result<Vec<Message>, Error> {
    let mut input = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = c.read_message(&mut input, t(1))? {
        out.push(m);
    }
    assert!(input.is_empty(), "read_message left {} bytes", input.len());
    Ok(out)
}

/// Parse a sequence of frames, independently of the decoder under test:
/// `(first byte, unmasked payload, masked)`.
fn parse_wire(mut w: &[u8]) -> Vec<(u8, Vec<u8>, bool)> {
    let mut out = Vec::new();
    while !w.is_empty() {
        let b0 = w[0];
        let masked = w[1] & 0x80 != 0;
        let (len, mut at) = match w[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([w[2], w[3]])), 4),
            127 => (
                usize::try_from(u64::from_be_bytes(w[2..10].try_into().unwrap())).unwrap(),
                10,
            ),
            n => (usize::from(n), 2),
        };
        let key = masked.then(|| {
            let k = [w[at], w[at + 1], w[at + 2], w[at + 3]];
            at += 4;
            k
        });
        let mut p = w[at..at + len].to_vec();
        if let Some(k) = key {
            xor(&mut p, k);
        }
        out.push((b0, p, masked));
        w = &w[at + len..];
    }
    out
}

/// Every control frame `c` owes its peer right now, as `(first byte, payload)`.
fn transmits<R: RandomSource>(c: &mut Connection<R>) -> Vec<(u8, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(tx) = c.poll_transmit() {
        let mut f = parse_wire(&tx);
        assert_eq!(f.len(), 1, "one frame per transmit");
        let (b0, p, masked) = f.pop().unwrap();
        assert_eq!(
            masked,
            c.role() == Role::Client,
            "clients mask, servers do not"
        );
        assert_eq!(tx.opcode() as u8, b0 & 0x0f);
        v.push((b0, p));
    }
    assert!(!c.has_transmit());
    v
}

/// `bytes` fail `c` with `err`: see [`check_failed`].
#[track_caller]
fn fails<R: RandomSource>(c: &mut Connection<R>, bytes: &[u8], err: Error, code: u16) {
    assert_eq!(feed(c, bytes, t(1)), Err(err.clone()));
    check_failed(c, err, code);
}

/// The connection failed with `err`: it is `Closed`, the one frame it owes is a close
/// carrying exactly `code`, it wants the transport closed, and it refuses to go on.
#[track_caller]
fn check_failed<R: RandomSource>(c: &mut Connection<R>, err: Error, code: u16) {
    assert_eq!(err.close_code(), Some(CloseCode(code)));
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(&err));
    assert_eq!(transmits(c), vec![(0x88, code.to_be_bytes().to_vec())]);
    assert!(c.wants_close_transport());
    let more = peer_frame(c.role(), 0x81, b"more");
    assert_eq!(feed(c, &more, t(2)), Err(Error::ConnectionClosed));
    assert_eq!(
        c.encode_frame(DataKind::Text, 1, true).unwrap_err(),
        Error::ConnectionClosed
    );
}

/// Run the rule on both ends: `build(mask)` makes the input as the peer sends it.
#[track_caller]
fn both_fail(build: impl Fn(Option<[u8; 4]>) -> Vec<u8>, err: Error, code: u16) {
    fails(&mut server(), &build(Some(KEY)), err.clone(), code);
    fails(&mut client(), &build(None), err, code);
}

/// Every way to send something must be refused with `ConnectionClosed`.
#[track_caller]
fn assert_send_refused<R: RandomSource>(c: &mut Connection<R>) {
    use Error::ConnectionClosed;
    assert_eq!(
        c.encode_frame(DataKind::Text, 1, true).unwrap_err(),
        ConnectionClosed
    );
    assert_eq!(
        c.encode_frame_rsv(DataKind::Binary, 1, true, RSV1)
            .unwrap_err(),
        ConnectionClosed
    );
    let mut out = BytesMut::new();
    assert_eq!(
        c.encode_message(DataKind::Text, b"x", &mut out),
        Err(ConnectionClosed)
    );
    assert!(out.is_empty());
    let mut buf = [0u8; 64];
    assert_eq!(
        c.encode_message_into(DataKind::Binary, b"x", &mut buf),
        Err(ConnectionClosed)
    );
    assert_eq!(c.ping(b"p", t(1)), Err(ConnectionClosed));
    assert_eq!(c.pong(b"p"), Err(ConnectionClosed));
    assert_eq!(c.close(CloseCode::NORMAL, "", t(1)), Err(ConnectionClosed));
}

// ---------------------------------------------------------------------- §5.2 framing

#[test]
fn reserved_bits_fail_without_an_extension() {
    for rsv in 1..=7u8 {
        for op in [0x1, 0x2, 0x8, 0x9, 0xa] {
            let b0 = 0x80 | rsv << 4 | op;
            let body: &[u8] = if op == 0x8 { &[0x03, 0xe8] } else { b"x" };
            both_fail(|m| frame(b0, body, m), Error::ReservedBitsSet, 1002);
        }
        // On a continuation frame too.
        both_fail(
            |m| [frame(0x01, b"a", m), frame(0x80 | rsv << 4, b"b", m)].concat(),
            Error::ReservedBitsSet,
            1002,
        );
    }
}

#[test]
fn reserved_bits_are_accepted_once_negotiated() {
    for rsv in 1..=7u8 {
        let mut s = server();
        s.set_allowed_rsv(rsv);
        let b0 = 0x80 | rsv << 4 | 0x2;
        assert_eq!(
            feed(&mut s, &cf(b0, b"\xffz"), t(1)),
            Ok(vec![binary(b"\xffz", true, true)])
        );
        let mut c = client();
        c.set_allowed_rsv(rsv);
        assert_eq!(
            feed(&mut c, &sf(b0, b"ok"), t(1)),
            Ok(vec![binary(b"ok", true, true)])
        );
        // A bit outside the negotiated set still fails.
        for other in 1..=7u8 {
            if other & !rsv != 0 {
                let mut s = server();
                s.set_allowed_rsv(rsv);
                fails(
                    &mut s,
                    &cf(0x80 | other << 4 | 0x2, b"x"),
                    Error::ReservedBitsSet,
                    1002,
                );
            }
        }
    }
}

#[test]
fn each_reserved_opcode_fails() {
    for op in [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        let err = Error::UnknownOpcode(op);
        both_fail(|m| frame(0x80 | op, b"", m), err.clone(), 1002);
        both_fail(|m| frame(op, b"abc", m), err.clone(), 1002);
        // Inside a fragmented message.
        both_fail(
            |m| [frame(0x01, b"a", m), frame(0x80 | op, b"", m)].concat(),
            err.clone(),
            1002,
        );
        // Known from the first two bytes: the key and length need not arrive.
        fails(&mut server(), &[0x80 | op, 0xfe], err.clone(), 1002);
    }
}

#[test]
fn fragmented_control_frames_fail() {
    for (op, body) in [(0x8, &[0x03, 0xe8][..]), (0x9, b"p"), (0xa, b"q")] {
        both_fail(|m| frame(op, body, m), Error::FragmentedControlFrame, 1002);
        // Also when it interrupts a fragmented data message.
        both_fail(
            |m| [frame(0x02, b"a", m), frame(op, body, m)].concat(),
            Error::FragmentedControlFrame,
            1002,
        );
    }
}

#[test]
fn control_payload_of_126_fails_and_125_passes() {
    for op in [0x88, 0x89, 0x8a] {
        let mut body = vec![b'r'; 126];
        body[..2].copy_from_slice(&1000u16.to_be_bytes());
        both_fail(|m| frame(op, &body, m), Error::ControlFrameTooLong, 1002);
        // Known from the length byte alone, before the extended length and the key.
        fails(&mut server(), &[op, 0xfe], Error::ControlFrameTooLong, 1002);
        fails(&mut client(), &[op, 0x7f], Error::ControlFrameTooLong, 1002);
    }
    let p = [0xa5u8; 125];
    let mut s = server();
    assert_eq!(
        feed(&mut s, &cf(0x89, &p), t(1)),
        Ok(vec![Ev::Ping(p.to_vec())])
    );
    assert_eq!(transmits(&mut s), vec![(0x8a, p.to_vec())]);
    let mut c = client();
    assert_eq!(
        feed(&mut c, &sf(0x8a, &p), t(1)),
        Ok(vec![Ev::Pong(p.to_vec())])
    );
    let reason = "é".repeat(61) + "x"; // 123 bytes
    assert_eq!(
        feed(
            &mut c,
            &sf(0x88, &close_body(4000, reason.as_bytes())),
            t(1)
        ),
        Ok(vec![Ev::Close(4000, reason)])
    );
}

#[test]
fn continuation_without_a_start_fails() {
    both_fail(
        |m| frame(0x80, b"x", m),
        Error::UnexpectedContinuation,
        1002,
    );
    both_fail(|m| frame(0x00, b"", m), Error::UnexpectedContinuation, 1002);
    // After a finished message.
    both_fail(
        |m| [frame(0x81, b"done", m), frame(0x80, b"x", m)].concat(),
        Error::UnexpectedContinuation,
        1002,
    );
    // After a fragmented message that ended.
    both_fail(
        |m| {
            [
                frame(0x02, b"a", m),
                frame(0x80, b"b", m),
                frame(0x00, b"c", m),
            ]
            .concat()
        },
        Error::UnexpectedContinuation,
        1002,
    );
}

#[test]
fn new_data_frame_inside_a_fragmented_message_fails() {
    for first in [0x01, 0x02] {
        for second in [0x81, 0x82, 0x01, 0x02] {
            both_fail(
                |m| [frame(first, b"a", m), frame(second, b"b", m)].concat(),
                Error::ExpectedContinuation,
                1002,
            );
            // A control frame in between does not end the message.
            both_fail(
                |m| {
                    [
                        frame(first, b"a", m),
                        frame(0x89, b"", m),
                        frame(second, b"b", m),
                    ]
                    .concat()
                },
                Error::ExpectedContinuation,
                1002,
            );
        }
    }
}

#[test]
fn unmasked_client_frames_fail_on_the_server() {
    for (b0, body) in [
        (0x81, &b"x"[..]),
        (0x82, b""),
        (0x89, b"p"),
        (0x8a, b""),
        (0x88, &[0x03, 0xe8]),
    ] {
        fails(&mut server(), &sf(b0, body), Error::UnmaskedFrame, 1002);
    }
    // A continuation too, after a properly masked start.
    let mut s = server();
    assert_eq!(
        feed(&mut s, &cf(0x01, b"a"), t(1)),
        Ok(vec![text(b"a", true, false)])
    );
    fails(&mut s, &sf(0x80, b"b"), Error::UnmaskedFrame, 1002);
}

#[test]
fn masked_server_frames_fail_on_the_client() {
    for (b0, body) in [
        (0x81, &b"x"[..]),
        (0x82, b""),
        (0x89, b"p"),
        (0x8a, b""),
        (0x88, &[0x03, 0xe8]),
    ] {
        fails(&mut client(), &cf(b0, body), Error::MaskedFrame, 1002);
    }
}

#[test]
fn non_minimal_lengths_fail() {
    let cases: [(u8, Vec<u8>); 6] = [
        (126, 0u16.to_be_bytes().to_vec()),
        (126, 125u16.to_be_bytes().to_vec()),
        (127, 0u64.to_be_bytes().to_vec()),
        (127, 125u64.to_be_bytes().to_vec()),
        (127, 126u64.to_be_bytes().to_vec()),
        (127, 0xffffu64.to_be_bytes().to_vec()),
    ];
    for (len7, ext) in &cases {
        // The header alone fails: no payload byte is needed.
        fails(
            &mut server(),
            &header(0x82, *len7, ext, Some(KEY)),
            Error::NonMinimalLength,
            1002,
        );
        fails(
            &mut client(),
            &header(0x82, *len7, ext, None),
            Error::NonMinimalLength,
            1002,
        );
    }
    // The smallest minimal encodings pass.
    let mut c = client();
    let ok16 = [header(0x82, 126, &126u16.to_be_bytes(), None), vec![7; 126]].concat();
    assert_eq!(
        feed(&mut c, &ok16, t(1)),
        Ok(vec![binary(&[7; 126], true, true)])
    );
    let ok64 = [
        header(0x82, 127, &0x1_0000u64.to_be_bytes(), None),
        vec![8; 0x1_0000],
    ]
    .concat();
    assert_eq!(
        feed(&mut c, &ok64, t(1)),
        Ok(vec![binary(&[8; 0x1_0000], true, true)])
    );
}

#[test]
fn msb_of_64_bit_length_fails() {
    for len in [1u64 << 63, u64::MAX, (1 << 63) | 0x1_0000] {
        let ext = len.to_be_bytes();
        fails(
            &mut server(),
            &header(0x82, 127, &ext, Some(KEY)),
            Error::LengthMsbSet,
            1002,
        );
        fails(
            &mut client(),
            &header(0x82, 127, &ext, None),
            Error::LengthMsbSet,
            1002,
        );
    }
}

// ------------------------------------------------------------------- §5.5.1, §7.4 close

#[test]
fn invalid_close_codes_fail() {
    for code in [
        0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        both_fail(
            |m| frame(0x88, &code.to_be_bytes(), m),
            Error::InvalidCloseCode(code),
            1002,
        );
        both_fail(
            |m| frame(0x88, &close_body(code, b"why"), m),
            Error::InvalidCloseCode(code),
            1002,
        );
    }
}

#[test]
fn valid_close_codes_are_accepted_and_echoed() {
    let codes = (1000..=1003)
        .chain(1007..=1014)
        .chain([3000, 3999, 4000, 4999]);
    for code in codes {
        let mut s = server();
        assert_eq!(
            feed(&mut s, &cf(0x88, &close_body(code, b"bye")), t(1)),
            Ok(vec![Ev::Close(code, "bye".into())])
        );
        assert_eq!(s.state(), State::CloseReceived);
        assert_eq!(s.peer_close().map(|c| c.code()), Some(CloseCode(code)));
        assert_eq!(transmits(&mut s), vec![(0x88, code.to_be_bytes().to_vec())]);
        assert_eq!(s.state(), State::Closed);
        assert!(s.wants_close_transport());

        let mut c = client();
        assert_eq!(
            feed(&mut c, &sf(0x88, &code.to_be_bytes()), t(1)),
            Ok(vec![Ev::Close(code, String::new())])
        );
        assert_eq!(transmits(&mut c), vec![(0x88, code.to_be_bytes().to_vec())]);
        assert_eq!(c.state(), State::Closed);
    }
}

#[test]
fn empty_close_is_answered_with_an_empty_close() {
    let mut s = server();
    assert_eq!(
        feed(&mut s, &cf(0x88, b""), t(1)),
        Ok(vec![Ev::Close(1005, String::new())])
    );
    assert_eq!(transmits(&mut s), vec![(0x88, vec![])]);
    let mut s = server();
    assert_eq!(
        messages(&mut s, &cf(0x88, b"")),
        Ok(vec![Message::Close(None)])
    );
}

#[test]
fn one_byte_close_payload_fails() {
    for b in [0x03, 0x00, 0xff] {
        both_fail(|m| frame(0x88, &[b], m), Error::InvalidClosePayload, 1002);
    }
}

#[test]
fn invalid_utf8_in_close_reason_fails_with_1007() {
    for reason in [
        &b"\xff"[..],
        b"ok\xc0\xaf",
        b"\xed\xa0\x80",
        b"trunc\xe2\x82",
        b"\xf4\x90\x80\x80",
    ] {
        both_fail(
            |m| frame(0x88, &close_body(1000, reason), m),
            Error::InvalidUtf8,
            1007,
        );
    }
    let mut s = server();
    assert_eq!(
        messages(&mut s, &cf(0x88, &close_body(1001, "κόσμε 𝄞".as_bytes()))),
        Ok(vec![Message::Close(Some(OwnedCloseFrame {
            code: CloseCode::GOING_AWAY,
            reason: "κόσμε 𝄞".into(),
        }))])
    );
}

// --------------------------------------------------------------------- §8.1 UTF-8, fast

#[test]
fn invalid_utf8_fails_in_the_read_that_delivers_the_bad_byte() {
    // One frame: the header and "ab" arrive, then 0xFF; the frame is far from finished.
    let f = cf(0x81, b"ab\xffcdefgh");
    let mut s = server();
    assert_eq!(
        feed(&mut s, &f[..8], t(1)),
        Ok(vec![text(b"ab", true, false)])
    );
    fails(&mut s, &f[8..9], Error::InvalidUtf8, 1007);

    // Same from a server, unmasked.
    let f = sf(0x81, b"ab\xffcdefgh");
    let mut c = client();
    assert_eq!(
        feed(&mut c, &f[..4], t(1)),
        Ok(vec![text(b"ab", true, false)])
    );
    fails(&mut c, &f[4..5], Error::InvalidUtf8, 1007);
}

#[test]
fn invalid_utf8_fails_in_a_later_frame_before_the_message_ends() {
    // Frame 1 is valid, frame 2 starts with 0xFF, frame 3 never comes.
    let f1 = cf(0x01, "héllo".as_bytes());
    let f2 = cf(0x00, b"\xffrest");
    let mut s = server();
    assert_eq!(
        feed(&mut s, &f1, t(1)),
        Ok(vec![text("héllo".as_bytes(), true, false)])
    );
    assert_eq!(feed(&mut s, &f2[..6], t(1)), Ok(vec![]), "header only");
    fails(&mut s, &f2[6..7], Error::InvalidUtf8, 1007);
}

#[test]
fn code_point_split_across_frames_with_a_bad_continuation_fails_fast() {
    let f1 = cf(0x01, b"a\xe2\x82");
    let f2 = cf(0x80, b"(tail");
    let mut s = server();
    assert_eq!(
        feed(&mut s, &f1, t(1)),
        Ok(vec![text(b"a\xe2\x82", true, false)])
    );
    assert_eq!(feed(&mut s, &f2[..6], t(1)), Ok(vec![]));
    fails(&mut s, &f2[6..7], Error::InvalidUtf8, 1007);

    // The valid completion passes, and read_message assembles it.
    let good = [cf(0x01, b"a\xe2\x82"), cf(0x80, b"\xac")].concat();
    let mut s = server();
    assert_eq!(
        feed(&mut s, &good, t(1)),
        Ok(vec![
            text(b"a\xe2\x82", true, false),
            text(b"\xac", false, true)
        ])
    );
    let mut s = server();
    assert_eq!(messages(&mut s, &good), Ok(vec![Message::text("a€")]));
}

#[test]
fn code_point_split_across_reads_with_a_bad_continuation_fails_fast() {
    // One frame "x" F0 9F 98 "(" ...: read 1 ends after F0 9F, read 2 brings 98, read 3 "(".
    let f = sf(0x81, b"x\xf0\x9f\x98(more");
    let mut c = client();
    assert_eq!(
        feed(&mut c, &f[..5], t(1)),
        Ok(vec![text(b"x\xf0\x9f", true, false)])
    );
    assert_eq!(
        feed(&mut c, &f[5..6], t(1)),
        Ok(vec![text(b"\x98", false, false)])
    );
    fails(&mut c, &f[6..7], Error::InvalidUtf8, 1007);
}

#[test]
fn impossible_sequences_fail_at_their_first_impossible_byte() {
    // (valid prefix, the byte that makes it impossible)
    for (prefix, bad) in [
        (&b""[..], 0xc0u8), // overlong lead
        (b"", 0xc1),
        (b"", 0xf5), // above U+10FFFF
        (b"", 0xff),
        (b"", 0x80),     // lone continuation
        (b"\xed", 0xa0), // surrogate
        (b"\xf4", 0x90), // above U+10FFFF
        (b"\xe0", 0x80), // overlong 3-byte
        (b"\xf0", 0x80), // overlong 4-byte
        (b"\xe2\x82", 0x41),
        (b"\xf0\x9f\x98", 0xc0),
    ] {
        let f = cf(0x81, &[prefix, &[bad], b"zzzz"].concat());
        let mut s = server();
        let head = 6 + prefix.len();
        let ok = feed(&mut s, &f[..head], t(1));
        let expected = if prefix.is_empty() {
            vec![]
        } else {
            vec![text(prefix, true, false)]
        };
        assert_eq!(ok, Ok(expected), "prefix {prefix:x?}");
        fails(&mut s, &f[head..head + 1], Error::InvalidUtf8, 1007);
    }
}

#[test]
fn unfinished_code_point_at_message_end_fails() {
    // In the last byte of a final frame.
    let f = cf(0x81, b"ok\xe2\x82");
    let mut s = server();
    assert_eq!(
        feed(&mut s, &f[..9], t(1)),
        Ok(vec![text(b"ok\xe2", true, false)])
    );
    fails(&mut s, &f[9..], Error::InvalidUtf8, 1007);
    // Or with an empty final frame after it: fails when that header arrives.
    let mut s = server();
    assert_eq!(
        feed(&mut s, &cf(0x01, b"\xe2\x82"), t(1)),
        Ok(vec![text(b"\xe2\x82", true, false)])
    );
    fails(&mut s, &cf(0x80, b""), Error::InvalidUtf8, 1007);
}

#[test]
fn binary_is_not_validated() {
    let mut s = server();
    assert_eq!(
        feed(&mut s, &cf(0x82, b"\xff\xc0\xed\xa0"), t(1)),
        Ok(vec![binary(b"\xff\xc0\xed\xa0", true, true)])
    );
}

// ------------------------------------------------------------------------- limits, 1009

#[test]
fn frame_over_max_frame_size_fails_when_its_header_arrives() {
    let mut cfg = Config::default();
    cfg.max_frame_size = 100;
    for (b0, n) in [(0x82u8, 101usize), (0x81, 1000), (0x01, 0x1_0000)] {
        let f = cf(b0, &vec![b'a'; n]);
        let hlen = f.len() - n;
        fails(
            &mut server_with(cfg.clone()),
            &f[..hlen],
            Error::FrameTooLarge,
            1009,
        );
        let f = sf(b0, &vec![b'a'; n]);
        fails(
            &mut client_with(cfg.clone()),
            &f[..f.len() - n],
            Error::FrameTooLarge,
            1009,
        );
    }
    // An absurd length fails on the default config too, before any payload.
    fails(
        &mut server(),
        &header(0x82, 127, &(1u64 << 62).to_be_bytes(), Some(KEY)),
        Error::FrameTooLarge,
        1009,
    );
    // A continuation over the limit.
    let mut s = server_with(cfg.clone());
    assert_eq!(
        feed(&mut s, &cf(0x02, &[1; 100]), t(1)),
        Ok(vec![binary(&[1; 100], true, false)])
    );
    fails(
        &mut s,
        &header(0x80, 101, &[], Some(KEY)),
        Error::FrameTooLarge,
        1009,
    );
    // Exactly the limit passes.
    let mut s = server_with(cfg);
    assert_eq!(
        feed(&mut s, &cf(0x82, &[2; 100]), t(1)),
        Ok(vec![binary(&[2; 100], true, true)])
    );
}

#[test]
fn message_over_max_message_size_across_fragments_fails() {
    let mut cfg = Config::default();
    cfg.max_message_size = 100;
    let mut s = server_with(cfg.clone());
    assert_eq!(
        feed(&mut s, &cf(0x01, &[b'a'; 60]), t(1)),
        Ok(vec![text(&[b'a'; 60], true, false)])
    );
    // Control frames do not count towards the message.
    assert_eq!(
        feed(&mut s, &cf(0x89, &[0; 100]), t(1)),
        Ok(vec![Ev::Ping(vec![0; 100])])
    );
    assert_eq!(
        feed(&mut s, &cf(0x00, &[b'b'; 40]), t(1)),
        Ok(vec![text(&[b'b'; 40], false, false)])
    );
    // One more byte, announced by a header: fails before its payload arrives.
    fails(
        &mut s,
        &header(0x80, 1, &[], Some(KEY)),
        Error::MessageTooLarge,
        1009,
    );

    // A single frame over the message limit (but within the frame limit).
    fails(
        &mut server_with(cfg.clone()),
        &header(0x82, 101, &[], Some(KEY)),
        Error::MessageTooLarge,
        1009,
    );
    let mut c = client_with(cfg.clone());
    fails(
        &mut c,
        &[sf(0x02, &[0; 99]), header(0x80, 2, &[], None)].concat(),
        Error::MessageTooLarge,
        1009,
    );

    // Exactly the limit, in fragments, through read_message.
    let wire = [
        cf(0x02, &[1; 30]),
        cf(0x00, &[2; 30]),
        cf(0x8a, b"p"),
        cf(0x80, &[3; 40]),
    ]
    .concat();
    let mut s = server_with(cfg);
    let m = messages(&mut s, &wire).unwrap();
    let expected = [vec![1; 30], vec![2; 30], vec![3; 40]].concat();
    assert_eq!(
        m,
        vec![Message::Pong(b"p"[..].into()), Message::binary(expected)]
    );
}

// ---------------------------------------------------------------- control frames, §5.5

#[test]
fn control_frames_inside_a_fragmented_message_are_delivered_in_order() {
    let wire = [
        cf(0x01, b"Hel"),
        cf(0x89, b"p"),
        cf(0x8a, b"q"),
        cf(0x00, b"l"),
        cf(0x00, b""),
        cf(0x89, b"r"),
        cf(0x80, b"o"),
        cf(0x82, b"next"),
    ]
    .concat();
    let mut s = server();
    assert_eq!(
        feed(&mut s, &wire, t(1)),
        Ok(vec![
            text(b"Hel", true, false),
            Ev::Ping(b"p".to_vec()),
            Ev::Pong(b"q".to_vec()),
            text(b"l", false, false),
            Ev::Ping(b"r".to_vec()),
            text(b"o", false, true),
            binary(b"next", true, true),
        ])
    );
    let mut s = server();
    assert_eq!(
        messages(&mut s, &wire),
        Ok(vec![
            Message::Ping(b"p"[..].into()),
            Message::Pong(b"q"[..].into()),
            Message::Ping(b"r"[..].into()),
            Message::text("Hello"),
            Message::binary(&b"next"[..]),
        ])
    );
    // A close inside a message ends everything: the rest is discarded.
    let wire = [
        sf(0x01, b"Hel"),
        sf(0x88, &close_body(1000, b"")),
        sf(0x80, b"lo"),
    ]
    .concat();
    let mut c = client();
    assert_eq!(
        feed(&mut c, &wire, t(1)),
        Ok(vec![
            text(b"Hel", true, false),
            Ev::Close(1000, String::new())
        ])
    );
}

#[test]
fn auto_pong_on_answers_pings() {
    let mut s = server();
    assert_eq!(
        feed(&mut s, &cf(0x89, b"abc"), t(1)),
        Ok(vec![Ev::Ping(b"abc".to_vec())])
    );
    assert_eq!(transmits(&mut s), vec![(0x8a, b"abc".to_vec())]);
    let mut c = client();
    assert_eq!(
        feed(&mut c, &sf(0x89, b""), t(1)),
        Ok(vec![Ev::Ping(vec![])])
    );
    assert_eq!(transmits(&mut c), vec![(0x8a, vec![])]);
}

#[test]
fn auto_pong_off_leaves_pings_to_the_application() {
    let mut cfg = Config::default();
    cfg.auto_pong = false;
    let mut s = server_with(cfg.clone());
    assert_eq!(
        feed(&mut s, &cf(0x89, b"abc"), t(1)),
        Ok(vec![Ev::Ping(b"abc".to_vec())])
    );
    assert!(!s.has_transmit());
    assert_eq!(transmits(&mut s), vec![]);
    s.pong(b"abc").unwrap();
    assert_eq!(transmits(&mut s), vec![(0x8a, b"abc".to_vec())]);
    let mut c = client_with(cfg);
    assert_eq!(
        messages(&mut c, &sf(0x89, b"x")),
        Ok(vec![Message::Ping(b"x"[..].into())])
    );
    assert_eq!(transmits(&mut c), vec![]);
}

#[test]
fn only_the_most_recent_ping_is_answered() {
    let mut s = server();
    let wire = [cf(0x89, b"1"), cf(0x89, b"2"), cf(0x89, b"3")].concat();
    assert_eq!(
        feed(&mut s, &wire, t(1)),
        Ok(vec![
            Ev::Ping(b"1".to_vec()),
            Ev::Ping(b"2".to_vec()),
            Ev::Ping(b"3".to_vec()),
        ])
    );
    assert_eq!(transmits(&mut s), vec![(0x8a, b"3".to_vec())]);
    // Once the pong went out, the next ping is answered again.
    feed(&mut s, &cf(0x89, b"4"), t(2)).unwrap();
    assert_eq!(transmits(&mut s), vec![(0x8a, b"4".to_vec())]);
}

#[test]
fn pongs_in_flight_before_close_go_out_and_pings_after_our_close_are_not_answered() {
    let mut s = server();
    feed(&mut s, &cf(0x89, b"a"), t(1)).unwrap();
    s.close(CloseCode::NORMAL, "", t(1)).unwrap();
    // Queued before close(): delivered before the close frame.
    assert_eq!(
        transmits(&mut s),
        vec![
            (0x8a, b"a".to_vec()),
            (0x88, 1000u16.to_be_bytes().to_vec())
        ]
    );
    // After our close, pings are surfaced but never answered (§5.5.1).
    assert_eq!(
        feed(&mut s, &cf(0x89, b"b"), t(2)),
        Ok(vec![Ev::Ping(b"b".to_vec())])
    );
    assert_eq!(transmits(&mut s), vec![]);
}

// --------------------------------------------------------------- sending, §5.5.1, §5.1

#[test]
fn sending_after_close_is_refused() {
    // After our close().
    let mut s = server();
    s.close(CloseCode::NORMAL, "bye", t(0)).unwrap();
    assert_eq!(s.state(), State::Closing);
    assert_send_refused(&mut s);
    // After the peer's close, before and after our echo.
    let mut c = client();
    feed(&mut c, &sf(0x88, &close_body(1000, b"")), t(0)).unwrap();
    assert_eq!(c.state(), State::CloseReceived);
    assert_send_refused(&mut c);
    transmits(&mut c);
    assert_eq!(c.state(), State::Closed);
    assert_send_refused(&mut c);
    // After a failure.
    let mut s = server();
    let _ = feed(&mut s, &sf(0x81, b"x"), t(0));
    assert_send_refused(&mut s);
    // After the transport died.
    let mut s = server();
    let _ = s.handle_eof();
    assert_send_refused(&mut s);
    // A fragmented message cannot be continued after close().
    let mut c = client();
    c.encode_frame(DataKind::Binary, 1, false).unwrap();
    c.close(CloseCode::GOING_AWAY, "", t(0)).unwrap();
    assert_eq!(
        c.encode_frame(DataKind::Binary, 1, true).unwrap_err(),
        Error::ConnectionClosed
    );
}

#[test]
fn invalid_sends_are_refused_without_side_effects() {
    let mut s = server();
    assert_eq!(s.ping(&[0; 126], t(0)), Err(Error::ControlPayloadTooLong));
    assert_eq!(s.pong(&[0; 126]), Err(Error::ControlPayloadTooLong));
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let r = s.close(CloseCode(code), "x", t(0));
        assert_eq!(r, Err(Error::CloseCodeNotSendable(code)));
    }
    assert_eq!(
        s.close(CloseCode::NORMAL, &"x".repeat(124), t(0)),
        Err(Error::ControlPayloadTooLong)
    );
    assert_eq!(s.state(), State::Open);
    assert!(!s.has_transmit());
    // 1005 means "empty body".
    s.close(CloseCode::NO_STATUS, "", t(0)).unwrap();
    assert_eq!(transmits(&mut s), vec![(0x88, vec![])]);
}

#[test]
fn encode_message_into_refuses_to_interleave_with_an_open_message() {
    // Regression: encode_message_into used to turn its frames into continuations of a
    // message opened with encode_frame, silently merging two messages.
    let mut s = server();
    let f = s.encode_frame(DataKind::Text, 3, false).unwrap();
    assert_eq!(f.header(), &[0x01, 0x03]);
    let mut buf = [0u8; 64];
    for kind in [DataKind::Text, DataKind::Binary] {
        assert_eq!(
            s.encode_message_into(kind, b"other", &mut buf),
            Err(Error::MessageInProgress)
        );
        let mut out = BytesMut::new();
        assert_eq!(
            s.encode_message(kind, b"other", &mut out),
            Err(Error::MessageInProgress)
        );
        assert!(out.is_empty());
    }
    assert!(s.is_sending_message());
    assert_eq!(
        s.encode_frame(DataKind::Text, 0, true).unwrap().header(),
        &[0x80, 0x00]
    );
    assert_eq!(
        s.encode_message_into(DataKind::Binary, b"ok", &mut buf),
        Ok(4)
    );
    assert_eq!(&buf[..4], &[0x82, 0x02, b'o', b'k']);
}

#[test]
fn encode_message_into_too_small_changes_nothing() {
    let mut cfg = Config::default();
    cfg.max_send_frame_size = 4;
    let mut s = server_with(cfg.clone());
    let payload = b"0123456789"; // 3 frames: 4 + 4 + 2 bytes, 2-byte headers
    let mut small = [0u8; 15];
    assert_eq!(
        s.encode_message_into(DataKind::Binary, payload, &mut small),
        Err(Error::BufferTooSmall)
    );
    assert!(!s.is_sending_message());
    let mut buf = [0u8; 16];
    assert_eq!(
        s.encode_message_into(DataKind::Binary, payload, &mut buf),
        Ok(16)
    );
    let frames = parse_wire(&buf);
    assert_eq!(
        frames,
        vec![
            (0x02, b"0123".to_vec(), false),
            (0x00, b"4567".to_vec(), false),
            (0x80, b"89".to_vec(), false),
        ]
    );
    // The client's frames carry keys: 6-byte headers.
    let mut c = client_with(cfg);
    let mut small = [0u8; 27];
    assert_eq!(
        c.encode_message_into(DataKind::Text, payload, &mut small),
        Err(Error::BufferTooSmall)
    );
    let mut buf = [0u8; 28];
    assert_eq!(
        c.encode_message_into(DataKind::Text, payload, &mut buf),
        Ok(28)
    );
    let frames = parse_wire(&buf);
    assert_eq!(
        frames,
        vec![
            (0x01, b"0123".to_vec(), true),
            (0x00, b"4567".to_vec(), true),
            (0x80, b"89".to_vec(), true),
        ]
    );
    // Every frame has its own key (§5.3), drawn from the caller's source.
    assert_ne!(buf[2..6], buf[12..16]);
}

#[test]
fn encode_frame_rsv_marks_only_the_first_frame() {
    let mut s = server();
    let f = s.encode_frame_rsv(DataKind::Text, 1, false, RSV1).unwrap();
    assert_eq!(f.header(), &[0x41, 0x01]);
    let f = s.encode_frame_rsv(DataKind::Text, 1, true, RSV1).unwrap();
    assert_eq!(f.header(), &[0x80, 0x01]);
    let f = s
        .encode_frame_rsv(DataKind::Binary, 0, true, 0b111)
        .unwrap();
    assert_eq!(f.header(), &[0xf2, 0x00]);
}

#[test]
fn client_payload_masked_in_chunks_reads_back() {
    let payload: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let mut c = client();
    let mut f = c
        .encode_frame(DataKind::Binary, payload.len(), true)
        .unwrap();
    assert!(f.is_masked());
    let mut body = payload.clone();
    for chunk in body.chunks_mut(7) {
        f.mask(chunk);
    }
    assert_ne!(body, payload);
    let wire = [f.header(), &body].concat();
    assert_eq!(parse_wire(&wire), vec![(0x82, payload.clone(), true)]);
    let mut s = server();
    assert_eq!(
        feed(&mut s, &wire, t(1)),
        Ok(vec![binary(&payload, true, true)])
    );
}

// ------------------------------------------------------------------- §7 closing handshake

#[test]
fn protocol_error_while_our_close_is_unsent_sends_the_error_code() {
    // Regression: the close queued by close() but not yet transmitted used to go out
    // with the application's code, hiding the protocol error from the peer (§7.1.7).
    let mut s = server();
    s.close(CloseCode::NORMAL, "bye", t(0)).unwrap();
    assert!(s.has_transmit());
    fails(&mut s, &sf(0x82, b"x"), Error::UnmaskedFrame, 1002);

    let mut c = client();
    c.close(CloseCode::GOING_AWAY, "", t(0)).unwrap();
    let f = sf(0x81, b"\xff");
    fails(&mut c, &f, Error::InvalidUtf8, 1007);

    // Once our close is on the wire, no second close is sent.
    let mut s = server();
    s.close(CloseCode::NORMAL, "bye", t(0)).unwrap();
    assert_eq!(transmits(&mut s).len(), 1);
    assert_eq!(
        feed(&mut s, &cf(0x83, b""), t(1)),
        Err(Error::UnknownOpcode(3))
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(transmits(&mut s), vec![]);
    assert!(s.wants_close_transport());
}

#[test]
fn client_initiated_close_server_closes_transport_first() {
    let mut cl = client();
    let mut sv = server();
    cl.close(CloseCode::NORMAL, "done", t(0)).unwrap();
    assert_eq!(cl.state(), State::Closing);
    let close = cl.poll_transmit().unwrap();
    assert_eq!(close.opcode(), OpCode::Close);
    assert!(!cl.wants_close_transport());
    assert_eq!(cl.poll_timeout(), Some(t(5_000)));

    assert_eq!(
        feed(&mut sv, &close, t(10)),
        Ok(vec![Ev::Close(1000, "done".into())])
    );
    assert_eq!(sv.state(), State::CloseReceived);
    assert!(!sv.wants_close_transport(), "the echo must go out first");
    let echo = sv.poll_transmit().unwrap();
    assert_eq!(parse_wire(&echo), vec![(0x88, vec![0x03, 0xe8], false)]);
    assert_eq!(sv.state(), State::Closed);
    assert!(sv.wants_close_transport(), "the server closes TCP first");

    assert_eq!(
        feed(&mut cl, &echo, t(20)),
        Ok(vec![Ev::Close(1000, String::new())])
    );
    assert_eq!(cl.state(), State::Closed);
    assert!(cl.poll_transmit().is_none(), "no second close");
    assert!(
        !cl.wants_close_transport(),
        "the client waits for the server's FIN"
    );
    assert_eq!(cl.poll_timeout(), Some(t(5_020)));
    assert_eq!(cl.handle_eof(), Ok(()));
    assert!(cl.wants_close_transport());
    assert_eq!(cl.poll_timeout(), None);
    assert_eq!(cl.error(), None);
    assert_eq!(sv.handle_eof(), Ok(()));
}

#[test]
fn client_gives_up_waiting_for_fin_after_close_timeout() {
    let mut cfg = Config::default();
    cfg.close_timeout = Duration::from_millis(300);
    let mut cl = client_with(cfg);
    cl.close(CloseCode::NORMAL, "", t(0)).unwrap();
    cl.poll_transmit().unwrap();
    feed(&mut cl, &sf(0x88, &close_body(1000, b"")), t(100)).unwrap();
    assert_eq!(cl.state(), State::Closed);
    assert_eq!(cl.poll_timeout(), Some(t(400)));
    assert_eq!(cl.handle_timeout(t(399)), Ok(()));
    assert!(!cl.wants_close_transport());
    assert_eq!(cl.handle_timeout(t(400)), Ok(()));
    assert!(cl.wants_close_transport());
    assert_eq!(cl.error(), None, "a completed handshake is not an error");
}

#[test]
fn server_initiated_close() {
    let mut cl = client();
    let mut sv = server();
    sv.close(CloseCode::GOING_AWAY, "restart", t(0)).unwrap();
    assert_eq!(sv.state(), State::Closing);
    let close = sv.poll_transmit().unwrap();
    assert!(!sv.wants_close_transport(), "wait for the client's close");

    assert_eq!(
        feed(&mut cl, &close, t(5)),
        Ok(vec![Ev::Close(1001, "restart".into())])
    );
    assert_eq!(cl.state(), State::CloseReceived);
    let echo = cl.poll_transmit().unwrap();
    assert_eq!(parse_wire(&echo), vec![(0x88, vec![0x03, 0xe9], true)]);
    assert_eq!(cl.state(), State::Closed);
    assert!(
        !cl.wants_close_transport(),
        "the client waits for the server's FIN"
    );

    assert_eq!(
        feed(&mut sv, &echo, t(6)),
        Ok(vec![Ev::Close(1001, String::new())])
    );
    assert_eq!(sv.state(), State::Closed);
    assert!(sv.wants_close_transport());
    assert_eq!(cl.handle_eof(), Ok(()));
    assert!(cl.wants_close_transport());
}

#[test]
fn simultaneous_close_needs_no_echo() {
    let mut cl = client();
    let mut sv = server();
    cl.close(CloseCode::NORMAL, "a", t(0)).unwrap();
    sv.close(CloseCode::GOING_AWAY, "b", t(0)).unwrap();
    let from_client = cl.poll_transmit().unwrap();
    let from_server = sv.poll_transmit().unwrap();
    assert_eq!(
        feed(&mut sv, &from_client, t(1)),
        Ok(vec![Ev::Close(1000, "a".into())])
    );
    assert_eq!(
        feed(&mut cl, &from_server, t(1)),
        Ok(vec![Ev::Close(1001, "b".into())])
    );
    assert_eq!((cl.state(), sv.state()), (State::Closed, State::Closed));
    assert!(cl.poll_transmit().is_none());
    assert!(sv.poll_transmit().is_none());
    assert!(sv.wants_close_transport());
    assert!(!cl.wants_close_transport());
}

#[test]
fn close_without_answer_times_out() {
    let mut sv = server();
    sv.close(CloseCode::NORMAL, "", t(100)).unwrap();
    sv.poll_transmit().unwrap();
    assert_eq!(sv.poll_timeout(), Some(t(5_100)));
    // Data still arrives after our close, and does not extend the deadline.
    assert_eq!(
        feed(&mut sv, &cf(0x81, b"late"), t(200)),
        Ok(vec![text(b"late", true, true)])
    );
    assert_eq!(sv.poll_timeout(), Some(t(5_100)));
    assert_eq!(sv.handle_timeout(t(5_099)), Ok(()));
    assert_eq!(sv.state(), State::Closing);
    assert_eq!(sv.handle_timeout(t(5_100)), Err(Error::CloseTimeout));
    assert_eq!(Error::CloseTimeout.close_code(), Some(CloseCode::ABNORMAL));
    assert_eq!(sv.state(), State::Closed);
    assert!(sv.wants_close_transport());
    assert!(sv.poll_transmit().is_none());
    assert_eq!(sv.poll_timeout(), None);
    assert_eq!(
        feed(&mut sv, &cf(0x88, b""), t(6_000)),
        Err(Error::CloseTimeout)
    );
}

// ------------------------------------------------------------------ keepalive, RTT, EOF

#[test]
fn keepalive_ping_after_interval_then_peer_unresponsive_after_pong_deadline() {
    let mut cfg = Config::default();
    cfg.keepalive_interval = Some(Duration::from_secs(1));
    cfg.pong_timeout = Duration::from_millis(500);
    let mut s = server_with(cfg);
    assert_eq!(s.poll_timeout(), Some(t(1_000)));
    assert_eq!(s.handle_timeout(t(999)), Ok(()));
    assert!(!s.has_transmit());
    assert_eq!(s.handle_timeout(t(1_000)), Ok(()));
    let ping = transmits(&mut s);
    assert_eq!(ping.len(), 1);
    assert_eq!(ping[0].0, 0x89);
    assert_eq!(s.poll_timeout(), Some(t(1_500)));

    // The peer answers: the keepalive is satisfied and the RTT measured.
    let pong = cf(0x8a, &ping[0].1);
    assert_eq!(
        feed(&mut s, &pong, t(1_200)),
        Ok(vec![Ev::Pong(ping[0].1.clone())])
    );
    assert_eq!(s.rtt(), Some(Duration::from_millis(200)));
    assert_eq!(s.poll_timeout(), Some(t(2_200)));
    // Any input counts as a sign of life.
    feed(&mut s, &cf(0x82, b"x"), t(2_100)).unwrap();
    assert_eq!(s.poll_timeout(), Some(t(3_100)));
    assert_eq!(s.handle_timeout(t(3_100)), Ok(()));
    assert_eq!(transmits(&mut s).len(), 1);
    assert_eq!(s.handle_timeout(t(3_599)), Ok(()));
    assert_eq!(s.state(), State::Open);

    // Silence past the deadline: the peer is declared dead.
    assert_eq!(s.handle_timeout(t(3_600)), Err(Error::PeerUnresponsive));
    assert_eq!(
        Error::PeerUnresponsive.close_code(),
        Some(CloseCode::ABNORMAL)
    );
    assert_eq!(s.state(), State::Closed);
    let close = transmits(&mut s);
    assert_eq!(close.len(), 1);
    assert_eq!(close[0].0, 0x88);
    assert_eq!(
        close[0].1[..2],
        1001u16.to_be_bytes(),
        "1006 cannot be sent"
    );
    assert!(s.wants_close_transport());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(
        feed(&mut s, &cf(0x82, b"x"), t(4_000)),
        Err(Error::PeerUnresponsive)
    );
}

#[test]
fn keepalive_disabled_never_times_out() {
    let mut cfg = Config::default();
    cfg.keepalive_interval = None;
    let mut c = client_with(cfg);
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.handle_timeout(t(u64::MAX)), Ok(()));
    assert!(!c.has_transmit());
    assert_eq!(c.state(), State::Open);
}

#[test]
fn rtt_is_measured_from_the_matching_pong_only() {
    let mut c = client();
    c.ping(b"rtt", t(100)).unwrap();
    assert_eq!(transmits(&mut c), vec![(0x89, b"rtt".to_vec())]);
    feed(&mut c, &sf(0x8a, b"other"), t(120)).unwrap();
    assert_eq!(c.rtt(), None, "an unsolicited pong is not an answer");
    feed(&mut c, &sf(0x8a, b"rtt"), t(137)).unwrap();
    assert_eq!(c.rtt(), Some(Duration::from_millis(37)));
    feed(&mut c, &sf(0x8a, b"rtt"), t(900)).unwrap();
    assert_eq!(c.rtt(), Some(Duration::from_millis(37)), "answered once");
    // A newer ping replaces the one in flight.
    c.ping(b"a", t(1_000)).unwrap();
    c.ping(b"b", t(1_010)).unwrap();
    assert_eq!(transmits(&mut c), vec![(0x89, b"b".to_vec())]);
    feed(&mut c, &sf(0x8a, b"a"), t(1_020)).unwrap();
    assert_eq!(c.rtt(), Some(Duration::from_millis(37)));
    feed(&mut c, &sf(0x8a, b"b"), t(1_030)).unwrap();
    assert_eq!(c.rtt(), Some(Duration::from_millis(20)));
}

#[test]
fn eof_mid_connection_is_a_reset() {
    let mut s = server();
    feed(&mut s, &cf(0x01, b"half"), t(1)).unwrap();
    s.ping(b"p", t(1)).unwrap();
    assert_eq!(s.handle_eof(), Err(Error::ConnectionReset));
    assert_eq!(
        Error::ConnectionReset.close_code(),
        Some(CloseCode::ABNORMAL)
    );
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.error(), Some(&Error::ConnectionReset));
    assert!(s.poll_transmit().is_none(), "nothing can reach the peer");
    assert!(s.wants_close_transport());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(
        feed(&mut s, &cf(0x80, b"x"), t(2)),
        Err(Error::ConnectionReset)
    );

    // While waiting for the peer's close, too.
    let mut c = client();
    c.close(CloseCode::NORMAL, "", t(0)).unwrap();
    c.poll_transmit().unwrap();
    assert_eq!(c.handle_eof(), Err(Error::ConnectionReset));
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn data_after_the_peers_close_is_discarded() {
    let wire = [
        cf(0x88, &close_body(1000, b"")),
        cf(0x81, b"late"),
        vec![0x83, 0x00, 0xff, 0xff], // would be a protocol error
    ]
    .concat();
    let mut s = server();
    assert_eq!(
        feed(&mut s, &wire, t(1)),
        Ok(vec![Ev::Close(1000, String::new())])
    );
    assert_eq!(feed(&mut s, &[0x81, 0x05, b'x'], t(2)), Ok(vec![]));
    assert_eq!(s.error(), None);
    let mut s = server();
    assert_eq!(
        messages(&mut s, &wire),
        Ok(vec![Message::Close(Some(OwnedCloseFrame {
            code: CloseCode::NORMAL,
            reason: "".into(),
        }))])
    );
}

// ------------------------------------------------------------------- §5.7 examples

#[test]
fn rfc_5_7_examples_decode_exactly() {
    let hello = b"Hello".to_vec();
    // A single-frame unmasked text message.
    let mut c = client();
    assert_eq!(
        feed(&mut c, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], t(1)),
        Ok(vec![text(&hello, true, true)])
    );
    // A single-frame masked text message.
    let masked = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut s = server();
    assert_eq!(
        feed(&mut s, &masked, t(1)),
        Ok(vec![text(&hello, true, true)])
    );
    // A fragmented unmasked text message.
    let mut c = client();
    assert_eq!(
        feed(&mut c, &[0x01, 0x03, 0x48, 0x65, 0x6c], t(1)),
        Ok(vec![text(b"Hel", true, false)])
    );
    assert_eq!(
        feed(&mut c, &[0x80, 0x02, 0x6c, 0x6f], t(1)),
        Ok(vec![text(b"lo", false, true)])
    );
    let mut c = client();
    assert_eq!(
        messages(
            &mut c,
            &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
        ),
        Ok(vec![Message::text("Hello")])
    );
    // Unmasked ping, masked pong.
    let mut c = client();
    assert_eq!(
        feed(&mut c, &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], t(1)),
        Ok(vec![Ev::Ping(hello.clone())])
    );
    assert_eq!(transmits(&mut c), vec![(0x8a, hello.clone())]);
    let mut s = server();
    let pong = [
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    assert_eq!(feed(&mut s, &pong, t(1)), Ok(vec![Ev::Pong(hello.clone())]));
    // 256 bytes of binary in one unmasked frame; 64 KiB likewise.
    let p256: Vec<u8> = (0..=255).collect();
    let mut c = client();
    let wire = [&[0x82, 0x7e, 0x01, 0x00][..], &p256].concat();
    assert_eq!(
        feed(&mut c, &wire, t(1)),
        Ok(vec![binary(&p256, true, true)])
    );
    let p64k: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let wire = [&[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0][..], &p64k].concat();
    assert_eq!(
        messages(&mut c, &wire),
        Ok(vec![Message::binary(p64k.clone())])
    );
}

#[test]
fn rfc_5_7_examples_encode_exactly() {
    let mut s = server();
    let mut out = BytesMut::new();
    s.encode_message(DataKind::Text, b"Hello", &mut out)
        .unwrap();
    assert_eq!(&out[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    let mut c = Connection::client(
        Config::default(),
        |k: &mut [u8]| k.copy_from_slice(&KEY),
        t(0),
    );
    let mut out = BytesMut::new();
    c.encode_message(DataKind::Text, b"Hello", &mut out)
        .unwrap();
    assert_eq!(
        &out[..],
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
    c.pong(b"Hello").unwrap();
    assert_eq!(
        c.poll_transmit().unwrap().as_bytes(),
        &[
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
        ]
    );
    // Fragmented "Hel" + "lo" with encode_frame.
    let f = s.encode_frame(DataKind::Text, 3, false).unwrap();
    assert_eq!(f.header(), &[0x01, 0x03]);
    let f = s.encode_frame(DataKind::Text, 2, true).unwrap();
    assert_eq!(f.header(), &[0x80, 0x02]);
    // Length classes.
    let f = s.encode_frame(DataKind::Binary, 256, true).unwrap();
    assert_eq!(f.header(), &[0x82, 0x7e, 0x01, 0x00]);
    let f = s.encode_frame(DataKind::Binary, 65536, true).unwrap();
    assert_eq!(f.header(), &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    s.ping(b"Hello", t(0)).unwrap();
    assert_eq!(
        s.poll_transmit().unwrap().as_bytes(),
        &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
}

// ------------------------------------------------------------------- error → close code

#[test]
fn every_error_maps_to_the_rfc_close_code() {
    use Error::*;
    let cases = [
        (ReservedBitsSet, Some(1002)),
        (UnknownOpcode(3), Some(1002)),
        (FragmentedControlFrame, Some(1002)),
        (ControlFrameTooLong, Some(1002)),
        (UnexpectedContinuation, Some(1002)),
        (ExpectedContinuation, Some(1002)),
        (UnmaskedFrame, Some(1002)),
        (MaskedFrame, Some(1002)),
        (NonMinimalLength, Some(1002)),
        (LengthMsbSet, Some(1002)),
        (InvalidCloseCode(1005), Some(1002)),
        (InvalidClosePayload, Some(1002)),
        (InvalidUtf8, Some(1007)),
        (FrameTooLarge, Some(1009)),
        (MessageTooLarge, Some(1009)),
        (PeerUnresponsive, Some(1006)),
        (CloseTimeout, Some(1006)),
        (ConnectionReset, Some(1006)),
        // Caller errors fail nothing.
        (ConnectionClosed, None),
        (MessageInProgress, None),
        (NoMessageInProgress, None),
        (ControlPayloadTooLong, None),
        (CloseCodeNotSendable(1006), None),
        (BufferTooSmall, None),
        (PayloadLengthMismatch, None),
    ];
    for (e, code) in cases {
        assert_eq!(e.close_code(), code.map(CloseCode), "{e:?}");
        // Codes raised by the peer's input can be sent; 1006 is local only.
        if let Some(c) = e.close_code() {
            assert_eq!(c.is_sendable(), c != CloseCode::ABNORMAL, "{e:?}");
        }
        assert!(!e.to_string().is_empty());
    }
}
