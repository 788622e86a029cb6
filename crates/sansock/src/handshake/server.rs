//! The server side of the opening handshake (RFC 6455 §4.2).
//!
//! ```
//! use sansock::handshake::{ServerHandshake, SliceWriter, write_accept, write_error};
//! use sansock::{Config, Instant};
//!
//! let hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
//! let input = b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";
//! let mut buf = [0u8; 512];
//! let mut out = SliceWriter::new(&mut buf);
//! match hs.parse_request(input) {
//!     Ok(Some(req)) => {
//!         assert_eq!((req.path, req.query), ("/chat", Some("room=1")));
//!         let chosen = req.subprotocols().find(|p| *p == "chat");
//!         write_accept(req.key, chosen, None, &[], &mut out)?;
//!     }
//!     Ok(None) => { /* read more */ }
//!     Err(e) => write_error(&e, &mut out)?, // then close the connection
//! }
//! assert!(out.written().starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! # Ok::<(), sansock::Error>(())
//! ```

use core::fmt::{self, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::extensions::{ExtensionOffers, is_extension_list};
use super::headers::{Cookies, Headers, Subprotocols, trim_ows};
use super::write::{Counter, Decimal, FmtSink, HttpWrite};
use super::{
    HeadLimits, accept_key, check_header, head_status, head_window, header_block, header_slots,
    is_token, put_header,
};
use crate::config::Config;
use crate::error::Error;
use crate::time::Instant;

/// Headers [`write_accept`] writes itself.
const RESERVED_ACCEPT: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

/// Headers [`write_reject`] writes itself.
const RESERVED_REJECT: &[&str] = &["Connection", "Content-Length", "Transfer-Encoding"];

/// A server handshake in progress: waiting for the client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHandshake {
    deadline: Instant,
    limits: HeadLimits,
}

impl ServerHandshake {
    /// Starts waiting for a request at `now`; it must be complete before
    /// `now + config.handshake_timeout`.
    pub fn new(config: &Config, now: Instant) -> Self {
        ServerHandshake {
            deadline: now + config.handshake_timeout,
            limits: HeadLimits::new(config),
        }
    }

    /// Parses the client's request from `input`, everything received so far.
    ///
    /// `Ok(None)` means the head is not complete yet. `Ok(Some(req))` is a valid opening
    /// handshake (RFC 6455 §4.2.1); `input[req.consumed..]` already belongs to the
    /// connection. Every error has an HTTP status ([`Error::http_status`]);
    /// answer it with [`write_error`] and close:
    ///
    /// | error | status |
    /// |---|---|
    /// | [`Error::MalformedHttp`] (also a fragment or an unusable request target) | 400 |
    /// | [`Error::MethodNotGet`] | 405 |
    /// | [`Error::UnsupportedHttpVersion`] (not HTTP/1.1) | 400 |
    /// | [`Error::MissingHost`], [`Error::InvalidHeader`]`("Host")` (repeated) | 400 |
    /// | [`Error::MissingUpgrade`], [`Error::MissingConnectionUpgrade`] | 400 |
    /// | [`Error::UnsupportedVersion`] (`Sec-WebSocket-Version` missing or not `13`) | 426 |
    /// | [`Error::InvalidKey`] (missing, repeated, not base64 of 16 bytes) | 400 |
    /// | [`Error::InvalidHeader`] (malformed extension list; a body announced) | 400 |
    /// | [`Error::HeadersTooLarge`], [`Error::TooManyHeaders`] | 431 |
    pub fn parse_request<'b>(&self, input: &'b [u8]) -> Result<Option<Request<'b>>, Error> {
        let mut slots = header_slots();
        let slots = slots.get_mut(..self.limits.slots).unwrap_or_default();
        let mut req = httparse::Request::new(slots);
        let parsed = req.parse(head_window(input, self.limits.max_bytes));
        let Some(head_len) = head_status(parsed, input.len(), self.limits.max_bytes)? else {
            return Ok(None);
        };
        let head = input.get(..head_len).ok_or(Error::MalformedHttp)?;
        let headers = header_block(head, req.headers);
        let method = req.method.ok_or(Error::MalformedHttp)?;
        let target = req.path.ok_or(Error::MalformedHttp)?;
        let CheckedRequest {
            path,
            query,
            host,
            key,
        } = check_request(method, target, req.version == Some(1), headers.iter())?;
        Ok(Some(Request {
            consumed: head_len,
            method,
            target,
            path,
            query,
            host,
            key,
            headers,
            head,
        }))
    }

    /// The handshake deadline: call [`handle_timeout`](ServerHandshake::handle_timeout)
    /// when it is reached.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.deadline)
    }

    /// [`Error::HandshakeTimeout`] once `now` has reached the deadline (answer 408 with
    /// [`write_error`], or just close).
    pub fn handle_timeout(&self, now: Instant) -> Result<(), Error> {
        if now >= self.deadline {
            Err(Error::HandshakeTimeout)
        } else {
            Ok(())
        }
    }
}

/// What [`check_request`] takes from a valid opening handshake request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedRequest<'h> {
    /// The path of the target, without query (`/` for an absolute target without path).
    pub path: &'h str,
    /// The query of the target, without `?`.
    pub query: Option<&'h str>,
    /// The `Host` header.
    pub host: &'h str,
    /// The `Sec-WebSocket-Key` header, valid base64 of 16 bytes; answer it with
    /// [`accept_key`] or [`write_accept`].
    pub key: &'h str,
}

/// Checks an opening handshake request that an HTTP library has already parsed
/// (RFC 6455 §4.2.1): the rules of [`ServerHandshake::parse_request`], which calls this,
/// without the parsing and its size limits.
///
/// `method` and `target` are the request line's, `http_1_1` says whether the request
/// is HTTP/1.1, and `headers` yields every field as `(name, value)` (names in any case,
/// values without surrounding whitespace). The errors and their statuses are those of
/// [`ServerHandshake::parse_request`], in the same order of precedence; answer them
/// with [`error_answer`] or [`write_error`].
///
/// ```
/// use sansock::handshake::server::check_request;
/// let headers = [
///     ("host", &b"example.com"[..]),
///     ("upgrade", b"websocket"),
///     ("connection", b"keep-alive, Upgrade"),
///     ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
///     ("sec-websocket-version", b"13"),
/// ];
/// let checked = check_request("GET", "/chat?room=1", true, headers)?;
/// assert_eq!((checked.path, checked.query), ("/chat", Some("room=1")));
/// assert_eq!(checked.key, "dGhlIHNhbXBsZSBub25jZQ==");
///
/// let mut old = headers;
/// old[4] = ("sec-websocket-version", b"8");
/// let err = check_request("GET", "/chat", true, old).unwrap_err();
/// assert_eq!(err, sansock::Error::UnsupportedVersion);
/// assert_eq!(err.http_status(), Some(426));
/// # Ok::<(), sansock::Error>(())
/// ```
pub fn check_request<'h, I>(
    method: &str,
    target: &'h str,
    http_1_1: bool,
    headers: I,
) -> Result<CheckedRequest<'h>, Error>
where
    I: IntoIterator<Item = (&'h str, &'h [u8])>,
{
    if method != "GET" {
        return Err(Error::MethodNotGet);
    }
    if !http_1_1 {
        return Err(Error::UnsupportedHttpVersion);
    }
    let (path, query) = split_target(target)?;
    let scan = Scan::of(headers);
    let host = match scan.host {
        Once::Absent | Once::One(b"") => return Err(Error::MissingHost),
        Once::One(host) => core::str::from_utf8(host).map_err(|_| Error::InvalidHeader("Host"))?,
        Once::Repeated => return Err(Error::InvalidHeader("Host")),
    };
    if !scan.upgrade_websocket {
        return Err(Error::MissingUpgrade);
    }
    if !scan.connection_upgrade {
        return Err(Error::MissingConnectionUpgrade);
    }
    // Checked before the key so that an older client learns which version to use.
    if scan.version != Once::One(b"13") {
        return Err(Error::UnsupportedVersion);
    }
    let key = match scan.key {
        Once::One(key) if is_valid_key(key) => core::str::from_utf8(key),
        _ => return Err(Error::InvalidKey),
    }
    .map_err(|_| Error::InvalidKey)?;
    scan.extensions?;
    // A body would be read as WebSocket frames: refuse it rather than smuggle it.
    if scan.transfer_encoding {
        return Err(Error::InvalidHeader("Transfer-Encoding"));
    }
    if scan.content_length {
        return Err(Error::InvalidHeader("Content-Length"));
    }
    Ok(CheckedRequest {
        path,
        query,
        host,
        key,
    })
}

/// Whether `headers` ask for a WebSocket upgrade (`Upgrade: websocket` and
/// `Connection: upgrade`), whether or not the rest of the request is valid.
///
/// Use it to route: a request that asks for an upgrade is answered by
/// [`check_request`] (101, or the error's status), any other by the HTTP application.
///
/// ```
/// use sansock::handshake::server::wants_websocket;
/// assert!(wants_websocket([("Upgrade", &b"WebSocket"[..]), ("Connection", b"keep-alive, upgrade")]));
/// assert!(!wants_websocket([("Upgrade", &b"h2c"[..]), ("Connection", b"upgrade")]));
/// ```
pub fn wants_websocket<'h, I>(headers: I) -> bool
where
    I: IntoIterator<Item = (&'h str, &'h [u8])>,
{
    let scan = Scan::of(headers);
    scan.upgrade_websocket && scan.connection_upgrade
}

/// A header that may appear at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Once<'h> {
    Absent,
    One(&'h [u8]),
    Repeated,
}

impl<'h> Once<'h> {
    fn see(&mut self, value: &'h [u8]) {
        *self = match self {
            Once::Absent => Once::One(value),
            _ => Once::Repeated,
        };
    }
}

/// Everything the request checks need, gathered in one pass over the headers so that
/// any header list (a parsed block, an HTTP library's map) can be checked alike.
struct Scan<'h> {
    host: Once<'h>,
    version: Once<'h>,
    key: Once<'h>,
    upgrade_websocket: bool,
    connection_upgrade: bool,
    /// The first syntax error of the `Sec-WebSocket-Extensions` fields.
    extensions: Result<(), Error>,
    transfer_encoding: bool,
    /// A `Content-Length` other than `0`.
    content_length: bool,
}

impl<'h> Scan<'h> {
    fn of<I: IntoIterator<Item = (&'h str, &'h [u8])>>(headers: I) -> Self {
        let mut scan = Scan {
            host: Once::Absent,
            version: Once::Absent,
            key: Once::Absent,
            upgrade_websocket: false,
            connection_upgrade: false,
            extensions: Ok(()),
            transfer_encoding: false,
            content_length: false,
        };
        for (name, value) in headers {
            let is = |n: &str| name.eq_ignore_ascii_case(n);
            if is("Host") {
                scan.host.see(value);
            } else if is("Upgrade") {
                scan.upgrade_websocket |= has_token(value, "websocket");
            } else if is("Connection") {
                scan.connection_upgrade |= has_token(value, "upgrade");
            } else if is("Sec-WebSocket-Version") {
                scan.version.see(value);
            } else if is("Sec-WebSocket-Key") {
                scan.key.see(value);
            } else if is("Sec-WebSocket-Extensions") {
                if scan.extensions.is_ok() {
                    scan.extensions = match core::str::from_utf8(value) {
                        Ok(list) => ExtensionOffers::from_value(list).validate(),
                        Err(_) => Err(Error::InvalidHeader("Sec-WebSocket-Extensions")),
                    };
                }
            } else if is("Transfer-Encoding") {
                scan.transfer_encoding = true;
            } else if is("Content-Length") {
                scan.content_length |= value != b"0";
            }
        }
        scan
    }
}

/// Whether the comma-separated list `value` has the element `token` (ASCII
/// case-insensitive, optional whitespace around elements), as [`Headers::has_token`].
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|e| trim_ows(e).eq_ignore_ascii_case(token.as_bytes()))
}

/// RFC 6455 §4.2.1 item 5: base64 of exactly 16 bytes, i.e. 24 characters ending in `==`.
fn is_valid_key(key: &[u8]) -> bool {
    // 18 bytes is what base64 needs as room for 24 characters; a 17-byte value fits
    // that room too and is told apart by the length check.
    let mut decoded = [0u8; 18];
    key.len() == 24 && STANDARD.decode_slice(key, &mut decoded) == Ok(16)
}

/// Splits a request target into path and query. Origin-form (`/path?query`) and the
/// absolute form RFC 6455 §4.2.1 also allows (`ws://host/path`) are accepted; a
/// fragment is not (RFC 6455 §3).
fn split_target(target: &str) -> Result<(&str, Option<&str>), Error> {
    if target.contains('#') {
        return Err(Error::MalformedHttp);
    }
    let path_and_query = if target.starts_with('/') {
        target
    } else {
        let (scheme, rest) = target.split_once("://").ok_or(Error::MalformedHttp)?;
        if !["http", "https", "ws", "wss"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme))
        {
            return Err(Error::MalformedHttp);
        }
        let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
        if authority_len == 0 {
            return Err(Error::MalformedHttp);
        }
        rest.get(authority_len..).ok_or(Error::MalformedHttp)?
    };
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    // `ws://host?x` names the root resource.
    Ok((if path.is_empty() { "/" } else { path }, query))
}

/// A valid opening handshake request, borrowed from the input.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Request<'b> {
    /// The length of the request head; later bytes are WebSocket frames.
    pub consumed: usize,
    /// The method (always `GET` once validated).
    pub method: &'b str,
    /// The request target as sent.
    pub target: &'b str,
    /// The path of the target, without query (`/` for an absolute target without path).
    pub path: &'b str,
    /// The query of the target, without `?`.
    pub query: Option<&'b str>,
    /// The `Host` header.
    pub host: &'b str,
    /// The `Sec-WebSocket-Key` header, valid base64 of 16 bytes.
    pub key: &'b str,
    /// All request headers.
    pub headers: Headers<'b>,
    head: &'b [u8],
}

impl<'b> Request<'b> {
    /// The `Origin` header, if present and UTF-8.
    pub fn origin(&self) -> Option<&'b str> {
        self.headers.get_str("Origin")
    }

    /// The value of the first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers.get(name)
    }

    /// The offered subprotocols, in the client's order of preference.
    pub fn subprotocols(&self) -> Subprotocols<'b> {
        Subprotocols::new(&self.headers)
    }

    /// The offered extensions (syntax already validated, so every item is `Ok`).
    pub fn extensions(&self) -> ExtensionOffers<'b> {
        ExtensionOffers::new(&self.headers)
    }

    /// The cookies of every `Cookie` header.
    pub fn cookies(&self) -> Cookies<'b> {
        Cookies::new(&self.headers)
    }

    /// The whole request head as received (`consumed` bytes).
    pub fn raw_head(&self) -> &'b [u8] {
        self.head
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("consumed", &self.consumed)
            .field("method", &self.method)
            .field("target", &self.target)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("host", &self.host)
            .field("key", &self.key)
            .field("headers", &self.headers)
            .finish()
    }
}

#[cfg(feature = "alloc")]
pub use owned::OwnedRequest;

#[cfg(feature = "alloc")]
mod owned {
    use core::ops::Range;

    use super::{Headers, Request};
    use crate::handshake::offset_in;

    /// Where a borrowed field sat in the head; `None` for the one field that can be a
    /// constant (a root path the target did not spell out).
    type Span = Option<Range<usize>>;

    /// An owned copy of a [`Request`], e.g. to hand to an async callback.
    ///
    /// It keeps the raw head and where each field is in it; [`OwnedRequest::request`]
    /// gives the borrowed view back, with every accessor.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OwnedRequest {
        head: bytes::Bytes,
        method: Span,
        target: Span,
        path: Span,
        query: Option<Span>,
        host: Span,
        key: Span,
        headers: Span,
    }

    impl OwnedRequest {
        /// The borrowed view of this request.
        pub fn request(&self) -> Request<'_> {
            let head = &self.head[..];
            let text = |span: &Span, fallback: &'static str| -> &str {
                span.clone()
                    .and_then(|r| head.get(r))
                    .and_then(|b| core::str::from_utf8(b).ok())
                    .unwrap_or(fallback)
            };
            Request {
                consumed: head.len(),
                method: text(&self.method, ""),
                target: text(&self.target, ""),
                path: text(&self.path, "/"),
                query: self.query.as_ref().map(|q| text(q, "")),
                host: text(&self.host, ""),
                key: text(&self.key, ""),
                headers: Headers::new(
                    self.headers
                        .clone()
                        .and_then(|r| head.get(r))
                        .unwrap_or_default(),
                ),
                head,
            }
        }

        /// The raw request head.
        pub fn as_bytes(&self) -> &[u8] {
            &self.head
        }
    }

    impl Request<'_> {
        /// An owned copy of this request.
        pub fn to_owned_request(&self) -> OwnedRequest {
            let head = self.head;
            let span = |s: &[u8]| offset_in(head, s).map(|start| start..start + s.len());
            OwnedRequest {
                head: bytes::Bytes::copy_from_slice(head),
                method: span(self.method.as_bytes()),
                target: span(self.target.as_bytes()),
                path: span(self.path.as_bytes()),
                query: self.query.map(|q| span(q.as_bytes())),
                host: span(self.host.as_bytes()),
                key: span(self.key.as_bytes()),
                headers: span(self.headers.raw()),
            }
        }
    }

    impl From<Request<'_>> for OwnedRequest {
        fn from(r: Request<'_>) -> Self {
            r.to_owned_request()
        }
    }
}

/// Writes the `101 Switching Protocols` answer to a request with `Sec-WebSocket-Key: key`.
///
/// `subprotocol` must be one the client offered and a token; `extensions` is the raw
/// `Sec-WebSocket-Extensions` value the server accepts (its syntax is checked);
/// `extra_headers` follow (e.g. `Set-Cookie`), except the ones this writes itself.
/// Every parameter is checked before anything is written ([`Error::InvalidRequest`]).
pub fn write_accept(
    key: &str,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    extra_headers: &[(&str, &str)],
    out: &mut (impl HttpWrite + ?Sized),
) -> Result<(), Error> {
    check_accept(subprotocol, extensions, extra_headers)?;
    out.put(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")?;
    put_header(out, "Sec-WebSocket-Accept", &accept_key(key.as_bytes()))?;
    if let Some(p) = subprotocol {
        put_header(out, "Sec-WebSocket-Protocol", p.as_bytes())?;
    }
    if let Some(ext) = extensions {
        put_header(out, "Sec-WebSocket-Extensions", ext.as_bytes())?;
    }
    for (name, value) in extra_headers {
        put_header(out, name, value.as_bytes())?;
    }
    out.put(b"\r\n")
}

/// Checks the parameters of a `101` answer as [`write_accept`] does before writing
/// anything, for a caller that builds the answer with an HTTP library instead.
///
/// The answer then carries `Upgrade: websocket`, `Connection: Upgrade`,
/// `Sec-WebSocket-Accept` ([`accept_key`]), `Sec-WebSocket-Protocol: subprotocol` and
/// `Sec-WebSocket-Extensions: extensions` when given, and `extra_headers`.
pub fn check_accept(
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    extra_headers: &[(&str, &str)],
) -> Result<(), Error> {
    if subprotocol.is_some_and(|p| !is_token(p)) {
        return Err(Error::InvalidRequest("subprotocol is not a token"));
    }
    if let Some(ext) = extensions
        && !is_extension_list(ext)
    {
        return Err(Error::InvalidRequest("malformed extension list"));
    }
    for (name, value) in extra_headers {
        check_header(name, value, RESERVED_ACCEPT)?;
    }
    Ok(())
}

/// Writes a refusal: `HTTP/1.1 <status> <reason>`, `extra_headers`, `Content-Length`,
/// `Connection: close`, and `body`. Close the connection once it is sent.
///
/// `status` must be 200–599 (a refusal is neither informational nor the 101 of an
/// accept); the extra headers are checked like everywhere else and may not include
/// `Connection`, `Content-Length` or `Transfer-Encoding`.
pub fn write_reject(
    status: u16,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    out: &mut (impl HttpWrite + ?Sized),
) -> Result<(), Error> {
    for (name, value) in extra_headers {
        check_header(name, value, RESERVED_REJECT)?;
    }
    put_refusal_head(status, extra_headers, body.len(), out)?;
    out.put(body)
}

/// Answers a failed request with the error's status ([`Error::http_status`], 500 for an
/// error that has none) and its description as a plain-text body. 426 carries
/// `Sec-WebSocket-Version: 13` (RFC 6455 §4.4) and 405 carries `Allow: GET`
/// (RFC 9110 §15.5.6).
pub fn write_error(err: &Error, out: &mut (impl HttpWrite + ?Sized)) -> Result<(), Error> {
    let (status, extra) = error_answer(err);
    let mut len = Counter::default();
    // Counting cannot fail: `Counter` never returns an error.
    let _ = writeln!(len, "{err}");
    put_refusal_head(status, extra, len.0, out)?;
    let mut sink = FmtSink { out, error: None };
    if writeln!(sink, "{err}").is_err() {
        return Err(sink.error.unwrap_or(Error::BufferTooSmall));
    }
    Ok(())
}

/// The status and headers [`write_error`] answers `err` with, for a caller that builds
/// the answer with an HTTP library: [`Error::http_status`] (500 for an error that has
/// none), `Sec-WebSocket-Version: 13` with 426 (RFC 6455 §4.4), `Allow: GET` with 405
/// (RFC 9110 §15.5.6), and a plain-text `Content-Type` for a body that is the error's
/// description followed by a newline.
///
/// ```
/// use sansock::handshake::server::error_answer;
/// let (status, headers) = error_answer(&sansock::Error::UnsupportedVersion);
/// assert_eq!(status, 426);
/// assert!(headers.contains(&("Sec-WebSocket-Version", "13")));
/// ```
pub fn error_answer(err: &Error) -> (u16, &'static [(&'static str, &'static str)]) {
    let status = err.http_status().unwrap_or(500);
    let headers: &'static [(&'static str, &'static str)] = match status {
        426 => &[
            ("Sec-WebSocket-Version", "13"),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        405 => &[
            ("Allow", "GET"),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        _ => &[("Content-Type", "text/plain; charset=utf-8")],
    };
    (status, headers)
}

fn put_refusal_head(
    status: u16,
    extra_headers: &[(&str, &str)],
    body_len: usize,
    out: &mut (impl HttpWrite + ?Sized),
) -> Result<(), Error> {
    if !(200..=599).contains(&status) {
        return Err(Error::InvalidRequest("refusal status must be 200-599"));
    }
    out.put(b"HTTP/1.1 ")?;
    out.put(Decimal::new(status.into()).as_bytes())?;
    out.put(b" ")?;
    out.put(reason_phrase(status).as_bytes())?;
    out.put(b"\r\n")?;
    for (name, value) in extra_headers {
        put_header(out, name, value.as_bytes())?;
    }
    put_header(
        out,
        "Content-Length",
        Decimal::new(body_len as u64).as_bytes(),
    )?;
    out.put(b"Connection: close\r\n\r\n")
}

/// The reason phrase for `status` (RFC 9110 §15), or a generic one for its class.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => match status / 100 {
            1 => "Informational",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ")); // unpadded
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZR==")); // non-canonical trailing bits
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZWU=")); // 17 bytes
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=")); // 15 + broken padding
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j")); // 15 bytes
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ==\x00"));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25j$Q=="));
    }

    #[test]
    fn targets() {
        assert_eq!(split_target("/"), Ok(("/", None)));
        assert_eq!(split_target("/a/b?x=1&y"), Ok(("/a/b", Some("x=1&y"))));
        assert_eq!(split_target("/?"), Ok(("/", Some(""))));
        assert_eq!(split_target("ws://h:1/chat?q"), Ok(("/chat", Some("q"))));
        assert_eq!(split_target("HTTPS://h"), Ok(("/", None)));
        assert_eq!(split_target("wss://h?q"), Ok(("/", Some("q"))));
        for bad in ["*", "h:443", "ftp://h/", "ws:///x", "/a#frag", "chat"] {
            assert_eq!(split_target(bad), Err(Error::MalformedHttp), "{bad}");
        }
    }

    const GOOD: [(&str, &[u8]); 5] = [
        ("host", b"example.com"),
        ("upgrade", b"websocket"),
        ("connection", b"Upgrade"),
        ("sec-websocket-version", b"13"),
        ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    /// `GOOD` with every field called one of `drop` removed and `extra` appended.
    fn with<'a>(
        drop: &'a [&'a str],
        extra: &'a [(&'a str, &'a [u8])],
    ) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        GOOD.into_iter()
            .filter(move |(n, _)| !drop.iter().any(|d| d.eq_ignore_ascii_case(n)))
            .chain(extra.iter().copied())
    }

    #[test]
    fn check_request_takes_any_header_list() {
        let ok = check_request("GET", "/a?b", true, GOOD).unwrap();
        assert_eq!(
            ok,
            CheckedRequest {
                path: "/a",
                query: Some("b"),
                host: "example.com",
                key: "dGhlIHNhbXBsZSBub25jZQ==",
            }
        );
        type Case<'a> = (
            &'a str,
            &'a str,
            bool,
            &'a [&'a str],
            &'a [(&'a str, &'a [u8])],
            Error,
        );
        let cases: &[Case<'_>] = &[
            ("POST", "/", true, &[], &[], Error::MethodNotGet),
            ("GET", "/", false, &[], &[], Error::UnsupportedHttpVersion),
            ("GET", "*", true, &[], &[], Error::MalformedHttp),
            ("GET", "/", true, &["host"], &[], Error::MissingHost),
            (
                "GET",
                "/",
                true,
                &["host"],
                &[("Host", b"")],
                Error::MissingHost,
            ),
            (
                "GET",
                "/",
                true,
                &[],
                &[("HOST", b"b")],
                Error::InvalidHeader("Host"),
            ),
            (
                "GET",
                "/",
                true,
                &["host"],
                &[("Host", b"\xff")],
                Error::InvalidHeader("Host"),
            ),
            (
                "GET",
                "/",
                true,
                &["upgrade"],
                &[("Upgrade", b"h2c")],
                Error::MissingUpgrade,
            ),
            (
                "GET",
                "/",
                true,
                &["connection"],
                &[("Connection", b"close")],
                Error::MissingConnectionUpgrade,
            ),
            (
                "GET",
                "/",
                true,
                &["sec-websocket-version"],
                &[],
                Error::UnsupportedVersion,
            ),
            (
                "GET",
                "/",
                true,
                &["sec-websocket-version"],
                &[("Sec-WebSocket-Version", b"8")],
                Error::UnsupportedVersion,
            ),
            (
                "GET",
                "/",
                true,
                &[],
                &[("Sec-WebSocket-Version", b"13")],
                Error::UnsupportedVersion,
            ),
            (
                "GET",
                "/",
                true,
                &["sec-websocket-key"],
                &[],
                Error::InvalidKey,
            ),
            (
                "GET",
                "/",
                true,
                &[],
                &[("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==")],
                Error::InvalidKey,
            ),
            (
                "GET",
                "/",
                true,
                &[],
                &[("Sec-WebSocket-Extensions", b"a; b=\"c d\"")],
                Error::InvalidHeader("Sec-WebSocket-Extensions"),
            ),
            (
                "GET",
                "/",
                true,
                &[],
                &[("Transfer-Encoding", b"chunked")],
                Error::InvalidHeader("Transfer-Encoding"),
            ),
            (
                "GET",
                "/",
                true,
                &[],
                &[("Content-Length", b"0"), ("content-length", b"5")],
                Error::InvalidHeader("Content-Length"),
            ),
            // Precedence: the version is reported before the key.
            (
                "GET",
                "/",
                true,
                &["sec-websocket-version", "sec-websocket-key"],
                &[],
                Error::UnsupportedVersion,
            ),
        ];
        for (method, target, v11, drop, extra, want) in cases {
            let got = check_request(method, target, *v11, with(drop, extra));
            assert_eq!(
                got,
                Err(want.clone()),
                "{method} {target} -{drop:?} +{extra:?}"
            );
        }
        // Lists spread over several fields, in any case, are read as one.
        let spread: &[(&str, &[u8])] = &[
            ("Connection", b"keep-alive"),
            ("CONNECTION", b" UPGRADE "),
            ("Upgrade", b"foo/1, WebSocket"),
            ("Sec-WebSocket-Extensions", b"permessage-deflate"),
            ("sec-websocket-extensions", b", x-foo; a=\"1\""),
            ("Content-Length", b"0"),
        ];
        assert!(
            check_request(
                "GET",
                "ws://h/x",
                true,
                with(&["upgrade", "connection"], spread)
            )
            .is_ok()
        );
        assert!(wants_websocket(with(&["upgrade", "connection"], spread)));
        assert!(!wants_websocket(with(&["upgrade"], &[])));
        assert!(!wants_websocket(with(
            &["connection"],
            &[("Connection", b"upgrade-insecure")]
        )));
    }

    #[test]
    fn check_request_agrees_with_parse_request() {
        let hs = ServerHandshake::new(&Config::default(), Instant::ZERO);
        let heads: &[&[u8]] = &[
            b"GET /c?q HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\nUpgrade: websocket\r\n\r\n",
        ];
        for head in heads {
            let mut slots = [httparse::EMPTY_HEADER; 16];
            let mut req = httparse::Request::new(&mut slots);
            assert!(req.parse(head).unwrap().is_complete());
            let checked = check_request(
                req.method.unwrap(),
                req.path.unwrap(),
                req.version == Some(1),
                req.headers.iter().map(|h| (h.name, h.value)),
            );
            let parsed = hs.parse_request(head).map(|r| {
                let r = r.unwrap();
                (r.path, r.query, r.host, r.key)
            });
            assert_eq!(
                checked.map(|c| (c.path, c.query, c.host, c.key)),
                parsed,
                "{:?}",
                core::str::from_utf8(head)
            );
        }
    }

    #[test]
    fn accept_and_error_parameters() {
        assert_eq!(
            check_accept(
                Some("chat"),
                Some("permessage-deflate"),
                &[("Set-Cookie", "a=1")]
            ),
            Ok(())
        );
        assert!(check_accept(Some("a b"), None, &[]).is_err());
        assert!(check_accept(None, Some(""), &[]).is_err());
        assert!(check_accept(None, None, &[("Sec-WebSocket-Accept", "x")]).is_err());
        assert!(check_accept(None, None, &[("X", "a\r\nB: c")]).is_err());
        assert_eq!(error_answer(&Error::MethodNotGet).0, 405);
        assert!(
            error_answer(&Error::MethodNotGet)
                .1
                .contains(&("Allow", "GET"))
        );
        assert_eq!(error_answer(&Error::InvalidKey).0, 400);
        assert_eq!(error_answer(&Error::InvalidRequest("x")).0, 500);
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(426), "Upgrade Required");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
        assert_eq!(reason_phrase(499), "Client Error");
        assert_eq!(reason_phrase(599), "Server Error");
    }
}
