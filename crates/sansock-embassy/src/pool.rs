//! A server for up to `N` clients on one port, from a fixed pool of slots.

use embassy_futures::select::{Either, select, select_array};
use embassy_net::tcp::{State as TcpState, TcpSocket};
use embassy_net::{IpEndpoint, Stack};
use embassy_time::{Instant, Timer};
use sansock::handshake::{ServerHandshake, SliceWriter, write_error};
use sansock::{CloseCode, Config, Connection, DataKind, NoRandom};

use crate::engine::{Drive, Engine, check_buffers, to_duration};
use crate::server::{AcceptOptions, Answer, answer, parse};
use crate::ws::peer_alive;
use crate::{Buffers, Error, Event, now, to_embassy};

/// The memory of one server slot: the `TcpSocket`'s buffers and the WebSocket's.
/// [`Storage::slot`](crate::Storage::slot) makes one from fixed arrays.
#[derive(Debug)]
pub struct SlotBuffers<'a> {
    /// The TCP receive buffer.
    pub tcp_rx: &'a mut [u8],
    /// The TCP send buffer (at least the size of the handshake answer, ~200 bytes).
    pub tcp_tx: &'a mut [u8],
    /// The WebSocket buffers.
    pub ws: Buffers<'a>,
}

/// A connected client of a [`WsServer`]: the index of its slot. A slot is reused once
/// its client has disconnected ([`ServerEvent::Disconnected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub usize);

/// What happened on a [`WsServer`].
#[derive(Debug, PartialEq, Eq)]
pub enum ServerEvent<'e> {
    /// A client completed the opening handshake.
    Connected {
        /// Its id until it disconnects.
        id: ClientId,
        /// The subprotocol chosen for it (one of [`AcceptOptions::subprotocols`]).
        subprotocol: Option<&'e str>,
    },
    /// A client sent something.
    Message {
        /// Who.
        id: ClientId,
        /// What, borrowed from the client's buffers until the next call.
        event: Event<'e>,
    },
    /// A client is gone; `error` is `None` after a completed closing handshake.
    Disconnected {
        /// Who (the id is free again).
        id: ClientId,
        /// Why, if not a clean close.
        error: Option<Error>,
    },
}

// Every slot is in one of these states for its whole life, and there is no heap to box the
// open connection into: the size is the size of an open connection either way.
#[allow(clippy::large_enum_variant)]
enum SlotState<'a> {
    /// Waiting for a TCP connection.
    Listening(Buffers<'a>),
    /// Reading the request (`len` bytes so far).
    Handshake {
        bufs: Buffers<'a>,
        hs: ServerHandshake,
        len: usize,
    },
    /// Open WebSocket.
    Open(Engine<'a, NoRandom>),
    /// Writing a refusal or the page: `head[at..len]` of the write buffer, then `body`.
    Responding {
        bufs: Buffers<'a>,
        len: usize,
        at: usize,
        body: &'a [u8],
        deadline: Instant,
    },
    /// Our FIN is sent; discarding input until the peer's FIN or the deadline.
    Draining {
        bufs: Buffers<'a>,
        deadline: Instant,
    },
    /// Only while switching states.
    Switching,
}

struct Slot<'a> {
    socket: TcpSocket<'a>,
    state: SlotState<'a>,
}

/// What a slot's wait saw.
enum Wake {
    Accepted,
    AcceptFailed,
    Input,
    HandshakeEnd,
    HandshakeTimeout,
    Engine,
    Responded,
    Drained,
}

impl<'a> Slot<'a> {
    /// Wait for this slot's next I/O or timer. Cancel-safe: progress is recorded in
    /// `self` as each I/O call returns.
    async fn wait(&mut self, port: u16) -> Wake {
        match &mut self.state {
            SlotState::Listening(_) => match self.socket.state() {
                TcpState::Closed | TcpState::Listen => match self.socket.accept(port).await {
                    Ok(()) => Wake::Accepted,
                    Err(_) => Wake::AcceptFailed,
                },
                TcpState::SynReceived | TcpState::SynSent => {
                    // An accept cancelled after the SYN: wait for the connection.
                    self.socket.wait_write_ready().await;
                    Wake::Accepted
                }
                _ => Wake::Accepted,
            },
            SlotState::Handshake { bufs, hs, len } => {
                let deadline = hs.poll_timeout().map(to_embassy).unwrap_or(Instant::MAX);
                match select(
                    self.socket.read(&mut bufs.read[*len..]),
                    Timer::at(deadline),
                )
                .await
                {
                    Either::First(Ok(0) | Err(_)) => Wake::HandshakeEnd,
                    Either::First(Ok(n)) => {
                        *len += n;
                        Wake::Input
                    }
                    Either::Second(()) => Wake::HandshakeTimeout,
                }
            }
            SlotState::Open(engine) => {
                engine.wait_input(&mut self.socket).await;
                Wake::Engine
            }
            SlotState::Responding {
                bufs,
                len,
                at,
                body,
                deadline,
            } => {
                let write = async {
                    while *at < *len + body.len() {
                        let chunk = if *at < *len {
                            &bufs.write[*at..*len]
                        } else {
                            &body[*at - *len..]
                        };
                        match self.socket.write(chunk).await {
                            Ok(n) if n > 0 => *at += n,
                            _ => break,
                        }
                    }
                };
                let _ = select(write, Timer::at(*deadline)).await;
                Wake::Responded
            }
            SlotState::Draining { bufs, deadline } => {
                let drain = async {
                    while let Ok(n) = self.socket.read(bufs.read).await {
                        if n == 0 {
                            break;
                        }
                    }
                };
                let _ = select(drain, Timer::at(*deadline)).await;
                Wake::Drained
            }
            SlotState::Switching => core::future::pending().await,
        }
    }
}

/// A WebSocket server for up to `N` clients on one port, each in a slot with its own
/// `TcpSocket` and buffers (the caller's memory: `N` is the number of [`SlotBuffers`]).
///
/// All free slots listen on the port at once; [`next_event`](Self::next_event) accepts
/// connections, runs their handshakes against the [`AcceptOptions`], and returns what
/// clients send, answering pings and keeping every connection's timers (keepalive, pong
/// and close deadlines) meanwhile. [`send`](Self::send) goes to one client,
/// [`broadcast`](Self::broadcast) to every open one, [`disconnect`](Self::disconnect)
/// starts a close with a code. One task drives it all; `next_event` is cancel-safe, so it
/// can sit in a `select` with the application's timer (e.g. a periodic broadcast).
///
/// Sends wait while a client's TCP send buffer is full, and the whole server waits with
/// them: size the TCP buffers for your messages, and set a TCP timeout
/// ([`socket_mut`](Self::socket_mut)) if slow clients are a concern.
///
/// ```no_run
/// # async fn demo(stack: embassy_net::Stack<'static>) {
/// use sansock_embassy::{AcceptOptions, Config, Event, ServerEvent, Storage, WsServer};
///
/// // In firmware: a `static` via `static_cell::StaticCell`.
/// let storage: &'static mut [Storage<1024, 512, 512>; 3] = make_static();
/// # fn make_static() -> &'static mut [Storage<1024, 512, 512>; 3] { unimplemented!() }
/// let slots = storage.each_mut().map(|s| s.slot());
/// let mut server = WsServer::new(
///     stack, 80, Config::microcontroller(), AcceptOptions::new().path("/ws"), slots,
/// ).unwrap();
/// loop {
///     match server.next_event().await {
///         ServerEvent::Message { id, event: Event::Text("on") } => {
///             let _ = server.send_text(id, "led is on").await;
///         }
///         ServerEvent::Connected { .. } => { let _ = server.broadcast_text("someone joined").await; }
///         _ => {}
///     }
/// }
/// # }
/// ```
pub struct WsServer<'a, const N: usize> {
    slots: [Slot<'a>; N],
    port: u16,
    config: Config,
    options: AcceptOptions<'a>,
    next: usize,
}

impl<'a, const N: usize> WsServer<'a, N> {
    /// A server on `port` of `stack` with one slot per element of `slots`.
    ///
    /// Fails with [`Error::BufferTooSmall`] if a slot's buffers are too small, or
    /// [`Error::Accept`] for port 0.
    pub fn new(
        stack: Stack<'a>,
        port: u16,
        config: Config,
        options: AcceptOptions<'a>,
        slots: [SlotBuffers<'a>; N],
    ) -> Result<Self, Error> {
        if port == 0 {
            return Err(Error::Accept(embassy_net::tcp::AcceptError::InvalidPort));
        }
        for s in &slots {
            check_buffers(&s.ws)?;
        }
        Ok(WsServer {
            slots: slots.map(|s| Slot {
                socket: TcpSocket::new(stack, s.tcp_rx, s.tcp_tx),
                state: SlotState::Listening(s.ws),
            }),
            port,
            config,
            options,
            next: 0,
        })
    }

    /// The next thing that happens on any connection. Cancel-safe.
    pub async fn next_event(&mut self) -> ServerEvent<'_> {
        loop {
            // Deliver what open connections have (round robin), flushing what they owe.
            let mut found = None;
            for k in 0..N {
                let i = (self.next + k) % N;
                let slot = &mut self.slots[i];
                if let SlotState::Open(engine) = &mut slot.state {
                    match engine.drive(&mut slot.socket).await {
                        Drive::Event => {
                            found = Some((i, None));
                            break;
                        }
                        Drive::End(error) => {
                            found = Some((i, Some(error)));
                            break;
                        }
                        Drive::NeedInput => {}
                    }
                }
            }
            match found {
                Some((i, None)) => {
                    self.next = (i + 1) % N;
                    return self.message(i);
                }
                Some((i, Some(error))) => {
                    self.next = (i + 1) % N;
                    self.end(i, error.as_ref());
                    return ServerEvent::Disconnected {
                        id: ClientId(i),
                        error,
                    };
                }
                None => {}
            }

            let port = self.port;
            let (wake, i) = select_array(self.slots.each_mut().map(|s| s.wait(port))).await;
            if let Some(subprotocol) = self.on_wake(i, wake) {
                return ServerEvent::Connected {
                    id: ClientId(i),
                    subprotocol,
                };
            }
        }
    }

    /// The event slot `i`'s engine found.
    fn message(&mut self, i: usize) -> ServerEvent<'_> {
        match &mut self.slots[i].state {
            SlotState::Open(engine) => ServerEvent::Message {
                id: ClientId(i),
                event: engine.event(),
            },
            // Unreachable: only called right after the engine reported an event.
            _ => ServerEvent::Disconnected {
                id: ClientId(i),
                error: Some(Error::Closed),
            },
        }
    }

    /// Acts on what slot `i` saw; `Some` when a client completed its handshake.
    #[allow(clippy::option_option)]
    fn on_wake(&mut self, i: usize, wake: Wake) -> Option<Option<&'a str>> {
        let slot = &mut self.slots[i];
        let state = core::mem::replace(&mut slot.state, SlotState::Switching);
        let (next, connected) = match (state, wake) {
            (SlotState::Listening(bufs), Wake::Accepted) => (
                SlotState::Handshake {
                    bufs,
                    hs: ServerHandshake::new(&self.config, now()),
                    len: 0,
                },
                None,
            ),
            (SlotState::Listening(bufs), Wake::AcceptFailed) => {
                slot.socket.abort();
                (SlotState::Listening(bufs), None)
            }
            (SlotState::Handshake { bufs, .. }, Wake::HandshakeEnd) => {
                slot.socket.abort();
                (SlotState::Listening(bufs), None)
            }
            (SlotState::Handshake { bufs, .. }, Wake::HandshakeTimeout) => {
                let mut w = SliceWriter::new(&mut *bufs.write);
                let len = match write_error(&sansock::Error::HandshakeTimeout, &mut w) {
                    Ok(()) => w.len(),
                    Err(_) => 0,
                };
                (self.responding(bufs, len, &[]), None)
            }
            (SlotState::Handshake { bufs, hs, len }, Wake::Input) => {
                let capacity = bufs.read.len();
                match parse(&hs, &bufs.read[..len], capacity) {
                    None => (SlotState::Handshake { bufs, hs, len }, None),
                    Some(parsed) => match answer(&self.options, parsed, bufs.write) {
                        Ok(Answer::Accept {
                            len: out,
                            consumed,
                            subprotocol,
                        }) => {
                            bufs.read.copy_within(consumed..len, 0);
                            let conn = Connection::server(self.config.clone(), now());
                            match Engine::new(conn, bufs, len - consumed, out) {
                                Ok(engine) => (SlotState::Open(engine), Some(subprotocol)),
                                // Checked in `new`; cannot fail here.
                                Err(_) => (SlotState::Switching, None),
                            }
                        }
                        Ok(Answer::Refuse { len, body, .. }) => {
                            (self.responding(bufs, len, body), None)
                        }
                        Err(_) => {
                            slot.socket.abort();
                            (SlotState::Listening(bufs), None)
                        }
                    },
                }
            }
            (SlotState::Responding { bufs, .. }, Wake::Responded) => {
                slot.socket.close();
                (self.draining(bufs), None)
            }
            (SlotState::Draining { bufs, .. }, Wake::Drained) => {
                slot.socket.abort();
                (SlotState::Listening(bufs), None)
            }
            (state, _) => (state, None),
        };
        let slot = &mut self.slots[i];
        if matches!(next, SlotState::Switching) {
            // Unreachable (see above); never leave a slot without its buffers unnoticed.
            slot.socket.abort();
        }
        slot.state = next;
        connected
    }

    fn responding(&self, bufs: Buffers<'a>, len: usize, body: &'a [u8]) -> SlotState<'a> {
        SlotState::Responding {
            bufs,
            len,
            at: 0,
            body,
            deadline: Instant::now() + to_duration(self.config.close_timeout),
        }
    }

    fn draining(&self, bufs: Buffers<'a>) -> SlotState<'a> {
        SlotState::Draining {
            bufs,
            deadline: Instant::now() + to_duration(self.config.close_timeout),
        }
    }

    /// Closes slot `i`'s transport after its connection ended.
    fn end(&mut self, i: usize, error: Option<&Error>) {
        let state = core::mem::replace(&mut self.slots[i].state, SlotState::Switching);
        let SlotState::Open(engine) = state else {
            self.slots[i].state = state;
            return;
        };
        let bufs = engine.into_buffers();
        let next = if peer_alive(error) {
            self.slots[i].socket.close();
            self.draining(bufs)
        } else {
            self.slots[i].socket.abort();
            SlotState::Listening(bufs)
        };
        self.slots[i].state = next;
    }

    fn engine(
        &mut self,
        id: ClientId,
    ) -> Result<(&mut Engine<'a, NoRandom>, &mut TcpSocket<'a>), Error> {
        let slot = self.slots.get_mut(id.0).ok_or(Error::UnknownClient)?;
        match &mut slot.state {
            SlotState::Open(engine) if !engine.is_ended() => Ok((engine, &mut slot.socket)),
            _ => Err(Error::UnknownClient),
        }
    }

    /// Sends a message of `kind` to one client (fragmented at `max_send_frame_size`).
    pub async fn send(&mut self, id: ClientId, kind: DataKind, data: &[u8]) -> Result<(), Error> {
        let (engine, socket) = self.engine(id)?;
        engine.send(socket, kind, data, true).await
    }

    /// Sends a text message to one client.
    pub async fn send_text(&mut self, id: ClientId, text: &str) -> Result<(), Error> {
        self.send(id, DataKind::Text, text.as_bytes()).await
    }

    /// Sends a binary message to one client.
    pub async fn send_binary(&mut self, id: ClientId, data: &[u8]) -> Result<(), Error> {
        self.send(id, DataKind::Binary, data).await
    }

    /// Sends the next part of a message streamed to one client; `last` finishes it.
    pub async fn send_fragment(
        &mut self,
        id: ClientId,
        kind: DataKind,
        data: &[u8],
        last: bool,
    ) -> Result<(), Error> {
        let (engine, socket) = self.engine(id)?;
        engine.send(socket, kind, data, last).await
    }

    /// Sends a message to every open client; returns how many it reached. A client whose
    /// send fails is reported by [`next_event`](Self::next_event) as disconnected.
    pub async fn broadcast(&mut self, kind: DataKind, data: &[u8]) -> usize {
        let mut reached = 0;
        for slot in &mut self.slots {
            if let SlotState::Open(engine) = &mut slot.state
                && !engine.is_ended()
                && engine.conn.state() == sansock::State::Open
                && engine
                    .send(&mut slot.socket, kind, data, true)
                    .await
                    .is_ok()
            {
                reached += 1;
            }
        }
        reached
    }

    /// Sends a text message to every open client; returns how many it reached.
    pub async fn broadcast_text(&mut self, text: &str) -> usize {
        self.broadcast(DataKind::Text, text.as_bytes()).await
    }

    /// Sends a ping to one client.
    pub async fn ping(&mut self, id: ClientId, payload: &[u8]) -> Result<(), Error> {
        let (engine, socket) = self.engine(id)?;
        engine.ping(socket, payload).await
    }

    /// Starts closing one client's connection with `code` and `reason`.
    /// [`next_event`](Self::next_event) reports [`ServerEvent::Disconnected`] once the
    /// client answered (or `close_timeout` passed).
    pub async fn disconnect(
        &mut self,
        id: ClientId,
        code: CloseCode,
        reason: &str,
    ) -> Result<(), Error> {
        let (engine, socket) = self.engine(id)?;
        engine.start_close(socket, code, reason).await
    }

    /// The clients with an open connection.
    pub fn clients(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.state {
                SlotState::Open(e) if !e.is_ended() => Some(ClientId(i)),
                _ => None,
            })
    }

    /// The number of clients with an open connection.
    pub fn client_count(&self) -> usize {
        self.clients().count()
    }

    /// The address of a connected client.
    pub fn remote_endpoint(&self, id: ClientId) -> Option<IpEndpoint> {
        let slot = self.slots.get(id.0)?;
        match &slot.state {
            SlotState::Open(_) => slot.socket.remote_endpoint(),
            _ => None,
        }
    }

    /// The `TcpSocket` of slot `id` (for options such as `set_timeout`,
    /// `set_keep_alive`, `set_nagle_enabled`; reading or writing it directly corrupts the
    /// WebSocket stream).
    pub fn socket_mut(&mut self, id: ClientId) -> Option<&mut TcpSocket<'a>> {
        self.slots.get_mut(id.0).map(|s| &mut s.socket)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl<const N: usize> core::fmt::Debug for WsServer<'_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WsServer")
            .field("port", &self.port)
            .field("slots", &N)
            .field("clients", &self.client_count())
            .finish()
    }
}
