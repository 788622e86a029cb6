//! One WebSocket connection over a [`Transport`].

use sansock::{CloseCode, Connection, DataKind, NoRandom, RandomSource, State};

use crate::engine::{Drive, Engine, to_duration};
use crate::{Buffers, Error, Event, Transport};

/// A WebSocket connection over the transport `T` (a `TcpSocket`, `&mut TcpSocket`, or
/// any [`Transport`]), with the caller's [`Buffers`]. `R` is the masking-key source: a
/// [`RandCore`](crate::RandCore) on a client, [`NoRandom`] on a server.
///
/// Made by [`connect`](crate::connect) or [`accept`](crate::accept) (or
/// [`from_upgraded`](Self::from_upgraded) after a handshake of your own).
///
/// **Receiving**: [`recv`](Self::recv) returns the next [`Event`], borrowed from the
/// buffers until the next call; while it waits, it answers pings, echoes the peer's
/// close, sends keepalive pings and enforces the pong and close deadlines. It is
/// cancel-safe: use it in `embassy_futures::select` with your own timers or channels.
///
/// **Sending**: [`send_text`](Self::send_text), [`send_binary`](Self::send_binary) (split
/// into frames of `max_send_frame_size`, masked chunk by chunk in the write buffer, so a
/// message never needs a buffer of its size), [`send_fragment`](Self::send_fragment) to
/// stream a message, [`ping`](Self::ping), [`close`](Self::close). A send returns once
/// every byte was handed to the transport. Cancelling a send inside a frame makes the
/// connection unusable ([`Error::SendInterrupted`]); do not put a send in a `select`.
pub struct WebSocket<'b, T, R = NoRandom> {
    io: T,
    engine: Engine<'b, R>,
    transport_closed: bool,
}

impl<'b, T: Transport, R: RandomSource> WebSocket<'b, T, R> {
    /// Wraps a transport whose opening handshake is complete. The first `leftover` bytes
    /// of `buffers`' read buffer are bytes received after the handshake (they belong to
    /// the connection).
    pub fn from_upgraded(
        io: T,
        conn: Connection<R>,
        buffers: Buffers<'b>,
        leftover: usize,
    ) -> Result<Self, Error> {
        if leftover > buffers.read.len() {
            return Err(Error::BufferTooSmall {
                buffer: "read",
                needed: leftover,
            });
        }
        Ok(WebSocket {
            io,
            engine: Engine::new(conn, buffers, leftover, 0)?,
            transport_closed: false,
        })
    }

    /// The next event, or `None` once the connection is over (after the closing
    /// handshake and the end of the transport). An error ends the connection: the close
    /// frame with the RFC's code was sent (for protocol errors) and the transport closed;
    /// later calls return `None`. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Event<'_>, Error>> {
        loop {
            match self.engine.drive(&mut self.io).await {
                Drive::Event => return Some(Ok(self.engine.event())),
                Drive::End(error) => {
                    self.close_transport(error.as_ref()).await;
                    return error.map(Err);
                }
                Drive::NeedInput => self.engine.wait_input(&mut self.io).await,
            }
        }
    }

    /// Closes the transport once, gracefully when the peer is alive, by reset when it is
    /// gone.
    async fn close_transport(&mut self, error: Option<&Error>) {
        if self.transport_closed {
            return;
        }
        self.transport_closed = true;
        if peer_alive(error) {
            let timeout = to_duration(self.engine.conn.config().close_timeout);
            if let Ok(Ok(())) = embassy_time::with_timeout(timeout, self.io.shutdown()).await {
                return;
            }
        }
        self.io.abort();
    }

    /// Sends a text message (fragmented at `max_send_frame_size`).
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(DataKind::Text, text.as_bytes()).await
    }

    /// Sends a binary message (fragmented at `max_send_frame_size`).
    pub async fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(DataKind::Binary, data).await
    }

    /// Sends a message of `kind` (fragmented at `max_send_frame_size`).
    pub async fn send(&mut self, kind: DataKind, data: &[u8]) -> Result<(), Error> {
        self.engine.send(&mut self.io, kind, data, true).await
    }

    /// Sends the next part of a message being streamed; `last` finishes it. Every call
    /// must pass the message's `kind`. Text parts may split a UTF-8 code point; the whole
    /// message must be valid UTF-8.
    pub async fn send_fragment(
        &mut self,
        kind: DataKind,
        data: &[u8],
        last: bool,
    ) -> Result<(), Error> {
        self.engine.send(&mut self.io, kind, data, last).await
    }

    /// Sends a ping (at most 125 bytes); its pong comes through [`recv`](Self::recv) and
    /// updates [`rtt`](Self::rtt).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.engine.ping(&mut self.io, payload).await
    }

    /// Sends an unsolicited pong (at most 125 bytes), e.g. as a one-way heartbeat.
    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.engine.pong(&mut self.io, payload).await
    }

    /// Starts the closing handshake and waits for it to finish: sends the close frame,
    /// discards messages that still arrive, waits (bounded by `close_timeout`) for the
    /// peer's close and for the transport to end, then closes the transport. `Ok` when the
    /// handshake completed; [`sansock::Error::CloseTimeout`] when the peer did not answer.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.start_close(code, reason).await?;
        loop {
            match self.recv().await {
                None => return Ok(()),
                Some(Err(e)) => return Err(e),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends the close frame without waiting: keep calling [`recv`](Self::recv), which
    /// returns the peer's [`Event::Close`] and then `None`.
    pub async fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.engine.start_close(&mut self.io, code, reason).await
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.engine.conn.state()
    }

    /// Whether [`recv`](Self::recv) has reported the end.
    pub fn is_ended(&self) -> bool {
        self.engine.is_ended()
    }

    /// The round-trip time measured by the last answered ping.
    pub fn rtt(&self) -> Option<core::time::Duration> {
        self.engine.conn.rtt()
    }

    /// The protocol state machine, for what this type does not expose.
    pub fn connection(&self) -> &Connection<R> {
        &self.engine.conn
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.io
    }

    /// The transport, mutably (for socket options; reading or writing it directly
    /// corrupts the WebSocket stream).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The transport and the buffers back.
    pub fn into_parts(self) -> (T, Buffers<'b>) {
        (self.io, self.engine.into_buffers())
    }
}

/// Whether the peer is alive after the connection ended with `error`: then the transport
/// is shut down gracefully (so the peer reads our close frame), otherwise reset.
pub(crate) fn peer_alive(error: Option<&Error>) -> bool {
    match error {
        None => true,
        // A peer that broke the protocol is there to read our close frame; a peer that
        // went silent, did not finish closing or reset the transport is not.
        Some(Error::Protocol(e)) => !matches!(
            e,
            sansock::Error::PeerUnresponsive
                | sansock::Error::CloseTimeout
                | sansock::Error::ConnectionReset
        ),
        Some(_) => false,
    }
}

impl<T, R: RandomSource> core::fmt::Debug for WebSocket<'_, T, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WebSocket")
            .field("state", &self.engine.conn.state())
            .finish_non_exhaustive()
    }
}
