//! Property tests of the protocol core: split invariance of the connection, header
//! round trips, masking, incremental UTF-8, and robustness against garbage.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use sansock::conn::{Event, Read};
use sansock::frame::{FrameHeader, HeaderDecoder, MAX_HEADER_LEN, OpCode};
use sansock::mask::{Masker, apply_mask};
use sansock::utf8::Utf8Validator;
use sansock::{
    CloseCode, Config, Connection, DataKind, Error, Instant, Message, RandomSource, Role, State,
};

const NOW: Instant = Instant::from_millis(1);

/// Masking keys from a seeded xorshift.
struct Keys(u64);

impl RandomSource for Keys {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

// ------------------------------------------------------------------------ shared tools

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

/// Concatenate consecutive data chunks of one message (chunk boundaries carry no
/// meaning); control events stay as they are.
fn normalize(events: Vec<Ev>) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for e in events {
        if let Ev::Data {
            text,
            payload,
            start: false,
            end,
        } = &e
            && let Some(Ev::Data {
                text: t0,
                payload: p0,
                end: e0 @ false,
                ..
            }) = out.last_mut()
        {
            assert_eq!(t0, text, "kind changed inside a message");
            p0.extend_from_slice(payload);
            *e0 = *end;
            continue;
        }
        out.push(e);
    }
    out
}

/// Cut positions from indices, sorted.
fn positions(len: usize, idx: &[Index]) -> Vec<usize> {
    let mut v: Vec<usize> = idx.iter().map(|i| i.index(len + 1)).collect();
    v.sort_unstable();
    v
}

/// The pieces of `wire` between the cut positions.
fn split<'a>(wire: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        out.push(&wire[at..c]);
        at = c;
    }
    out.push(&wire[at..]);
    out
}

/// The ways a stream is split in these tests: whole, one byte at a time, at random
/// positions, and in chunks of a random size.
fn splits(len: usize, idx: &[Index], chunk: usize) -> Vec<Vec<usize>> {
    vec![
        vec![],
        (1..len).collect(),
        positions(len, idx),
        (1..len).filter(|p| p % chunk == 0).collect(),
    ]
}

fn valid_utf8_prefix(b: &[u8]) -> bool {
    match std::str::from_utf8(b) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// Checks made on every event while reading.
struct Invariants {
    max_message: u64,
    max_frame: u64,
    in_message: Option<(bool, Vec<u8>)>,
    closed: bool,
}

impl Invariants {
    fn new(cfg: &Config) -> Self {
        Invariants {
            max_message: cfg.max_message_size,
            max_frame: cfg.max_frame_size,
            in_message: None,
            closed: false,
        }
    }

    fn check(&mut self, e: &Ev) {
        assert!(!self.closed, "event after the peer's close: {e:?}");
        match e {
            Ev::Data {
                text,
                payload,
                start,
                end,
            } => {
                assert_eq!(*start, self.in_message.is_none(), "message_start flag");
                let (kind, acc) = self.in_message.get_or_insert_with(|| (*text, Vec::new()));
                assert_eq!(kind, text);
                assert!(payload.len() as u64 <= self.max_frame);
                acc.extend_from_slice(payload);
                assert!(
                    acc.len() as u64 <= self.max_message,
                    "message over the limit"
                );
                if *text {
                    assert!(valid_utf8_prefix(acc), "delivered text is not UTF-8");
                }
                if *end {
                    if *text {
                        assert!(std::str::from_utf8(acc).is_ok());
                    }
                    self.in_message = None;
                }
            }
            Ev::Ping(p) | Ev::Pong(p) => assert!(p.len() <= 125),
            Ev::Close(code, reason) => {
                assert!(*code == 1005 || CloseCode(*code).is_sendable());
                assert!(reason.len() <= 123);
                self.closed = true;
            }
        }
    }
}

/// Drain what `c` owes; every frame is a well-formed control frame, and a close frame
/// carries a sendable code (or nothing). Returns the close code sent, if any.
fn drain_transmits<R: RandomSource>(c: &mut Connection<R>) -> Option<Option<u16>> {
    let mut close = None;
    while let Some(tx) = c.poll_transmit() {
        let (h, n) = FrameHeader::decode(&tx).unwrap().unwrap();
        assert!(h.fin && h.rsv == 0 && h.opcode.is_control());
        assert_eq!(h.mask.is_some(), c.role() == Role::Client);
        assert_eq!(tx.len(), n + h.payload_len as usize);
        let mut body = tx[n..].to_vec();
        if let Some(k) = h.mask {
            apply_mask(&mut body, k, 0);
        }
        if h.opcode == OpCode::Close {
            assert!(close.is_none(), "two close frames");
            let code = (body.len() >= 2).then(|| u16::from_be_bytes([body[0], body[1]]));
            if let Some(code) = code {
                assert!(
                    CloseCode(code).is_sendable(),
                    "unsendable close code {code}"
                );
                assert!(std::str::from_utf8(&body[2..]).is_ok());
            } else {
                assert!(body.is_empty());
            }
            close = Some(code);
        }
    }
    close
}

/// Read `wire`, split at `cuts`, with `read`. Returns the events and the error that
/// stopped the connection, if one did, after checking what the failed connection owes.
fn drive_read<R: RandomSource>(
    c: &mut Connection<R>,
    wire: &[u8],
    cuts: &[usize],
) -> (Vec<Ev>, Option<Error>) {
    let mut inv = Invariants::new(c.config());
    let mut events = Vec::new();
    let mut buf = Vec::new();
    for piece in split(wire, cuts) {
        buf.extend_from_slice(piece);
        let mut at = 0;
        loop {
            match c.read(&mut buf[at..], NOW) {
                Ok(Read { consumed, event }) => {
                    let event = event.map(own);
                    if consumed == 0 && event.is_none() {
                        break;
                    }
                    at += consumed;
                    if let Some(e) = event {
                        inv.check(&e);
                        events.push(e);
                    }
                }
                Err(e) => {
                    check_failure(c, &e);
                    return (events, Some(e));
                }
            }
        }
        assert_eq!(at, buf.len(), "read left bytes unconsumed");
        buf.clear();
        drain_transmits(c);
    }
    (events, None)
}

/// Read `wire`, split at `cuts`, with `read_message`.
fn drive_messages<R: RandomSource>(
    c: &mut Connection<R>,
    wire: &[u8],
    cuts: &[usize],
) -> (Vec<Message>, Option<Error>) {
    let max = c.config().max_message_size;
    let mut out = Vec::new();
    let mut input = BytesMut::new();
    for piece in split(wire, cuts) {
        input.extend_from_slice(piece);
        loop {
            match c.read_message(&mut input, NOW) {
                Ok(Some(m)) => {
                    match &m {
                        Message::Text(t) => {
                            assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                            assert!(t.len() as u64 <= max, "assembled past the limit");
                        }
                        Message::Binary(b) => assert!(b.len() as u64 <= max),
                        Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
                        Message::Close(_) => {}
                    }
                    out.push(m);
                }
                Ok(None) => break,
                Err(e) => {
                    check_failure(c, &e);
                    return (out, Some(e));
                }
            }
        }
        // Bytes stay behind only as the payload of a large single-frame message that
        // is received in place: while that frame is incomplete, and within the limit.
        assert!(
            input.is_empty() || (c.frame_bytes_pending() > 0 && input.len() as u64 <= max),
            "read_message left {} bytes unconsumed",
            input.len()
        );
        drain_transmits(c);
    }
    (out, None)
}

/// A connection failed by its input: the error has a close code, the connection is
/// closed and the one frame it still owes is the close with that code.
fn check_failure<R: RandomSource>(c: &mut Connection<R>, e: &Error) {
    let code = e.close_code().expect("a read error carries a close code");
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(e));
    assert_eq!(
        drain_transmits(c),
        Some(Some(code.0)),
        "close frame for {e:?}"
    );
    assert!(c.wants_close_transport());
}

// -------------------------------------------------- (a) split invariance of a stream

#[derive(Debug, Clone)]
enum Ctl {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Msg {
    text: bool,
    payload: Vec<u8>,
    /// Frame boundaries inside the payload (sorted; repeats make empty frames).
    cuts: Vec<usize>,
    /// Control frames sent after frame `i` (never after the last one).
    ctls: Vec<(usize, Ctl)>,
    /// Send with `encode_message` (fragmented at `max_send_frame_size`) instead.
    whole: bool,
}

#[derive(Debug, Clone)]
enum Item {
    Msg(Msg),
    Ctl(Ctl),
}

#[derive(Debug, Clone)]
struct Stream {
    items: Vec<Item>,
    /// `Some(None)`: an empty close; `Some(Some(..))`: code and reason.
    close: Option<Option<(u16, String)>>,
    /// Bytes after the close, which the reader must discard.
    trailer: Vec<u8>,
    max_send_frame: usize,
}

fn len_class() -> impl Strategy<Value = usize> {
    prop_oneof![
        10 => 0..=125usize,
        4 => 126..=1_500usize,
        1 => 65_530..=65_540usize,
        1 => 65_536..=69_000usize,
    ]
}

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => proptest::char::range('a', 'z'),
        2 => select(vec![
            'é', '€', '𝄞', 'κ', '\u{7f}', '\u{80}', '\u{7ff}', '\u{800}', '\u{ffff}',
            '\u{10000}', '\u{10ffff}',
        ]),
    ]
}

/// A payload of about `len` bytes made by repeating a short random seed.
fn payload() -> impl Strategy<Value = (bool, Vec<u8>)> {
    prop_oneof![
        (vec(any_char(), 1..12), len_class()).prop_map(|(seed, len)| {
            let mut s = String::new();
            for c in seed.iter().cycle() {
                if s.len() + c.len_utf8() > len {
                    break;
                }
                s.push(*c);
            }
            (true, s.into_bytes())
        }),
        (vec(any::<u8>(), 1..32), len_class())
            .prop_map(|(seed, len)| { (false, seed.iter().cycle().take(len).copied().collect()) }),
    ]
}

fn ctl() -> impl Strategy<Value = Ctl> {
    let body = prop_oneof![vec(any::<u8>(), 0..8), vec(any::<u8>(), 120..=125)];
    prop_oneof![body.clone().prop_map(Ctl::Ping), body.prop_map(Ctl::Pong)]
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        payload(),
        vec(any::<Index>(), 0..4),
        vec((any::<Index>(), ctl()), 0..3),
        prop::bool::weighted(0.25),
    )
        .prop_map(|((text, payload), cut_idx, ctl_idx, whole)| {
            let cuts = if whole {
                vec![]
            } else {
                positions(payload.len(), &cut_idx)
            };
            let gaps = cuts.len(); // frames - 1
            let mut ctls: Vec<(usize, Ctl)> = if gaps == 0 {
                vec![]
            } else {
                ctl_idx
                    .into_iter()
                    .map(|(i, c)| (i.index(gaps), c))
                    .collect()
            };
            ctls.sort_by_key(|(i, _)| *i);
            Msg {
                text,
                payload,
                cuts,
                ctls,
                whole,
            }
        })
}

fn stream() -> impl Strategy<Value = Stream> {
    let code = prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999];
    let close = prop_oneof![
        2 => Just(None),
        1 => Just(Some(None)),
        2 => (code, "\\PC{0,20}").prop_map(|(c, r)| Some(Some((c, r)))),
    ];
    (
        vec(
            prop_oneof![3 => msg().prop_map(Item::Msg), 1 => ctl().prop_map(Item::Ctl)],
            0..7,
        ),
        close,
        vec(any::<u8>(), 0..16),
        prop_oneof![Just(usize::MAX), 1..=2_000usize],
    )
        .prop_map(|(items, close, trailer, max_send_frame)| Stream {
            trailer: if close.is_some() { trailer } else { vec![] },
            items,
            close,
            max_send_frame,
        })
}

fn send_ctl<R: RandomSource>(tx: &mut Connection<R>, c: &Ctl, wire: &mut Vec<u8>) {
    match c {
        Ctl::Ping(p) => tx.ping(p, NOW).unwrap(),
        Ctl::Pong(p) => tx.pong(p).unwrap(),
    }
    wire.extend_from_slice(&tx.poll_transmit().unwrap());
    assert!(tx.poll_transmit().is_none());
}

fn kind(text: bool) -> DataKind {
    if text {
        DataKind::Text
    } else {
        DataKind::Binary
    }
}

/// Encode the stream with the sending connection's API.
fn encode<R: RandomSource>(tx: &mut Connection<R>, s: &Stream) -> Vec<u8> {
    let mut wire = Vec::new();
    for item in &s.items {
        match item {
            Item::Ctl(c) => send_ctl(tx, c, &mut wire),
            Item::Msg(m) if m.whole => {
                let mut out = BytesMut::new();
                tx.encode_message(kind(m.text), &m.payload, &mut out)
                    .unwrap();
                wire.extend_from_slice(&out);
            }
            Item::Msg(m) => {
                let bounds: Vec<usize> = [&[0][..], &m.cuts, &[m.payload.len()]].concat();
                let frames = bounds.len() - 1;
                for i in 0..frames {
                    let chunk = &m.payload[bounds[i]..bounds[i + 1]];
                    let last = i + 1 == frames;
                    let mut f = tx.encode_frame(kind(m.text), chunk.len(), last).unwrap();
                    wire.extend_from_slice(f.header());
                    let mut body = chunk.to_vec();
                    // Mask in uneven pieces: the masker keeps its place.
                    let mut rest = &mut body[..];
                    let mut step = 1;
                    while !rest.is_empty() {
                        let (a, b) = rest.split_at_mut(step.min(rest.len()));
                        f.mask(a);
                        rest = b;
                        step = step * 3 + 1;
                    }
                    wire.extend_from_slice(&body);
                    for (_, c) in m.ctls.iter().filter(|(g, _)| *g == i) {
                        send_ctl(tx, c, &mut wire);
                    }
                }
            }
        }
    }
    if let Some(close) = &s.close {
        let (code, reason) = match close {
            Some((c, r)) => (CloseCode(*c), r.as_str()),
            None => (CloseCode::NO_STATUS, ""),
        };
        tx.close(code, reason, NOW).unwrap();
        wire.extend_from_slice(&tx.poll_transmit().unwrap());
        wire.extend_from_slice(&s.trailer);
    }
    wire
}

fn ctl_event(c: &Ctl) -> Ev {
    match c {
        Ctl::Ping(p) => Ev::Ping(p.clone()),
        Ctl::Pong(p) => Ev::Pong(p.clone()),
    }
}

fn ctl_message(c: &Ctl) -> Message {
    match c {
        Ctl::Ping(p) => Message::Ping(p.clone().into()),
        Ctl::Pong(p) => Message::Pong(p.clone().into()),
    }
}

/// The normalized events the stream must produce, from the model alone.
fn expected_events(s: &Stream) -> Vec<Ev> {
    let mut out = Vec::new();
    for item in &s.items {
        let m = match item {
            Item::Ctl(c) => {
                out.push(ctl_event(c));
                continue;
            }
            Item::Msg(m) => m,
        };
        let data = |payload: Vec<u8>, start, end| Ev::Data {
            text: m.text,
            payload,
            start,
            end,
        };
        let bounds: Vec<usize> = [&[0][..], &m.cuts, &[m.payload.len()]].concat();
        let frames = bounds.len() - 1;
        let mut started = false;
        let mut group: Option<Vec<u8>> = None;
        for i in 0..frames {
            let chunk = &m.payload[bounds[i]..bounds[i + 1]];
            let last = i + 1 == frames;
            if !chunk.is_empty() || last {
                group.get_or_insert_with(Vec::new).extend_from_slice(chunk);
            }
            if last {
                out.push(data(group.take().unwrap(), !started, true));
            }
            for (_, c) in m.ctls.iter().filter(|(g, _)| *g == i) {
                if let Some(g) = group.take() {
                    out.push(data(g, !started, false));
                    started = true;
                }
                out.push(ctl_event(c));
            }
        }
    }
    if let Some(close) = &s.close {
        out.push(match close {
            Some((c, r)) => Ev::Close(*c, r.clone()),
            None => Ev::Close(1005, String::new()),
        });
    }
    out
}

/// The messages `read_message` must return, from the model alone.
fn expected_messages(s: &Stream) -> Vec<Message> {
    let mut out = Vec::new();
    for item in &s.items {
        match item {
            Item::Ctl(c) => out.push(ctl_message(c)),
            Item::Msg(m) => {
                out.extend(m.ctls.iter().map(|(_, c)| ctl_message(c)));
                out.push(if m.text {
                    Message::text(String::from_utf8(m.payload.clone()).unwrap())
                } else {
                    Message::binary(m.payload.clone())
                });
            }
        }
    }
    if let Some(close) = &s.close {
        out.push(Message::Close(close.as_ref().map(|(c, r)| {
            sansock::OwnedCloseFrame {
                code: CloseCode(*c),
                reason: r.as_str().into(),
            }
        })));
    }
    out
}

fn check_stream<T: RandomSource, R: RandomSource>(
    tx: &mut Connection<T>,
    new_rx: impl Fn() -> Connection<R>,
    s: &Stream,
    idx: &[Index],
    chunk: usize,
) -> Result<(), TestCaseError> {
    let wire = encode(tx, s);
    let events = expected_events(s);
    let msgs = expected_messages(s);
    // The readers send what they owe as they go, so a received close is echoed.
    let end_state = if s.close.is_some() {
        State::Closed
    } else {
        State::Open
    };
    for (i, cuts) in splits(wire.len(), idx, chunk).iter().enumerate() {
        let mut rx = new_rx();
        let (got, err) = drive_read(&mut rx, &wire, cuts);
        prop_assert_eq!(err, None);
        prop_assert_eq!(normalize(got), events.clone(), "split #{}", i);
        prop_assert_eq!(rx.state(), end_state);

        let mut rx = new_rx();
        let (got, err) = drive_messages(&mut rx, &wire, cuts);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, msgs.clone(), "split #{}", i);
        prop_assert_eq!(rx.state(), end_state);
    }
    Ok(())
}

fn sender_config(s: &Stream) -> Config {
    let mut c = Config::default();
    c.max_send_frame_size = s.max_send_frame;
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// (a) Client → server (masked): any split gives the model's messages and events.
    #[test]
    fn any_split_same_messages_client_to_server(
        s in stream(),
        seed in 1..u64::MAX,
        idx in vec(any::<Index>(), 0..24),
        chunk in 2..300usize,
    ) {
        let mut tx = Connection::client(sender_config(&s), Keys(seed), NOW);
        check_stream(&mut tx, || Connection::server(Config::default(), NOW), &s, &idx, chunk)?;
    }

    /// (a) Server → client (unmasked): likewise.
    #[test]
    fn any_split_same_messages_server_to_client(
        s in stream(),
        seed in 1..u64::MAX,
        idx in vec(any::<Index>(), 0..24),
        chunk in 2..300usize,
    ) {
        let mut tx = Connection::server(sender_config(&s), NOW);
        check_stream(
            &mut tx,
            || Connection::client(Config::default(), Keys(seed), NOW),
            &s,
            &idx,
            chunk,
        )?;
    }
}

// ------------------------------------------------------------ (b) frame header round trip

fn opcode() -> impl Strategy<Value = OpCode> {
    select(vec![
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ])
}

fn any_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=125u64,
        126..=0xffffu64,
        0x1_0000..=(1u64 << 63) - 1,
        select(vec![
            0,
            1,
            125,
            126,
            127,
            0xfffe,
            0xffff,
            0x1_0000,
            (1 << 63) - 1
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// (b) Every opcode, FIN, RSV, mask and length class encodes to the RFC layout and
    /// decodes back — or fails with the rule it breaks — whole or split anywhere.
    #[test]
    fn frame_header_round_trip(
        op in opcode(),
        fin in any::<bool>(),
        rsv in 0..8u8,
        mask in proptest::option::of(any::<[u8; 4]>()),
        len in any_len(),
        tail in vec(any::<u8>(), 0..6),
        idx in vec(any::<Index>(), 0..6),
    ) {
        let h = FrameHeader { fin, rsv, opcode: op, mask, payload_len: len };
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut out);
        prop_assert_eq!(n, h.encoded_len());

        // The layout, written out independently.
        let mut expect = vec![u8::from(fin) << 7 | rsv << 4 | op as u8];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match len {
            0..=125 => expect.push(m | len as u8),
            126..=0xffff => {
                expect.push(m | 126);
                expect.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                expect.push(m | 127);
                expect.extend_from_slice(&len.to_be_bytes());
            }
        }
        if let Some(k) = mask {
            expect.extend_from_slice(&k);
        }
        prop_assert_eq!(&out[..n], &expect[..]);

        let expected = if op.is_control() && !fin {
            Err(Error::FragmentedControlFrame)
        } else if op.is_control() && len > 125 {
            Err(Error::ControlFrameTooLong)
        } else {
            Ok(Some((h, n)))
        };
        let wire = [&out[..n], &tail[..]].concat();
        prop_assert_eq!(FrameHeader::decode(&out[..n]), expected.clone());
        prop_assert_eq!(FrameHeader::decode(&wire), expected.clone());
        if expected.is_ok() {
            for k in 0..n {
                prop_assert_eq!(FrameHeader::decode(&out[..k]), Ok(None));
            }
        }

        // The incremental decoder, split anywhere, never consumes past the header.
        for cuts in [positions(wire.len(), &idx), (1..wire.len()).collect(), vec![]] {
            let mut dec = HeaderDecoder::new();
            let mut consumed = 0;
            let mut got = Ok(None);
            for piece in split(&wire, &cuts) {
                match dec.decode(piece) {
                    Err(e) => {
                        got = Err(e);
                        break;
                    }
                    Ok((c, Some(hdr))) => {
                        consumed += c;
                        got = Ok(Some((hdr, consumed)));
                        break;
                    }
                    Ok((c, None)) => {
                        prop_assert_eq!(c, piece.len());
                        prop_assert_eq!(dec.is_mid_header(), consumed + c > 0);
                        consumed += c;
                    }
                }
            }
            prop_assert_eq!(got, expected.clone(), "cuts {:?}", &cuts);
        }
    }

    /// (b) Any bytes: a header that decodes re-encodes to exactly the same bytes (the
    /// accepted encoding is canonical), and the incremental decoder agrees.
    #[test]
    fn decoded_headers_are_canonical(bytes in vec(any::<u8>(), 0..16)) {
        let whole = FrameHeader::decode(&bytes);
        if let Ok(Some((h, n))) = &whole {
            let mut out = [0u8; MAX_HEADER_LEN];
            let m = h.encode(&mut out);
            prop_assert_eq!(&out[..m], &bytes[..*n]);
        }
        let mut dec = HeaderDecoder::new();
        let mut consumed = 0;
        let mut bytewise = Ok(None);
        for b in &bytes {
            match dec.decode(std::slice::from_ref(b)) {
                Err(e) => {
                    bytewise = Err(e);
                    break;
                }
                Ok((c, h)) => {
                    consumed += c;
                    if let Some(h) = h {
                        bytewise = Ok(Some((h, consumed)));
                        break;
                    }
                }
            }
        }
        prop_assert_eq!(bytewise, whole);
    }
}

// ----------------------------------------------------------------------- (c) masking

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (c) Masking is an involution; chunked masking with running offsets equals whole
    /// masking for any split, any start alignment in memory and any key phase.
    #[test]
    fn masking(
        data in vec(any::<u8>(), 0..400),
        key in any::<[u8; 4]>(),
        align in 0..16usize,
        phase in 0..8usize,
        idx in vec(any::<Index>(), 0..10),
    ) {
        let naive: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(phase + i) % 4])
            .collect();
        let mut buf = vec![0xaa; align];
        buf.extend_from_slice(&data);

        let mut whole = buf.clone();
        let next = apply_mask(&mut whole[align..], key, phase);
        prop_assert_eq!(&whole[align..], &naive[..]);
        prop_assert_eq!(&whole[..align], &buf[..align]);
        prop_assert_eq!(next, (phase + data.len()) % 4);

        let mut chunked = buf.clone();
        let mut off = phase;
        let cuts = positions(data.len(), &idx);
        let mut at = align;
        for piece in split(&data, &cuts) {
            off = apply_mask(&mut chunked[at..at + piece.len()], key, off);
            at += piece.len();
        }
        prop_assert_eq!(&chunked, &whole);

        // Involution.
        apply_mask(&mut chunked[align..], key, phase);
        prop_assert_eq!(&chunked[align..], &data[..]);

        // The Masker, from the start of a payload, fed the same pieces.
        let from0: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
        let mut masker = Masker::new(key);
        prop_assert_eq!(masker.key(), key);
        let mut out = Vec::new();
        for piece in split(&data, &cuts) {
            let mut dst = vec![0; piece.len()];
            masker.apply_copy(piece, &mut dst);
            out.extend_from_slice(&dst);
        }
        prop_assert_eq!(&out, &from0);
    }
}

// -------------------------------------------------------------------------- (d) UTF-8

fn utf8ish() -> impl Strategy<Value = Vec<u8>> {
    let tricky = vec![
        0x80u8, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0,
        0x90, 0x8f,
    ];
    vec(
        prop_oneof![
            4 => vec(any_char(), 0..6).prop_map(|cs| cs.into_iter().collect::<String>().into_bytes()),
            2 => vec(any::<u8>(), 0..6),
            3 => vec(select(tricky), 1..4),
            1 => any_char().prop_map(|c| {
                let mut b = [0u8; 4];
                let s = c.encode_utf8(&mut b).len();
                b[..s.saturating_sub(1).max(1)].to_vec() // a truncated code point
            }),
        ],
        0..8,
    )
    .prop_map(|v| v.concat())
}

/// Feed `data` in the pieces between `cuts`; the validator must fail exactly at the
/// piece that makes the input impossible, and agree with `from_utf8` at the end.
fn check_validator(data: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut v = Utf8Validator::new();
    let mut end = 0;
    for piece in split(data, cuts) {
        end += piece.len();
        let r = v.feed(piece);
        let possible = valid_utf8_prefix(&data[..end]);
        prop_assert_eq!(
            r.is_ok(),
            possible,
            "at {} of {:x?}, cuts {:?}",
            end,
            data,
            cuts
        );
        if r.is_err() {
            prop_assert!(std::str::from_utf8(data).is_err());
            return Ok(());
        }
        prop_assert_eq!(v.is_complete(), std::str::from_utf8(&data[..end]).is_ok());
    }
    prop_assert_eq!(v.finish().is_ok(), std::str::from_utf8(data).is_ok());
    // finish() resets: the validator starts a new string.
    prop_assert!(v.is_complete());
    prop_assert!(v.feed("ok €".as_bytes()).is_ok() && v.finish().is_ok());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// (d) The validator agrees with `core::str::from_utf8` on every split and fails
    /// fast: right after the first byte that no valid UTF-8 string could continue.
    #[test]
    fn utf8_validator(data in utf8ish(), idx in vec(any::<Index>(), 0..8)) {
        // One byte at a time, and every split in two.
        check_validator(&data, &(1..data.len()).collect::<Vec<_>>())?;
        for cut in 0..=data.len() {
            check_validator(&data, &[cut])?;
        }
        check_validator(&data, &positions(data.len(), &idx))?;
    }
}

// ------------------------------------------------------------------------ (e) garbage

/// A piece of hostile input: raw noise, or a frame with any first byte, a body and a
/// mask that is wrong for the receiver now and then.
#[derive(Debug, Clone)]
enum Piece {
    Raw(Vec<u8>),
    Frame {
        b0: u8,
        body: Vec<u8>,
        wrong_mask: bool,
        key: [u8; 4],
    },
    /// A well-formed data message in `frames.len()` frames (its text may be invalid).
    Message {
        text: bool,
        frames: Vec<Vec<u8>>,
    },
    /// A header with any length encoding (non-minimal, huge, MSB set), then some bytes.
    Header {
        b0: u8,
        len7: u8,
        ext: [u8; 8],
        wrong_mask: bool,
        key: [u8; 4],
        after: Vec<u8>,
    },
}

impl Piece {
    fn render(&self, to: Role, out: &mut Vec<u8>) {
        let masked = |wrong: bool| (to == Role::Server) != wrong;
        match self {
            Piece::Raw(b) => out.extend_from_slice(b),
            Piece::Frame {
                b0,
                body,
                wrong_mask,
                key,
            } => {
                let m = masked(*wrong_mask);
                let mb = if m { 0x80 } else { 0 };
                out.push(*b0);
                match body.len() {
                    n @ 0..=125 => out.push(mb | n as u8),
                    n => {
                        out.push(mb | 126);
                        out.extend_from_slice(&(n as u16).to_be_bytes());
                    }
                }
                let mut body = body.clone();
                if m {
                    out.extend_from_slice(key);
                    apply_mask(&mut body, *key, 0);
                }
                out.extend_from_slice(&body);
            }
            Piece::Message { text, frames } => {
                for (i, body) in frames.iter().enumerate() {
                    let fin = if i + 1 == frames.len() { 0x80 } else { 0 };
                    let op = match (i, text) {
                        (0, true) => 0x1,
                        (0, false) => 0x2,
                        _ => 0x0,
                    };
                    let f = Piece::Frame {
                        b0: fin | op,
                        body: body.clone(),
                        wrong_mask: false,
                        key: [i as u8, 0x5a, 0xc3, 0x0f],
                    };
                    f.render(to, out);
                }
            }
            Piece::Header {
                b0,
                len7,
                ext,
                wrong_mask,
                key,
                after,
            } => {
                let m = masked(*wrong_mask);
                out.push(*b0);
                out.push(if m { 0x80 } else { 0 } | len7);
                match len7 {
                    126 => out.extend_from_slice(&ext[..2]),
                    127 => out.extend_from_slice(ext),
                    _ => {}
                }
                if m {
                    out.extend_from_slice(key);
                }
                out.extend_from_slice(after);
            }
        }
    }
}

fn piece() -> impl Strategy<Value = Piece> {
    let b0 = prop_oneof![
        6 => select(vec![0x81u8, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8a]),
        1 => any::<u8>(),
    ];
    let body = prop_oneof![
        3 => vec(any::<u8>(), 0..12),
        2 => vec(any_char(), 0..12).prop_map(|cs| cs.into_iter().collect::<String>().into_bytes()),
        2 => (prop_oneof![Just(1000u16), Just(1005), any::<u16>()], vec(any_char(), 0..4))
            .prop_map(|(c, r)| [&c.to_be_bytes()[..], r.into_iter().collect::<String>().as_bytes()].concat()),
        1 => vec(any::<u8>(), 30..=64),
        1 => vec(any::<u8>(), 60..300),
    ];
    let ext = prop_oneof![
        any::<[u8; 8]>(),
        (0..0x2_0000u64).prop_map(u64::to_be_bytes),
    ];
    let fragment = prop_oneof![
        3 => vec(any_char(), 0..16).prop_map(|cs| cs.into_iter().collect::<String>().into_bytes()),
        1 => vec(any::<u8>(), 0..4),
        1 => vec(any::<u8>(), 30..=64),
    ];
    prop_oneof![
        1 => vec(any::<u8>(), 0..16).prop_map(Piece::Raw),
        4 => (any::<bool>(), vec(fragment, 1..5))
            .prop_map(|(text, frames)| Piece::Message { text, frames }),
        6 => (b0.clone(), body, prop::bool::weighted(0.05), any::<[u8; 4]>()).prop_map(
            |(b0, body, wrong_mask, key)| Piece::Frame { b0, body, wrong_mask, key }
        ),
        1 => (b0, prop_oneof![0..=125u8, Just(126), Just(127)], ext, prop::bool::weighted(0.05),
              any::<[u8; 4]>(), vec(any::<u8>(), 0..40)).prop_map(
            |(b0, len7, ext, wrong_mask, key, after)| Piece::Header { b0, len7, ext, wrong_mask, key, after }
        ),
    ]
}

/// The events a split-independent reader must agree on: after an error, the last
/// message may have been delivered up to a different point, so its unfinished tail is
/// dropped.
fn comparable(events: Vec<Ev>, err: &Option<Error>) -> Vec<Ev> {
    let mut n = normalize(events);
    if err.is_some() && matches!(n.last(), Some(Ev::Data { end: false, .. })) {
        n.pop();
    }
    n
}

fn check_garbage<R: RandomSource>(
    new: impl Fn() -> Connection<R>,
    wire: &[u8],
    idx: &[Index],
) -> Result<(), TestCaseError> {
    let mut first: Option<(Vec<Ev>, Option<Error>)> = None;
    let mut first_msgs: Option<(Vec<Message>, Option<Error>)> = None;
    for cuts in splits(wire.len(), idx, 7) {
        let (events, err) = drive_read(&mut new(), wire, &cuts);
        let events = comparable(events, &err);
        match &first {
            None => first = Some((events, err)),
            Some((e0, r0)) => {
                prop_assert_eq!(&err, r0, "cuts {:?}", &cuts);
                prop_assert_eq!(&events, e0, "cuts {:?}", &cuts);
            }
        }
        let (msgs, err) = drive_messages(&mut new(), wire, &cuts);
        prop_assert_eq!(&err, &first.as_ref().unwrap().1, "read_message vs read");
        match &first_msgs {
            None => first_msgs = Some((msgs, err)),
            Some((m0, _)) => prop_assert_eq!(&msgs, m0, "cuts {:?}", &cuts),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (e) Garbage never panics; every error carries a close code, the connection then
    /// owes exactly that (sendable) close; no message ever exceeds the limits; and the
    /// outcome does not depend on how the input was split.
    #[test]
    fn garbage_is_handled(
        pieces in vec(piece(), 1..10),
        small in any::<bool>(),
        allowed_rsv in prop_oneof![3 => Just(0u8), 1 => 0..8u8],
        idx in vec(any::<Index>(), 0..12),
    ) {
        let mut cfg = Config::default();
        if small {
            cfg.max_frame_size = 64;
            cfg.max_message_size = 100;
        }
        for role in [Role::Server, Role::Client] {
            let mut wire = Vec::new();
            for p in &pieces {
                p.render(role, &mut wire);
            }
            let cfg = cfg.clone();
            let new = move || {
                let mut c = Connection::new(role, cfg.clone(), Keys(7), NOW);
                c.set_allowed_rsv(allowed_rsv);
                c
            };
            check_garbage(new, &wire, &idx)?;
        }
    }
}

// --------------------------------------------------------------- (f) timers and liveness

/// Something that happens to a connection.
#[derive(Debug, Clone)]
enum Op {
    /// The peer sends a frame: `b0` and body, correctly masked for the receiver.
    Peer(u8, Vec<u8>),
    /// Time passes; the timer is handled at the new time.
    Wait(u64),
    /// The adapter writes what the connection owes.
    Flush,
    /// The application starts the closing handshake.
    Close,
    /// The application pings.
    Ping,
    /// The transport reports end of stream.
    Eof,
}

fn op() -> impl Strategy<Value = Op> {
    let peer = prop_oneof![
        Just((0x81u8, b"hi".to_vec())),
        Just((0x02, b"part".to_vec())),
        Just((0x80, b"end".to_vec())),
        Just((0x89, b"ping".to_vec())),
        Just((0x8a, b"pong".to_vec())),
        Just((0x88, 1000u16.to_be_bytes().to_vec())),
        Just((0x88, vec![])),
        Just((0x83, vec![])),
    ];
    prop_oneof![
        4 => peer.prop_map(|(b0, body)| Op::Peer(b0, body)),
        3 => (0..3_000u64).prop_map(Op::Wait),
        3 => Just(Op::Flush),
        1 => Just(Op::Close),
        1 => Just(Op::Ping),
        1 => Just(Op::Eof),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (f) From any reachable state, following `poll_timeout` never spins (each deadline
    /// handled moves the next one forward or clears it) and ends with the transport
    /// closed whenever keepalive is on or the connection is closing.
    #[test]
    fn timers_make_progress(
        ops in vec(op(), 0..12),
        server in any::<bool>(),
        keepalive in any::<bool>(),
    ) {
        let mut cfg = Config::default();
        cfg.keepalive_interval = keepalive.then(|| std::time::Duration::from_millis(1_000));
        cfg.pong_timeout = std::time::Duration::from_millis(500);
        cfg.close_timeout = std::time::Duration::from_millis(700);
        let role = if server { Role::Server } else { Role::Client };
        let mut c = Connection::new(role, cfg, Keys(3), Instant::ZERO);
        let mut now = 0u64;
        for op in &ops {
            match op {
                Op::Peer(b0, body) => {
                    let mut wire = Vec::new();
                    Piece::Frame { b0: *b0, body: body.clone(), wrong_mask: false, key: [1, 2, 3, 4] }
                        .render(role, &mut wire);
                    let mut at = 0;
                    while let Ok((n, ev)) = c.read_raw(&mut wire[at..], Instant::from_millis(now)) {
                        if n == 0 && ev.is_none() {
                            break;
                        }
                        at += n;
                    }
                }
                Op::Wait(ms) => {
                    now += ms;
                    let _ = c.handle_timeout(Instant::from_millis(now));
                }
                Op::Flush => {
                    drain_transmits(&mut c);
                }
                Op::Close => {
                    let _ = c.close(CloseCode::NORMAL, "", Instant::from_millis(now));
                }
                Op::Ping => {
                    let _ = c.ping(b"app", Instant::from_millis(now));
                }
                Op::Eof => {
                    let _ = c.handle_eof();
                }
            }
        }
        let open = c.state() == State::Open;
        let mut steps = 0;
        loop {
            drain_transmits(&mut c);
            let Some(deadline) = c.poll_timeout() else { break };
            steps += 1;
            prop_assert!(steps <= 4, "timer spins: {:?} at {}", deadline, now);
            now = now.max(deadline.as_millis());
            let _ = c.handle_timeout(Instant::from_millis(now));
            if let Some(next) = c.poll_timeout() {
                prop_assert!(next.as_millis() > now, "deadline did not move");
            }
        }
        if keepalive || !open {
            prop_assert!(c.wants_close_transport(), "stuck in {:?}", c.state());
            prop_assert_eq!(c.state(), State::Closed);
        }
    }
}
