//! The WebSocket connection over any `AsyncRead + AsyncWrite` stream.
//!
//! All protocol logic lives in [`sansock::Connection`]; this module only moves bytes
//! between it and the stream, and drives its timers with `tokio::time`.
//!
//! # Flush semantics and backpressure
//! Outgoing frames are encoded into a write buffer. [`WebSocket::send`] encodes and then
//! flushes: when it returns `Ok`, every byte of the message was handed to the stream and
//! the stream was flushed. `Sink::start_send` (and [`WebSocket::feed`]) only encode;
//! `poll_ready` flushes first whenever the buffer holds `max_write_buffer` bytes or
//! more, so a slow peer makes senders wait instead of growing memory. A write error is
//! sticky: every later send returns it, nothing is silently dropped.
//!
//! # Cancel safety
//! [`WebSocket::recv`] (and [`ReadHalf::recv`]) keep all progress in the connection, not
//! in the future: dropping a `recv` future (for example when another branch of
//! `tokio::select!` wins) loses no bytes and no message; the next `recv` continues where
//! it stopped. `send` is not cancel-safe in the same way: a cancelled `send` may leave
//! the message encoded but unflushed; the next `send` or `flush` delivers it.
//!
//! # Memory
//! Buffers start empty and grow with traffic. Reads start at 512 bytes and double
//! while the peer keeps filling them, up to `read_chunk`, and halve again when reads get
//! small; the read buffer is kept while it fits the current read size, so steady traffic
//! reuses it and the echo path allocates nothing per message
//! (`benches/tests/zero_alloc.rs`), and it is released when it drains after a burst. Measured with `examples/idle-clients` against
//! `echo-server` (10,000 idle connections on loopback, server RSS): see the README.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_core::Stream;
use futures_sink::Sink;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sansock::conn::{Fragments, RawEvent};
use sansock::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use sansock::{CloseCode, Connection, DataKind, Message, RandomSource, Role, State};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;
use tracing::{Span, debug, trace, warn};

use crate::Error;

/// Settings of a connection: the core's limits and timers plus the adapter's buffers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Limits and timers of the protocol (see [`sansock::Config`]).
    pub protocol: sansock::Config,
    /// `send` waits (flushes) once this many bytes are buffered.
    pub max_write_buffer: usize,
    /// The most bytes reserved for one read from the stream. Reads start small
    /// (512 bytes) and grow up to this while the peer keeps the buffer full.
    pub read_chunk: usize,
    /// permessage-deflate (RFC 7692): `Some` makes a client offer it and a server accept
    /// offers under this policy. `None` (the default): no compression.
    #[cfg(feature = "deflate")]
    pub deflate: Option<sansock::deflate::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: sansock::Config::default(),
            max_write_buffer: 128 << 10,
            read_chunk: 64 << 10,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}

impl Config {
    /// The defaults with the given protocol limits and timers.
    pub fn with_protocol(protocol: sansock::Config) -> Self {
        Config {
            protocol,
            ..Config::default()
        }
    }
}

/// The first read size of a connection: small, so idle connections stay cheap.
const MIN_READ: usize = 512;

/// Server payloads at least this long are sent without copying them into the write
/// buffer (see `Shared::encode_data`).
const ZERO_COPY_MIN: usize = 16 << 10;

/// Masking keys for clients, drawn from a ChaCha generator seeded by the OS.
#[derive(Debug)]
pub(crate) struct MaskRng(Option<Box<StdRng>>);

impl MaskRng {
    pub(crate) fn for_role(role: Role) -> Self {
        match role {
            Role::Client => MaskRng(Some(Box::new(StdRng::from_os_rng()))),
            Role::Server => MaskRng(None),
        }
    }
}

impl RandomSource for MaskRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if let Some(rng) = &mut self.0 {
            rand::RngCore::fill_bytes(rng.as_mut(), dest);
        }
    }
}

/// The part of a connection both halves touch: the protocol state and the write side.
struct Shared<S> {
    conn: Connection<MaskRng>,
    wr: tokio::io::WriteHalf<S>,
    wbuf: BytesMut,
    /// Whole frames written before `wbuf`: pre-encoded messages shared with other
    /// connections (see [`WriteHalf::feed_encoded`]) and what `wbuf` held before them.
    frames: VecDeque<Bytes>,
    frames_len: usize,
    epoch: tokio::time::Instant,
    max_write_buffer: usize,
    write_error: Option<io::ErrorKind>,
    /// Bytes went to the stream since its last completed flush.
    unflushed: bool,
    shut_down: bool,
    span: Span,
}

impl<S: AsyncRead + AsyncWrite> Shared<S> {
    fn now(&self) -> sansock::Instant {
        sansock::Instant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    /// Move the control frames the core owes into the write buffer. The buffer only ever
    /// holds whole frames, so this is always a frame boundary.
    fn queue_transmits(&mut self) {
        // Usually nothing is owed: skip building an empty `Transmit` (it is moved by
        // value, 141 bytes) on every message.
        if !self.conn.has_transmit() {
            return;
        }
        while let Some(t) = self.conn.poll_transmit() {
            trace!(parent: &self.span, opcode = ?t.opcode(), "control frame queued");
            self.wbuf.extend_from_slice(&t);
        }
    }

    fn check_writable(&self) -> Result<(), Error> {
        match self.write_error {
            Some(kind) => Err(Error::Io(io::Error::new(kind, "an earlier write failed"))),
            None => Ok(()),
        }
    }

    /// Write the buffer out and flush the stream.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.check_writable()?;
        self.queue_transmits();
        loop {
            while self.frames.front().is_some_and(Bytes::is_empty) {
                self.frames.pop_front();
            }
            if self.frames.is_empty() {
                break;
            }
            // Headers and payloads queued separately go out together.
            let written = {
                let mut slices = [io::IoSlice::new(&[]); 8];
                let mut k = 0;
                for (slot, f) in slices.iter_mut().zip(self.frames.iter()) {
                    *slot = io::IoSlice::new(f);
                    k += 1;
                }
                ready!(Pin::new(&mut self.wr).poll_write_vectored(cx, &slices[..k]))
            };
            let mut n = match written {
                Ok(0) => {
                    return Poll::Ready(Err(self.write_failed(io::ErrorKind::WriteZero.into())));
                }
                Ok(n) => n,
                Err(e) => return Poll::Ready(Err(self.write_failed(e))),
            };
            self.unflushed = true;
            self.frames_len -= n;
            while let Some(front) = self.frames.front_mut() {
                if n < front.len() {
                    front.advance(n);
                    break;
                }
                n -= front.len();
                self.frames.pop_front();
            }
        }
        while !self.wbuf.is_empty() {
            match ready!(Pin::new(&mut self.wr).poll_write(cx, &self.wbuf)) {
                Ok(0) => {
                    return Poll::Ready(Err(self.write_failed(io::ErrorKind::WriteZero.into())));
                }
                Ok(n) => {
                    self.unflushed = true;
                    if n == self.wbuf.len() {
                        // All written: start over at the same place.
                        self.wbuf.clear();
                    } else {
                        self.wbuf.advance(n);
                    }
                }
                Err(e) => return Poll::Ready(Err(self.write_failed(e))),
            }
        }
        if self.wbuf.capacity() > self.max_write_buffer {
            // Give a burst's memory back instead of keeping it per idle connection.
            self.wbuf = BytesMut::new();
        }
        // Nothing written since the last completed flush: nothing to flush (the receive
        // path calls this after every message, to send pongs and close echoes).
        if self.unflushed {
            if let Err(e) = ready!(Pin::new(&mut self.wr).poll_flush(cx)) {
                return Poll::Ready(Err(self.write_failed(e)));
            }
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    fn write_failed(&mut self, e: io::Error) -> Error {
        warn!(parent: &self.span, error = %e, "write failed");
        self.write_error = Some(e.kind());
        Error::Io(e)
    }

    /// Flush, then close the transport if the core says it is time.
    fn poll_flush_and_maybe_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.poll_flush(cx))?;
        if self.conn.wants_close_transport() && !self.shut_down {
            // A peer that already went away makes shutdown fail; the connection is over
            // either way.
            let _ = ready!(Pin::new(&mut self.wr).poll_shutdown(cx));
            self.shut_down = true;
            debug!(parent: &self.span, "transport closed");
        }
        Poll::Ready(Ok(()))
    }

    fn encode(&mut self, msg: Message) -> Result<(), Error> {
        self.check_writable()?;
        match msg {
            Message::Text(t) => self.encode_data(DataKind::Text, t.into_bytes())?,
            Message::Binary(b) => self.encode_data(DataKind::Binary, b)?,
            Message::Ping(p) => {
                let now = self.now();
                self.conn.ping(&p, now)?
            }
            Message::Pong(p) => self.conn.pong(&p)?,
            Message::Close(frame) => {
                let (code, reason) = match &frame {
                    Some(f) => (f.code, f.reason.as_str()),
                    None => (CloseCode::NO_STATUS, ""),
                };
                debug!(parent: &self.span, code = code.0, reason, "closing");
                let now = self.now();
                self.conn.close(code, reason, now)?;
            }
        }
        self.queue_transmits();
        Ok(())
    }

    /// Encode a data message. A long payload on a server connection is not copied: its
    /// frame headers go through the write buffer and the payload itself is queued as
    /// shared bytes, written after its header in one vectored write.
    fn encode_data(&mut self, kind: DataKind, payload: Bytes) -> Result<(), sansock::Error> {
        if payload.len() < ZERO_COPY_MIN
            || self.conn.role() != Role::Server
            || self.conn.is_deflate_enabled()
            || !self.wr.is_write_vectored()
        {
            return self.conn.encode_message(kind, &payload, &mut self.wbuf);
        }
        if self.conn.is_sending_message() {
            // As `encode_message`: never continue a message streamed with `send_chunk`.
            return Err(sansock::Error::MessageInProgress);
        }
        // The first frame checks the state (closed); once it passed, the continuation
        // frames of the same message cannot fail.
        for (range, last) in self.conn.fragments(payload.len()) {
            let frame = self.conn.encode_frame(kind, range.len(), last)?;
            self.wbuf.extend_from_slice(frame.header());
            // Everything encoded before, then this header, then the payload.
            let before = self.wbuf.split().freeze();
            self.frames_len += before.len() + range.len();
            self.frames.push_back(before);
            self.frames.push_back(payload.slice(range));
        }
        Ok(())
    }

    /// Queue a message framed by [`EncodedMessage`], after replaying its frames on the
    /// core so the send state stays what it would be had the core encoded them.
    fn encode_prepared(&mut self, msg: &EncodedMessage) -> Result<(), Error> {
        self.check_writable()?;
        if self.conn.role() != Role::Server {
            return Err(Error::Protocol(sansock::Error::InvalidRequest(
                "pre-encoded frames are unmasked: server connections only",
            )));
        }
        // The first frame checks the state (closed, a message in progress); once it
        // passed, the continuation frames of the same message cannot fail.
        let mut at = 0;
        for (range, last) in Fragments::new(msg.payload_len, msg.frame_size) {
            let frame = self.conn.encode_frame(msg.kind, range.len(), last)?;
            let header = frame.header();
            debug_assert_eq!(msg.bytes.get(at..at + header.len()), Some(header));
            at += header.len() + range.len();
        }
        if !self.wbuf.is_empty() {
            let before = self.wbuf.split().freeze();
            self.frames_len += before.len();
            self.frames.push_back(before);
        }
        self.frames_len += msg.bytes.len();
        self.frames.push_back(msg.bytes.clone());
        self.queue_transmits();
        Ok(())
    }

    /// Bytes encoded but not yet written.
    fn pending(&self) -> usize {
        self.wbuf.len() + self.frames_len
    }
}

/// A text or binary message framed once for any number of server connections.
///
/// Server frames are not masked, so the frame bytes (headers and payload) are the same
/// for every connection: a broadcast builds them once and every
/// [`WriteHalf::feed_encoded`] shares them (a reference count, no copy). Client
/// connections must mask and refuse it.
///
/// ```no_run
/// # async fn demo(peers: &mut [sansock_tokio::WriteHalf<tokio::net::TcpStream>]) -> Result<(), sansock_tokio::Error> {
/// use sansock_tokio::{EncodedMessage, Message};
/// let msg = EncodedMessage::new(&Message::text("to everyone")).expect("a data message");
/// for peer in peers {
///     peer.send_encoded(&msg).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedMessage {
    kind: DataKind,
    payload_len: usize,
    frame_size: usize,
    bytes: Bytes,
}

impl EncodedMessage {
    /// Frame a text or binary message as one frame; `None` for control messages.
    pub fn new(message: &Message) -> Option<Self> {
        Self::with_max_frame_size(message, usize::MAX)
    }

    /// Frame a text or binary message in frames of at most `max_frame_size` payload
    /// bytes (at least 1); `None` for control messages.
    pub fn with_max_frame_size(message: &Message, max_frame_size: usize) -> Option<Self> {
        let (kind, payload): (DataKind, &[u8]) = match message {
            Message::Text(t) => (DataKind::Text, t.as_bytes()),
            Message::Binary(b) => (DataKind::Binary, b),
            _ => return None,
        };
        let frame_size = max_frame_size.max(1);
        let frames = Fragments::new(payload.len(), frame_size).count();
        let mut out = BytesMut::with_capacity(payload.len() + frames * MAX_HEADER_LEN);
        for (range, last) in Fragments::new(payload.len(), frame_size) {
            let opcode = match (range.start, kind) {
                (0, DataKind::Text) => OpCode::Text,
                (0, DataKind::Binary) => OpCode::Binary,
                _ => OpCode::Continuation,
            };
            let header = FrameHeader {
                fin: last,
                rsv: 0,
                opcode,
                mask: None,
                payload_len: range.len() as u64,
            };
            let mut buf = [0u8; MAX_HEADER_LEN];
            let n = header.encode(&mut buf);
            out.extend_from_slice(&buf[..n]);
            out.extend_from_slice(&payload[range]);
        }
        Some(EncodedMessage {
            kind,
            payload_len: payload.len(),
            frame_size,
            bytes: out.freeze(),
        })
    }

    /// Text or binary.
    pub fn kind(&self) -> DataKind {
        self.kind
    }

    /// The length of the message's payload.
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// The frames as they go on the wire (headers and payload).
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl std::fmt::Debug for EncodedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedMessage")
            .field("kind", &self.kind)
            .field("payload_len", &self.payload_len)
            .field("wire_len", &self.bytes.len())
            .finish()
    }
}

type SharedRef<S> = Arc<Mutex<Shared<S>>>;

fn lock<S>(shared: &SharedRef<S>) -> MutexGuard<'_, Shared<S>> {
    // A panic while holding the lock cannot leave the protocol state half-updated in a
    // way that matters more than the panic itself; keep going with the inner value.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// One chunk of a message being received as a stream (see [`ReadHalf::recv_chunk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Text or binary.
    pub kind: DataKind,
    /// The bytes of this chunk. Text chunks may end inside a UTF-8 code point; the
    /// message as a whole is validated.
    pub data: Bytes,
    /// The first chunk of a message.
    pub message_start: bool,
    /// The last chunk of a message.
    pub message_end: bool,
}

/// The receiving half of a WebSocket. It still answers pings and the peer's close while
/// the [`WriteHalf`] is idle or in another task.
pub struct ReadHalf<S> {
    rd: tokio::io::ReadHalf<S>,
    rbuf: BytesMut,
    read_chunk: usize,
    read_size: usize,
    /// The last frame was read in place into a buffer much larger than `read_size`:
    /// keep that buffer for the next one (see `poll_fill`).
    big_frame: bool,
    shared: SharedRef<S>,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<sansock::Instant>,
    /// The clock when the bytes in `rbuf` were read.
    read_at: Option<sansock::Instant>,
    eof: bool,
    done: bool,
}

/// The sending half of a WebSocket.
pub struct WriteHalf<S> {
    shared: SharedRef<S>,
}

/// A WebSocket connection over the stream `S` (a `TcpStream`, a TLS stream, or any
/// `AsyncRead + AsyncWrite`).
///
/// ```no_run
/// # async fn demo(ws: &mut sansock_tokio::WebSocket<tokio::net::TcpStream>) -> Result<(), sansock_tokio::Error> {
/// use sansock_tokio::Message;
/// ws.send(Message::text("hello")).await?;
/// while let Some(msg) = ws.recv().await {
///     match msg? {
///         Message::Text(t) => println!("got {t}"),
///         Message::Close(_) => break,
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
pub struct WebSocket<S> {
    read: ReadHalf<S>,
    write: WriteHalf<S>,
}

impl<S: AsyncRead + AsyncWrite> WebSocket<S> {
    /// Wrap a stream whose opening handshake is complete. `leftover` holds bytes read
    /// past the handshake; they belong to the connection.
    pub fn from_upgraded(stream: S, role: Role, config: Config, leftover: Bytes) -> Self {
        let span = tracing::debug_span!("websocket", role = ?role);
        let epoch = tokio::time::Instant::now();
        let conn = Connection::new(
            role,
            config.protocol.clone(),
            MaskRng::for_role(role),
            sansock::Instant::ZERO,
        );
        let (rd, wr) = tokio::io::split(stream);
        let shared = Arc::new(Mutex::new(Shared {
            conn,
            wr,
            wbuf: BytesMut::new(),
            frames: VecDeque::new(),
            frames_len: 0,
            epoch,
            max_write_buffer: config.max_write_buffer,
            write_error: None,
            unflushed: false,
            shut_down: false,
            span,
        }));
        let mut rbuf = BytesMut::new();
        rbuf.extend_from_slice(&leftover);
        WebSocket {
            read: ReadHalf {
                rd,
                rbuf,
                read_chunk: config.read_chunk.max(MIN_READ),
                read_size: MIN_READ,
                big_frame: false,
                shared: shared.clone(),
                timer: Box::pin(tokio::time::sleep_until(epoch)),
                timer_at: None,
                read_at: None,
                eof: false,
                done: false,
            },
            write: WriteHalf { shared },
        }
    }

    /// Receive the next message; `None` once the connection is closed. Pings, pongs and
    /// the peer's close are returned too (pings are answered automatically unless
    /// `auto_pong` is off). Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        self.read.recv().await
    }

    /// Encode `msg` and flush it to the stream.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        self.write.send(msg).await
    }

    /// Encode `msg` without flushing (waits first if the write buffer is full).
    pub async fn feed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        self.write.feed(msg).await
    }

    /// Flush everything encoded so far.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.write.flush().await
    }

    /// Send a message framed once for many connections; see
    /// [`WriteHalf::send_encoded`].
    pub async fn send_encoded(&mut self, msg: &EncodedMessage) -> Result<(), Error> {
        self.write.send_encoded(msg).await
    }

    /// Send a close frame and wait (bounded by `close_timeout`) for the peer's close and
    /// the end of the transport. Messages that arrive meanwhile are discarded.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.write.start_close(code, reason).await?;
        while let Some(item) = self.read.recv().await {
            if let Err(e) = item {
                return match e {
                    Error::Protocol(sansock::Error::CloseTimeout) => Ok(()),
                    e => Err(e),
                };
            }
        }
        Ok(())
    }

    /// Turn on permessage-deflate with negotiated parameters (the handshake functions of
    /// this crate do it for you when `Config::deflate` is set).
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(
        &self,
        params: sansock::deflate::DeflateParams,
        config: &sansock::deflate::DeflateConfig,
    ) {
        lock(&self.write.shared).conn.enable_deflate(params, config);
    }

    /// Whether permessage-deflate is on.
    pub fn is_deflate_enabled(&self) -> bool {
        lock(&self.write.shared).conn.is_deflate_enabled()
    }

    /// Split into halves that can live in different tasks.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        (self.read, self.write)
    }

    /// Put halves from [`split`](Self::split) back together.
    pub fn reunite(
        read: ReadHalf<S>,
        write: WriteHalf<S>,
    ) -> Result<Self, (ReadHalf<S>, WriteHalf<S>)> {
        if Arc::ptr_eq(&read.shared, &write.shared) {
            Ok(WebSocket { read, write })
        } else {
            Err((read, write))
        }
    }

    /// The receiving half, for streaming reads.
    pub fn reader(&mut self) -> &mut ReadHalf<S> {
        &mut self.read
    }

    /// The sending half, for streaming writes.
    pub fn writer(&mut self) -> &mut WriteHalf<S> {
        &mut self.write
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.write.state()
    }

    /// Round-trip time of the last answered ping.
    pub fn rtt(&self) -> Option<Duration> {
        self.write.rtt()
    }
}

impl<S: AsyncRead + AsyncWrite> ReadHalf<S> {
    /// Receive the next whole message; see [`WebSocket::recv`]. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Receive the next chunk of a data message, so a message of any size streams
    /// through in pieces no larger than the read buffer. Pings are answered and pongs
    /// dropped on the way; after the peer's close this returns `None`. Do not mix with
    /// [`recv`](Self::recv) in the middle of a message. Cancel-safe.
    pub async fn recv_chunk(&mut self) -> Option<Result<Chunk, Error>> {
        poll_fn(|cx| self.poll_recv_chunk(cx)).await
    }

    /// The peer's close frame, once received.
    pub fn peer_close(&self) -> Option<(CloseCode, String)> {
        lock(&self.shared)
            .conn
            .peer_close()
            .map(|c| (c.code(), c.reason().to_owned()))
    }

    /// Poll for the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.poll_next_with(cx, |sh, rbuf, now| sh.conn.read_message(rbuf, now))
    }

    /// Poll for the next chunk.
    pub fn poll_recv_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Chunk, Error>>> {
        self.poll_next_with(cx, |sh, rbuf, now| {
            loop {
                let (consumed, ev) = sh.conn.read_raw(&mut rbuf[..], now)?;
                match ev {
                    Some(RawEvent::Data {
                        kind,
                        range,
                        message_start,
                        message_end,
                        compressed,
                    }) => {
                        let data = if compressed {
                            let mut out = BytesMut::new();
                            sh.conn
                                .decompress(kind, &rbuf[range], message_end, &mut out)?;
                            rbuf.advance(consumed);
                            out.freeze()
                        } else {
                            rbuf.advance(range.start);
                            let data = rbuf.split_to(range.len()).freeze();
                            rbuf.advance(consumed - range.end);
                            data
                        };
                        return Ok(Some(Chunk {
                            kind,
                            data,
                            message_start,
                            message_end,
                        }));
                    }
                    Some(_) => rbuf.advance(consumed),
                    None if consumed == 0 => return Ok(None),
                    None => rbuf.advance(consumed),
                }
            }
        })
    }

    fn poll_next_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut next: impl FnMut(
            &mut Shared<S>,
            &mut BytesMut,
            sansock::Instant,
        ) -> Result<Option<T>, sansock::Error>,
    ) -> Poll<Option<Result<T, Error>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let shared = self.shared.clone();
            let mut sh = lock(&shared);
            let _enter = sh.span.clone().entered();
            // One clock reading per read from the stream: the messages of one read arrived
            // together, the time only feeds millisecond timers, and reading the clock costs
            // as much as parsing a small frame. A timer that fires goes by its own deadline.
            let now = *self.read_at.get_or_insert_with(|| sh.now());
            match next(&mut sh, &mut self.rbuf, now) {
                Ok(Some(item)) => {
                    // Answer pings and echo a close without waiting for the writer; a
                    // full socket just leaves it queued for the next poll. A write error
                    // is sticky and reported by the next poll: the item is delivered.
                    let _ = sh.poll_flush_and_maybe_shutdown(cx);
                    return Poll::Ready(Some(Ok(item)));
                }
                Ok(None) => {}
                Err(e) => {
                    debug!(error = %e, "connection failed");
                    // Best effort: the close frame with the RFC's code, then the transport.
                    let _ = sh.poll_flush_and_maybe_shutdown(cx);
                    self.done = true;
                    return Poll::Ready(Some(Err(Error::Protocol(e))));
                }
            }
            match sh.poll_flush_and_maybe_shutdown(cx) {
                Poll::Ready(Err(e)) => {
                    self.done = true;
                    if sh.conn.peer_close().is_some() {
                        // The peer closed first and may already be gone: failing to echo
                        // its close is the end of a closed connection, not an error.
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Ok(())) if sh.shut_down => {
                    self.done = true;
                    return Poll::Ready(None);
                }
                _ => {}
            }
            if self.eof {
                self.done = true;
                return Poll::Ready(match sh.conn.handle_eof() {
                    Ok(()) => None,
                    Err(e) => Some(Err(Error::Protocol(e))),
                });
            }
            // Timers: keepalive, pong deadline, closing handshake.
            if let Some(at) = sh.conn.poll_timeout() {
                // The keepalive deadline moves with every message received; re-arming the
                // timer each time costs more than the rest of a small message's receive
                // path. So the timer is only moved earlier: when it fires before the
                // current deadline, `handle_timeout` does nothing and it is armed again.
                if self.timer_at.is_none_or(|armed| at < armed) {
                    self.timer_at = Some(at);
                    let when = sh.epoch + Duration::from_millis(at.as_millis());
                    self.timer.as_mut().reset(when);
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    let armed = self.timer_at.take().unwrap_or(at);
                    if let Err(e) = sh.conn.handle_timeout(now.max(armed)) {
                        debug!(error = %e, "timer fired");
                        let _ = sh.poll_flush_and_maybe_shutdown(cx);
                        self.done = true;
                        return Poll::Ready(Some(Err(Error::Protocol(e))));
                    }
                    continue;
                }
            }
            let pending = usize::try_from(sh.conn.frame_bytes_pending()).unwrap_or(usize::MAX);
            drop(_enter);
            drop(sh);
            if let Err(e) = ready!(self.poll_fill(cx, pending)) {
                return Poll::Ready(Some(Err(e)));
            }
        }
    }

    /// Read more bytes from the stream into the read buffer. `pending`: bytes of the
    /// current frame still to come; when the buffer already has room for all of them
    /// (the core reserved it to receive a large frame in place), it is not grown, which
    /// could mean copying what is already there.
    fn poll_fill(&mut self, cx: &mut Context<'_>, pending: usize) -> Poll<Result<(), Error>> {
        self.read_at = None;
        if pending > 2 * self.read_size {
            self.big_frame = true;
        }
        if pending == 0
            && !self.big_frame
            && self.rbuf.is_empty()
            && self.rbuf.capacity() > 2 * self.read_size
        {
            // A burst is over (reads got small again): give its memory back. A buffer
            // that fits the current read size is kept, so a steady stream of messages
            // reuses it instead of allocating one per message; so is the buffer of a
            // large frame received in place, until a small frame comes (or the
            // connection closes), so that a stream of large messages reuses it too.
            self.rbuf = BytesMut::new();
        }
        let spare = self.rbuf.capacity() - self.rbuf.len();
        if spare < self.read_size && (pending == 0 || spare < pending) {
            self.rbuf.reserve(self.read_size);
        }
        let read = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.rd),
            cx,
            &mut self.rbuf
        ));
        if let Ok(n) = read
            && pending == 0
            && n > 0
        {
            // The start of the next frame: whether it is large again shows when the
            // rest of it is read (or now, when much more than usual came at once).
            self.big_frame = n > 2 * self.read_size;
        }
        match read {
            Ok(0) => self.eof = true,
            // Reads that fill their room double it (up to `read_chunk`); reads that use
            // under an eighth of it halve it (down to 512 bytes).
            Ok(n) if n >= self.read_size => {
                self.read_size = (self.read_size * 2).min(self.read_chunk);
            }
            Ok(n) if n < self.read_size / 8 => {
                self.read_size = (self.read_size / 2).max(MIN_READ);
            }
            Ok(_) => {}
            Err(e) => {
                let mut sh = lock(&self.shared);
                if sh.conn.peer_close().is_some() {
                    // A reset after the peer's close ends the connection like a FIN.
                    self.eof = true;
                    return Poll::Ready(Ok(()));
                }
                self.done = true;
                let _ = sh.conn.handle_eof();
                return Poll::Ready(Err(Error::Io(e)));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite> WriteHalf<S> {
    /// Encode `msg` and flush it; `Ok` means every byte reached the stream.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        self.feed(msg).await?;
        self.flush().await
    }

    /// Encode `msg` without flushing, waiting first while the write buffer is full.
    pub async fn feed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        poll_fn(|cx| self.poll_ready_inner(cx)).await?;
        lock(&self.shared).encode(msg.into())
    }

    /// Flush everything encoded so far.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_flush_and_maybe_shutdown(cx)).await
    }

    /// Send one frame of a message being streamed: `message_end` finishes it. Data longer
    /// than `max_send_frame_size` becomes several frames. Memory stays bounded by the
    /// write buffer, however long the message.
    pub async fn send_chunk(
        &mut self,
        kind: DataKind,
        data: &[u8],
        message_end: bool,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.poll_ready_inner(cx)).await?;
        {
            let mut sh = lock(&self.shared);
            sh.check_writable()?;
            let max = sh.conn.config().max_send_frame_size.max(1);
            let mut parts = data.chunks(max).peekable();
            if parts.peek().is_none() {
                let f = sh.conn.encode_frame(kind, 0, message_end)?;
                sh.wbuf.extend_from_slice(f.header());
            }
            while let Some(part) = parts.next() {
                let last = message_end && parts.peek().is_none();
                let mut f = sh.conn.encode_frame(kind, part.len(), last)?;
                sh.wbuf.extend_from_slice(f.header());
                let at = sh.wbuf.len();
                sh.wbuf.extend_from_slice(part);
                f.mask(&mut sh.wbuf[at..]);
            }
            sh.queue_transmits();
        }
        if message_end {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Queue a message framed by [`EncodedMessage`] without flushing (waits first while
    /// the write buffer is full). The frame bytes are shared, not copied. The core's
    /// send state is checked and kept as if it had encoded the message itself: refused
    /// after close or inside a message streamed with [`send_chunk`](Self::send_chunk),
    /// and on client connections (which must mask).
    pub async fn feed_encoded(&mut self, msg: &EncodedMessage) -> Result<(), Error> {
        poll_fn(|cx| self.poll_ready_inner(cx)).await?;
        lock(&self.shared).encode_prepared(msg)
    }

    /// [`feed_encoded`](Self::feed_encoded), then flush.
    pub async fn send_encoded(&mut self, msg: &EncodedMessage) -> Result<(), Error> {
        self.feed_encoded(msg).await?;
        self.flush().await
    }

    /// Stream a whole message from `reader`, `chunk` bytes per frame (at least 1).
    pub async fn send_from_reader<R: tokio::io::AsyncRead + Unpin>(
        &mut self,
        kind: DataKind,
        mut reader: R,
        chunk: usize,
    ) -> Result<u64, Error> {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; chunk.max(1)];
        let mut total = 0u64;
        // Read one chunk ahead so the last frame can carry FIN.
        let mut n = read_full(&mut reader, &mut buf).await?;
        loop {
            let mut next = vec![0u8; buf.len()];
            let m = if n == buf.len() {
                read_full(&mut reader, &mut next).await?
            } else {
                0
            };
            let last = m == 0;
            self.send_chunk(kind, &buf[..n], last).await?;
            total += n as u64;
            if last {
                return Ok(total);
            }
            buf = next;
            n = m;
        }

        async fn read_full<R: tokio::io::AsyncRead + Unpin>(
            r: &mut R,
            buf: &mut [u8],
        ) -> Result<usize, Error> {
            let mut at = 0;
            while at < buf.len() {
                match r.read(&mut buf[at..]).await.map_err(Error::Io)? {
                    0 => break,
                    n => at += n,
                }
            }
            Ok(at)
        }
    }

    /// Queue a close frame and flush it. The [`ReadHalf`] sees the peer's answer and then
    /// ends; the transport is closed as the RFC says.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.start_close(code, reason).await
    }

    async fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        {
            let mut sh = lock(&self.shared);
            let now = sh.now();
            debug!(parent: &sh.span, code = code.0, reason, "closing");
            sh.conn.close(code, reason, now)?;
        }
        self.flush().await
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        lock(&self.shared).conn.state()
    }

    /// Round-trip time of the last answered ping.
    pub fn rtt(&self) -> Option<Duration> {
        lock(&self.shared).conn.rtt()
    }

    /// Bytes encoded but not yet written to the stream.
    pub fn buffered(&self) -> usize {
        lock(&self.shared).pending()
    }

    fn poll_ready_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut sh = lock(&self.shared);
        sh.check_writable()?;
        if sh.pending() >= sh.max_write_buffer {
            ready!(sh.poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().read.poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite> Sink<Message> for WriteHalf<S> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_ready_inner(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        lock(&self.shared).encode(item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_flush_and_maybe_shutdown(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut sh = lock(&self.shared);
        if sh.conn.state() == State::Open {
            let now = sh.now();
            sh.conn.close(CloseCode::NORMAL, "", now)?;
        }
        sh.poll_flush_and_maybe_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite> Sink<Message> for WebSocket<S> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().write).poll_ready(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        Pin::new(&mut self.get_mut().write).start_send(item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().write).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Pin::new(&mut self.get_mut().write).poll_close(cx)
    }
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket").finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf")
            .field("buffered", &self.rbuf.len())
            .finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

#[allow(dead_code)]
fn assert_send<T: Send>() {}
#[allow(dead_code)]
fn halves_are_send() {
    assert_send::<ReadHalf<tokio::net::TcpStream>>();
    assert_send::<WriteHalf<tokio::net::TcpStream>>();
    assert_send::<WebSocket<tokio::net::TcpStream>>();
}
