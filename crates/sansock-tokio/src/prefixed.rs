//! A stream that first replays bytes already read from it.
//!
//! Reading an HTTP response head (from a proxy, or the WebSocket handshake) in
//! chunks can pull in bytes that belong to what comes next. Handing the stream on
//! without them would corrupt the next layer, so they travel with it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `S`, with some bytes to be read before anything from `S` itself.
///
/// Writes go straight to `S`.
#[derive(Debug)]
pub struct PrefixedStream<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> PrefixedStream<S> {
    /// Wraps `inner` so that reads yield `prefix` first.
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        PrefixedStream {
            prefix,
            pos: 0,
            inner,
        }
    }

    /// The bytes not yet read from the prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix[self.pos..]
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably. Reading from it directly skips the prefix.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Splits into the unread prefix and the wrapped stream.
    pub fn into_parts(mut self) -> (Vec<u8>, S) {
        self.prefix.drain(..self.pos);
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PrefixedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                // Give the memory back; the prefix is never read again.
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PrefixedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn prefix_is_read_first_then_inner() {
        let (mut far, near) = tokio::io::duplex(64);
        far.write_all(b"world").await.unwrap();
        drop(far);
        let mut s = PrefixedStream::new(b"hello ".to_vec(), near);
        // A small buffer forces the prefix to be served across several reads.
        let mut small = [0u8; 4];
        let n = s.read(&mut small).await.unwrap();
        assert_eq!(&small[..n], b"hell");
        assert_eq!(s.prefix(), b"o ");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"o world");
    }

    #[tokio::test]
    async fn writes_pass_through_and_parts_split() {
        let (mut far, near) = tokio::io::duplex(64);
        let mut s = PrefixedStream::new(b"abc".to_vec(), near);
        s.write_all(b"ping").await.unwrap();
        s.flush().await.unwrap();
        let mut got = [0u8; 4];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");

        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
        let (prefix, _inner) = s.into_parts();
        assert_eq!(prefix, b"bc");
    }

    #[tokio::test]
    async fn empty_prefix_reads_inner() {
        let (mut far, near) = tokio::io::duplex(64);
        far.write_all(b"x").await.unwrap();
        let mut s = PrefixedStream::new(Vec::new(), near);
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"x");
    }
}
