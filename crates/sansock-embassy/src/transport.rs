//! What a WebSocket runs over: an `embedded-io-async` stream that can also be closed.

use embassy_net::tcp::TcpSocket;
use embedded_io_async::{ErrorType, Read, Write};

/// A byte stream a WebSocket runs over: `embedded-io-async` [`Read`] + [`Write`], plus how
/// to push written bytes out and how to close it.
///
/// Implemented for [`TcpSocket`] and for `&mut T`. For any other stream, implement it
/// with the defaults (`impl Transport for MyStream {}`: `push` and `shutdown` flush), or
/// wrap the stream in [`IoStream`].
// The futures are used on one executor thread; no `Send` bound is wanted (like
// embedded-io-async's own traits).
#[allow(async_fn_in_trait)]
pub trait Transport: Read + Write {
    /// Make the bytes written so far go out. The default flushes; a [`TcpSocket`] sends on
    /// its own, so for it this does nothing (its `flush` would wait for the peer's ACK).
    async fn push(&mut self) -> Result<(), Self::Error> {
        self.flush().await
    }

    /// Close our sending direction once the closing handshake is over (TCP: send FIN and
    /// wait until it is acknowledged). The adapter bounds this wait by the connection's
    /// `close_timeout`. The default flushes.
    async fn shutdown(&mut self) -> Result<(), Self::Error> {
        self.flush().await
    }

    /// Drop the connection at once (TCP: reset), for a peer that is gone or failed. The
    /// default does nothing.
    fn abort(&mut self) {}
}

impl<T: Transport + ?Sized> Transport for &mut T {
    async fn push(&mut self) -> Result<(), Self::Error> {
        (**self).push().await
    }

    async fn shutdown(&mut self) -> Result<(), Self::Error> {
        (**self).shutdown().await
    }

    fn abort(&mut self) {
        (**self).abort()
    }
}

impl Transport for TcpSocket<'_> {
    async fn push(&mut self) -> Result<(), Self::Error> {
        // embassy-net transmits queued bytes by itself.
        Ok(())
    }

    async fn shutdown(&mut self) -> Result<(), Self::Error> {
        self.close();
        // Waits until every byte and the FIN are acknowledged.
        self.flush().await
    }

    fn abort(&mut self) {
        TcpSocket::abort(self)
    }
}

/// Any `embedded-io-async` stream as a [`Transport`] with the default behaviour (`push` and
/// `shutdown` flush; `abort` does nothing).
#[derive(Debug)]
pub struct IoStream<T>(pub T);

impl<T: ErrorType> ErrorType for IoStream<T> {
    type Error = T::Error;
}

impl<T: Read> Read for IoStream<T> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.0.read(buf).await
    }
}

impl<T: Write> Write for IoStream<T> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().await
    }
}

impl<T: Read + Write> Transport for IoStream<T> {}
