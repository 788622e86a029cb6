//! The connection state machine (RFC 6455 §5–§7), after the opening handshake.
//!
//! Bytes in, events out: [`Connection::read`] consumes bytes the adapter read and
//! returns at most one [`Event`], with data payloads unmasked in place in the caller's
//! buffer. Messages in, bytes out: [`Connection::encode_frame`] gives the header of the
//! next outgoing frame and a [`Masker`] for its payload, so big payloads never pass
//! through a buffer of the core; [`Connection::poll_transmit`] gives the control frames
//! the core owes (pongs, keepalive pings, close). Time comes in as [`Instant`]s:
//! [`Connection::poll_timeout`] says when to call [`Connection::handle_timeout`].
//!
//! # The closing handshake
//!
//! | we… | state | next |
//! |---|---|---|
//! | call [`Connection::close`] | `Closing` | the peer's close arrives → `Closed`, or `close_timeout` passes → [`Error::CloseTimeout`] |
//! | receive a close | `CloseReceived` | the echo goes out through `poll_transmit` → `Closed` |
//! | hit a protocol error | `Closed` (failed) | the close frame with the RFC's code goes out; close the transport |
//!
//! Once `Closed`, [`Connection::wants_close_transport`] says when to close TCP: the
//! server closes first (§7.1.1); the client waits for the server's FIN until
//! `close_timeout` and then closes itself. Data frames that arrive after we sent a close
//! are still delivered; everything after the peer's close is discarded.

use core::ops::Range;
use core::time::Duration;

use crate::close::{CloseCode, CloseFrame, MAX_REASON_LEN};
use crate::config::{Config, Role};
use crate::error::Error;
use crate::frame::{FrameHeader, HeaderDecoder, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, RSV1};
use crate::mask::{Masker, apply_mask};
use crate::rng::{NoRandom, RandomSource};
use crate::time::Instant;
use crate::utf8::Utf8Validator;

/// The type of a data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// UTF-8 text (opcode 0x1).
    Text,
    /// Arbitrary bytes (opcode 0x2).
    Binary,
}

impl DataKind {
    fn opcode(self) -> OpCode {
        match self {
            DataKind::Text => OpCode::Text,
            DataKind::Binary => OpCode::Binary,
        }
    }
}

/// Control frames owed to the peer, sent in this order: pong, ping, close. Which ones
/// are owed is one byte, asked after every message; the payloads (125 bytes each) are
/// only touched when a frame is queued or sent.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct Owed {
    bits: u8,
    pong: ControlPayload,
    ping: ControlPayload,
    close: ControlPayload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Pong = 1,
    Ping = 2,
    Close = 4,
}

impl Owed {
    const NONE: Owed = Owed {
        bits: 0,
        pong: ControlPayload::EMPTY,
        ping: ControlPayload::EMPTY,
        close: ControlPayload::EMPTY,
    };

    fn payload_mut(&mut self, slot: Slot) -> &mut ControlPayload {
        match slot {
            Slot::Pong => &mut self.pong,
            Slot::Ping => &mut self.ping,
            Slot::Close => &mut self.close,
        }
    }

    fn set(&mut self, slot: Slot, payload: ControlPayload) {
        *self.payload_mut(slot) = payload;
        self.bits |= slot as u8;
    }

    fn clear(&mut self, slot: Slot) {
        self.bits &= !(slot as u8);
    }

    /// A closing connection answers no more pings and sends none.
    fn clear_pings(&mut self) {
        self.clear(Slot::Pong);
        self.clear(Slot::Ping);
    }

    fn is_set(&self, slot: Slot) -> bool {
        self.bits & slot as u8 != 0
    }

    fn take(&mut self, slot: Slot) -> Option<ControlPayload> {
        if !self.is_set(slot) {
            return None;
        }
        self.clear(slot);
        Some(*self.payload_mut(slot))
    }
}

/// The payload of a ping or pong: at most 125 bytes, held by value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlPayload {
    buf: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl ControlPayload {
    /// An empty payload.
    pub const EMPTY: ControlPayload = ControlPayload {
        buf: [0; MAX_CONTROL_PAYLOAD],
        len: 0,
    };

    /// Copy a payload of at most 125 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::ControlPayloadTooLong);
        }
        let mut p = Self::EMPTY;
        p.buf[..bytes.len()].copy_from_slice(bytes);
        p.len = bytes.len() as u8;
        Ok(p)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    fn push(&mut self, bytes: &[u8]) {
        let at = usize::from(self.len);
        self.buf[at..at + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len() as u8;
    }
}

impl core::fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ControlPayload({:?})", self.as_bytes())
    }
}

/// A close frame received from the peer, held by value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReceivedClose {
    code: CloseCode,
    reason: [u8; MAX_REASON_LEN],
    reason_len: u8,
}

impl ReceivedClose {
    fn new(frame: CloseFrame<'_>) -> Self {
        let mut reason = [0; MAX_REASON_LEN];
        reason[..frame.reason.len()].copy_from_slice(frame.reason.as_bytes());
        ReceivedClose {
            code: frame.code,
            reason,
            reason_len: frame.reason.len() as u8,
        }
    }

    /// The status code; [`CloseCode::NO_STATUS`] (1005) when the frame had no body.
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason (validated UTF-8, at most 123 bytes).
    pub fn reason(&self) -> &str {
        // Validated on receipt; an empty string can only appear if that ever regressed.
        core::str::from_utf8(&self.reason[..usize::from(self.reason_len)]).unwrap_or_default()
    }

    /// As a borrowed [`CloseFrame`].
    pub fn frame(&self) -> CloseFrame<'_> {
        CloseFrame {
            code: self.code,
            reason: self.reason(),
        }
    }
}

impl core::fmt::Debug for ReceivedClose {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReceivedClose")
            .field("code", &self.code)
            .field("reason", &self.reason())
            .finish()
    }
}

/// A chunk of a data message, unmasked in place in the caller's input buffer.
///
/// A message arrives as one or more chunks: the first has `message_start`, the last has
/// `message_end`. Chunk boundaries follow frame and read boundaries and carry no meaning.
#[derive(Debug, PartialEq, Eq)]
pub struct Data<'a> {
    /// Text or binary.
    pub kind: DataKind,
    /// The payload bytes of this chunk (text chunks are valid UTF-8 prefixes as a whole
    /// message, but a chunk may end inside a code point).
    pub payload: &'a [u8],
    /// This is the first chunk of the message.
    pub message_start: bool,
    /// This is the last chunk of the message.
    pub message_end: bool,
    /// The message is permessage-deflate compressed: `payload` is compressed bytes, to
    /// be inflated with `Connection::decompress` (feature `deflate`). Only possible after
    /// [`Connection::enable_deflate`].
    pub compressed: bool,
}

/// What the peer did.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A chunk of a text or binary message.
    Data(Data<'a>),
    /// A ping. With `auto_pong` on, the pong is already queued for
    /// [`Connection::poll_transmit`].
    Ping(ControlPayload),
    /// A pong.
    Pong(ControlPayload),
    /// The peer's close frame. The echo is queued; the connection is closing.
    Close(ReceivedClose),
}

/// The result of one [`Connection::read`] call.
#[derive(Debug, PartialEq, Eq)]
pub struct Read<'a> {
    /// Bytes of the input consumed. The caller drops them before the next call.
    pub consumed: usize,
    /// The event, if one completed. `consumed == 0 && event.is_none()` means "read more".
    pub event: Option<Event<'a>>,
}

/// An event whose data payload is a range of the input, so callers can split a shared
/// buffer instead of copying.
#[derive(Debug, PartialEq, Eq)]
pub enum RawEvent {
    /// A data chunk at `range` of the input.
    Data {
        /// Text or binary.
        kind: DataKind,
        /// Where the unmasked payload lies in the input.
        range: Range<usize>,
        /// First chunk of the message.
        message_start: bool,
        /// Last chunk of the message.
        message_end: bool,
        /// The bytes are permessage-deflate compressed (see [`Data::compressed`]).
        compressed: bool,
    },
    /// See [`Event::Ping`].
    Ping(ControlPayload),
    /// See [`Event::Pong`].
    Pong(ControlPayload),
    /// See [`Event::Close`].
    Close(ReceivedClose),
}

/// Where the connection is in its life (RFC 6455 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Messages flow both ways.
    Open,
    /// We queued or sent a close and wait for the peer's.
    Closing,
    /// The peer sent a close; our echo is queued.
    CloseReceived,
    /// The closing handshake is over (or the connection failed); see
    /// [`Connection::wants_close_transport`].
    Closed,
}

/// The header of one outgoing frame and the masker for its payload.
///
/// Write [`OutFrame::header`], then the payload passed through [`OutFrame::mask`] (a
/// no-op on the server side), in as many chunks as you like — for example as two
/// buffers of one vectored write.
#[derive(Debug, Clone)]
pub struct OutFrame {
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    masker: Option<Masker>,
}

impl OutFrame {
    /// The header bytes (2–14).
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len)]
    }

    /// Whether the payload must be masked (client role).
    pub fn is_masked(&self) -> bool {
        self.masker.is_some()
    }

    /// Mask the next chunk of the payload in place (nothing to do for a server).
    #[inline]
    pub fn mask(&mut self, chunk: &mut [u8]) {
        if let Some(m) = &mut self.masker {
            m.apply(chunk);
        }
    }
}

/// A complete control frame owed by the core (pong, ping or close), at most 131 bytes.
#[derive(Clone)]
pub struct Transmit {
    buf: [u8; MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD],
    len: u8,
    kind: OpCode,
}

impl Transmit {
    /// The frame's bytes, ready for the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The frame's opcode: `Ping`, `Pong` or `Close`.
    pub fn opcode(&self) -> OpCode {
        self.kind
    }
}

impl core::ops::Deref for Transmit {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl core::fmt::Debug for Transmit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transmit")
            .field("opcode", &self.kind)
            .field("bytes", &self.as_bytes())
            .finish()
    }
}

/// Payload ranges for sending a message of `len` bytes in frames of at most `max` bytes.
///
/// Yields `(range, last)`; an empty message is one empty frame.
#[derive(Debug, Clone)]
pub struct Fragments {
    next: usize,
    len: usize,
    max: usize,
    done: bool,
}

impl Fragments {
    /// Split `len` bytes into frames of at most `max` (at least 1) bytes.
    pub fn new(len: usize, max: usize) -> Self {
        Fragments {
            next: 0,
            len,
            max: max.max(1),
            done: false,
        }
    }
}

impl Iterator for Fragments {
    type Item = (Range<usize>, bool);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let end = self.len.min(self.next.saturating_add(self.max));
        let r = self.next..end;
        self.next = end;
        self.done = end == self.len;
        Some((r, self.done))
    }
}

#[derive(Debug, Clone)]
enum RxStage {
    Header(HeaderDecoder),
    Payload {
        hdr: FrameHeader,
        remaining: u64,
        mask_off: usize,
    },
}

#[derive(Debug, Clone)]
struct InMessage {
    kind: DataKind,
    len: u64,
    utf8: Utf8Validator,
    started: bool,
    /// RSV1 on the first frame: permessage-deflate compressed (RFC 7692 §6).
    compressed: bool,
}

/// A WebSocket connection after the opening handshake: the sans-IO protocol engine.
///
/// `R` is the source of masking keys; servers use [`NoRandom`].
///
/// ```
/// use sansock::{Config, Connection, Instant, conn::{DataKind, Event}};
///
/// let now = Instant::ZERO;
/// let mut rng = |b: &mut [u8]| b.fill(7); // use a real RNG
/// let mut client = Connection::client(Config::default(), &mut rng, now);
/// let mut server = Connection::server(Config::default(), now);
///
/// // Client sends "hi": header, then the masked payload.
/// let mut wire = Vec::new();
/// let mut frame = client.encode_frame(DataKind::Text, 2, true).unwrap();
/// let mut payload = *b"hi";
/// frame.mask(&mut payload);
/// wire.extend_from_slice(frame.header());
/// wire.extend_from_slice(&payload);
///
/// // Server reads it, unmasked in place.
/// let len = wire.len();
/// let read = server.read(&mut wire, now).unwrap();
/// assert_eq!(read.consumed, len);
/// match read.event {
///     Some(Event::Data(d)) => assert_eq!((d.payload, d.message_end), (&b"hi"[..], true)),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug)]
// `repr(C)` keeps the fields in this order: what every message reads comes first, in
// a few cache lines, and the large control payloads after it. With 1000 connections
// the per-message state no longer stays in cache, and the compiler's own order spread
// it over eleven lines (`benches/examples/echo-cost.rs` with `--cache-sim`).
#[repr(C)]
pub struct Connection<R = NoRandom> {
    last_recv: Instant,
    /// `read_message`: payload bytes of a single-frame message kept (unmasked, checked)
    /// at the front of the caller's buffer until the frame is complete.
    #[cfg(feature = "alloc")]
    in_place: usize,
    keepalive_ping: Option<Instant>,
    close_deadline: Option<Instant>,
    rx: RxStage,
    in_msg: Option<InMessage>,
    failed: Option<Error>,
    role: Role,
    allowed_rsv: u8,
    tx_msg: Option<DataKind>,
    close_queued: bool,
    close_sent: bool,
    transport_eof: bool,
    fin_wait_expired: bool,
    deflate_on: bool,
    config: Config,
    rng: R,
    close_received: Option<ReceivedClose>,
    owed: Owed,

    rtt: Option<Duration>,
    ping_in_flight: Option<(Instant, ControlPayload)>,
    control: ControlPayload,
    #[cfg(feature = "alloc")]
    assembly: bytes::BytesMut,
    #[cfg(feature = "deflate")]
    deflate: Option<crate::deflate::Codec>,
    #[cfg(feature = "deflate")]
    inflated: usize,
    #[cfg(feature = "deflate")]
    inflate_utf8: Utf8Validator,
}

impl Connection<NoRandom> {
    /// The server end of a connection whose handshake completed at `now`.
    pub fn server(config: Config, now: Instant) -> Self {
        Self::new(Role::Server, config, NoRandom, now)
    }
}

impl<R: RandomSource> Connection<R> {
    /// The client end of a connection whose handshake completed at `now`; masking keys
    /// come from `rng` (RFC 6455 §5.3: they must be unpredictable).
    pub fn client(config: Config, rng: R, now: Instant) -> Self {
        Self::new(Role::Client, config, rng, now)
    }

    /// A connection of either role. Servers never draw from `rng`; [`Connection::server`]
    /// and [`Connection::client`] are the usual constructors, this one lets an adapter
    /// use one connection type for both roles.
    pub fn new(role: Role, config: Config, rng: R, now: Instant) -> Self {
        Connection {
            role,
            config,
            rng,
            allowed_rsv: 0,
            rx: RxStage::Header(HeaderDecoder::new()),
            in_msg: None,
            control: ControlPayload::EMPTY,
            tx_msg: None,
            owed: Owed::NONE,
            close_queued: false,
            close_sent: false,
            close_received: None,
            failed: None,
            transport_eof: false,
            fin_wait_expired: false,
            last_recv: now,
            keepalive_ping: None,
            ping_in_flight: None,
            rtt: None,
            close_deadline: None,
            #[cfg(feature = "alloc")]
            assembly: bytes::BytesMut::new(),
            #[cfg(feature = "alloc")]
            in_place: 0,
            #[cfg(feature = "deflate")]
            deflate: None,
            deflate_on: false,
            #[cfg(feature = "deflate")]
            inflated: 0,
            #[cfg(feature = "deflate")]
            inflate_utf8: Utf8Validator::new(),
        }
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        if self.failed.is_some() {
            return State::Closed;
        }
        match (self.close_received.is_some(), self.close_queued) {
            (false, false) => State::Open,
            (false, true) => State::Closing,
            (true, _) if self.close_sent => State::Closed,
            (true, _) => State::CloseReceived,
        }
    }

    /// The peer's close frame, once received.
    pub fn peer_close(&self) -> Option<&ReceivedClose> {
        self.close_received.as_ref()
    }

    /// The error that failed the connection, if one did.
    pub fn error(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// Round-trip time of the last ping answered by a matching pong.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Turn on permessage-deflate with the parameters the handshake agreed on
    /// ([`deflate::negotiate`](crate::deflate::negotiate) on a server,
    /// [`deflate::check_response`](crate::deflate::check_response) on a client).
    /// Received messages with RSV1 are inflated by [`read_message`](Self::read_message)
    /// (or [`decompress`](Self::decompress)); sent messages of at least
    /// `config.threshold` bytes are compressed by `encode_message`.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(
        &mut self,
        params: crate::deflate::DeflateParams,
        config: &crate::deflate::DeflateConfig,
    ) {
        self.allowed_rsv |= RSV1;
        self.deflate = Some(crate::deflate::Codec::new(self.role, params, config));
        self.deflate_on = true;
    }

    /// Whether permessage-deflate is on.
    pub fn is_deflate_enabled(&self) -> bool {
        self.deflate_on
    }

    /// Allow reserved bits negotiated by an extension (e.g. [`RSV1`]
    /// for permessage-deflate). Frames with other reserved bits still fail with 1002.
    pub fn set_allowed_rsv(&mut self, rsv: u8) {
        self.allowed_rsv = rsv & 0x7;
    }

    // ---------------------------------------------------------------- receiving

    /// Consume bytes read from the transport. Returns how many were consumed and at most
    /// one event; data payloads are unmasked in place and borrowed from `input`.
    ///
    /// Call repeatedly, dropping `consumed` bytes each time, until `consumed == 0` and no
    /// event: then read more from the transport. Any split of the stream gives the same
    /// messages. On a protocol error the close frame with the RFC's code is queued for
    /// [`poll_transmit`](Self::poll_transmit) and the error is returned; the connection
    /// is then `Closed`.
    pub fn read<'a>(&mut self, input: &'a mut [u8], now: Instant) -> Result<Read<'a>, Error> {
        let raw = self.read_raw(input, now)?;
        let event = raw.1.map(|ev| match ev {
            RawEvent::Data {
                kind,
                range,
                message_start,
                message_end,
                compressed,
            } => Event::Data(Data {
                kind,
                payload: &input[range],
                message_start,
                message_end,
                compressed,
            }),
            RawEvent::Ping(p) => Event::Ping(p),
            RawEvent::Pong(p) => Event::Pong(p),
            RawEvent::Close(c) => Event::Close(c),
        });
        Ok(Read {
            consumed: raw.0,
            event,
        })
    }

    /// Like [`read`](Self::read), but data payloads are returned as ranges of `input`.
    pub fn read_raw(
        &mut self,
        input: &mut [u8],
        now: Instant,
    ) -> Result<(usize, Option<RawEvent>), Error> {
        if let Some(e) = &self.failed {
            return Err(match e {
                Error::CloseTimeout | Error::PeerUnresponsive | Error::ConnectionReset => e.clone(),
                _ => Error::ConnectionClosed,
            });
        }
        if self.close_received.is_some() {
            // §5.5.1: nothing after the peer's close is meaningful.
            return Ok((input.len(), None));
        }
        if !input.is_empty() {
            self.last_recv = now;
            self.keepalive_ping = None;
        }
        match self.step(input, now) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    fn step(&mut self, input: &mut [u8], now: Instant) -> Result<(usize, Option<RawEvent>), Error> {
        let mut pos = 0;
        loop {
            match &mut self.rx {
                RxStage::Header(dec) => {
                    let (n, hdr) = dec.decode(&input[pos..])?;
                    pos += n;
                    let Some(hdr) = hdr else {
                        return Ok((pos, None));
                    };
                    self.check_header(&hdr)?;
                    self.rx = RxStage::Payload {
                        hdr,
                        remaining: hdr.payload_len,
                        mask_off: 0,
                    };
                    if hdr.payload_len == 0 {
                        return self.payload(input, pos, pos, now);
                    }
                }
                RxStage::Payload { .. } => {
                    if pos == input.len() {
                        return Ok((pos, None));
                    }
                    let end = pos;
                    return self.payload(input, end, input.len(), now);
                }
            }
        }
    }

    /// Payload bytes of the frame being received that have not arrived yet (0 between
    /// frames): a hint for sizing the next read, so a large frame can be read in one go.
    pub fn frame_bytes_pending(&self) -> u64 {
        match &self.rx {
            RxStage::Payload { remaining, .. } => *remaining,
            RxStage::Header(_) => 0,
        }
    }

    /// Payload bytes of the current frame still to come, and whether it is a final
    /// frame; `None` between frames.
    #[cfg(feature = "alloc")]
    fn frame_payload_left(&self) -> Option<(u64, bool)> {
        match &self.rx {
            RxStage::Payload { hdr, remaining, .. } => Some((*remaining, hdr.fin)),
            RxStage::Header(_) => None,
        }
    }

    /// Frame-level rules that depend on the connection (§5.1, §5.2, §5.4) and the limits.
    fn check_header(&mut self, hdr: &FrameHeader) -> Result<(), Error> {
        if hdr.rsv & !self.allowed_rsv != 0 {
            return Err(Error::ReservedBitsSet);
        }
        // Negotiated bits mark a whole message: only its first frame may carry them, and
        // never a control frame (RFC 7692 §6.1).
        if hdr.rsv != 0 && (hdr.opcode.is_control() || hdr.opcode == OpCode::Continuation) {
            return Err(Error::ReservedBitsSet);
        }
        match (self.role, hdr.mask.is_some()) {
            (Role::Server, false) => return Err(Error::UnmaskedFrame),
            (Role::Client, true) => return Err(Error::MaskedFrame),
            _ => {}
        }
        if hdr.payload_len > self.config.max_frame_size {
            return Err(Error::FrameTooLarge);
        }
        match hdr.opcode {
            OpCode::Continuation => {
                let msg = self.in_msg.as_mut().ok_or(Error::UnexpectedContinuation)?;
                if msg.len.saturating_add(hdr.payload_len) > self.config.max_message_size {
                    return Err(Error::MessageTooLarge);
                }
            }
            OpCode::Text | OpCode::Binary => {
                if self.in_msg.is_some() {
                    return Err(Error::ExpectedContinuation);
                }
                if hdr.payload_len > self.config.max_message_size {
                    return Err(Error::MessageTooLarge);
                }
                let kind = if hdr.opcode == OpCode::Text {
                    DataKind::Text
                } else {
                    DataKind::Binary
                };
                self.in_msg = Some(InMessage {
                    kind,
                    len: 0,
                    utf8: Utf8Validator::new(),
                    started: false,
                    // Only permessage-deflate gives RSV1 a meaning here; bits allowed with
                    // `set_allowed_rsv` for other extensions leave the payload as it is.
                    compressed: hdr.rsv & RSV1 != 0 && self.deflate_on,
                });
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => self.control = ControlPayload::EMPTY,
        }
        Ok(())
    }

    /// Take payload bytes `input[start..avail]` for the current frame.
    fn payload(
        &mut self,
        input: &mut [u8],
        start: usize,
        avail: usize,
        now: Instant,
    ) -> Result<(usize, Option<RawEvent>), Error> {
        let RxStage::Payload {
            hdr,
            remaining,
            mask_off,
        } = &mut self.rx
        else {
            return Ok((start, None));
        };
        let hdr = *hdr;
        let take = usize::try_from(*remaining)
            .unwrap_or(usize::MAX)
            .min(avail - start);
        let end = start + take;
        if let Some(key) = hdr.mask {
            *mask_off = apply_mask(&mut input[start..end], key, *mask_off);
        }
        *remaining -= take as u64;
        let frame_done = *remaining == 0;
        if frame_done {
            self.rx = RxStage::Header(HeaderDecoder::new());
        }

        if hdr.opcode.is_control() {
            self.control.push(&input[start..end]);
            if !frame_done {
                return Ok((end, None));
            }
            let payload = self.control;
            let ev = match hdr.opcode {
                OpCode::Ping => {
                    if self.config.auto_pong && !self.close_queued {
                        // §5.5.3: answering only the most recent ping is allowed.
                        self.owed.set(Slot::Pong, payload);
                    }
                    RawEvent::Ping(payload)
                }
                OpCode::Pong => {
                    if let Some((sent, p)) = self.ping_in_flight
                        && p == payload
                    {
                        self.rtt = Some(now - sent);
                        self.ping_in_flight = None;
                    }
                    RawEvent::Pong(payload)
                }
                _ => {
                    let frame = CloseFrame::parse(payload.as_bytes())?;
                    let rc = ReceivedClose::new(frame);
                    self.close_received = Some(rc);
                    if !self.close_queued {
                        // Echo the code (§5.5.1); an empty close is answered with an empty one.
                        self.owe_close(CloseFrame {
                            code: frame.code,
                            reason: "",
                        });
                    }
                    self.owed.clear_pings();
                    self.close_deadline = Some(now + self.config.close_timeout);
                    RawEvent::Close(rc)
                }
            };
            return Ok((end, Some(ev)));
        }

        let Some(msg) = self.in_msg.as_mut() else {
            return Ok((end, None));
        };
        msg.len += take as u64;
        // Compressed text is validated once inflated (`decompress`), not on the wire.
        let validate = msg.kind == DataKind::Text && !msg.compressed;
        if validate {
            msg.utf8
                .feed(&input[start..end])
                .map_err(|_| Error::InvalidUtf8)?;
        }
        let message_end = frame_done && hdr.fin;
        if message_end && validate {
            msg.utf8.finish().map_err(|_| Error::InvalidUtf8)?;
        }
        if take == 0 && !message_end {
            // An empty non-final frame or no bytes yet: nothing to report.
            return Ok((end, None));
        }
        let ev = RawEvent::Data {
            kind: msg.kind,
            range: start..end,
            message_start: !msg.started,
            message_end,
            compressed: msg.compressed,
        };
        msg.started = true;
        if message_end {
            self.in_msg = None;
        }
        Ok((end, Some(ev)))
    }

    fn fail(&mut self, e: Error) {
        // A close queued by `close()` but not yet sent is replaced: the peer should
        // learn why the connection failed (§7.1.7).
        if let Some(code) = e.close_code().filter(|c| c.is_sendable())
            && !self.close_sent
        {
            self.owe_close(CloseFrame { code, reason: "" });
        }
        self.owed.clear_pings();
        self.failed = Some(e);
    }

    /// The transport reached end of stream. `Ok` if the closing handshake had completed;
    /// otherwise the connection failed with [`Error::ConnectionReset`] (1006).
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        self.transport_eof = true;
        if self.close_received.is_some() || self.failed.is_some() {
            return Ok(());
        }
        self.failed = Some(Error::ConnectionReset);
        self.owed.clear_pings();
        self.owed.clear(Slot::Close);
        Err(Error::ConnectionReset)
    }

    // ---------------------------------------------------------------- sending

    /// The header and masker for the next outgoing data frame of `payload_len` bytes.
    ///
    /// The first frame of a message sets its kind; later frames of the same message must
    /// pass the same kind and become continuations. `message_end` sets FIN. Sending is
    /// refused once a close was queued or received.
    pub fn encode_frame(
        &mut self,
        kind: DataKind,
        payload_len: usize,
        message_end: bool,
    ) -> Result<OutFrame, Error> {
        self.encode_frame_rsv(kind, payload_len, message_end, 0)
    }

    /// [`encode_frame`](Self::encode_frame) with reserved bits set by an extension on the
    /// first frame of a message.
    pub fn encode_frame_rsv(
        &mut self,
        kind: DataKind,
        payload_len: usize,
        message_end: bool,
        rsv: u8,
    ) -> Result<OutFrame, Error> {
        if self.close_queued || self.close_received.is_some() || self.failed.is_some() {
            return Err(Error::ConnectionClosed);
        }
        let opcode = match self.tx_msg {
            Some(k) if k == kind => OpCode::Continuation,
            Some(_) => return Err(Error::MessageInProgress),
            None => kind.opcode(),
        };
        let rsv = if opcode == OpCode::Continuation {
            0
        } else {
            rsv & 0x7
        };
        self.tx_msg = if message_end { None } else { Some(kind) };
        Ok(self.out_frame(opcode, rsv, message_end, payload_len as u64))
    }

    /// Owe the peer this close frame.
    fn owe_close(&mut self, frame: CloseFrame<'_>) {
        let mut body = [0u8; MAX_CONTROL_PAYLOAD];
        let n = frame.write_body(&mut body);
        // `write_body` writes at most the 125 bytes a control payload holds.
        if let Ok(p) = ControlPayload::new(&body[..n]) {
            self.owed.set(Slot::Close, p);
        }
        self.close_queued = true;
    }

    /// A fresh masking key for a client's frame (§5.3); servers do not mask.
    fn masking_key(&mut self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => {
                let mut key = [0u8; 4];
                self.rng.fill_bytes(&mut key);
                Some(key)
            }
            Role::Server => None,
        }
    }

    fn out_frame(&mut self, opcode: OpCode, rsv: u8, fin: bool, payload_len: u64) -> OutFrame {
        let mask = self.masking_key();
        let hdr = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        };
        let mut header = [0u8; MAX_HEADER_LEN];
        let header_len = hdr.encode(&mut header) as u8;
        OutFrame {
            header,
            header_len,
            masker: mask.map(Masker::new),
        }
    }

    /// Whether a fragmented outgoing message is open (its last frame not yet encoded).
    pub fn is_sending_message(&self) -> bool {
        self.tx_msg.is_some()
    }

    /// Payload ranges for a message of `len` bytes split at `max_send_frame_size`.
    pub fn fragments(&self, len: usize) -> Fragments {
        Fragments::new(len, self.config.max_send_frame_size)
    }

    /// Encode a whole message into `out` (headers and masked payload), fragmented at
    /// `max_send_frame_size`. Returns the bytes written; on [`Error::BufferTooSmall`]
    /// nothing is sent and the connection is unchanged.
    pub fn encode_message_into(
        &mut self,
        kind: DataKind,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if self.close_queued || self.close_received.is_some() || self.failed.is_some() {
            return Err(Error::ConnectionClosed);
        }
        if self.tx_msg.is_some() {
            // Like `encode_message`: never turn a whole message into continuations of a
            // fragmented message opened with `encode_frame`.
            return Err(Error::MessageInProgress);
        }
        let need: usize = self
            .fragments(payload.len())
            .map(|(r, _)| r.len() + header_len_for(r.len(), self.role))
            .sum();
        if need > out.len() {
            return Err(Error::BufferTooSmall);
        }
        let mut at = 0;
        for (r, last) in self.fragments(payload.len()) {
            let mut f = self.encode_frame(kind, r.len(), last)?;
            let h = f.header();
            out[at..at + h.len()].copy_from_slice(h);
            at += h.len();
            let dst = &mut out[at..at + r.len()];
            dst.copy_from_slice(&payload[r]);
            f.mask(dst);
            at += dst.len();
        }
        Ok(at)
    }

    /// Queue a ping (at most 125 bytes). A ping that is still queued is replaced. Its
    /// matching pong updates [`rtt`](Self::rtt).
    pub fn ping(&mut self, payload: &[u8], now: Instant) -> Result<(), Error> {
        let p = ControlPayload::new(payload)?;
        if self.close_queued || self.failed.is_some() {
            return Err(Error::ConnectionClosed);
        }
        self.owed.set(Slot::Ping, p);
        self.ping_in_flight = Some((now, p));
        Ok(())
    }

    /// Queue a pong (for applications that turned `auto_pong` off, or unsolicited pongs
    /// as a unidirectional heartbeat, §5.5.3).
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        let p = ControlPayload::new(payload)?;
        if self.close_queued || self.failed.is_some() {
            return Err(Error::ConnectionClosed);
        }
        self.owed.set(Slot::Pong, p);
        Ok(())
    }

    /// Start the closing handshake: queue a close frame and wait (bounded by
    /// `close_timeout`) for the peer's. [`CloseCode::NO_STATUS`] sends an empty body.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), Error> {
        let frame = CloseFrame { code, reason };
        frame.validate_for_send()?;
        if self.close_queued || self.close_received.is_some() || self.failed.is_some() {
            return Err(Error::ConnectionClosed);
        }
        self.owe_close(frame);
        self.close_deadline = Some(now + self.config.close_timeout);
        Ok(())
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) has a frame to give.
    pub fn has_transmit(&self) -> bool {
        // Usually nothing is owed: one test of the whole byte first.
        self.owed.bits != 0
            && (self.owed.is_set(Slot::Pong)
                || self.owed.is_set(Slot::Ping)
                || (self.owed.is_set(Slot::Close) && !self.close_sent))
    }

    /// The next control frame the core owes the peer: pong, then ping, then close. Call
    /// between data frames (never inside one) and write what it returns.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.close_sent {
            return None;
        }
        let (op, payload) = if let Some(p) = self.owed.take(Slot::Pong) {
            (OpCode::Pong, p)
        } else if let Some(p) = self.owed.take(Slot::Ping) {
            (OpCode::Ping, p)
        } else if let Some(p) = self.owed.take(Slot::Close) {
            self.close_sent = true;
            (OpCode::Close, p)
        } else {
            return None;
        };
        let mut f = self.out_frame(op, 0, true, u64::from(payload.len));
        let mut t = Transmit {
            buf: [0; MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD],
            len: 0,
            kind: op,
        };
        let h = f.header();
        let hl = h.len();
        t.buf[..hl].copy_from_slice(h);
        let body = &mut t.buf[hl..hl + payload.as_bytes().len()];
        body.copy_from_slice(payload.as_bytes());
        f.mask(body);
        t.len = (hl + body.len()) as u8;
        Some(t)
    }

    /// Whether the adapter should close the transport now: after a failure, or once the
    /// closing handshake is over — at once on the server (§7.1.1), after the server's
    /// FIN or the close timeout on the client.
    pub fn wants_close_transport(&self) -> bool {
        if self.has_transmit() {
            return false;
        }
        if self.failed.is_some() || self.transport_eof || self.fin_wait_expired {
            return true;
        }
        self.state() == State::Closed && self.role == Role::Server
    }

    // ---------------------------------------------------------------- timers

    /// When [`handle_timeout`](Self::handle_timeout) must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.failed.is_some() || self.transport_eof || self.fin_wait_expired {
            return None;
        }
        if self.close_queued || self.close_received.is_some() {
            return self.close_deadline;
        }
        let interval = self.config.keepalive_interval?;
        Some(match self.keepalive_ping {
            Some(sent) => sent + self.config.pong_timeout,
            None => self.last_recv + interval,
        })
    }

    /// Act on the timers: send a keepalive ping after `keepalive_interval` of silence;
    /// declare the peer dead ([`Error::PeerUnresponsive`], close 1001 queued) when nothing
    /// arrives within `pong_timeout` of it; give up on the closing handshake after
    /// `close_timeout` ([`Error::CloseTimeout`]). Errors leave the connection `Closed`.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.failed.is_some() || self.transport_eof || self.fin_wait_expired {
            return Ok(());
        }
        if let Some(deadline) = self.close_deadline
            && now >= deadline
            && (self.close_queued || self.close_received.is_some())
        {
            if self.state() == State::Closed {
                // Both close frames were exchanged; only the server's FIN is missing.
                self.fin_wait_expired = true;
                return Ok(());
            }
            self.failed = Some(Error::CloseTimeout);
            self.owed.clear_pings();
            return Err(Error::CloseTimeout);
        }
        if self.close_queued || self.close_received.is_some() {
            return Ok(());
        }
        let Some(interval) = self.config.keepalive_interval else {
            return Ok(());
        };
        match self.keepalive_ping {
            Some(sent) if now >= sent + self.config.pong_timeout => {
                self.fail(Error::PeerUnresponsive);
                // The peer is gone; still tell it why, in case only its replies are lost.
                self.owe_close(CloseFrame {
                    code: CloseCode::GOING_AWAY,
                    reason: "keepalive timeout",
                });
                Err(Error::PeerUnresponsive)
            }
            None if now >= self.last_recv + interval => {
                let p = ControlPayload::new(&now.as_millis().to_be_bytes())?;
                self.owed.set(Slot::Ping, p);
                self.ping_in_flight = Some((now, p));
                self.keepalive_ping = Some(now);
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn header_len_for(len: usize, role: Role) -> usize {
    let base = match len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    };
    if role == Role::Client { base + 4 } else { base }
}

#[cfg(feature = "alloc")]
mod owned {
    use bytes::{Buf, BytesMut};

    use super::*;
    use crate::message::{Message, OwnedCloseFrame, Utf8Bytes};

    impl<R: RandomSource> Connection<R> {
        /// Read one whole message from `input`, consuming what it used.
        ///
        /// Fragmented messages are assembled (bounded by `max_message_size`); a message
        /// that arrived as a single frame is split off `input` without copying, even one
        /// that arrives over many reads: its payload stays at the front of `input`
        /// (unmasked and checked as it arrives, so errors still come at once) and
        /// `input` is given room for the rest of the frame, so later reads land right
        /// behind it. Keep passing the same buffer, appending to it. Returns `Ok(None)`
        /// when `input` holds no complete message yet — read more and call again.
        /// Pings, pongs and the peer's close are returned as messages too (with
        /// `auto_pong` the answer is already queued).
        pub fn read_message(
            &mut self,
            input: &mut BytesMut,
            now: Instant,
        ) -> Result<Option<Message>, Error> {
            loop {
                let kept = self.in_place;
                if input.len() <= kept && self.failed.is_none() {
                    // Nothing new to read (what `read_raw` would find, without the
                    // walk through its stages: this is every receive's last call).
                    return Ok(None);
                }
                if kept == 0
                    && let Some(m) = self.read_whole_frame(input, now)?
                {
                    return Ok(Some(m));
                }
                let (consumed, ev) = match self.read_raw(&mut input[kept..], now) {
                    Ok(r) => r,
                    Err(e) => {
                        self.in_place = 0;
                        return Err(e);
                    }
                };
                if kept > 0 {
                    // The rest of a frame whose payload is kept in place: nothing else
                    // can come before its end.
                    self.in_place += consumed;
                    match ev {
                        Some(RawEvent::Data {
                            kind,
                            message_end: true,
                            ..
                        }) => {
                            let payload = input.split_to(self.in_place).freeze();
                            self.in_place = 0;
                            return Ok(Some(data_message(kind, payload)));
                        }
                        _ if consumed == 0 => return Ok(None),
                        _ => continue,
                    }
                }
                let Some(ev) = ev else {
                    input.advance(consumed);
                    if consumed == 0 {
                        return Ok(None);
                    }
                    continue;
                };
                let msg = match ev {
                    RawEvent::Data {
                        kind,
                        range,
                        message_start,
                        message_end,
                        compressed,
                    } => {
                        if compressed {
                            let mut out = core::mem::take(&mut self.assembly);
                            let r = self.decompress(kind, &input[range], message_end, &mut out);
                            self.assembly = out;
                            r?;
                            input.advance(consumed);
                            if !message_end {
                                continue;
                            }
                            let payload = self.assembly.split().freeze();
                            return Ok(Some(data_message(kind, payload)));
                        }
                        if message_start && message_end {
                            input.advance(range.start);
                            let payload = input.split_to(range.len()).freeze();
                            input.advance(consumed - range.end);
                            return Ok(Some(data_message(kind, payload)));
                        }
                        let frame_left = self.frame_payload_left();
                        if message_start
                            && frame_left.is_some_and(|(left, fin)| {
                                fin && range.len() as u64 + left >= IN_PLACE_MIN
                            })
                        {
                            // The first part of a single-frame message: keep it where it
                            // is, and make room for the rest (already checked against
                            // the limits) so that it is read in behind it. Room is made
                            // while the header is still in front: a buffer the caller
                            // got back (the last message dropped) then fits the next
                            // frame of the same size without a new allocation. A little
                            // more than the frame: a read that fills its buffer exactly
                            // is followed by one that only learns the socket is empty.
                            let left = frame_left.map_or(0, |(left, _)| left);
                            let left = usize::try_from(left).unwrap_or(usize::MAX);
                            input.reserve(left.saturating_add(1024));
                            input.advance(range.start);
                            self.in_place = range.len();
                            return Ok(None);
                        }
                        // Fragments are copied together: room for the rest of this frame
                        // at once, not by doubling.
                        let left = frame_left.map_or(0, |(left, _)| left);
                        self.assembly
                            .reserve(range.len() + usize::try_from(left).unwrap_or(0));
                        self.assembly.extend_from_slice(&input[range]);
                        input.advance(consumed);
                        if !message_end {
                            continue;
                        }
                        let payload = self.assembly.split().freeze();
                        return Ok(Some(data_message(kind, payload)));
                    }
                    RawEvent::Ping(p) => Message::Ping(bytes::Bytes::copy_from_slice(p.as_bytes())),
                    RawEvent::Pong(p) => Message::Pong(bytes::Bytes::copy_from_slice(p.as_bytes())),
                    RawEvent::Close(c) => {
                        Message::Close((c.code() != CloseCode::NO_STATUS).then(|| {
                            OwnedCloseFrame {
                                code: c.code(),
                                reason: Utf8Bytes::from(alloc::string::String::from(c.reason())),
                            }
                        }))
                    }
                };
                input.advance(consumed);
                return Ok(Some(msg));
            }
        }

        /// The common case without the event machinery of `read_raw`: a whole
        /// unfragmented, uncompressed data frame at the front of `input`, between
        /// messages. Anything else (or any doubt) is left to the general path, which
        /// also reports header errors; the checks here are the general path's own.
        fn read_whole_frame(
            &mut self,
            input: &mut BytesMut,
            now: Instant,
        ) -> Result<Option<Message>, Error> {
            if self.failed.is_some() || self.close_received.is_some() || self.in_msg.is_some() {
                return Ok(None);
            }
            let RxStage::Header(dec) = &self.rx else {
                return Ok(None);
            };
            if dec.is_mid_header() {
                return Ok(None);
            }
            let Ok(Some((hdr, n))) = FrameHeader::decode(input) else {
                return Ok(None);
            };
            let kind = match hdr.opcode {
                OpCode::Text => DataKind::Text,
                OpCode::Binary => DataKind::Binary,
                _ => return Ok(None),
            };
            let Ok(len) = usize::try_from(hdr.payload_len) else {
                return Ok(None);
            };
            if !hdr.fin || hdr.rsv != 0 || input.len() - n < len {
                return Ok(None);
            }
            self.last_recv = now;
            self.keepalive_ping = None;
            let checked = self.check_header(&hdr);
            // The general path tracks the message from here; this one is done with it.
            self.in_msg = None;
            if let Err(e) = checked {
                self.fail(e.clone());
                return Err(e);
            }
            let payload = &mut input[n..n + len];
            if let Some(key) = hdr.mask {
                apply_mask(payload, key, 0);
            }
            if kind == DataKind::Text && core::str::from_utf8(payload).is_err() {
                self.fail(Error::InvalidUtf8);
                return Err(Error::InvalidUtf8);
            }
            // (Advancing a `Bytes` is cheaper than advancing a `BytesMut`.)
            let mut payload = input.split_to(n + len).freeze();
            payload.advance(n);
            Ok(Some(data_message(kind, payload)))
        }

        /// Inflate a chunk of a compressed message (a [`Data`] event with `compressed`)
        /// into `out`, appending. The inflated size counts against `max_message_size`
        /// (a deflate bomb fails with 1009 and bounded memory) and inflated text is
        /// validated as UTF-8 at once. Errors fail the connection like [`read`](Self::read).
        pub fn decompress(
            &mut self,
            kind: DataKind,
            chunk: &[u8],
            message_end: bool,
            out: &mut BytesMut,
        ) -> Result<(), Error> {
            let r = self.decompress_inner(kind, chunk, message_end, out);
            if let Err(e) = &r {
                self.fail(e.clone());
            }
            r
        }

        #[cfg(feature = "deflate")]
        fn decompress_inner(
            &mut self,
            kind: DataKind,
            chunk: &[u8],
            message_end: bool,
            out: &mut BytesMut,
        ) -> Result<(), Error> {
            let limit = usize::try_from(self.config.max_message_size).unwrap_or(usize::MAX);
            let codec = self.deflate.as_mut().ok_or(Error::InvalidCompressedData)?;
            // The limit is per message; `inflated` counts what earlier chunks produced.
            let before = out.len();
            let room = limit.saturating_sub(self.inflated);
            let r = codec.decompress(chunk, message_end, out, before.saturating_add(room));
            let produced = out.len() - before;
            if kind == DataKind::Text {
                self.inflate_utf8
                    .feed(&out[before..])
                    .map_err(|_| Error::InvalidUtf8)?;
            }
            r?;
            self.inflated += produced;
            if message_end {
                self.inflated = 0;
                if kind == DataKind::Text {
                    self.inflate_utf8.finish().map_err(|_| Error::InvalidUtf8)?;
                }
            }
            Ok(())
        }

        #[cfg(not(feature = "deflate"))]
        fn decompress_inner(
            &mut self,
            _: DataKind,
            _: &[u8],
            _: bool,
            _: &mut BytesMut,
        ) -> Result<(), Error> {
            // RSV1 is refused unless deflate was enabled, so this cannot be reached.
            Err(Error::InvalidCompressedData)
        }

        /// Encode a whole data message (headers and masked payload) into `out`,
        /// fragmented at `max_send_frame_size`. With permessage-deflate enabled, messages
        /// of at least the configured threshold are compressed (RSV1 on the first frame).
        pub fn encode_message(
            &mut self,
            kind: DataKind,
            payload: &[u8],
            out: &mut BytesMut,
        ) -> Result<(), Error> {
            if self.close_queued || self.close_received.is_some() || self.failed.is_some() {
                return Err(Error::ConnectionClosed);
            }
            if self.tx_msg.is_some() {
                return Err(Error::MessageInProgress);
            }
            #[cfg(feature = "deflate")]
            if let Some(codec) = self.deflate.as_mut()
                && codec.should_compress(payload.len())
            {
                let mut compressed = BytesMut::new();
                codec.compress(payload, &mut compressed)?;
                for (r, last) in self.fragments(compressed.len()) {
                    let rsv = if r.start == 0 { crate::frame::RSV1 } else { 0 };
                    let mut f = self.encode_frame_rsv(kind, r.len(), last, rsv)?;
                    out.extend_from_slice(f.header());
                    let at = out.len();
                    out.extend_from_slice(&compressed[r]);
                    f.mask(&mut out[at..]);
                }
                return Ok(());
            }
            if payload.len() <= self.config.max_send_frame_size {
                // One frame, the usual case: no fragment bookkeeping. The checks above
                // are the ones `encode_frame` makes, and no message is open.
                let mask = self.masking_key();
                let hdr = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: kind.opcode(),
                    mask,
                    payload_len: payload.len() as u64,
                };
                let mut header = [0u8; MAX_HEADER_LEN];
                let n = hdr.encode(&mut header);
                out.reserve(n + payload.len());
                out.extend_from_slice(&header[..n]);
                let at = out.len();
                out.extend_from_slice(payload);
                if let Some(key) = mask {
                    apply_mask(&mut out[at..], key, 0);
                }
                return Ok(());
            }
            // One reservation for every frame's header and payload.
            let frames = payload.len() / self.config.max_send_frame_size.max(1) + 1;
            out.reserve(payload.len() + frames * MAX_HEADER_LEN);
            for (r, last) in self.fragments(payload.len()) {
                let mut f = self.encode_frame(kind, r.len(), last)?;
                out.extend_from_slice(f.header());
                let at = out.len();
                out.extend_from_slice(&payload[r]);
                f.mask(&mut out[at..]);
            }
            Ok(())
        }
    }

    /// Single-frame messages from this size on are received in place (see
    /// `read_message`); a smaller one that straddles reads is cheaper to copy than to
    /// make room for.
    const IN_PLACE_MIN: u64 = 16 << 10;

    fn data_message(kind: DataKind, payload: bytes::Bytes) -> Message {
        match kind {
            // Validated incrementally as it arrived.
            DataKind::Text => Message::Text(Utf8Bytes::from_validated(payload)),
            DataKind::Binary => Message::Binary(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn frame(op: u8, payload: &[u8], mask: Option<[u8; 4]>) -> ([u8; 256], usize) {
        let mut out = [0u8; 256];
        let opcode = OpCode::from_u8(op & 0xf).unwrap();
        let h = FrameHeader {
            fin: op & 0x80 != 0,
            rsv: (op >> 4) & 7,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        let mut hb = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut hb);
        out[..n].copy_from_slice(&hb[..n]);
        out[n..n + payload.len()].copy_from_slice(payload);
        if let Some(k) = mask {
            apply_mask(&mut out[n..n + payload.len()], k, 0);
        }
        (out, n + payload.len())
    }

    fn server() -> Connection {
        Connection::server(Config::default(), t(0))
    }

    fn read_err(c: &mut Connection, bytes: &[u8]) -> Error {
        let mut buf = [0u8; 256];
        buf[..bytes.len()].copy_from_slice(bytes);
        let mut at = 0;
        loop {
            match c.read_raw(&mut buf[at..bytes.len()], t(0)) {
                Err(e) => return e,
                Ok((0, None)) => panic!("no error"),
                Ok((n, _)) => at += n,
            }
        }
    }

    const K: Option<[u8; 4]> = Some([1, 2, 3, 4]);

    #[test]
    fn fail_queues_close_with_rfc_code() {
        let mut c = server();
        let (f, n) = frame(0x82, b"x", None);
        assert_eq!(read_err(&mut c, &f[..n]), Error::UnmaskedFrame);
        assert_eq!(c.state(), State::Closed);
        let tx = c.poll_transmit().unwrap();
        assert_eq!(tx.opcode(), OpCode::Close);
        assert_eq!(&tx[..], &[0x88, 0x02, 0x03, 0xea]); // 1002
        assert!(c.wants_close_transport());
    }

    #[test]
    fn ping_is_answered_and_close_is_echoed() {
        let mut c = server();
        let (mut f, n) = frame(0x89, b"abc", K);
        let r = c.read(&mut f[..n], t(1)).unwrap();
        assert_eq!(r.consumed, n);
        assert!(matches!(r.event, Some(Event::Ping(p)) if p.as_bytes() == b"abc"));
        let pong = c.poll_transmit().unwrap();
        assert_eq!(&pong[..], &[0x8a, 0x03, b'a', b'b', b'c']);
        let (mut f, n) = frame(0x88, &[0x03, 0xe8, b'b', b'y', b'e'], K);
        let r = c.read(&mut f[..n], t(2)).unwrap();
        assert!(
            matches!(r.event, Some(Event::Close(rc)) if rc.code() == CloseCode::NORMAL && rc.reason() == "bye")
        );
        assert_eq!(c.state(), State::CloseReceived);
        assert_eq!(
            c.encode_frame(DataKind::Text, 1, true).unwrap_err(),
            Error::ConnectionClosed
        );
        let echo = c.poll_transmit().unwrap();
        assert_eq!(&echo[..], &[0x88, 0x02, 0x03, 0xe8]);
        assert_eq!(c.state(), State::Closed);
        assert!(c.wants_close_transport(), "server closes TCP first");
    }

    #[test]
    fn client_waits_for_server_fin_then_times_out() {
        let mut c = Connection::client(Config::default(), |b: &mut [u8]| b.fill(9), t(0));
        c.close(CloseCode::NORMAL, "", t(0)).unwrap();
        assert_eq!(c.state(), State::Closing);
        assert_eq!(c.poll_transmit().unwrap().opcode(), OpCode::Close);
        let (mut f, n) = frame(0x88, &[0x03, 0xe8], None);
        c.read(&mut f[..n], t(10)).unwrap();
        assert_eq!(c.state(), State::Closed);
        assert!(
            !c.wants_close_transport(),
            "client waits for the server's FIN"
        );
        assert_eq!(c.poll_timeout(), Some(t(5_010)));
        assert_eq!(c.handle_timeout(t(5_009)), Ok(()));
        assert!(!c.wants_close_transport());
        assert_eq!(
            c.handle_timeout(t(5_010)),
            Ok(()),
            "a completed handshake is not an error"
        );
        assert!(c.wants_close_transport());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn keepalive_ping_then_dead_peer() {
        let mut c = server();
        assert_eq!(c.poll_timeout(), Some(t(30_000)));
        c.handle_timeout(t(30_000)).unwrap();
        let ping = c.poll_transmit().unwrap();
        assert_eq!(ping.opcode(), OpCode::Ping);
        assert_eq!(c.poll_timeout(), Some(t(50_000)));
        assert_eq!(c.handle_timeout(t(50_000)), Err(Error::PeerUnresponsive));
        assert_eq!(
            Error::PeerUnresponsive.close_code(),
            Some(CloseCode::ABNORMAL)
        );
        let close = c.poll_transmit().unwrap();
        assert_eq!(&close[2..4], &1001u16.to_be_bytes());
        assert_eq!(c.state(), State::Closed);
    }

    #[test]
    fn pong_answering_keepalive_measures_rtt_and_keeps_alive() {
        let mut c = server();
        c.handle_timeout(t(30_000)).unwrap();
        let ping = c.poll_transmit().unwrap();
        let payload = &ping[2..];
        let (mut f, n) = frame(0x8a, payload, K);
        c.read(&mut f[..n], t(30_042)).unwrap();
        assert_eq!(c.rtt(), Some(Duration::from_millis(42)));
        assert_eq!(c.poll_timeout(), Some(t(60_042)));
        assert_eq!(c.handle_timeout(t(50_000)), Ok(()));
    }

    #[test]
    fn frames_after_peer_close_are_discarded() {
        let mut c = server();
        let (mut f, n) = frame(0x88, &[], K);
        assert!(
            matches!(c.read(&mut f[..n], t(0)).unwrap().event, Some(Event::Close(rc)) if rc.code() == CloseCode::NO_STATUS)
        );
        assert_eq!(&c.poll_transmit().unwrap()[..], &[0x88, 0x00]);
        let (mut f, n) = frame(0x81, b"late", K);
        assert_eq!(
            c.read(&mut f[..n], t(0)).unwrap(),
            Read {
                consumed: n,
                event: None
            }
        );
    }

    #[test]
    fn data_after_our_close_is_still_delivered() {
        let mut c = server();
        c.close(CloseCode::GOING_AWAY, "bye", t(0)).unwrap();
        c.poll_transmit().unwrap();
        let (mut f, n) = frame(0x81, b"in flight", K);
        let r = c.read(&mut f[..n], t(0)).unwrap();
        assert!(matches!(r.event, Some(Event::Data(d)) if d.payload == b"in flight"));
    }

    #[test]
    fn send_state_rules() {
        let mut c = server();
        let f = c.encode_frame(DataKind::Text, 3, false).unwrap();
        assert_eq!(f.header(), &[0x01, 0x03]);
        assert_eq!(
            c.encode_frame(DataKind::Binary, 1, true).unwrap_err(),
            Error::MessageInProgress
        );
        let f = c.encode_frame(DataKind::Text, 2, true).unwrap();
        assert_eq!(f.header(), &[0x80, 0x02]);
        assert!(!c.is_sending_message());
        assert_eq!(c.ping(&[0; 126], t(0)), Err(Error::ControlPayloadTooLong));
        assert_eq!(
            c.close(CloseCode::ABNORMAL, "", t(0)),
            Err(Error::CloseCodeNotSendable(1006))
        );
    }

    #[test]
    fn fragments_split_and_mark_last() {
        let v: alloc_free::Vec3 = alloc_free::collect(Fragments::new(10, 4));
        assert_eq!(v.0[..v.1], [(0..4, false), (4..8, false), (8..10, true)]);
        let v = alloc_free::collect(Fragments::new(0, 4));
        assert_eq!(v.0[..v.1], [(0..0, true), (0..0, true), (0..0, true)][..1]);
    }

    mod alloc_free {
        use core::ops::Range;
        pub(super) struct Vec3(pub [(Range<usize>, bool); 3], pub usize);
        pub(super) type Item = (Range<usize>, bool);
        pub(super) fn collect(it: impl Iterator<Item = Item>) -> Vec3 {
            let mut v = Vec3([(0..0, false), (0..0, false), (0..0, false)], 0);
            for x in it {
                v.0[v.1] = x;
                v.1 += 1;
            }
            v
        }
    }

    #[test]
    fn header_len_for_matches_the_encoded_header() {
        for len in [0usize, 1, 125, 126, 127, 0xffff, 0x1_0000, usize::MAX] {
            for role in [Role::Client, Role::Server] {
                let h = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask: (role == Role::Client).then_some([0; 4]),
                    payload_len: len as u64,
                };
                assert_eq!(header_len_for(len, role), h.encoded_len(), "{len} {role:?}");
            }
        }
    }

    #[test]
    fn fragments_cover_every_byte_once() {
        for len in 0..40 {
            for max in [0, 1, 2, 3, 7, 39, 40, 41, usize::MAX] {
                let mut next = 0;
                let mut frames = 0;
                let mut it = Fragments::new(len, max);
                for (r, last) in it.by_ref() {
                    assert_eq!(r.start, next);
                    assert!(r.len() <= max.max(1));
                    assert!(!r.is_empty() || len == 0);
                    next = r.end;
                    frames += 1;
                    assert_eq!(last, next == len);
                }
                assert_eq!(next, len);
                assert_eq!(frames, len.div_ceil(max.max(1)).max(1));
                assert_eq!(it.next(), None, "fused");
            }
        }
    }

    #[test]
    fn control_payload_bounds_and_split_accumulation() {
        assert_eq!(
            ControlPayload::new(&[0; 126]),
            Err(Error::ControlPayloadTooLong)
        );
        let full = ControlPayload::new(&[7; 125]).unwrap();
        assert_eq!(full.as_bytes(), &[7; 125][..]);
        // A control frame read in pieces is pushed in pieces.
        let mut p = ControlPayload::EMPTY;
        p.push(b"ab");
        p.push(b"");
        p.push(b"c");
        assert_eq!(p, ControlPayload::new(b"abc").unwrap());
    }

    #[test]
    fn state_follows_the_close_flags() {
        let mut c = server();
        assert_eq!(c.state(), State::Open);
        c.close_queued = true;
        assert_eq!(c.state(), State::Closing);
        c.close_received = Some(ReceivedClose::new(CloseFrame {
            code: CloseCode::NORMAL,
            reason: "",
        }));
        assert_eq!(c.state(), State::CloseReceived);
        c.close_sent = true;
        assert_eq!(c.state(), State::Closed);
        let mut c = server();
        c.failed = Some(Error::ConnectionReset);
        assert_eq!(c.state(), State::Closed);
    }

    #[test]
    fn rsv1_allowed_without_deflate_is_not_compression() {
        // Regression (props::garbage_is_handled): bits allowed for some other extension
        // must not switch off UTF-8 validation as if the payload were compressed.
        let mut c = server();
        c.set_allowed_rsv(crate::frame::RSV1);
        let (mut f, n) = frame(0xc1, &[b'a', 0xff], K);
        assert_eq!(c.read_raw(&mut f[..n], t(0)), Err(Error::InvalidUtf8));
        let mut c = server();
        c.set_allowed_rsv(crate::frame::RSV1);
        let (mut f, n) = frame(0xc1, b"ok", K);
        let (_, ev) = c.read_raw(&mut f[..n], t(0)).unwrap();
        assert!(matches!(
            ev,
            Some(RawEvent::Data {
                compressed: false,
                ..
            })
        ));
    }

    #[test]
    fn read_raw_ranges_point_at_the_unmasked_payload() {
        let mut c = server();
        let (mut f, n) = frame(0x82, b"xyz", K);
        let (used, ev) = c.read_raw(&mut f[..n], t(0)).unwrap();
        assert_eq!(used, n);
        match ev {
            Some(RawEvent::Data {
                kind: DataKind::Binary,
                range,
                message_start: true,
                message_end: true,
                compressed: false,
            }) => {
                assert_eq!(range, 6..9);
                assert_eq!(&f[range], b"xyz");
            }
            other => panic!("{other:?}"),
        }
    }
}
