//! The WebSocket connection over any `AsyncRead + AsyncWrite` stream.
//!
//! All protocol logic lives in [`sansock::Connection`]; this module only moves bytes
//! between it and the stream, and drives its timers with `tokio::time`.
//!
//! # Ownership
//! A [`WebSocket`] owns its stream (any `AsyncRead + AsyncWrite + Unpin`; pin a stream
//! that is not `Unpin` in a `Box`) and its protocol state: receiving and sending take
//! `&mut self` and lock nothing. [`WebSocket::split`] gives a [`ReadHalf`] and a
//! [`WriteHalf`] for separate tasks; they share the protocol state behind a mutex and
//! the stream through `tokio::io::split`, and [`WebSocket::reunite`] puts them back.
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
//! (`benches/tests/zero_alloc.rs`), and it is released when it drains after a burst.
//! Measured with `examples/idle-clients` against `echo-server` (10,000 idle connections
//! on loopback, server RSS): see the README.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker, ready};
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

/// The protocol state and the write side of a connection. A [`WebSocket`] owns one over
/// its stream; [`ReadHalf`] and [`WriteHalf`] share one over the stream's write half
/// behind a mutex, so that the reader can answer pings while the writer is elsewhere.
// `repr(C)`: the small fields every message touches, then the connection, whose own
// hot fields come first (see `sansock::Connection`), so one echo touches few cache lines.
#[repr(C)]
struct Writer<W> {
    wbuf: BytesMut,
    frames_len: usize,
    max_write_buffer: usize,
    write_error: Option<io::ErrorKind>,
    /// Bytes went to the stream since its last completed flush.
    unflushed: bool,
    shut_down: bool,
    epoch: tokio::time::Instant,
    wr: W,
    /// Whole frames written before `wbuf`: pre-encoded messages shared with other
    /// connections (see [`WriteHalf::feed_encoded`]) and what `wbuf` held before them.
    frames: VecDeque<Bytes>,
    span: Span,
    conn: Connection<MaskRng>,
}

impl<W> Writer<W> {
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

    fn write_failed(&mut self, e: io::Error) -> Error {
        warn!(parent: &self.span, error = %e, "write failed");
        self.write_error = Some(e.kind());
        Error::Io(e)
    }

    /// Bytes encoded but not yet written.
    fn pending(&self) -> usize {
        self.wbuf.len() + self.frames_len
    }

    /// Whether a flush has anything to do: bytes to write or flush, control frames owed,
    /// or the transport to close. The receive path asks after every message.
    fn has_output(&self) -> bool {
        self.pending() > 0
            || self.unflushed
            || self.conn.has_transmit()
            || (!self.shut_down && self.conn.wants_close_transport())
    }

    /// The same state over another stream (for `split` and `reunite`).
    fn map_stream<W2, X>(self, f: impl FnOnce(W) -> (W2, X)) -> (Writer<W2>, X) {
        let (wr, x) = f(self.wr);
        let w = Writer {
            conn: self.conn,
            wr,
            wbuf: self.wbuf,
            frames: self.frames,
            frames_len: self.frames_len,
            epoch: self.epoch,
            max_write_buffer: self.max_write_buffer,
            write_error: self.write_error,
            unflushed: self.unflushed,
            shut_down: self.shut_down,
            span: self.span,
        };
        (w, x)
    }

    /// Queue a close frame (the core bounds the wait for the peer's with `close_timeout`).
    fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        debug!(parent: &self.span, code = code.0, reason, "closing");
        let now = self.now();
        self.conn.close(code, reason, now)?;
        Ok(())
    }

    /// Frame one chunk of a streamed message (see [`WriteHalf::send_chunk`]).
    fn encode_chunk(
        &mut self,
        kind: DataKind,
        data: &[u8],
        message_end: bool,
    ) -> Result<(), Error> {
        self.check_writable()?;
        let max = self.conn.config().max_send_frame_size.max(1);
        let mut parts = data.chunks(max).peekable();
        if parts.peek().is_none() {
            let f = self.conn.encode_frame(kind, 0, message_end)?;
            self.wbuf.extend_from_slice(f.header());
        }
        while let Some(part) = parts.next() {
            let last = message_end && parts.peek().is_none();
            let mut f = self.conn.encode_frame(kind, part.len(), last)?;
            self.wbuf.extend_from_slice(f.header());
            let at = self.wbuf.len();
            self.wbuf.extend_from_slice(part);
            f.mask(&mut self.wbuf[at..]);
        }
        self.queue_transmits();
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
}

impl<W: AsyncWrite + Unpin> Writer<W> {
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
        // Nothing written since the last completed flush: nothing to flush.
        if self.unflushed {
            if let Err(e) = ready!(Pin::new(&mut self.wr).poll_flush(cx)) {
                return Poll::Ready(Err(self.write_failed(e)));
            }
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
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

    /// Ready to encode: flushes first while `max_write_buffer` bytes are waiting.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.check_writable()?;
        if self.pending() >= self.max_write_buffer {
            ready!(self.poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// `Sink::poll_close`: a normal close unless one was sent, then flush and shut down
    /// once the closing handshake allows.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.conn.state() == State::Open {
            let now = self.now();
            self.conn.close(CloseCode::NORMAL, "", now)?;
        }
        self.poll_flush_and_maybe_shutdown(cx)
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
            Message::Close(frame) => match &frame {
                Some(f) => self.start_close(f.code, f.reason.as_str())?,
                None => self.start_close(CloseCode::NO_STATUS, "")?,
            },
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
}

/// Access to a connection's [`Writer`]: direct for a [`WebSocket`], through the mutex
/// for the halves. The operations below are written once against it.
trait Tx {
    type W: AsyncWrite + Unpin;
    fn tx<T>(&mut self, f: impl FnOnce(&mut Writer<Self::W>) -> T) -> T;
}

/// A [`Tx`] that also reads from the stream.
trait Rx: Tx {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>>;
}

impl<S: AsyncWrite + Unpin> Tx for Writer<S> {
    type W = S;
    fn tx<T>(&mut self, f: impl FnOnce(&mut Writer<S>) -> T) -> T {
        f(self)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Rx for Writer<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        tokio_util::io::poll_read_buf(Pin::new(&mut self.wr), cx, buf)
    }
}

type SharedRef<S> = Arc<Mutex<Writer<tokio::io::WriteHalf<S>>>>;

fn lock<S>(shared: &SharedRef<S>) -> MutexGuard<'_, Writer<tokio::io::WriteHalf<S>>> {
    // A panic while holding the lock cannot leave the protocol state half-updated in a
    // way that matters more than the panic itself; keep going with the inner value.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Tx for WriteHalf<S> {
    type W = tokio::io::WriteHalf<S>;
    fn tx<T>(&mut self, f: impl FnOnce(&mut Writer<Self::W>) -> T) -> T {
        f(&mut lock(&self.shared))
    }
}

/// The reading side of the halves: the stream's read half and the shared writer.
struct HalfIo<'a, S> {
    rd: &'a mut tokio::io::ReadHalf<S>,
    shared: &'a SharedRef<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Tx for HalfIo<'_, S> {
    type W = tokio::io::WriteHalf<S>;
    fn tx<T>(&mut self, f: impl FnOnce(&mut Writer<Self::W>) -> T) -> T {
        f(&mut lock(self.shared))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Rx for HalfIo<'_, S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<io::Result<usize>> {
        tokio_util::io::poll_read_buf(Pin::new(&mut *self.rd), cx, buf)
    }
}

/// The sending operations, written once for [`WebSocket`] and [`WriteHalf`].
mod ops {
    use super::*;

    pub(super) async fn feed<X: Tx>(x: &mut X, msg: Message) -> Result<(), Error> {
        poll_fn(|cx| x.tx(|w| w.poll_ready(cx))).await?;
        x.tx(|w| w.encode(msg))
    }

    pub(super) async fn flush<X: Tx>(x: &mut X) -> Result<(), Error> {
        poll_fn(|cx| x.tx(|w| w.poll_flush_and_maybe_shutdown(cx))).await
    }

    /// `feed` then `flush`, as one future: a message that fits goes out in one poll.
    pub(super) async fn send<X: Tx>(x: &mut X, msg: Message) -> Result<(), Error> {
        let mut msg = Some(msg);
        poll_fn(|cx| {
            x.tx(|w| {
                if msg.is_some() {
                    // Taken only once there is room: a pending poll keeps it.
                    if let Err(e) = ready!(w.poll_ready(cx)) {
                        return Poll::Ready(Err(e));
                    }
                    if let Some(m) = msg.take() {
                        w.encode(m)?;
                    }
                }
                w.poll_flush_and_maybe_shutdown(cx)
            })
        })
        .await
    }

    pub(super) async fn send_chunk<X: Tx>(
        x: &mut X,
        kind: DataKind,
        data: &[u8],
        message_end: bool,
    ) -> Result<(), Error> {
        poll_fn(|cx| x.tx(|w| w.poll_ready(cx))).await?;
        x.tx(|w| w.encode_chunk(kind, data, message_end))?;
        if message_end { flush(x).await } else { Ok(()) }
    }

    pub(super) async fn feed_encoded<X: Tx>(x: &mut X, msg: &EncodedMessage) -> Result<(), Error> {
        poll_fn(|cx| x.tx(|w| w.poll_ready(cx))).await?;
        x.tx(|w| w.encode_prepared(msg))
    }

    pub(super) async fn start_close<X: Tx>(
        x: &mut X,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), Error> {
        x.tx(|w| w.start_close(code, reason))?;
        flush(x).await
    }

    pub(super) async fn send_from_reader<X: Tx, R: AsyncRead + Unpin>(
        x: &mut X,
        kind: DataKind,
        mut reader: R,
        chunk: usize,
    ) -> Result<u64, Error> {
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
            send_chunk(x, kind, &buf[..n], last).await?;
            total += n as u64;
            if last {
                return Ok(total);
            }
            buf = next;
            n = m;
        }
    }

    async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<usize, Error> {
        use tokio::io::AsyncReadExt;
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

/// The read side of a connection: the read buffer, its sizing, and the timer that
/// drives the core's deadlines.
struct Reader {
    rbuf: BytesMut,
    read_chunk: usize,
    read_size: usize,
    /// The last frame was read in place into a buffer much larger than `read_size`:
    /// keep that buffer for the next one (see `poll_fill`).
    big_frame: bool,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<sansock::Instant>,
    /// The waker `timer` was last polled with.
    timer_waker: Option<Waker>,
    /// The clock when the bytes in `rbuf` were read.
    read_at: Option<sansock::Instant>,
    /// The last clock reading.
    clock: sansock::Instant,
    /// A read failed; reported once the connection state has been looked at.
    read_error: Option<io::Error>,
    eof: bool,
    done: bool,
}

/// What one look at the connection found.
enum Step<T> {
    /// An item (or the end) for the caller.
    Ready(Option<Result<T, Error>>),
    /// A timer fired: look again.
    Again,
    /// More bytes are needed; this many belong to the frame being received.
    Read(usize),
}

/// The next whole message.
fn next_message(
    conn: &mut Connection<MaskRng>,
    rbuf: &mut BytesMut,
    now: sansock::Instant,
) -> Result<Option<Message>, sansock::Error> {
    conn.read_message(rbuf, now)
}

/// The next chunk of a data message; control frames are handled on the way.
fn next_chunk(
    conn: &mut Connection<MaskRng>,
    rbuf: &mut BytesMut,
    now: sansock::Instant,
) -> Result<Option<Chunk>, sansock::Error> {
    loop {
        let (consumed, ev) = conn.read_raw(&mut rbuf[..], now)?;
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
                    conn.decompress(kind, &rbuf[range], message_end, &mut out)?;
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
}

fn peer_close_of(conn: &Connection<MaskRng>) -> Option<(CloseCode, String)> {
    conn.peer_close().map(|c| (c.code(), c.reason().to_owned()))
}

type Next<T> = fn(
    &mut Connection<MaskRng>,
    &mut BytesMut,
    sansock::Instant,
) -> Result<Option<T>, sansock::Error>;

impl Reader {
    fn new(config: &Config, epoch: tokio::time::Instant, leftover: &[u8]) -> Self {
        let mut rbuf = BytesMut::new();
        rbuf.extend_from_slice(leftover);
        Reader {
            rbuf,
            read_chunk: config.read_chunk.max(MIN_READ),
            read_size: MIN_READ,
            big_frame: false,
            timer: Box::pin(tokio::time::sleep_until(epoch)),
            timer_at: None,
            timer_waker: None,
            read_at: None,
            clock: sansock::Instant::ZERO,
            read_error: None,
            eof: false,
            done: false,
        }
    }

    fn poll_next<I: Rx, T>(
        &mut self,
        io: &mut I,
        cx: &mut Context<'_>,
        next: Next<T>,
    ) -> Poll<Option<Result<T, Error>>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match io.tx(|w| self.step(w, cx, next)) {
                Step::Ready(item) => return Poll::Ready(item),
                Step::Again => {}
                Step::Read(pending) => ready!(self.poll_fill(io, cx, pending)),
            }
        }
    }

    /// Everything up to the next read from the stream: the next item from the bytes
    /// already here, pings answered and closes echoed, timers, the end of the stream.
    fn step<W: AsyncWrite + Unpin, T>(
        &mut self,
        w: &mut Writer<W>,
        cx: &mut Context<'_>,
        next: Next<T>,
    ) -> Step<T> {
        if let Some(e) = self.read_error.take() {
            if w.conn.peer_close().is_some() {
                // A reset after the peer's close ends the connection like a FIN.
                self.eof = true;
            } else {
                self.done = true;
                let _ = w.conn.handle_eof();
                return Step::Ready(Some(Err(Error::Io(e))));
            }
        }
        // One clock reading per read from the stream: the messages of one read arrived
        // together, the time only feeds millisecond timers, and reading the clock costs
        // as much as parsing a small frame. A timer that fires goes by its own deadline.
        // Nothing read yet (a wake-up before the read): nothing to stamp, so the last
        // reading will do until a timer needs the time.
        let now = match self.read_at {
            Some(t) => t,
            None if self.rbuf.is_empty() => self.clock,
            None => {
                let t = w.now();
                self.read_at = Some(t);
                self.clock = t;
                t
            }
        };
        // An empty buffer has nothing to give (a failed connection has already ended
        // this reader), and a receive asks once more after every message.
        let next = if self.rbuf.is_empty() {
            Ok(None)
        } else {
            next(&mut w.conn, &mut self.rbuf, now)
        };
        match next {
            Ok(Some(item)) => {
                // Answer pings and echo a close without waiting for the writer; a full
                // socket just leaves it queued for the next poll. A write error is
                // sticky and reported by the next poll: the item is delivered.
                if w.has_output() {
                    let _ = w.poll_flush_and_maybe_shutdown(cx);
                }
                return Step::Ready(Some(Ok(item)));
            }
            Ok(None) => {}
            Err(e) => {
                debug!(parent: &w.span, error = %e, "connection failed");
                // Best effort: the close frame with the RFC's code, then the transport.
                let _ = w.poll_flush_and_maybe_shutdown(cx);
                self.done = true;
                return Step::Ready(Some(Err(Error::Protocol(e))));
            }
        }
        // Pings to answer, a close to echo, or the writer's bytes: push them out (and
        // learn of a failed write) before waiting for the peer.
        let flushed = if w.has_output() || w.write_error.is_some() {
            w.poll_flush_and_maybe_shutdown(cx)
        } else {
            Poll::Ready(Ok(()))
        };
        match flushed {
            Poll::Ready(Err(e)) => {
                self.done = true;
                if w.conn.peer_close().is_some() {
                    // The peer closed first and may already be gone: failing to echo its
                    // close is the end of a closed connection, not an error.
                    return Step::Ready(None);
                }
                return Step::Ready(Some(Err(e)));
            }
            Poll::Ready(Ok(())) if w.shut_down => {
                self.done = true;
                return Step::Ready(None);
            }
            _ => {}
        }
        if self.eof {
            self.done = true;
            return Step::Ready(match w.conn.handle_eof() {
                Ok(()) => None,
                Err(e) => Some(Err(Error::Protocol(e))),
            });
        }
        // Timers: keepalive, pong deadline, closing handshake.
        if let Some(at) = w.conn.poll_timeout() {
            // The keepalive deadline moves with every message received; re-arming the
            // timer each time costs more than the rest of a small message's receive
            // path. So the timer is only moved earlier: when it fires before the current
            // deadline, `handle_timeout` does nothing and it is armed again.
            if self.timer_at.is_none_or(|armed| at < armed) {
                self.timer_at = Some(at);
                let when = w.epoch + Duration::from_millis(at.as_millis());
                self.timer.as_mut().reset(when);
                self.timer_waker = None;
            }
            // A polled timer keeps the waker and wakes it when it fires, so it is polled
            // again only once it has fired or when the poll comes from another task (a
            // waker to register); polling it each time costs as much as a small message.
            let registered = self
                .timer_waker
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()));
            if (!registered || self.timer.is_elapsed()) && self.poll_timer(cx).is_ready() {
                let armed = self.timer_at.take().unwrap_or(at);
                self.clock = w.now().max(now);
                if let Err(e) = w.conn.handle_timeout(self.clock.max(armed)) {
                    debug!(parent: &w.span, error = %e, "timer fired");
                    let _ = w.poll_flush_and_maybe_shutdown(cx);
                    self.done = true;
                    return Step::Ready(Some(Err(Error::Protocol(e))));
                }
                return Step::Again;
            }
        }
        Step::Read(usize::try_from(w.conn.frame_bytes_pending()).unwrap_or(usize::MAX))
    }

    /// Poll the timer; on `Pending`, remember which task it will wake.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.timer.as_mut().poll(cx).is_ready() {
            self.timer_waker = None;
            return Poll::Ready(());
        }
        match &mut self.timer_waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => self.timer_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Read more bytes from the stream into the read buffer. `pending`: bytes of the
    /// current frame still to come; when the buffer already has room for all of them
    /// (the core reserved it to receive a large frame in place), it is not grown, which
    /// could mean copying what is already there. A failed read is kept for `step`.
    fn poll_fill<I: Rx>(&mut self, io: &mut I, cx: &mut Context<'_>, pending: usize) -> Poll<()> {
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
        let read = ready!(io.poll_read(cx, &mut self.rbuf));
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
            Err(e) => self.read_error = Some(e),
        }
        Poll::Ready(())
    }
}

/// A WebSocket connection over the stream `S` (a `TcpStream`, a TLS stream, or any
/// `AsyncRead + AsyncWrite`).
///
/// One value owns the stream and the protocol state, so receiving and sending need no
/// locking. [`split`](Self::split) it when reading and writing happen in different
/// tasks.
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
#[repr(C)] // the reader's state, then the writer's (see `Writer`)
pub struct WebSocket<S> {
    read: Reader,
    write: Writer<S>,
}

/// The receiving half of a WebSocket. It still answers pings and the peer's close while
/// the [`WriteHalf`] is idle or in another task.
pub struct ReadHalf<S> {
    rd: tokio::io::ReadHalf<S>,
    read: Reader,
    shared: SharedRef<S>,
}

/// The sending half of a WebSocket.
pub struct WriteHalf<S> {
    shared: SharedRef<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wrap a stream whose opening handshake is complete. `leftover` holds bytes read
    /// past the handshake; they belong to the connection.
    pub fn from_upgraded(stream: S, role: Role, config: Config, leftover: Bytes) -> Self {
        let epoch = tokio::time::Instant::now();
        let conn = Connection::new(
            role,
            config.protocol.clone(),
            MaskRng::for_role(role),
            sansock::Instant::ZERO,
        );
        WebSocket {
            read: Reader::new(&config, epoch, &leftover),
            write: Writer {
                conn,
                wr: stream,
                wbuf: BytesMut::new(),
                frames: VecDeque::new(),
                frames_len: 0,
                epoch,
                max_write_buffer: config.max_write_buffer,
                write_error: None,
                unflushed: false,
                shut_down: false,
                span: tracing::debug_span!("websocket", role = ?role),
            },
        }
    }

    /// Receive the next message; `None` once the connection is closed. Pings, pongs and
    /// the peer's close are returned too (pings are answered automatically unless
    /// `auto_pong` is off). Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll for the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.read.poll_next(&mut self.write, cx, next_message)
    }

    /// Receive the next chunk of a data message, so a message of any size streams
    /// through in pieces no larger than the read buffer. Pings are answered and pongs
    /// dropped on the way; after the peer's close this returns `None`. Do not mix with
    /// [`recv`](Self::recv) in the middle of a message. Cancel-safe.
    pub async fn recv_chunk(&mut self) -> Option<Result<Chunk, Error>> {
        poll_fn(|cx| self.poll_recv_chunk(cx)).await
    }

    /// Poll for the next chunk.
    pub fn poll_recv_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Chunk, Error>>> {
        self.read.poll_next(&mut self.write, cx, next_chunk)
    }

    /// The peer's close frame, once received.
    pub fn peer_close(&self) -> Option<(CloseCode, String)> {
        peer_close_of(&self.write.conn)
    }

    /// Encode `msg` and flush it; `Ok` means every byte reached the stream.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        ops::send(&mut self.write, msg.into()).await
    }

    /// Encode `msg` without flushing, waiting first while the write buffer is full.
    pub async fn feed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        ops::feed(&mut self.write, msg.into()).await
    }

    /// Flush everything encoded so far.
    pub async fn flush(&mut self) -> Result<(), Error> {
        ops::flush(&mut self.write).await
    }

    /// Send one frame of a message being streamed; see [`WriteHalf::send_chunk`].
    pub async fn send_chunk(
        &mut self,
        kind: DataKind,
        data: &[u8],
        message_end: bool,
    ) -> Result<(), Error> {
        ops::send_chunk(&mut self.write, kind, data, message_end).await
    }

    /// Stream a whole message from `reader`, `chunk` bytes per frame (at least 1).
    pub async fn send_from_reader<R: AsyncRead + Unpin>(
        &mut self,
        kind: DataKind,
        reader: R,
        chunk: usize,
    ) -> Result<u64, Error> {
        ops::send_from_reader(&mut self.write, kind, reader, chunk).await
    }

    /// Queue a message framed once for many connections without flushing; see
    /// [`WriteHalf::feed_encoded`].
    pub async fn feed_encoded(&mut self, msg: &EncodedMessage) -> Result<(), Error> {
        ops::feed_encoded(&mut self.write, msg).await
    }

    /// Send a message framed once for many connections; see
    /// [`WriteHalf::send_encoded`].
    pub async fn send_encoded(&mut self, msg: &EncodedMessage) -> Result<(), Error> {
        ops::feed_encoded(&mut self.write, msg).await?;
        ops::flush(&mut self.write).await
    }

    /// Send a close frame and wait (bounded by `close_timeout`) for the peer's close and
    /// the end of the transport. Messages that arrive meanwhile are discarded.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        ops::start_close(&mut self.write, code, reason).await?;
        while let Some(item) = self.recv().await {
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
        &mut self,
        params: sansock::deflate::DeflateParams,
        config: &sansock::deflate::DeflateConfig,
    ) {
        self.write.conn.enable_deflate(params, config);
    }

    /// Whether permessage-deflate is on.
    pub fn is_deflate_enabled(&self) -> bool {
        self.write.conn.is_deflate_enabled()
    }

    /// Split into halves that can live in different tasks. They share the protocol
    /// state behind a mutex.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        let (write, rd) = self.write.map_stream(|s| {
            let (rd, wr) = tokio::io::split(s);
            (wr, rd)
        });
        let shared = Arc::new(Mutex::new(write));
        let read = ReadHalf {
            rd,
            read: self.read,
            shared: shared.clone(),
        };
        (read, WriteHalf { shared })
    }

    /// Put halves from [`split`](Self::split) back together; halves of different
    /// connections are given back as they were.
    #[allow(
        clippy::result_large_err,
        reason = "the halves come back by value, as from tokio's own `reunite`; the error is rare"
    )]
    pub fn reunite(
        read: ReadHalf<S>,
        write: WriteHalf<S>,
    ) -> Result<Self, (ReadHalf<S>, WriteHalf<S>)> {
        if !Arc::ptr_eq(&read.shared, &write.shared) {
            return Err((read, write));
        }
        let ReadHalf {
            rd,
            read: reader,
            shared,
        } = read;
        drop(shared);
        match Arc::try_unwrap(write.shared) {
            Ok(mutex) => {
                let writer = mutex.into_inner().unwrap_or_else(PoisonError::into_inner);
                // Both halves of the stream come from the `split` that made this writer.
                let (write, ()) = writer.map_stream(|wr| (rd.unsplit(wr), ()));
                Ok(WebSocket {
                    read: reader,
                    write,
                })
            }
            // Not reachable (the two halves held the only references), but no reason
            // to panic over it either.
            Err(shared) => Err((
                ReadHalf {
                    rd,
                    read: reader,
                    shared: shared.clone(),
                },
                WriteHalf { shared },
            )),
        }
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.write.conn.state()
    }

    /// Round-trip time of the last answered ping.
    pub fn rtt(&self) -> Option<Duration> {
        self.write.conn.rtt()
    }

    /// Bytes encoded but not yet written to the stream.
    pub fn buffered_amount(&self) -> usize {
        self.write.pending()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// Receive the next whole message; see [`WebSocket::recv`]. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Receive the next chunk of a data message; see [`WebSocket::recv_chunk`].
    /// Cancel-safe.
    pub async fn recv_chunk(&mut self) -> Option<Result<Chunk, Error>> {
        poll_fn(|cx| self.poll_recv_chunk(cx)).await
    }

    /// The peer's close frame, once received.
    pub fn peer_close(&self) -> Option<(CloseCode, String)> {
        peer_close_of(&lock(&self.shared).conn)
    }

    /// Poll for the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        let mut io = HalfIo {
            rd: &mut self.rd,
            shared: &self.shared,
        };
        self.read.poll_next(&mut io, cx, next_message)
    }

    /// Poll for the next chunk.
    pub fn poll_recv_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Chunk, Error>>> {
        let mut io = HalfIo {
            rd: &mut self.rd,
            shared: &self.shared,
        };
        self.read.poll_next(&mut io, cx, next_chunk)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Encode `msg` and flush it; `Ok` means every byte reached the stream.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        ops::send(self, msg.into()).await
    }

    /// Encode `msg` without flushing, waiting first while the write buffer is full.
    pub async fn feed(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        ops::feed(self, msg.into()).await
    }

    /// Flush everything encoded so far.
    pub async fn flush(&mut self) -> Result<(), Error> {
        ops::flush(self).await
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
        ops::send_chunk(self, kind, data, message_end).await
    }

    /// Queue a message framed by [`EncodedMessage`] without flushing (waits first while
    /// the write buffer is full). The frame bytes are shared, not copied. The core's
    /// send state is checked and kept as if it had encoded the message itself: refused
    /// after close or inside a message streamed with [`send_chunk`](Self::send_chunk),
    /// and on client connections (which must mask).
    pub async fn feed_encoded(&mut self, msg: &EncodedMessage) -> Result<(), Error> {
        ops::feed_encoded(self, msg).await
    }

    /// [`feed_encoded`](Self::feed_encoded), then flush.
    pub async fn send_encoded(&mut self, msg: &EncodedMessage) -> Result<(), Error> {
        ops::feed_encoded(self, msg).await?;
        ops::flush(self).await
    }

    /// Stream a whole message from `reader`, `chunk` bytes per frame (at least 1).
    pub async fn send_from_reader<R: AsyncRead + Unpin>(
        &mut self,
        kind: DataKind,
        reader: R,
        chunk: usize,
    ) -> Result<u64, Error> {
        ops::send_from_reader(self, kind, reader, chunk).await
    }

    /// Queue a close frame and flush it. The [`ReadHalf`] sees the peer's answer and then
    /// ends; the transport is closed as the RFC says.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        ops::start_close(self, code, reason).await
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
    pub fn buffered_amount(&self) -> usize {
        lock(&self.shared).pending()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().tx(|w| w.poll_ready(cx))
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().tx(|w| w.encode(item))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().tx(|w| w.poll_flush_and_maybe_shutdown(cx))
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().tx(|w| w.poll_close(cx))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().write.poll_ready(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.get_mut().write.encode(item)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().write.poll_flush_and_maybe_shutdown(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().write.poll_close(cx)
    }
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("state", &self.write.conn.state())
            .field("buffered", &self.read.rbuf.len())
            .finish_non_exhaustive()
    }
}

impl<S> std::fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf")
            .field("buffered", &self.read.rbuf.len())
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
