//! Every limit and timer of a connection, in one place.

use core::time::Duration;

/// Which end of the connection this endpoint is (RFC 6455 §5.1: clients mask, servers
/// do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The endpoint that sent the opening handshake; masks every frame it sends.
    Client,
    /// The endpoint that accepted the opening handshake; never masks.
    Server,
}

/// The hard upper bound on [`Config::max_headers`]: the handshake parser keeps this many
/// header slots on the stack.
pub const MAX_HEADERS_LIMIT: usize = 128;

/// Limits and timers of a connection and its handshake.
///
/// [`Config::default`] suits a server on a std host; [`Config::microcontroller`] suits
/// firmware with a few KiB of RAM per connection. Every field can be changed; every
/// limit, when exceeded, gives the RFC's answer (close 1009 on a connection, HTTP 431 in
/// a handshake) and a typed [`Error`](crate::Error).
///
/// | field | default | microcontroller |
/// |---|---|---|
/// | `max_frame_size` | 16 MiB | 4 KiB |
/// | `max_message_size` | 64 MiB | 4 KiB |
/// | `max_send_frame_size` | 16 MiB | 1 KiB |
/// | `max_header_bytes` | 16 KiB | 2 KiB |
/// | `max_headers` | 64 | 24 |
/// | `auto_pong` | true | true |
/// | `keepalive_interval` | 30 s | 30 s |
/// | `pong_timeout` | 20 s | 10 s |
/// | `close_timeout` | 5 s | 5 s |
/// | `handshake_timeout` | 10 s | 10 s |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest payload of one incoming frame. Bigger frames fail the connection with 1009
    /// as soon as their header arrives.
    pub max_frame_size: u64,
    /// Largest incoming message (sum of its frames' payloads). Bigger messages fail the
    /// connection with 1009 as soon as the frame that crosses the limit is announced.
    pub max_message_size: u64,
    /// Outgoing messages longer than this are split into frames of at most this payload
    /// size (automatic fragmentation).
    pub max_send_frame_size: usize,
    /// Largest HTTP head (request line or status line plus headers) of the opening
    /// handshake. Exceeding it answers 431.
    pub max_header_bytes: usize,
    /// Most header fields in the opening handshake, at most [`MAX_HEADERS_LIMIT`].
    /// Exceeding it answers 431.
    pub max_headers: usize,
    /// Answer pings with pongs automatically. When off, pings are still surfaced as events
    /// and the application must answer them itself.
    pub auto_pong: bool,
    /// Send a ping when nothing has been received for this long; `None` disables keepalive.
    pub keepalive_interval: Option<Duration>,
    /// After a keepalive ping, how long to wait for any input before declaring the peer
    /// dead ([`Error::PeerUnresponsive`](crate::Error::PeerUnresponsive)).
    pub pong_timeout: Duration,
    /// After sending a close frame, how long to wait for the peer's close (and, on the
    /// client, for the server to close TCP).
    pub close_timeout: Duration,
    /// How long the opening handshake may take.
    pub handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self::server()
    }
}

impl Config {
    /// The defaults: tuned for a server or desktop client on a std host.
    pub const fn server() -> Self {
        Config {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_send_frame_size: 16 << 20,
            max_header_bytes: 16 << 10,
            max_headers: 64,
            auto_pong: true,
            keepalive_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// A profile for microcontrollers: small frames and messages, short heads, so a
    /// connection fits in a few KiB of caller-owned buffers.
    pub const fn microcontroller() -> Self {
        Config {
            max_frame_size: 4 << 10,
            max_message_size: 4 << 10,
            max_send_frame_size: 1 << 10,
            max_header_bytes: 2 << 10,
            max_headers: 24,
            auto_pong: true,
            keepalive_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// `max_headers`, capped at [`MAX_HEADERS_LIMIT`].
    pub(crate) fn header_slots(&self) -> usize {
        self.max_headers.min(MAX_HEADERS_LIMIT)
    }
}
