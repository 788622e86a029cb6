//! # sansock-embassy — WebSockets for embassy, on the sansock core
//!
//! A thin adapter: [`sansock`] holds every protocol rule (framing, masking, UTF-8,
//! close handshake, keepalive, the opening handshake); this crate moves bytes between it
//! and an [`embassy_net::tcp::TcpSocket`] (or any `embedded-io-async` stream, see
//! [`Transport`]) and drives its timers with `embassy-time`.
//!
//! - `no_std`, no heap, no `alloc`: every buffer belongs to the caller ([`Buffers`],
//!   [`Storage`]). Payloads are unmasked in place in the read buffer and handed out
//!   without a copy; a message that arrives in pieces is assembled in the caller's
//!   message buffer when it fits and handed out as [`Fragment`]s when it does not.
//! - Client: [`connect`] (Host, path, Origin, subprotocols, extra headers, Basic auth —
//!   a [`ClientRequest`]). Server: [`accept`] for one connection, [`WsServer`] for a
//!   fixed pool of `N` clients (send to one, broadcast, disconnect).
//! - [`WebSocket::recv`] answers pings, echoes the peer's close, sends keepalive pings and
//!   enforces the pong and close deadlines while it waits, and is cancel-safe, so it can
//!   sit in a `select` with the application's own timers.
//! - Masking keys and the handshake key come from the caller's `rand_core` 0.9 RNG
//!   ([`RandCore`]; esp-hal's `Rng` implements it).
//! - Builds for `riscv32imc-unknown-none-elf` (no atomic compare-and-swap) without
//!   choosing a portable-atomic backend: nothing in the tree needs one.
//!
//! ```no_run
//! # async fn demo(stack: embassy_net::Stack<'_>, rng: impl rand_core::RngCore) -> Result<(), sansock_embassy::Error> {
//! use embassy_net::tcp::TcpSocket;
//! use sansock_embassy::{Buffers, ClientRequest, Config, Event, connect};
//!
//! let (mut tcp_rx, mut tcp_tx) = ([0u8; 1024], [0u8; 1024]);
//! let mut socket = TcpSocket::new(stack, &mut tcp_rx, &mut tcp_tx);
//! socket.connect((embassy_net::Ipv4Address::new(192, 168, 1, 10), 8080)).await?;
//!
//! let (mut read, mut write, mut message) = ([0u8; 1024], [0u8; 512], [0u8; 2048]);
//! let buffers = Buffers::new(&mut read, &mut write).with_message(&mut message);
//! let request = ClientRequest::new("192.168.1.10").port(8080).path("/chat");
//! let (mut ws, _subprotocol) =
//!     connect(&mut socket, &request, Config::microcontroller(), rng, buffers).await?;
//!
//! ws.send_text("hello").await?;
//! while let Some(event) = ws.recv().await {
//!     match event? {
//!         Event::Text(text) => { let _ = text; /* a whole text message */ }
//!         Event::Binary(bytes) => { let _ = bytes; /* a whole binary message */ }
//!         Event::Fragment(part) => { let _ = part; /* a piece of a message too big for the buffers */ }
//!         Event::Close(frame) => { let _ = frame; /* the peer closed; recv() ends next */ }
//!         Event::Ping(_) | Event::Pong(_) => {}
//!     }
//! }
//! # Ok(()) }
//! ```
#![no_std]
#![forbid(unsafe_code)]

mod buffers;
mod client;
mod engine;
mod error;
mod pool;
mod server;
mod transport;
mod ws;

pub use buffers::{Buffers, MIN_READ_BUFFER, MIN_WRITE_BUFFER, Storage};
pub use client::connect;
pub use error::Error;
pub use pool::{ClientId, ServerEvent, SlotBuffers, WsServer};
pub use server::{AcceptOptions, Check, Page, accept};
pub use transport::{IoStream, Transport};
pub use ws::WebSocket;

pub use sansock::handshake::{ClientRequest, Request};
pub use sansock::{CloseCode, CloseFrame, Config, DataKind, NoRandom, RandomSource, State};

/// A piece of a message that did not fit the buffers, in order.
///
/// A message streamed this way arrives as one or more fragments: the first has `first`,
/// the last has `last`. Their boundaries follow frame and read boundaries and carry no
/// meaning. Text fragments may end inside a UTF-8 code point; the message as a whole was
/// validated (an invalid byte fails the connection with 1007 as soon as it arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// Text or binary.
    pub kind: DataKind,
    /// The bytes of this piece.
    pub data: &'a [u8],
    /// The first piece of the message.
    pub first: bool,
    /// The last piece of the message.
    pub last: bool,
}

/// What the peer sent, borrowed from the connection's buffers until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A whole text message.
    Text(&'a str),
    /// A whole binary message.
    Binary(&'a [u8]),
    /// A piece of a message too big for the message buffer (or, without one, a message
    /// that did not arrive in one read).
    Fragment(Fragment<'a>),
    /// A ping; with `auto_pong` (the default) the pong has already been sent.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame; our answer has been sent. The connection ends next.
    Close(CloseFrame<'a>),
}

/// A `rand_core` 0.9 generator as the core's [`RandomSource`] (client masking keys and
/// the `Sec-WebSocket-Key`). [`connect`] wraps the caller's RNG in it.
///
/// ```
/// use sansock_embassy::{RandCore, RandomSource};
/// struct Counter(u8);
/// impl rand_core::RngCore for Counter {
///     fn next_u32(&mut self) -> u32 { rand_core::impls::next_u32_via_fill(self) }
///     fn next_u64(&mut self) -> u64 { rand_core::impls::next_u64_via_fill(self) }
///     fn fill_bytes(&mut self, dst: &mut [u8]) {
///         dst.iter_mut().for_each(|b| { self.0 = self.0.wrapping_add(1); *b = self.0 })
///     }
/// }
/// let mut key = [0u8; 4];
/// RandCore(Counter(0)).fill_bytes(&mut key);
/// assert_eq!(key, [1, 2, 3, 4]);
/// ```
#[derive(Debug, Clone)]
pub struct RandCore<G>(pub G);

impl<G: rand_core::RngCore> RandomSource for RandCore<G> {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
}

/// The current time for the core: milliseconds since embassy-time's epoch (boot).
pub(crate) fn now() -> sansock::Instant {
    sansock::Instant::from_millis(embassy_time::Instant::now().as_millis())
}

/// A core instant as an embassy-time one.
pub(crate) fn to_embassy(at: sansock::Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_millis(at.as_millis())
}
