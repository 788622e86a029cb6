//! The one error type of the crate.

use core::fmt;

use embassy_net::tcp::{AcceptError, ConnectError};
use embedded_io_async::ErrorKind;

/// Everything that can go wrong in this adapter.
///
/// Protocol and handshake failures come from the core ([`sansock::Error`], which names
/// the rule that was broken and, through [`sansock::Error::close_code`], the close code
/// that was sent); transport failures carry the socket's [`ErrorKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The protocol core failed the connection or the handshake (a peer breaking RFC 6455,
    /// a limit exceeded, a timer expiring, a bad parameter).
    Protocol(sansock::Error),
    /// The transport (TCP socket or other stream) failed.
    Io(ErrorKind),
    /// `TcpSocket::connect` failed.
    Connect(ConnectError),
    /// `TcpSocket::accept` failed.
    Accept(AcceptError),
    /// The server refused the upgrade with this HTTP status.
    Rejected {
        /// The status code of the server's answer (401, 403, 404, …).
        status: u16,
    },
    /// This server answered the request with a plain HTTP response instead of an upgrade:
    /// the configured page (200), a refusal by the checks (403, 404, …) or an invalid
    /// request (400, 426, 431, …).
    NotUpgraded {
        /// The status code that was sent.
        status: u16,
    },
    /// A buffer given to the adapter is smaller than the adapter needs.
    BufferTooSmall {
        /// Which buffer: `"read"`, `"write"`.
        buffer: &'static str,
        /// The least size it must have, in bytes.
        needed: usize,
    },
    /// An earlier `send` was cancelled in the middle of a frame, so the outgoing stream
    /// cannot continue; the connection can only be dropped.
    SendInterrupted,
    /// The connection is over: nothing more can be sent or received.
    Closed,
    /// No client with this id is connected to the server.
    UnknownClient,
}

impl From<sansock::Error> for Error {
    fn from(e: sansock::Error) -> Self {
        match e {
            sansock::Error::ConnectionClosed => Error::Closed,
            e => Error::Protocol(e),
        }
    }
}

impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        Error::Connect(e)
    }
}

impl From<AcceptError> for Error {
    fn from(e: AcceptError) -> Self {
        Error::Accept(e)
    }
}

impl Error {
    /// The error of a failed read or write on the transport.
    pub(crate) fn io<E: embedded_io_async::Error>(e: E) -> Self {
        Error::Io(e.kind())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "websocket protocol: {e}"),
            Error::Io(kind) => write!(f, "transport failed: {kind:?}"),
            Error::Connect(e) => write!(f, "TCP connect failed: {e:?}"),
            Error::Accept(e) => write!(f, "TCP accept failed: {e:?}"),
            Error::Rejected { status } => {
                write!(f, "server refused the websocket upgrade with HTTP {status}")
            }
            Error::NotUpgraded { status } => {
                write!(
                    f,
                    "request answered with HTTP {status} instead of an upgrade"
                )
            }
            Error::BufferTooSmall { buffer, needed } => {
                write!(
                    f,
                    "{buffer} buffer too small: at least {needed} bytes needed"
                )
            }
            Error::SendInterrupted => f.write_str(
                "an earlier send was cancelled inside a frame; the connection is unusable",
            ),
            Error::Closed => f.write_str("connection is closing or closed"),
            Error::UnknownClient => f.write_str("no such client is connected"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Error {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{}", defmt::Display2Format(self));
    }
}
