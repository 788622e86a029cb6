//! The one error type of the tokio adapter.

use std::fmt;
use std::io;

/// Everything that can go wrong in a connection or its handshake.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Io(io::Error),
    /// The peer broke the protocol, a limit was exceeded, or the caller misused the
    /// connection; the variant names the rule (see [`sansock::Error`]).
    Protocol(sansock::Error),
}

impl Error {
    /// The close code that went (or would go) to the peer for this error.
    pub fn close_code(&self) -> Option<sansock::CloseCode> {
        match self {
            Error::Protocol(e) => e.close_code(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Protocol(e) => write!(f, "WebSocket protocol: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<sansock::Error> for Error {
    fn from(e: sansock::Error) -> Self {
        Error::Protocol(e)
    }
}
