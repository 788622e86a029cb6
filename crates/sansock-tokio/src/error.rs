//! The one error type of the adapter.
//!
//! Every variant names what broke. Secrets (passwords, full URLs that may carry
//! userinfo) are never part of a message, so errors can be logged as they are.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the adapter.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    // ----- transport -----
    /// Reading from or writing to a socket or file failed.
    Io(io::Error),
    /// The WebSocket protocol was broken (by the peer or the caller), a limit was
    /// exceeded, or the opening handshake failed; the variant names the rule (see
    /// [`sansock::Error`], and [`Error::close_code`] for what the peer was told).
    Protocol(sansock::Error),
    /// The server answered the opening handshake with something other than 101: the
    /// whole response, so a 401 challenge can be answered or a 403 reported.
    Rejected(Box<sansock::handshake::client::OwnedResponse>),
    /// The TLS layer failed: bad configuration, a handshake error or an alert from the peer.
    Tls(rustls::Error),
    /// A PEM file could not be read or held no item of the expected kind.
    Pem {
        /// The file that was being read.
        path: PathBuf,
        /// What went wrong while reading it.
        source: rustls::pki_types::pem::Error,
    },
    /// A PEM file meant to hold certificates held none.
    NoCertificates {
        /// The file that was read.
        path: PathBuf,
    },
    /// The host name is not usable as a TLS server name (SNI / certificate identity).
    InvalidServerName(String),
    /// The client-certificate verifier could not be built (for example, the CA file
    /// held no usable trust anchor).
    ClientVerifier(rustls::server::VerifierBuilderError),

    // ----- URLs (RFC 6455 §3) -----
    /// The string is not a URL at all.
    InvalidUrl(::url::ParseError),
    /// The URL is syntactically a URL but breaks a WebSocket or RFC 3986 rule.
    MalformedUrl(&'static str),
    /// The URL scheme is neither `ws` nor `wss` (or, for a proxy, not `http`).
    UnsupportedScheme(String),
    /// The URL has a fragment, which RFC 6455 §3 forbids in WebSocket URIs.
    UrlHasFragment,
    /// A host name contains characters that cannot appear in an HTTP authority.
    InvalidHost(String),
    /// Userinfo in a URL, or credentials given to a Basic helper, are unusable.
    InvalidCredentials(&'static str),

    // ----- HTTP CONNECT proxies -----
    /// The proxy answered the `CONNECT` with a non-2xx status other than 407.
    ProxyRefused {
        /// The status code of the proxy's answer.
        status: u16,
        /// The reason phrase of the proxy's answer (sanitised for display).
        reason: String,
    },
    /// The proxy answered 407: it wants (other) credentials.
    ProxyAuthRequired {
        /// Whether a `Proxy-Authorization` header had been sent.
        credentials_sent: bool,
    },
    /// The proxy's answer was not a well-formed HTTP/1.x response head.
    ProxyMalformedResponse,
    /// The proxy's response head exceeded the size limit.
    ProxyResponseTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The proxy closed the connection before finishing its response head.
    ProxyClosed,

    // ----- HTTP authentication (RFC 7617, RFC 7616) -----
    /// A `WWW-Authenticate` / `Proxy-Authenticate` value is not well-formed.
    MalformedChallenge(&'static str),
    /// None of the offered challenges is a Digest challenge this client can answer.
    NoSupportedChallenge,
    /// An `Authorization` header value is not well-formed.
    MalformedCredentials(&'static str),

    // ----- cookies (RFC 6265) -----
    /// A cookie name or value contains characters RFC 6265 §4.2.1 does not allow.
    InvalidCookie {
        /// The offending cookie name (shown escaped).
        name: String,
        /// Which rule was broken.
        reason: &'static str,
    },
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

impl From<sansock::Error> for Error {
    fn from(e: sansock::Error) -> Self {
        Error::Protocol(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Protocol(e) => write!(f, "WebSocket protocol: {e}"),
            Error::Rejected(r) => {
                write!(f, "handshake rejected with HTTP {} {}", r.status, r.reason)
            }
            Error::Tls(e) => write!(f, "TLS error: {e}"),
            Error::Pem { path, source } => {
                write!(f, "cannot read PEM file {}: {source}", path.display())
            }
            Error::NoCertificates { path } => {
                write!(f, "no certificate found in PEM file {}", path.display())
            }
            Error::InvalidServerName(name) => write!(f, "invalid TLS server name {name:?}"),
            Error::ClientVerifier(e) => {
                write!(f, "cannot build the client certificate verifier: {e}")
            }
            Error::InvalidUrl(e) => write!(f, "invalid URL: {e}"),
            Error::MalformedUrl(why) => write!(f, "malformed URL: {why}"),
            Error::UnsupportedScheme(s) => write!(f, "unsupported URL scheme {s:?}"),
            Error::UrlHasFragment => {
                write!(f, "WebSocket URLs must not have a fragment (RFC 6455 §3)")
            }
            Error::InvalidHost(h) => write!(f, "invalid host {h:?}"),
            Error::InvalidCredentials(why) => write!(f, "invalid credentials: {why}"),
            Error::ProxyRefused { status, reason } => {
                write!(f, "proxy refused the CONNECT tunnel: {status} {reason}")
            }
            Error::ProxyAuthRequired {
                credentials_sent: true,
            } => {
                write!(f, "proxy rejected the credentials (407)")
            }
            Error::ProxyAuthRequired {
                credentials_sent: false,
            } => {
                write!(f, "proxy requires authentication (407)")
            }
            Error::ProxyMalformedResponse => write!(f, "proxy sent a malformed HTTP response"),
            Error::ProxyResponseTooLarge { limit } => {
                write!(f, "proxy response head exceeded {limit} bytes")
            }
            Error::ProxyClosed => {
                write!(
                    f,
                    "proxy closed the connection before answering the CONNECT"
                )
            }
            Error::MalformedChallenge(why) => {
                write!(f, "malformed authentication challenge: {why}")
            }
            Error::NoSupportedChallenge => {
                write!(
                    f,
                    "no supported Digest authentication challenge was offered"
                )
            }
            Error::MalformedCredentials(why) => {
                write!(f, "malformed Authorization header: {why}")
            }
            Error::InvalidCookie { name, reason } => write!(f, "invalid cookie {name:?}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Protocol(e) => Some(e),
            Error::Tls(e) => Some(e),
            Error::Pem { source, .. } => Some(source),
            Error::ClientVerifier(e) => Some(e),
            Error::InvalidUrl(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    /// Lifts a TLS error that tokio-rustls tunnelled through `io::Error` back into
    /// [`Error::Tls`], so callers can tell a handshake failure from a broken socket.
    fn from(e: io::Error) -> Self {
        if !e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
            return Error::Io(e);
        }
        let kind = e.kind();
        match e
            .into_inner()
            .map(|inner| inner.downcast::<rustls::Error>())
        {
            Some(Ok(tls)) => Error::Tls(*tls),
            Some(Err(other)) => Error::Io(io::Error::new(kind, other)),
            None => Error::Io(kind.into()),
        }
    }
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Error::Tls(e)
    }
}

impl From<::url::ParseError> for Error {
    fn from(e: ::url::ParseError) -> Self {
        Error::InvalidUrl(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static() {
        // Errors cross task boundaries in tokio; this fails to compile otherwise.
        fn assert_bounds<T: Send + Sync + 'static>() {}
        assert_bounds::<Error>();
    }

    #[test]
    fn tls_errors_tunnelled_through_io_are_lifted() {
        let io = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert!(matches!(
            Error::from(io),
            Error::Tls(rustls::Error::DecryptError)
        ));
        let plain = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert!(
            matches!(Error::from(plain), Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset)
        );
    }

    #[test]
    fn display_names_what_broke() {
        assert_eq!(
            Error::ProxyRefused {
                status: 403,
                reason: "Forbidden".into()
            }
            .to_string(),
            "proxy refused the CONNECT tunnel: 403 Forbidden"
        );
        assert!(Error::UrlHasFragment.to_string().contains("fragment"));
    }
}
