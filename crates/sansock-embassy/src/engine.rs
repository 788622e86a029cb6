//! One connection's I/O loop around [`sansock::Connection`], independent of who owns the
//! transport (a [`WebSocket`](crate::WebSocket) or a server slot).
//!
//! Every `async` step is cancel-safe at its await points: progress (bytes read, bytes
//! written, the event to deliver) is recorded in `self` as soon as an I/O call returns,
//! never held in a future. The one exception is a `send` cancelled inside a frame, which
//! is detected and reported ([`Error::SendInterrupted`]).

use core::future::pending;

use embassy_futures::select::{Either, select};
use embassy_time::Timer;
use embedded_io_async::ErrorKind;
use sansock::conn::{ControlPayload, RawEvent};
use sansock::{CloseFrame, Connection, DataKind, RandomSource};

use crate::buffers::{Buffers, MIN_WRITE_BUFFER};
use crate::{Error, Event, Fragment, Transport, now, to_embassy};

/// Where the bytes of an event to deliver are.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// `read[start..end]`.
    Read(usize, usize),
    /// `message[..len]`.
    Message(usize),
}

/// An event decided but not yet handed out (it borrows the buffers when it is).
#[derive(Debug, Clone, Copy)]
enum Ready {
    Whole {
        kind: DataKind,
        src: Src,
    },
    Fragment {
        kind: DataKind,
        src: Src,
        first: bool,
        last: bool,
    },
    Ping,
    Pong,
    Close,
}

/// How the message being received is handled.
#[derive(Debug, Clone, Copy)]
enum Rx {
    /// Between messages.
    Idle,
    /// Copying chunks into the message buffer; `len` bytes so far.
    Assembling { kind: DataKind, len: usize },
    /// Too big for the message buffer: handing out fragments.
    Streaming,
}

/// What [`Engine::drive`] found.
#[derive(Debug)]
pub(crate) enum Drive {
    /// An event is ready: take it with [`Engine::event`].
    Event,
    /// The connection is over (`None`: cleanly). Close the transport.
    End(Option<Error>),
    /// Nothing to do until input arrives or a timer fires: call [`Engine::wait_input`].
    NeedInput,
}

pub(crate) struct Engine<'b, R> {
    pub(crate) conn: Connection<R>,
    read: &'b mut [u8],
    rstart: usize,
    rend: usize,
    write: &'b mut [u8],
    wstart: usize,
    wend: usize,
    message: &'b mut [u8],
    rx: Rx,
    ready: [Option<Ready>; 2],
    control: ControlPayload,
    failure: Option<Error>,
    write_error: Option<ErrorKind>,
    send_broken: bool,
    ended: bool,
}

impl<'b, R: RandomSource> Engine<'b, R> {
    /// An engine for `conn` whose handshake left `leftover` bytes at the start of the
    /// read buffer and `pending_out` bytes to send at the start of the write buffer.
    pub(crate) fn new(
        conn: Connection<R>,
        buffers: Buffers<'b>,
        leftover: usize,
        pending_out: usize,
    ) -> Result<Self, Error> {
        check_buffers(&buffers)?;
        Ok(Engine {
            conn,
            read: buffers.read,
            rstart: 0,
            rend: leftover,
            write: buffers.write,
            wstart: 0,
            wend: pending_out,
            message: buffers.message,
            rx: Rx::Idle,
            ready: [None, None],
            control: ControlPayload::EMPTY,
            failure: None,
            write_error: None,
            send_broken: false,
            ended: false,
        })
    }

    /// Gives the buffers back (for a server slot's next connection).
    pub(crate) fn into_buffers(self) -> Buffers<'b> {
        Buffers {
            read: self.read,
            write: self.write,
            message: self.message,
        }
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    // ------------------------------------------------------------------ receiving

    /// Flush what is owed, then find the next event or the end. Never waits for input.
    pub(crate) async fn drive<T: Transport>(&mut self, io: &mut T) -> Drive {
        loop {
            if self.ended {
                return Drive::End(None);
            }
            if let Some(e) = self.failure.take() {
                // Best effort: the close frame with the RFC's code (queued by the core),
                // bounded so a dead peer cannot hold us.
                if !self.send_broken && self.write_error.is_none() {
                    let timeout = to_duration(self.conn.config().close_timeout);
                    let _ = embassy_time::with_timeout(timeout, self.flush(io)).await;
                }
                self.ended = true;
                return Drive::End(Some(e));
            }
            if self.send_broken || self.write_error.is_some() {
                self.failure = Some(match self.write_error {
                    Some(kind) => Error::Io(kind),
                    None => Error::SendInterrupted,
                });
                let _ = self.conn.handle_eof();
                continue;
            }
            if let Err(e) = self.flush(io).await {
                if self.conn.peer_close().is_some() {
                    // The peer closed first and may be gone already: failing to echo its
                    // close ends a closed connection, it is not an error.
                    self.ended = true;
                    return Drive::End(None);
                }
                let _ = self.conn.handle_eof();
                self.failure = Some(e);
                continue;
            }
            if self.ready[0].is_some() {
                return Drive::Event;
            }
            if self.conn.wants_close_transport() {
                self.ended = true;
                return Drive::End(None);
            }
            match self.process() {
                Ok(true) => continue,
                Ok(false) => return Drive::NeedInput,
                Err(e) => self.failure = Some(e),
            }
        }
    }

    /// Feed buffered input to the core. `Ok(true)`: progress; `Ok(false)`: need input.
    fn process(&mut self) -> Result<bool, Error> {
        let start = self.rstart;
        let (consumed, ev) = self
            .conn
            .read_raw(&mut self.read[start..self.rend], now())
            .map_err(Error::Protocol)?;
        self.rstart += consumed;
        if let Some(ev) = ev {
            self.on_event(start, ev);
            return Ok(true);
        }
        if consumed > 0 {
            return Ok(true);
        }
        // Everything buffered is consumed (or is a partial header the core keeps):
        // make room at the end for the next read.
        if self.rstart > 0 {
            self.read.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        if self.rend == self.read.len() {
            return Err(Error::BufferTooSmall {
                buffer: "read",
                needed: self.read.len() + 1,
            });
        }
        Ok(false)
    }

    fn on_event(&mut self, base: usize, ev: RawEvent) {
        let ready = match ev {
            RawEvent::Ping(p) => {
                self.control = p;
                Ready::Ping
            }
            RawEvent::Pong(p) => {
                self.control = p;
                Ready::Pong
            }
            RawEvent::Close(_) => Ready::Close,
            RawEvent::Data {
                kind,
                range,
                message_start,
                message_end,
                // Never set: this adapter does not negotiate permessage-deflate, so the
                // core refuses RSV1 with 1002 (see the crate docs for why).
                compressed: _,
            } => {
                let (start, end) = (base + range.start, base + range.end);
                let len = end - start;
                let chunk = Src::Read(start, end);
                match self.rx {
                    Rx::Idle if message_start && message_end => Ready::Whole { kind, src: chunk },
                    Rx::Idle if len <= self.message.len() => {
                        self.message[..len].copy_from_slice(&self.read[start..end]);
                        self.rx = Rx::Assembling { kind, len };
                        return;
                    }
                    Rx::Idle => {
                        self.rx = Rx::Streaming;
                        Ready::Fragment {
                            kind,
                            src: chunk,
                            first: true,
                            last: false,
                        }
                    }
                    Rx::Assembling { kind, len: have } if have + len <= self.message.len() => {
                        self.message[have..have + len].copy_from_slice(&self.read[start..end]);
                        if message_end {
                            self.rx = Rx::Idle;
                            Ready::Whole {
                                kind,
                                src: Src::Message(have + len),
                            }
                        } else {
                            self.rx = Rx::Assembling {
                                kind,
                                len: have + len,
                            };
                            return;
                        }
                    }
                    Rx::Assembling { kind, len: have } => {
                        // It no longer fits: hand out what was assembled, then this chunk.
                        self.rx = if message_end { Rx::Idle } else { Rx::Streaming };
                        self.ready[1] = Some(Ready::Fragment {
                            kind,
                            src: chunk,
                            first: false,
                            last: message_end,
                        });
                        Ready::Fragment {
                            kind,
                            src: Src::Message(have),
                            first: true,
                            last: false,
                        }
                    }
                    Rx::Streaming => {
                        if message_end {
                            self.rx = Rx::Idle;
                        }
                        Ready::Fragment {
                            kind,
                            src: chunk,
                            first: false,
                            last: message_end,
                        }
                    }
                }
            }
        };
        self.ready[0] = Some(ready);
    }

    /// Hand out the event [`drive`](Self::drive) found.
    ///
    /// Call only after `Drive::Event`; otherwise it reports the connection as closed.
    pub(crate) fn event(&mut self) -> Event<'_> {
        let Some(ready) = self.ready[0].take() else {
            return Event::Close(CloseFrame {
                code: sansock::CloseCode::ABNORMAL,
                reason: "",
            });
        };
        self.ready[0] = self.ready[1].take();
        let bytes = |src: Src| -> &[u8] {
            match src {
                Src::Read(s, e) => &self.read[s..e],
                Src::Message(len) => &self.message[..len],
            }
        };
        match ready {
            Ready::Whole {
                kind: DataKind::Binary,
                src,
            } => Event::Binary(bytes(src)),
            Ready::Whole {
                kind: DataKind::Text,
                src,
            } => match core::str::from_utf8(bytes(src)) {
                Ok(text) => Event::Text(text),
                // Unreachable: the core validated the message as it arrived.
                Err(_) => Event::Binary(bytes(src)),
            },
            Ready::Fragment {
                kind,
                src,
                first,
                last,
            } => Event::Fragment(Fragment {
                kind,
                data: bytes(src),
                first,
                last,
            }),
            Ready::Ping => Event::Ping(self.control.as_bytes()),
            Ready::Pong => Event::Pong(self.control.as_bytes()),
            Ready::Close => Event::Close(match self.conn.peer_close() {
                Some(c) => c.frame(),
                None => CloseFrame {
                    code: sansock::CloseCode::NO_STATUS,
                    reason: "",
                },
            }),
        }
    }

    /// Wait until input arrives, the transport ends, or a timer of the core fires, and
    /// record what happened. Cancel-safe.
    pub(crate) async fn wait_input<T: Transport>(&mut self, io: &mut T) {
        if self.ended || self.failure.is_some() {
            return;
        }
        let deadline = self.conn.poll_timeout();
        let timer = async {
            match deadline {
                Some(at) => Timer::at(to_embassy(at)).await,
                None => pending().await,
            }
        };
        match select(io.read(&mut self.read[self.rend..]), timer).await {
            Either::First(Ok(0)) => self.on_eof(),
            Either::First(Ok(n)) => self.rend += n,
            Either::First(Err(e)) => {
                if self.conn.peer_close().is_some() {
                    // A reset after the peer's close ends the connection like a FIN.
                    self.on_eof();
                } else {
                    let _ = self.conn.handle_eof();
                    self.failure = Some(Error::io(e));
                }
            }
            Either::Second(()) => {
                let at = deadline.unwrap_or_default();
                if let Err(e) = self.conn.handle_timeout(now().max(at)) {
                    self.failure = Some(Error::Protocol(e));
                }
            }
        }
    }

    fn on_eof(&mut self) {
        if let Err(e) = self.conn.handle_eof() {
            self.failure = Some(Error::Protocol(e));
        }
    }

    // ------------------------------------------------------------------ sending

    fn check_send(&self) -> Result<(), Error> {
        if let Some(kind) = self.write_error {
            return Err(Error::Io(kind));
        }
        if self.send_broken {
            return Err(Error::SendInterrupted);
        }
        if self.ended || self.failure.is_some() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Write out everything buffered and every control frame the core owes, then push.
    pub(crate) async fn flush<T: Transport>(&mut self, io: &mut T) -> Result<(), Error> {
        if let Some(kind) = self.write_error {
            return Err(Error::Io(kind));
        }
        loop {
            self.write_out(io).await?;
            if !self.queue_transmits() {
                break;
            }
        }
        io.push().await.map_err(|e| self.write_failed(Error::io(e)))
    }

    /// Move control frames owed by the core into the write buffer while they fit. Only
    /// called between frames.
    fn queue_transmits(&mut self) -> bool {
        let mut queued = false;
        while self.conn.has_transmit() && self.write.len() - self.wend >= MIN_WRITE_BUFFER {
            let Some(t) = self.conn.poll_transmit() else {
                break;
            };
            self.write[self.wend..self.wend + t.len()].copy_from_slice(&t);
            self.wend += t.len();
            queued = true;
        }
        queued
    }

    /// Write the buffered bytes. Progress is recorded after every write, so a cancelled
    /// call loses nothing.
    async fn write_out<T: Transport>(&mut self, io: &mut T) -> Result<(), Error> {
        while self.wstart < self.wend {
            match io.write(&self.write[self.wstart..self.wend]).await {
                Ok(0) => return Err(self.write_failed(Error::Io(ErrorKind::WriteZero))),
                Ok(n) => self.wstart += n,
                Err(e) => return Err(self.write_failed(Error::io(e))),
            }
        }
        self.wstart = 0;
        self.wend = 0;
        Ok(())
    }

    fn write_failed(&mut self, e: Error) -> Error {
        if let Error::Io(kind) = e {
            self.write_error = Some(kind);
        }
        e
    }

    /// Append `bytes` (at most [`MIN_WRITE_BUFFER`]) to the write buffer, writing out first
    /// if they do not fit.
    async fn put<T: Transport>(&mut self, io: &mut T, bytes: &[u8]) -> Result<(), Error> {
        if self.write.len() - self.wend < bytes.len() {
            self.write_out(io).await?;
        }
        self.write[self.wend..self.wend + bytes.len()].copy_from_slice(bytes);
        self.wend += bytes.len();
        Ok(())
    }

    /// Send `data` as frames of a message of `kind`, split at `max_send_frame_size`;
    /// `message_end` finishes the message. Flushes at the end.
    pub(crate) async fn send<T: Transport>(
        &mut self,
        io: &mut T,
        kind: DataKind,
        data: &[u8],
        message_end: bool,
    ) -> Result<(), Error> {
        self.check_send()?;
        // Control frames owed go first, between frames.
        self.write_out(io).await?;
        self.queue_transmits();
        let mut frames = self.conn.fragments(data.len()).peekable();
        while let Some((range, last)) = frames.next() {
            let fin = last && message_end;
            let mut frame = self.conn.encode_frame(kind, range.len(), fin)?;
            // From here until the frame is complete, a cancelled future would leave half a
            // frame on the wire.
            self.send_broken = true;
            self.put(io, frame.header()).await?;
            let mut rest = &data[range];
            while !rest.is_empty() {
                if self.wend == self.write.len() {
                    self.write_out(io).await?;
                }
                let n = rest.len().min(self.write.len() - self.wend);
                let dst = &mut self.write[self.wend..self.wend + n];
                dst.copy_from_slice(&rest[..n]);
                frame.mask(dst);
                self.wend += n;
                rest = &rest[n..];
            }
            self.send_broken = false;
            if frames.peek().is_some() {
                // Pongs and the like may go between the frames of a long message.
                self.queue_transmits();
            }
        }
        self.flush(io).await
    }

    /// Queue a ping and flush it.
    pub(crate) async fn ping<T: Transport>(
        &mut self,
        io: &mut T,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.check_send()?;
        self.conn.ping(payload, now())?;
        self.flush(io).await
    }

    /// Queue a pong and flush it.
    pub(crate) async fn pong<T: Transport>(
        &mut self,
        io: &mut T,
        payload: &[u8],
    ) -> Result<(), Error> {
        self.check_send()?;
        self.conn.pong(payload)?;
        self.flush(io).await
    }

    /// Queue our close frame and flush it; the peer's answer arrives through `drive`.
    pub(crate) async fn start_close<T: Transport>(
        &mut self,
        io: &mut T,
        code: sansock::CloseCode,
        reason: &str,
    ) -> Result<(), Error> {
        self.check_send()?;
        self.conn.close(code, reason, now())?;
        self.flush(io).await
    }
}

/// Checks the sizes an open connection needs.
pub(crate) fn check_buffers(b: &Buffers<'_>) -> Result<(), Error> {
    if b.write.len() < MIN_WRITE_BUFFER {
        return Err(Error::BufferTooSmall {
            buffer: "write",
            needed: MIN_WRITE_BUFFER,
        });
    }
    if b.read.len() < crate::buffers::MIN_READ_BUFFER {
        return Err(Error::BufferTooSmall {
            buffer: "read",
            needed: crate::buffers::MIN_READ_BUFFER,
        });
    }
    Ok(())
}

/// A core duration as an embassy-time one.
pub(crate) fn to_duration(d: core::time::Duration) -> embassy_time::Duration {
    embassy_time::Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
