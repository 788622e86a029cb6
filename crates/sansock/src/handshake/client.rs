//! The client side of the opening handshake (RFC 6455 §4.1).
//!
//! ```
//! use sansock::handshake::{ClientHandshake, ClientRequest, HttpWrite, ResponseStatus, SliceWriter};
//! use sansock::{Config, Instant};
//!
//! let req = ClientRequest::new("example.com").path("/chat").subprotocols(&["chat"]);
//! let mut rng = |b: &mut [u8]| b.fill(7); // use a real generator
//! let mut buf = [0u8; 512];
//! let mut out = SliceWriter::new(&mut buf);
//! let hs = ClientHandshake::new(&req, &mut rng, &Config::default(), Instant::ZERO, &mut out)?;
//! // ... send `out.written()`, then feed everything received so far:
//! let mut rx = [0u8; 512];
//! let mut response = SliceWriter::new(&mut rx);
//! response.put(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")?;
//! response.put(b"Connection: Upgrade\r\nSec-WebSocket-Protocol: chat\r\n")?;
//! response.put(b"Sec-WebSocket-Accept: ")?;
//! response.put(hs.expected_accept().as_bytes())?;
//! response.put(b"\r\n\r\n\x81\x02hi")?;
//! let response = response.written();
//! match hs.parse_response(&req, response)? {
//!     ResponseStatus::Accepted(ok) => {
//!         assert_eq!(ok.subprotocol, Some("chat"));
//!         assert_eq!(&response[ok.consumed..], b"\x81\x02hi"); // the first frame
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), sansock::Error>(())
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::extensions::{ExtensionOffers, is_extension_list};
use super::headers::{Headers, Subprotocols};
use super::write::{Decimal, HttpWrite};
use super::{
    HeadLimits, accept_key, check_header, head_status, head_window, header_block, header_slots,
    is_safe_value, is_token, put_header,
};
use crate::config::Config;
use crate::error::Error;
use crate::rng::RandomSource;
use crate::time::Instant;

/// Headers the client writes itself and so refuses in [`ClientRequest::headers`].
const RESERVED: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Accept",
    "Content-Length",
    "Transfer-Encoding",
];

/// What the client asks for: where to connect and what to offer.
///
/// Build it with [`ClientRequest::new`] and the builder methods, or set the public
/// fields. Everything is checked when the request is written
/// ([`ClientRequest::validate`]), and every violation is
/// [`Error::InvalidRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientRequest<'a> {
    /// The host for the `Host` header: a registered name, an IPv4 address or a bracketed
    /// IPv6 address (`[::1]`). No port, no scheme.
    pub host: &'a str,
    /// Appended to `Host` as `:port` when given (leave it out for the scheme's default).
    pub port: Option<u16>,
    /// The request target: path and optional query, starting with `/`; no fragment
    /// (RFC 6455 §3). Default `/`.
    pub path_and_query: &'a str,
    /// The `Origin` header (RFC 6455 §4.1 item 8, RFC 6454), if any.
    pub origin: Option<&'a str>,
    /// Subprotocols to offer, most preferred first; each must be a token, no duplicates.
    pub subprotocols: &'a [&'a str],
    /// The raw `Sec-WebSocket-Extensions` offer, e.g.
    /// `permessage-deflate; client_max_window_bits`.
    pub extensions: Option<&'a str>,
    /// Extra headers, written after the handshake's own. Names the handshake writes
    /// itself (Host, Upgrade, Connection, Sec-WebSocket-*, Content-Length,
    /// Transfer-Encoding) are refused.
    pub headers: &'a [(&'a str, &'a str)],
    /// `(user, password)` for `Authorization: Basic` (RFC 7617); the user must not
    /// contain `:`.
    pub basic_auth: Option<(&'a str, &'a str)>,
}

impl<'a> ClientRequest<'a> {
    /// A request for `/` on `host`, offering nothing.
    pub const fn new(host: &'a str) -> Self {
        ClientRequest {
            host,
            port: None,
            path_and_query: "/",
            origin: None,
            subprotocols: &[],
            extensions: None,
            headers: &[],
            basic_auth: None,
        }
    }

    /// Sets [`ClientRequest::port`].
    pub const fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets [`ClientRequest::path_and_query`].
    pub const fn path(mut self, path_and_query: &'a str) -> Self {
        self.path_and_query = path_and_query;
        self
    }

    /// Sets [`ClientRequest::origin`].
    pub const fn origin(mut self, origin: &'a str) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Sets [`ClientRequest::subprotocols`].
    pub const fn subprotocols(mut self, subprotocols: &'a [&'a str]) -> Self {
        self.subprotocols = subprotocols;
        self
    }

    /// Sets [`ClientRequest::extensions`].
    pub const fn extensions(mut self, offer: &'a str) -> Self {
        self.extensions = Some(offer);
        self
    }

    /// Sets [`ClientRequest::headers`].
    pub const fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    /// Sets [`ClientRequest::basic_auth`].
    pub const fn basic_auth(mut self, user: &'a str, password: &'a str) -> Self {
        self.basic_auth = Some((user, password));
        self
    }

    /// Checks every field; [`ClientHandshake::new`] does this before writing anything.
    pub fn validate(&self) -> Result<(), Error> {
        let host = self.host;
        if host.is_empty() {
            return Err(Error::InvalidRequest("empty host"));
        }
        // Visible ASCII without the URI delimiters keeps the Host line a single authority;
        // `:` only inside brackets, since a port belongs in `port`.
        let bracketed = host.starts_with('[') && host.ends_with(']');
        if !host
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#@\\".contains(&b))
            || (host.contains(':') && !bracketed)
        {
            return Err(Error::InvalidRequest("host is not a host name or address"));
        }
        let path = self.path_and_query;
        if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
            return Err(Error::InvalidRequest(
                "path must start with '/' and be visible ASCII without a fragment",
            ));
        }
        if let Some(origin) = self.origin
            && !is_safe_value(origin)
        {
            return Err(Error::InvalidRequest("origin contains control characters"));
        }
        for (i, p) in self.subprotocols.iter().enumerate() {
            if !is_token(p) {
                return Err(Error::InvalidRequest("subprotocol is not a token"));
            }
            if self.subprotocols.get(..i).unwrap_or_default().contains(p) {
                return Err(Error::InvalidRequest("subprotocol offered twice"));
            }
        }
        if let Some(ext) = self.extensions
            && !is_extension_list(ext)
        {
            return Err(Error::InvalidRequest("malformed extension offer"));
        }
        for (name, value) in self.headers {
            check_header(name, value, RESERVED)?;
        }
        if let Some((user, password)) = self.basic_auth {
            // RFC 7617 §2: the user-id cannot contain a colon, and neither part may hold
            // control characters.
            let ctl = |s: &str| s.bytes().any(|b| b.is_ascii_control());
            if user.contains(':') || ctl(user) || ctl(password) {
                return Err(Error::InvalidRequest(
                    "basic auth user contains ':' or control characters",
                ));
            }
        }
        Ok(())
    }

    fn offered_subprotocol(&self, p: &str) -> bool {
        self.subprotocols.contains(&p)
    }

    fn offered_extension(&self, name: &str) -> bool {
        self.extensions.is_some_and(|offer| {
            ExtensionOffers::from_value(offer)
                .filter_map(Result::ok)
                .any(|o| o.name.eq_ignore_ascii_case(name))
        })
    }
}

/// A client handshake in progress: the request is written, the response is awaited.
///
/// It holds no borrowed data (the key, the expected accept value, the deadline and the
/// limits), so it can live beside the I/O buffers. Drop it once
/// [`parse_response`](ClientHandshake::parse_response) returns a final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    key: [u8; 24],
    accept: [u8; 28],
    deadline: Instant,
    limits: HeadLimits,
}

impl ClientHandshake {
    /// Validates `req`, draws a 16-byte nonce from `rng` for `Sec-WebSocket-Key`, and
    /// writes the whole GET request into `out`.
    ///
    /// The response must arrive before `now + config.handshake_timeout`.
    pub fn new(
        req: &ClientRequest<'_>,
        rng: &mut (impl RandomSource + ?Sized),
        config: &Config,
        now: Instant,
        out: &mut (impl HttpWrite + ?Sized),
    ) -> Result<Self, Error> {
        req.validate()?;
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        let mut key = [0u8; 24];
        // 16 bytes always encode to exactly 24 padded characters.
        let _ = STANDARD.encode_slice(nonce, &mut key);
        let hs = ClientHandshake {
            key,
            accept: accept_key(&key),
            deadline: now + config.handshake_timeout,
            limits: HeadLimits::new(config),
        };
        hs.write_request(req, out)?;
        Ok(hs)
    }

    fn write_request(
        &self,
        req: &ClientRequest<'_>,
        out: &mut (impl HttpWrite + ?Sized),
    ) -> Result<(), Error> {
        out.put(b"GET ")?;
        out.put(req.path_and_query.as_bytes())?;
        out.put(b" HTTP/1.1\r\nHost: ")?;
        out.put(req.host.as_bytes())?;
        if let Some(port) = req.port {
            out.put(b":")?;
            out.put(Decimal::new(port.into()).as_bytes())?;
        }
        out.put(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")?;
        put_header(out, "Sec-WebSocket-Key", &self.key)?;
        out.put(b"Sec-WebSocket-Version: 13\r\n")?;
        if let Some(origin) = req.origin {
            put_header(out, "Origin", origin.as_bytes())?;
        }
        if let Some((first, rest)) = req.subprotocols.split_first() {
            out.put(b"Sec-WebSocket-Protocol: ")?;
            out.put(first.as_bytes())?;
            for p in rest {
                out.put(b", ")?;
                out.put(p.as_bytes())?;
            }
            out.put(b"\r\n")?;
        }
        if let Some(ext) = req.extensions {
            put_header(out, "Sec-WebSocket-Extensions", ext.as_bytes())?;
        }
        if let Some((user, password)) = req.basic_auth {
            out.put(b"Authorization: Basic ")?;
            put_base64(out, [user.as_bytes(), b":", password.as_bytes()])?;
            out.put(b"\r\n")?;
        }
        for (name, value) in req.headers {
            put_header(out, name, value.as_bytes())?;
        }
        out.put(b"\r\n")
    }

    /// The `Sec-WebSocket-Key` that was sent.
    pub fn key(&self) -> &str {
        core::str::from_utf8(&self.key).unwrap_or_default()
    }

    /// The `Sec-WebSocket-Accept` the server must answer with.
    pub fn expected_accept(&self) -> &str {
        core::str::from_utf8(&self.accept).unwrap_or_default()
    }

    /// Parses the server's response from `input`, everything received so far.
    ///
    /// `req` must be the request this handshake wrote: the response is checked against
    /// the subprotocols and extensions it offered.
    ///
    /// - [`ResponseStatus::Partial`]: feed more bytes (and call again with all of them).
    /// - [`ResponseStatus::Accepted`]: a valid `101`; the connection is open and
    ///   `input[consumed..]` is already WebSocket data.
    /// - [`ResponseStatus::Rejected`]: any other status, with its body when a
    ///   `Content-Length` announced one (partial until it has fully arrived).
    ///
    /// Errors: [`Error::HeadersTooLarge`] once the head grows past `max_header_bytes`,
    /// [`Error::TooManyHeaders`] past `max_headers`, [`Error::BodyTooLarge`] for a
    /// rejection body larger than `max_header_bytes`, [`Error::MalformedHttp`], and for a
    /// `101` that breaks RFC 6455 §4.1: [`Error::UnsupportedHttpVersion`],
    /// [`Error::MissingUpgrade`], [`Error::MissingConnectionUpgrade`],
    /// [`Error::InvalidAccept`], [`Error::UnofferedSubprotocol`],
    /// [`Error::UnofferedExtension`], [`Error::InvalidHeader`] (several subprotocols, a
    /// malformed extension list).
    pub fn parse_response<'b>(
        &self,
        req: &ClientRequest<'_>,
        input: &'b [u8],
    ) -> Result<ResponseStatus<'b>, Error> {
        let mut slots = header_slots();
        let slots = slots.get_mut(..self.limits.slots).unwrap_or_default();
        let mut res = httparse::Response::new(slots);
        let parsed = res.parse(head_window(input, self.limits.max_bytes));
        let Some(head_len) = head_status(parsed, input.len(), self.limits.max_bytes)? else {
            return Ok(ResponseStatus::Partial);
        };
        let head = input.get(..head_len).ok_or(Error::MalformedHttp)?;
        let headers = header_block(head, res.headers);
        let status = res.code.ok_or(Error::MalformedHttp)?;
        if status != 101 {
            let reason = res.reason.unwrap_or_default();
            return self.rejected(input, head_len, status, reason, headers);
        }
        if res.version != Some(1) {
            return Err(Error::UnsupportedHttpVersion);
        }
        if !headers.has_token("Upgrade", "websocket") {
            return Err(Error::MissingUpgrade);
        }
        if !headers.has_token("Connection", "upgrade") {
            return Err(Error::MissingConnectionUpgrade);
        }
        let mut accepts = headers.get_all("Sec-WebSocket-Accept");
        if accepts.next() != Some(&self.accept[..]) || accepts.next().is_some() {
            return Err(Error::InvalidAccept);
        }
        for ext in ExtensionOffers::new(&headers) {
            if !req.offered_extension(ext?.name) {
                return Err(Error::UnofferedExtension);
            }
        }
        let mut protocols = Subprotocols::new(&headers);
        let subprotocol = protocols.next();
        if protocols.next().is_some() {
            return Err(Error::InvalidHeader("Sec-WebSocket-Protocol"));
        }
        if subprotocol.is_some_and(|p| !req.offered_subprotocol(p)) {
            return Err(Error::UnofferedSubprotocol);
        }
        Ok(ResponseStatus::Accepted(Accepted {
            consumed: head_len,
            subprotocol,
            headers,
        }))
    }

    fn rejected<'b>(
        &self,
        input: &'b [u8],
        head_len: usize,
        status: u16,
        reason: &'b str,
        headers: Headers<'b>,
    ) -> Result<ResponseStatus<'b>, Error> {
        let mut lengths = headers.get_all("Content-Length");
        let body_len = match lengths.next() {
            None => 0,
            Some(v) => {
                // RFC 9112 §6.3: several differing lengths make the message unreadable.
                if lengths.any(|other| other != v) {
                    return Err(Error::InvalidHeader("Content-Length"));
                }
                parse_length(v).ok_or(Error::InvalidHeader("Content-Length"))?
            }
        };
        if body_len > self.limits.max_bytes {
            return Err(Error::BodyTooLarge);
        }
        let end = head_len.checked_add(body_len).ok_or(Error::BodyTooLarge)?;
        let Some(body) = input.get(head_len..end) else {
            return Ok(ResponseStatus::Partial);
        };
        Ok(ResponseStatus::Rejected(Rejected {
            consumed: end,
            status,
            reason,
            headers,
            body,
        }))
    }

    /// The handshake deadline: call [`handle_timeout`](ClientHandshake::handle_timeout)
    /// when it is reached.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.deadline)
    }

    /// [`Error::HandshakeTimeout`] once `now` has reached the deadline.
    pub fn handle_timeout(&self, now: Instant) -> Result<(), Error> {
        if now >= self.deadline {
            Err(Error::HandshakeTimeout)
        } else {
            Ok(())
        }
    }
}

/// Writes base64 of the concatenation of `parts` in 48-byte chunks: a multiple of 3, so
/// the chunks' encodings join into the encoding of the whole, with no buffer sized to
/// the input.
fn put_base64<const N: usize>(
    out: &mut (impl HttpWrite + ?Sized),
    parts: [&[u8]; N],
) -> Result<(), Error> {
    let mut chunk = [0u8; 48];
    let mut n = 0;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        if let Some(slot) = chunk.get_mut(n) {
            *slot = b;
            n += 1;
        }
        if n == chunk.len() {
            put_base64_chunk(out, &chunk)?;
            n = 0;
        }
    }
    put_base64_chunk(out, chunk.get(..n).unwrap_or_default())
}

fn put_base64_chunk(out: &mut (impl HttpWrite + ?Sized), chunk: &[u8]) -> Result<(), Error> {
    let mut encoded = [0u8; 64];
    let len = STANDARD
        .encode_slice(chunk, &mut encoded)
        .map_err(|_| Error::BufferTooSmall)?;
    out.put(encoded.get(..len).unwrap_or_default())
}

/// A `Content-Length` value: digits only (RFC 9110 §8.6).
fn parse_length(v: &[u8]) -> Option<usize> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0usize, |n, &b| {
        let digit = usize::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
        n.checked_mul(10)?.checked_add(digit)
    })
}

/// The outcome of [`ClientHandshake::parse_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus<'b> {
    /// The response is not complete yet.
    Partial,
    /// The server accepted: the connection is open.
    Accepted(Accepted<'b>),
    /// The server answered with something other than `101`.
    Rejected(Rejected<'b>),
}

/// A valid `101 Switching Protocols` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted<'b> {
    /// The length of the response head; later bytes are WebSocket frames.
    pub consumed: usize,
    /// The subprotocol the server chose (one of those offered), if any.
    pub subprotocol: Option<&'b str>,
    /// All response headers.
    pub headers: Headers<'b>,
}

impl<'b> Accepted<'b> {
    /// The extensions the server accepted, with their parameters. Already validated and
    /// checked against the offer, so every item is `Ok`; the extension's own negotiation
    /// decides whether the parameters are acceptable.
    pub fn extensions(&self) -> ExtensionOffers<'b> {
        ExtensionOffers::new(&self.headers)
    }
}

/// A response other than `101`: the server declined the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rejected<'b> {
    /// The length of the response head and body.
    pub consumed: usize,
    /// The status code, e.g. 401, 403, 404, 426.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: &'b str,
    /// All response headers (e.g. `WWW-Authenticate` on a 401).
    pub headers: Headers<'b>,
    /// The body announced by `Content-Length`; empty without one (a chunked body is not
    /// read, since the connection is closed after a rejection anyway).
    pub body: &'b [u8],
}

#[cfg(feature = "alloc")]
impl Rejected<'_> {
    /// An owned copy, e.g. to return as an error from an adapter.
    pub fn to_owned_response(&self) -> OwnedResponse {
        use alloc::string::String;
        OwnedResponse {
            status: self.status,
            reason: String::from(self.reason),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (String::from(n), v.to_vec()))
                .collect(),
            body: bytes::Bytes::copy_from_slice(self.body),
        }
    }
}

/// An owned rejection response, so an adapter can hand it out as an error (a 401 with a
/// Digest challenge, a 403 with an explanation).
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: alloc::string::String,
    /// The headers in order, as `(name, value)`.
    pub headers: alloc::vec::Vec<(alloc::string::String, alloc::vec::Vec<u8>)>,
    /// The body.
    pub body: bytes::Bytes,
}

#[cfg(feature = "alloc")]
impl OwnedResponse {
    /// The value of the first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

#[cfg(feature = "alloc")]
impl From<Rejected<'_>> for OwnedResponse {
    fn from(r: Rejected<'_>) -> Self {
        r.to_owned_response()
    }
}

#[cfg(feature = "alloc")]
impl core::fmt::Display for OwnedResponse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "server rejected the WebSocket upgrade: {} {}",
            self.status, self.reason
        )
    }
}

#[cfg(feature = "alloc")]
impl core::error::Error for OwnedResponse {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "alloc")]
    #[test]
    fn basic_auth_matches_one_shot_encoding() {
        use crate::handshake::SliceWriter;
        let long = "p".repeat(100);
        for (user, pass) in [
            ("", ""),
            ("a", "b"),
            ("Aladdin", "open sesame"),
            ("u", &long),
        ] {
            let mut buf = [0u8; 512];
            let mut w = SliceWriter::new(&mut buf);
            put_base64(&mut w, [user.as_bytes(), b":", pass.as_bytes()]).unwrap();
            let whole = alloc::format!("{user}:{pass}");
            assert_eq!(w.written(), STANDARD.encode(whole).as_bytes());
        }
    }

    #[test]
    fn content_length_values() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"123"), Some(123));
        assert_eq!(parse_length(b""), None);
        assert_eq!(parse_length(b"-1"), None);
        assert_eq!(parse_length(b"1 2"), None);
        assert_eq!(parse_length(b"99999999999999999999999"), None);
    }
}
