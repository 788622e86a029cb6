//! The opening handshake (RFC 6455 §4).
//!
//! Both roles are sans-IO: the caller feeds everything received so far and gets back
//! either "need more", a parsed head with the number of bytes it used (`consumed`), or a
//! typed [`Error`]. Bytes after `consumed` already belong to the WebSocket connection.
//! Answers and requests are written into any [`HttpWrite`] sink: a fixed
//! [`SliceWriter`] without `alloc`, or a `Vec<u8>` / `BytesMut` with it.
//!
//! - [`client`]: [`ClientRequest`], [`ClientHandshake`], [`ResponseStatus`].
//! - [`server`]: [`ServerHandshake`], [`Request`], [`write_accept`], [`write_reject`],
//!   [`write_error`].
//! - Shared views: [`Headers`], [`Subprotocols`], [`ExtensionOffers`].

pub mod client;
mod extensions;
mod headers;
pub mod server;
mod write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

use crate::config::{Config, MAX_HEADERS_LIMIT};
use crate::error::Error;

#[cfg(feature = "alloc")]
pub use client::OwnedResponse;
pub use client::{Accepted, ClientHandshake, ClientRequest, Rejected, ResponseStatus};
pub use extensions::{ExtensionOffer, ExtensionOffers, ExtensionParams, ParamValue};
pub use headers::{Cookies, GetAll, HeaderIter, Headers, Subprotocols, Tokens};
#[cfg(feature = "alloc")]
pub use server::OwnedRequest;
pub use server::{
    Request, ServerHandshake, reason_phrase, write_accept, write_error, write_reject,
};
pub use write::{Decimal, HttpWrite, SliceWriter};

/// The GUID appended to the client's key before hashing (RFC 6455 §1.3).
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this crate speaks (RFC 6455 §4.1, `Sec-WebSocket-Version`).
pub const WEBSOCKET_VERSION: &str = "13";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`:
/// base64(SHA-1(key ++ [`WEBSOCKET_GUID`])) (RFC 6455 §1.3, §4.2.2).
///
/// ```
/// let accept = sansock::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(&accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID.as_bytes());
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    // A 20-byte digest always encodes to exactly 28 padded characters, so this cannot
    // fail; ignoring the result keeps the function total without a panic path.
    let _ = STANDARD.encode_slice(digest, &mut out);
    out
}

/// `tchar` of RFC 9110 §5.6.2.
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a non-empty RFC 9110 token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `v` may go into a header value we write.
///
/// CR and LF would let a caller-supplied value start a new header or end the head
/// (header injection); NUL and the other controls would make httparse — and most
/// peers — reject the whole head, so they are refused here, where the caller can
/// still fix them. HTAB is legal field content.
pub(crate) fn is_safe_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Checks one caller-supplied header and refuses names the handshake writes itself,
/// since a second copy of those would change the meaning of the head.
pub(crate) fn check_header(name: &str, value: &str, reserved: &[&str]) -> Result<(), Error> {
    if !is_token(name) {
        return Err(Error::InvalidRequest("header name is not an HTTP token"));
    }
    if !is_safe_value(value) {
        return Err(Error::InvalidRequest(
            "header value contains CR, LF, NUL or another control character",
        ));
    }
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(Error::InvalidRequest(
            "header is written by the handshake itself",
        ));
    }
    Ok(())
}

/// Writes `name: value\r\n`.
pub(crate) fn put_header(
    out: &mut (impl HttpWrite + ?Sized),
    name: &str,
    value: &[u8],
) -> Result<(), Error> {
    out.put(name.as_bytes())?;
    out.put(b": ")?;
    out.put(value)?;
    out.put(b"\r\n")
}

/// The parser limits taken from a [`Config`] when a handshake starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadLimits {
    pub(crate) max_bytes: usize,
    pub(crate) slots: usize,
}

impl HeadLimits {
    pub(crate) fn new(config: &Config) -> Self {
        HeadLimits {
            max_bytes: config.max_header_bytes,
            slots: config.header_slots(),
        }
    }
}

/// A fresh array of header slots, the upper bound the parsers keep on the stack.
pub(crate) const fn header_slots() -> [httparse::Header<'static>; MAX_HEADERS_LIMIT] {
    [httparse::EMPTY_HEADER; MAX_HEADERS_LIMIT]
}

/// The part of the input a head parser looks at: at most `max_bytes`. A head is judged
/// by its first `max_bytes` bytes alone, so the verdict does not depend on how the input
/// was split: an error that httparse would only find past the limit (400, or 431 for
/// too many headers) is never reported for some splits and `HeadersTooLarge` for others.
pub(crate) fn head_window(input: &[u8], max_bytes: usize) -> &[u8] {
    input.get(..max_bytes).unwrap_or(input)
}

/// Turns httparse's verdict into ours.
///
/// The size limit is applied to complete heads too, not only to partial ones: otherwise
/// an oversized head that arrives in one read would pass while the same bytes trickling
/// in would fail, and the result would depend on how the stream was split.
pub(crate) fn head_status(
    res: httparse::Result<usize>,
    input_len: usize,
    max_bytes: usize,
) -> Result<Option<usize>, Error> {
    match res {
        Ok(httparse::Status::Complete(n)) if n > max_bytes => Err(Error::HeadersTooLarge),
        Ok(httparse::Status::Complete(n)) => Ok(Some(n)),
        Ok(httparse::Status::Partial) if input_len > max_bytes => Err(Error::HeadersTooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Error::TooManyHeaders),
        Err(_) => Err(Error::MalformedHttp),
    }
}

/// The header block of a complete head: from the first field name to the end of the last
/// field line, excluding the blank line that ends the head.
pub(crate) fn header_block<'b>(head: &'b [u8], headers: &[httparse::Header<'b>]) -> Headers<'b> {
    let blank = if head.ends_with(b"\n\n") {
        1
    } else if head.ends_with(b"\n\r\n") {
        2
    } else {
        0
    };
    let end = head.len().saturating_sub(blank);
    let start = headers
        .first()
        .and_then(|h| offset_in(head, h.name.as_bytes()))
        .unwrap_or(end)
        .min(end);
    Headers::new(head.get(start..end).unwrap_or_default())
}

/// Where `inner`, a sub-slice of `outer`, starts inside it.
///
/// httparse hands out sub-slices without their positions; comparing addresses recovers
/// them without any `unsafe`, and a slice that is not inside `outer` yields `None`.
pub(crate) fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    (start.checked_add(inner.len())? <= outer.len()).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_rfc_example() {
        assert_eq!(
            &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn tokens_and_values() {
        assert!(is_token("chat.v2"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a:b"));
        assert!(is_safe_value("a\tb ~"));
        assert!(!is_safe_value("a\r\nX-Evil: 1"));
        assert!(!is_safe_value("a\0"));
        assert!(!is_safe_value("a\x7f"));
        assert_eq!(
            check_header("Sec-WebSocket-Key", "x", &["sec-websocket-key"]),
            Err(Error::InvalidRequest(
                "header is written by the handshake itself"
            ))
        );
    }

    #[test]
    fn head_status_limits_apply_to_complete_heads() {
        assert_eq!(
            head_status(Ok(httparse::Status::Complete(11)), 11, 10),
            Err(Error::HeadersTooLarge)
        );
        assert_eq!(
            head_status(Ok(httparse::Status::Complete(10)), 20, 10),
            Ok(Some(10))
        );
        assert_eq!(
            head_status(Ok(httparse::Status::Partial), 11, 10),
            Err(Error::HeadersTooLarge)
        );
        assert_eq!(head_status(Ok(httparse::Status::Partial), 10, 10), Ok(None));
    }

    #[test]
    fn offset_in_rejects_foreign_slices() {
        let outer = [0u8; 8];
        let other = [0u8; 8];
        assert_eq!(offset_in(&outer, &outer[3..5]), Some(3));
        assert_eq!(offset_in(&outer[..4], &outer[3..5]), None);
        let _ = offset_in(&outer, &other);
    }
}
