//! Where handshake heads are written.

use core::fmt;

use crate::error::Error;

/// A sink for the bytes of an HTTP head.
///
/// The handshake writers call [`HttpWrite::put`] several times per head. They check every
/// parameter before the first `put`, so an invalid parameter never leaves half a head
/// behind; only the sink itself failing (e.g. [`Error::BufferTooSmall`]) can, and then
/// the partial output must be discarded.
pub trait HttpWrite {
    /// Appends all of `bytes`, or fails without appending any.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error>;
}

impl<W: HttpWrite + ?Sized> HttpWrite for &mut W {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        (**self).put(bytes)
    }
}

#[cfg(feature = "alloc")]
impl HttpWrite for alloc::vec::Vec<u8> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(feature = "alloc")]
impl HttpWrite for bytes::BytesMut {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// An [`HttpWrite`] into a caller-owned byte slice, for `no_std` without `alloc`.
///
/// ```
/// use sansock::handshake::{HttpWrite, SliceWriter};
/// let mut buf = [0u8; 8];
/// let mut w = SliceWriter::new(&mut buf);
/// w.put(b"GET ").unwrap();
/// assert_eq!(w.written(), b"GET ");
/// assert!(w.put(b"/chat").is_err()); // all or nothing
/// assert_eq!(w.len(), 4);
/// ```
#[derive(Debug)]
pub struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> SliceWriter<'a> {
    /// A writer that fills `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        SliceWriter { buf, len: 0 }
    }

    /// The number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The free space left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// Gives the written bytes back with the buffer's lifetime.
    pub fn into_written(self) -> &'a [u8] {
        let len = self.len;
        let buf: &'a [u8] = self.buf;
        buf.get(..len).unwrap_or_default()
    }

    /// Forgets what was written, keeping the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl HttpWrite for SliceWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(Error::BufferTooSmall)?;
        let dest = self
            .buf
            .get_mut(self.len..end)
            .ok_or(Error::BufferTooSmall)?;
        dest.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// A number in decimal, formatted on the stack (for `Content-Length`, ports, status
/// codes) so no `alloc` or `core::fmt` machinery is needed.
///
/// ```
/// use sansock::handshake::Decimal;
/// assert_eq!(Decimal::new(8080).as_str(), "8080");
/// assert_eq!(Decimal::new(0).as_str(), "0");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    /// Formats `n`.
    pub fn new(mut n: u64) -> Self {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        // u64::MAX has 20 digits, so `start` never underflows; the loop runs at least once
        // so that zero prints as "0".
        for slot in digits.iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
            start -= 1;
            if n == 0 {
                break;
            }
        }
        Decimal { digits, start }
    }

    /// The digits as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.digits.get(self.start..).unwrap_or_default()
    }

    /// The digits as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts the bytes `Display` would produce, so a body can be announced with
/// `Content-Length` before it is written, without a buffer.
#[derive(Default)]
pub(crate) struct Counter(pub(crate) usize);

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.saturating_add(s.len());
        Ok(())
    }
}

/// Lets `Display` write straight into an [`HttpWrite`], keeping the sink's own error
/// (which `fmt::Error` cannot carry).
pub(crate) struct FmtSink<'w, W: HttpWrite + ?Sized> {
    pub(crate) out: &'w mut W,
    pub(crate) error: Option<Error>,
}

impl<W: HttpWrite + ?Sized> fmt::Write for FmtSink<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.out.put(s.as_bytes()).map_err(|e| {
            self.error = Some(e);
            fmt::Error
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_writer_is_all_or_nothing() {
        let mut buf = [0u8; 5];
        let mut w = SliceWriter::new(&mut buf);
        assert!(w.is_empty());
        w.put(b"abc").unwrap();
        assert_eq!(w.put(b"def"), Err(Error::BufferTooSmall));
        assert_eq!(w.written(), b"abc");
        assert_eq!(w.remaining(), 2);
        w.put(b"de").unwrap();
        assert_eq!(w.put(b""), Ok(()));
        assert_eq!(w.put(b"x"), Err(Error::BufferTooSmall));
        assert_eq!(w.into_written(), b"abcde");
    }

    #[test]
    fn decimal_edges() {
        assert_eq!(Decimal::new(u64::MAX).as_str(), "18446744073709551615");
        assert_eq!(Decimal::new(10).as_str(), "10");
        assert_eq!(Decimal::new(9).as_bytes(), b"9");
    }

    #[test]
    fn counter_matches_output() {
        use core::fmt::Write;
        let mut c = Counter::default();
        write!(c, "{} and {}", Error::MissingHost, 42).unwrap();
        let mut buf = [0u8; 128];
        let mut w = SliceWriter::new(&mut buf);
        let mut sink = FmtSink {
            out: &mut w,
            error: None,
        };
        write!(sink, "{} and {}", Error::MissingHost, 42).unwrap();
        assert_eq!(w.len(), c.0);
    }
}
