//! Owned, assembled messages (with the `alloc` feature).

use alloc::string::String;
use bytes::Bytes;
use core::fmt;

use crate::close::CloseCode;

/// Bytes that are valid UTF-8: the payload of a text message, shared without copying.
///
/// Cloning is cheap (a reference count), so one text can be sent to many connections.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// An empty string.
    pub const fn new() -> Self {
        Utf8Bytes(Bytes::new())
    }

    /// From a static string, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// Check `bytes` and wrap them.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, core::str::Utf8Error> {
        core::str::from_utf8(&bytes)?;
        Ok(Utf8Bytes(bytes))
    }

    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(core::str::from_utf8(&bytes).is_ok());
        Utf8Bytes(bytes)
    }

    /// The text. The core forbids `unsafe`, so this re-checks the (already validated)
    /// bytes with `core::str::from_utf8`, which runs at memory speed on ASCII.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying shared bytes.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = core::str::Utf8Error;
    fn try_from(b: Bytes) -> Result<Self, Self::Error> {
        Self::try_from_bytes(b)
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(s: Utf8Bytes) -> Self {
        s.0
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An owned close frame body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedCloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// The reason (at most 123 bytes when sent).
    pub reason: Utf8Bytes,
}

/// A whole WebSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping (at most 125 bytes).
    Ping(Bytes),
    /// A pong (at most 125 bytes).
    Pong(Bytes),
    /// A close frame; `None` when it had no body (1005).
    Close(Option<OwnedCloseFrame>),
}

impl Message {
    /// A text message.
    pub fn text(s: impl Into<Utf8Bytes>) -> Self {
        Message::Text(s.into())
    }

    /// A binary message.
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Message::Binary(b.into())
    }

    /// Whether this is a text or binary message.
    pub fn is_data(&self) -> bool {
        matches!(self, Message::Text(_) | Message::Binary(_))
    }

    /// The payload bytes (for a close: the reason).
    pub fn as_payload(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b,
            Message::Close(Some(c)) => c.reason.as_bytes(),
            Message::Close(None) => &[],
        }
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(t) => Some(t.as_str()),
            _ => None,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_payload().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.as_payload().is_empty()
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s.into())
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.into())
    }
}

impl From<alloc::vec::Vec<u8>> for Message {
    fn from(v: alloc::vec::Vec<u8>) -> Self {
        Message::Binary(v.into())
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, vec};

    #[test]
    fn utf8_bytes_checks_and_shares() {
        assert!(Utf8Bytes::try_from_bytes(Bytes::from_static(b"\xff")).is_err());
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"ok \xe2\x82")).is_err());
        let t = Utf8Bytes::try_from_bytes(Bytes::from_static("κόσμε".as_bytes())).unwrap();
        assert_eq!(t.as_str(), "κόσμε");
        assert_eq!(t.len(), 10);
        assert!(!t.is_empty() && Utf8Bytes::new().is_empty());
        assert!(t == "κόσμε" && t == *"κόσμε");
        assert_eq!(format!("{t}"), "κόσμε");
        assert_eq!(format!("{t:?}"), "\"κόσμε\"");
        assert_eq!(Utf8Bytes::from_static("s").as_bytes(), b"s");
        assert_eq!(Bytes::from(t.clone()), t.into_bytes());
    }

    #[test]
    fn message_accessors() {
        let close = Message::Close(Some(OwnedCloseFrame {
            code: CloseCode::NORMAL,
            reason: "bye".into(),
        }));
        let cases = [
            (Message::text("hé"), &b"h\xc3\xa9"[..], true, Some("hé")),
            (Message::binary(vec![1u8, 2]), &[1, 2][..], true, None),
            (Message::Ping(Bytes::from_static(b"p")), b"p", false, None),
            (Message::Pong(Bytes::new()), b"", false, None),
            (close, b"bye", false, None),
            (Message::Close(None), b"", false, None),
        ];
        for (m, payload, data, text) in cases {
            assert_eq!(m.as_payload(), payload, "{m:?}");
            assert_eq!(m.len(), payload.len());
            assert_eq!(m.is_empty(), payload.is_empty());
            assert_eq!(m.is_data(), data);
            assert_eq!(m.as_text(), text);
        }
        assert_eq!(Message::from("a"), Message::text("a"));
        assert_eq!(
            Message::from(alloc::string::String::from("a")),
            Message::text("a")
        );
        assert_eq!(
            Message::from(vec![1u8]),
            Message::binary(Bytes::from_static(&[1]))
        );
        assert_eq!(
            Message::from(Bytes::from_static(b"b")),
            Message::Binary(Bytes::from_static(b"b"))
        );
    }
}
