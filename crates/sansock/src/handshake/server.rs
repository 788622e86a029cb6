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
use super::headers::{Cookies, Headers, Subprotocols};
use super::write::{Counter, Decimal, FmtSink, HttpWrite};
use super::{
    HeadLimits, accept_key, check_header, head_status, header_block, header_slots, is_token,
    put_header,
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
        let parsed = req.parse(input);
        let Some(head_len) = head_status(parsed, input.len(), self.limits.max_bytes)? else {
            return Ok(None);
        };
        let head = input.get(..head_len).ok_or(Error::MalformedHttp)?;
        let headers = header_block(head, req.headers);
        let method = req.method.ok_or(Error::MalformedHttp)?;
        let target = req.path.ok_or(Error::MalformedHttp)?;
        if method != "GET" {
            return Err(Error::MethodNotGet);
        }
        if req.version != Some(1) {
            return Err(Error::UnsupportedHttpVersion);
        }
        let (path, query) = split_target(target)?;
        let host = single(&headers, "Host").map_err(|()| Error::InvalidHeader("Host"))?;
        let host = match host.map(core::str::from_utf8) {
            None | Some(Ok("")) => return Err(Error::MissingHost),
            Some(Ok(host)) => host,
            Some(Err(_)) => return Err(Error::InvalidHeader("Host")),
        };
        if !headers.has_token("Upgrade", "websocket") {
            return Err(Error::MissingUpgrade);
        }
        if !headers.has_token("Connection", "upgrade") {
            return Err(Error::MissingConnectionUpgrade);
        }
        // Checked before the key so that an older client learns which version to use.
        if single(&headers, "Sec-WebSocket-Version") != Ok(Some(&b"13"[..])) {
            return Err(Error::UnsupportedVersion);
        }
        let key = match single(&headers, "Sec-WebSocket-Key") {
            Ok(Some(key)) if is_valid_key(key) => core::str::from_utf8(key),
            _ => return Err(Error::InvalidKey),
        }
        .map_err(|_| Error::InvalidKey)?;
        ExtensionOffers::new(&headers).validate()?;
        // A body would be read as WebSocket frames: refuse it rather than smuggle it.
        if headers.get("Transfer-Encoding").is_some() {
            return Err(Error::InvalidHeader("Transfer-Encoding"));
        }
        if headers.get_all("Content-Length").any(|v| v != b"0") {
            return Err(Error::InvalidHeader("Content-Length"));
        }
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

/// The value of a header that may appear at most once: `Err(())` if repeated.
fn single<'b>(headers: &Headers<'b>, name: &str) -> Result<Option<&'b [u8]>, ()> {
    let mut all = headers.get_all(name);
    let first = all.next();
    match all.next() {
        Some(_) => Err(()),
        None => Ok(first),
    }
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
    let status = err.http_status().unwrap_or(500);
    let extra: &[(&str, &str)] = match status {
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

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(426), "Upgrade Required");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
        assert_eq!(reason_phrase(499), "Client Error");
        assert_eq!(reason_phrase(599), "Server Error");
    }
}
