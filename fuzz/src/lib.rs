//! Shared tools of the fuzz targets: an input reader, a heap tracker, and a driver that
//! feeds a whole connection and checks its invariants.
//!
//! Every target checks properties, not just "no panic":
//! - the same stream split differently gives the same events, error and answers;
//! - the borrowed read path and the handshake parsers never touch the heap, and the
//!   owned path never holds much more than the configured message limit;
//! - every close code that is reported or sent is one the RFC allows.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::BytesMut;
use sansock::conn::RawEvent;
use sansock::deflate::{DeflateConfig, DeflateParams};
use sansock::frame::{FrameHeader, OpCode};
use sansock::mask::apply_mask;
use sansock::{
    CloseCode, CloseFrame, Config, Connection, DataKind, Error, Instant, Message, Role, State,
};

// ------------------------------------------------------------------------ heap tracker

/// The system allocator, counting live bytes, their peak and the number of allocations.
pub struct Tracking;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Old and new block may both be live during the copy: count the new one first.
            let now = LIVE.fetch_add(new_size, Relaxed) + new_size;
            PEAK.fetch_max(now, Relaxed);
            LIVE.fetch_sub(layout.size(), Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// A window of heap activity: allocations made and the peak growth of live bytes.
pub struct HeapWindow {
    live0: usize,
    allocs0: usize,
}

impl HeapWindow {
    /// Start measuring now.
    pub fn start() -> Self {
        let live0 = LIVE.load(Relaxed);
        PEAK.store(live0, Relaxed);
        HeapWindow {
            live0,
            allocs0: ALLOCS.load(Relaxed),
        }
    }
    /// Allocations since the start.
    pub fn allocs(&self) -> usize {
        ALLOCS.load(Relaxed) - self.allocs0
    }
    /// The most live bytes above the starting point at any moment since the start.
    pub fn peak_growth(&self) -> usize {
        PEAK.load(Relaxed).saturating_sub(self.live0)
    }
}

// ------------------------------------------------------------------------ input reader

/// Takes structured values off the front of the fuzz input; runs dry as zeros.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    /// One byte.
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    /// Two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.0)
    }
    /// A list of up to 15 chunk sizes (1..=N) describing how to split a stream.
    pub fn splits(&mut self) -> Vec<usize> {
        let n = usize::from(self.u8() % 16);
        (0..n)
            .map(|_| {
                let b = self.u8();
                // Mostly tiny pieces (split headers, code points), sometimes big ones.
                if b < 200 {
                    usize::from(b % 8) + 1
                } else {
                    usize::from(b) * 7
                }
            })
            .collect()
    }
}

/// Cut `data` into chunks of the given sizes, repeated cyclically; `[]` gives one chunk.
pub fn chunks<'d>(data: &'d [u8], sizes: &[usize]) -> Vec<&'d [u8]> {
    if sizes.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let n = sizes[i % sizes.len()].min(data.len() - at);
        out.push(&data[at..at + n]);
        at += n;
        i += 1;
    }
    out
}

/// Whether `bytes` can still become valid UTF-8 (the whole is a prefix of some string).
pub fn utf8_possible(bytes: &[u8]) -> bool {
    match core::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

// ------------------------------------------------------------------------ connections

/// Limits the connection targets choose from: tiny ones make every limit reachable.
const SIZES: [u64; 8] = [0, 1, 2, 125, 126, 1000, 4096, 65_536];

/// How a connection target sets up its connection.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Our role.
    pub role: Role,
    /// The protocol configuration.
    pub config: Config,
    /// permessage-deflate, when on.
    pub deflate: Option<(DeflateParams, DeflateConfig)>,
    /// Extra reserved bits allowed (without deflate).
    pub rsv: u8,
}

impl Setup {
    /// Read a setup for `role` off the front of the input.
    pub fn from_input(role: Role, input: &mut Input<'_>) -> Self {
        let flags = input.u8();
        let mut config = Config::default();
        config.max_frame_size = SIZES[usize::from(input.u8() % 8)];
        config.max_message_size = SIZES[usize::from(input.u8() % 8)];
        if flags & 0x80 != 0 {
            // Large limits now and then, so long messages get through.
            config.max_frame_size = 1 << 20;
            config.max_message_size = 1 << 20;
        }
        config.auto_pong = flags & 1 == 0;
        let deflate = (flags & 2 != 0).then(|| {
            let b = input.u8();
            let params = DeflateParams {
                server_no_context_takeover: b & 1 != 0,
                client_no_context_takeover: b & 2 != 0,
                server_max_window_bits: 8 + (b >> 2) % 8,
                client_max_window_bits: 8 + (b >> 5) % 8,
            };
            let mut cfg = DeflateConfig::default();
            cfg.free_between_messages = flags & 4 != 0;
            (params, cfg)
        });
        let rsv = if flags & 8 != 0 { (flags >> 4) & 7 } else { 0 };
        Setup {
            role,
            config,
            deflate,
            rsv,
        }
    }

    /// A fresh connection as set up.
    pub fn connection(&self) -> Connection<fn(&mut [u8])> {
        fn keys(b: &mut [u8]) {
            for (i, x) in b.iter_mut().enumerate() {
                *x = 0x5a ^ (i as u8).wrapping_mul(37);
            }
        }
        let mut c = Connection::new(self.role, self.config.clone(), keys as fn(&mut [u8]), T0);
        if self.rsv != 0 {
            c.set_allowed_rsv(self.rsv);
        }
        if let Some((params, cfg)) = &self.deflate {
            c.enable_deflate(*params, cfg);
        }
        c
    }
}

const T0: Instant = Instant::from_millis(1);

/// What the peer did, as whole messages: data chunk boundaries carry no meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    /// A complete text or binary message (inflated if it was compressed).
    Msg(DataKind, Vec<u8>),
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// The peer's close.
    Close(u16, String),
}

/// Everything a run produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Complete messages and control events, in order.
    pub events: Vec<Ev>,
    /// The error that failed the connection, if any.
    pub error: Option<Error>,
    /// The control frames the core gave to send, in order.
    pub transmits: Vec<Vec<u8>>,
    /// The error came from inflating a compressed message (borrowed path only).
    pub inflate_failed: bool,
}

impl Outcome {
    /// The outcome with the one known split-dependent detail folded away, for comparing
    /// runs fed in different pieces.
    ///
    /// A compressed message that breaks several rules at once (corrupt, too large once
    /// inflated, not UTF-8) fails with whichever the inflater notices first, and that
    /// depends on how much input it had: miniz decodes ahead of the output it hands out,
    /// so with more input it may reach the corrupt bits before the output crosses the
    /// limit. Each answer is right for such a message; telling them apart for every
    /// split would mean inflating past the limit to the end of the message.
    pub fn comparable(mut self) -> Self {
        if self.inflate_failed
            && matches!(
                self.error,
                Some(Error::InvalidUtf8 | Error::MessageTooLarge | Error::InvalidCompressedData)
            )
        {
            self.error = Some(Error::InvalidCompressedData);
            // The close frame carries 1007 or 1009 accordingly.
            self.transmits.pop();
        }
        self.inflate_failed = false;
        self
    }
}

/// Check a control frame the core wants sent, and return it.
fn check_transmit(role: Role, t: &[u8]) -> Vec<u8> {
    let (h, n) = FrameHeader::decode(t)
        .expect("a transmit decodes")
        .expect("a transmit is a whole frame");
    assert!(h.fin && h.rsv == 0 && h.opcode.is_control(), "{h:?}");
    assert_eq!(
        h.mask.is_some(),
        role == Role::Client,
        "masking follows the role"
    );
    assert_eq!(
        n as u64 + h.payload_len,
        t.len() as u64,
        "one frame exactly"
    );
    let mut body = t[n..].to_vec();
    if let Some(k) = h.mask {
        apply_mask(&mut body, k, 0);
    }
    if h.opcode == OpCode::Close {
        let f = CloseFrame::parse(&body).expect("the close we send parses");
        assert!(
            f.code.is_sendable() || f.code == CloseCode::NO_STATUS,
            "sent close code {:?}",
            f.code
        );
    }
    t.to_vec()
}

fn check_received_close(code: CloseCode) {
    assert!(
        code.is_sendable() || code == CloseCode::NO_STATUS,
        "reported close code {code:?}"
    );
}

fn check_error(conn: &Connection<fn(&mut [u8])>, e: &Error, transmits: &[Vec<u8>]) {
    assert_eq!(
        conn.state(),
        State::Closed,
        "an error closes the connection"
    );
    assert_eq!(conn.error(), Some(e));
    // Reads fail only before the peer's close and we never closed first, so the one
    // close frame we sent is the failure's, with the RFC's code for the error.
    let closes: Vec<CloseCode> = transmits
        .iter()
        .filter_map(|t| {
            let (h, n) = FrameHeader::decode(t).ok()??;
            (h.opcode == OpCode::Close).then(|| {
                let mut body = t[n..].to_vec();
                if let Some(k) = h.mask {
                    apply_mask(&mut body, k, 0);
                }
                CloseFrame::parse(&body).expect("checked").code
            })
        })
        .collect();
    match e.close_code().filter(|c| c.is_sendable()) {
        Some(code) => assert_eq!(closes, [code], "close sent for {e:?}"),
        None => assert!(closes.is_empty(), "close {closes:?} sent for {e:?}"),
    }
}

/// State of the message being received, for the invariants of each chunk.
#[derive(Default)]
struct Assembling {
    kind: Option<DataKind>,
    wire: Vec<u8>,
    data: BytesMut,
    compressed: bool,
}

/// Feed `chunks` through the borrowed path ([`Connection::read_raw`]).
///
/// Checks as it goes: `consumed` never exceeds the input and "read more" means the core
/// took everything; no heap allocation without deflate; uncompressed text is a valid
/// UTF-8 prefix after every chunk (fail fast); messages stay within `max_message_size`;
/// control payloads ≤ 125; reported and sent close codes are valid.
pub fn run_events(setup: &Setup, chunks: &[&[u8]]) -> Outcome {
    let mut conn = setup.connection();
    let mut out = Outcome::default();
    let mut msg = Assembling::default();
    let limit = setup.config.max_message_size as usize;
    let mut buf: Vec<u8> = Vec::with_capacity(chunks.iter().map(|c| c.len()).sum());
    let mut at = 0;
    'feed: for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let heap = HeapWindow::start();
            let r = conn.read_raw(&mut buf[at..], T0);
            if setup.deflate.is_none() {
                assert_eq!(heap.allocs(), 0, "the borrowed read path allocated");
            }
            let (consumed, ev) = match r {
                Ok(x) => x,
                Err(e) => {
                    out.error = Some(e);
                    break 'feed;
                }
            };
            let input_len = buf.len() - at;
            assert!(consumed <= input_len);
            let range_base = at;
            at += consumed;
            let Some(ev) = ev else {
                if consumed == 0 {
                    assert_eq!(input_len, 0, "\"read more\" with input left over");
                    break;
                }
                continue;
            };
            match ev {
                RawEvent::Data {
                    kind,
                    range,
                    message_start,
                    message_end,
                    compressed,
                } => {
                    assert!(range.end <= consumed);
                    assert_eq!(message_start, msg.kind.is_none(), "message_start");
                    if let Some(k) = msg.kind {
                        assert_eq!(k, kind, "kind changed inside a message");
                        assert_eq!(compressed, msg.compressed);
                    }
                    msg.kind = Some(kind);
                    msg.compressed = compressed;
                    let payload = &buf[range_base + range.start..range_base + range.end];
                    if compressed {
                        // RSV1 means "compressed" once allowed, with or without a codec.
                        assert!(setup.deflate.is_some() || setup.rsv & 4 != 0);
                        let mut data = core::mem::take(&mut msg.data);
                        let r = conn.decompress(kind, payload, message_end, &mut data);
                        msg.data = data;
                        assert!(msg.data.len() <= limit, "inflated past max_message_size");
                        if let Err(e) = r {
                            out.inflate_failed = true;
                            out.error = Some(e);
                            break 'feed;
                        }
                    } else {
                        msg.wire.extend_from_slice(payload);
                        assert!(msg.wire.len() <= limit, "message past max_message_size");
                        if kind == DataKind::Text {
                            assert!(utf8_possible(&msg.wire), "invalid UTF-8 delivered");
                        }
                    }
                    if message_end {
                        let data = if compressed {
                            msg.data.to_vec()
                        } else {
                            core::mem::take(&mut msg.wire)
                        };
                        if kind == DataKind::Text {
                            assert!(
                                core::str::from_utf8(&data).is_ok(),
                                "text message not UTF-8"
                            );
                        }
                        out.events.push(Ev::Msg(kind, data));
                        msg = Assembling::default();
                    }
                }
                RawEvent::Ping(p) => {
                    assert!(p.as_bytes().len() <= 125);
                    out.events.push(Ev::Ping(p.as_bytes().to_vec()));
                }
                RawEvent::Pong(p) => {
                    assert!(p.as_bytes().len() <= 125);
                    out.events.push(Ev::Pong(p.as_bytes().to_vec()));
                }
                RawEvent::Close(c) => {
                    check_received_close(c.code());
                    assert!(matches!(conn.state(), State::CloseReceived | State::Closed));
                    out.events
                        .push(Ev::Close(c.code().0, c.reason().to_owned()));
                }
            }
            while let Some(t) = conn.poll_transmit() {
                out.transmits.push(check_transmit(setup.role, &t));
            }
        }
        while let Some(t) = conn.poll_transmit() {
            out.transmits.push(check_transmit(setup.role, &t));
        }
        if conn.peer_close().is_some() {
            // Everything after the peer's close is swallowed, not parsed.
            let mut junk = [0xffu8; 3];
            assert_eq!(conn.read_raw(&mut junk, T0).ok().map(|r| r.0), Some(3));
        }
    }
    while let Some(t) = conn.poll_transmit() {
        out.transmits.push(check_transmit(setup.role, &t));
    }
    if let Some(e) = &out.error {
        check_error(&conn, e, &out.transmits);
    }
    finish(&mut conn);
    out
}

/// Feed `chunks` through the owned path ([`Connection::read_message`]).
///
/// Checks: heap growth during one call stays within a few times `max_message_size`
/// (plus the inflater's state when deflate is on), whatever the peer announces.
pub fn run_messages(setup: &Setup, chunks: &[&[u8]]) -> Outcome {
    let mut conn = setup.connection();
    let mut out = Outcome::default();
    let limit = setup.config.max_message_size as usize;
    // BytesMut doubles when it grows, and the old block lives during the copy.
    let inflater = if setup.deflate.is_some() { 96 << 10 } else { 0 };
    let bound = 4 * limit + inflater + 4096;
    let mut input = BytesMut::with_capacity(chunks.iter().map(|c| c.len()).sum::<usize>() + 16);
    'feed: for chunk in chunks {
        input.extend_from_slice(chunk);
        loop {
            let heap = HeapWindow::start();
            let r = conn.read_message(&mut input, T0);
            let growth = heap.peak_growth();
            assert!(
                growth <= bound,
                "read_message grew the heap by {growth} > {bound}"
            );
            let m = match r {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e);
                    break 'feed;
                }
            };
            let ev = match m {
                Message::Text(t) => Ev::Msg(DataKind::Text, t.as_bytes().to_vec()),
                Message::Binary(b) => Ev::Msg(DataKind::Binary, b.to_vec()),
                Message::Ping(p) => Ev::Ping(p.to_vec()),
                Message::Pong(p) => Ev::Pong(p.to_vec()),
                Message::Close(None) => Ev::Close(1005, String::new()),
                Message::Close(Some(f)) => {
                    check_received_close(f.code);
                    Ev::Close(f.code.0, f.reason.as_str().to_owned())
                }
            };
            if let Ev::Msg(_, d) = &ev {
                assert!(d.len() <= limit);
            }
            out.events.push(ev);
            while let Some(t) = conn.poll_transmit() {
                out.transmits.push(check_transmit(setup.role, &t));
            }
        }
    }
    while let Some(t) = conn.poll_transmit() {
        out.transmits.push(check_transmit(setup.role, &t));
    }
    if let Some(e) = &out.error {
        check_error(&conn, e, &out.transmits);
    }
    finish(&mut conn);
    out
}

/// After the input: the send side and the timers must still behave.
fn finish(conn: &mut Connection<fn(&mut [u8])>) {
    let open = conn.state() == State::Open;
    let sent = conn.encode_message(DataKind::Text, b"after", &mut BytesMut::new());
    assert_eq!(sent.is_ok(), open, "{sent:?} in {:?}", conn.state());
    let _ = conn.close(CloseCode::NORMAL, "bye", T0);
    while let Some(t) = conn.poll_transmit() {
        check_transmit(conn.role(), &t);
    }
    let mut now = T0;
    for _ in 0..4 {
        match conn.poll_timeout() {
            Some(at) => {
                now = now.max(at);
                let _ = conn.handle_timeout(now);
            }
            None => break,
        }
        while let Some(t) = conn.poll_transmit() {
            check_transmit(conn.role(), &t);
        }
    }
    let _ = conn.handle_eof();
    assert_eq!(conn.state(), State::Closed, "EOF ends the connection");
}

/// The whole-connection target: the same stream fed whole, split as the input says,
/// and byte by byte, through both read paths, must give the same outcome.
pub fn connection_target(role: Role, data: &[u8]) {
    let mut input = Input(data);
    let setup = Setup::from_input(role, &mut input);
    let sizes = input.splits();
    let stream = input.rest();
    let whole = run_events(&setup, &[stream]);
    let split = run_events(&setup, &chunks(stream, &sizes));
    // The owned path inflates the same pieces as the borrowed one: exactly equal.
    let mut owned = run_messages(&setup, &chunks(stream, &sizes));
    owned.inflate_failed = split.inflate_failed;
    assert_eq!(split, owned, "read_message disagrees with read");
    let whole = whole.comparable();
    assert_eq!(whole, split.comparable(), "events depend on the split");
    if stream.len() <= 512 {
        let bytes = run_events(&setup, &chunks(stream, &[1])).comparable();
        assert_eq!(whole, bytes, "events differ when fed byte by byte");
    }
}
