//! The caller's memory for a connection.

/// The buffers of one WebSocket connection, all owned by the caller.
///
/// - `read`: bytes from the transport. Payloads are unmasked in place here and handed
///   out without a copy. It must hold the server's handshake response (client) or the
///   client's request (server), so 512 bytes to 2 KiB is typical.
/// - `write`: outgoing frames are built here, chunk by chunk, so a message of any size
///   goes through it; it must hold the handshake request or response and at least one
///   control frame ([`MIN_WRITE_BUFFER`]).
/// - `message` (optional): incoming messages are assembled here when they arrive in
///   several pieces. A message that fits is delivered whole; a bigger one is handed out
///   as [`Fragment`](crate::Fragment)s. Without it, only messages that arrive in one read
///   come whole.
#[derive(Debug)]
pub struct Buffers<'b> {
    pub(crate) read: &'b mut [u8],
    pub(crate) write: &'b mut [u8],
    pub(crate) message: &'b mut [u8],
}

/// The smallest write buffer: one complete control frame (14-byte header, 125-byte body).
pub const MIN_WRITE_BUFFER: usize = 139;

/// The smallest read buffer: one frame header (14 bytes) plus a little room. The opening
/// handshake needs much more (its whole HTTP head).
pub const MIN_READ_BUFFER: usize = 16;

impl<'b> Buffers<'b> {
    /// Read and write buffers, no message buffer.
    pub fn new(read: &'b mut [u8], write: &'b mut [u8]) -> Self {
        Buffers {
            read,
            write,
            message: &mut [],
        }
    }

    /// Adds a message assembly buffer.
    pub fn with_message(mut self, message: &'b mut [u8]) -> Self {
        self.message = message;
        self
    }

    /// The sizes `(read, write, message)` in bytes.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.read.len(), self.write.len(), self.message.len())
    }
}

/// Fixed-size storage for one connection over TCP: the `TcpSocket`'s receive and send
/// buffers (`TCP` bytes each) and the WebSocket's read and write buffers (`BUF` bytes
/// each) and message buffer (`MSG` bytes, may be 0). Put it in a `static` (`StaticCell`)
/// or on the stack.
///
/// ```
/// use sansock_embassy::Storage;
/// let mut storage = Storage::<1024, 1024, 2048>::new();
/// let (tcp_rx, tcp_tx, buffers) = storage.split();
/// assert_eq!((tcp_rx.len(), tcp_tx.len()), (1024, 1024));
/// assert_eq!(buffers.sizes(), (1024, 1024, 2048));
/// ```
#[derive(Debug)]
pub struct Storage<const TCP: usize, const BUF: usize, const MSG: usize> {
    tcp_rx: [u8; TCP],
    tcp_tx: [u8; TCP],
    read: [u8; BUF],
    write: [u8; BUF],
    message: [u8; MSG],
}

impl<const TCP: usize, const BUF: usize, const MSG: usize> Storage<TCP, BUF, MSG> {
    /// Zeroed storage (a `const fn`, so it can initialize a `static`).
    pub const fn new() -> Self {
        Storage {
            tcp_rx: [0; TCP],
            tcp_tx: [0; TCP],
            read: [0; BUF],
            write: [0; BUF],
            message: [0; MSG],
        }
    }

    /// The TCP receive buffer, the TCP send buffer and the WebSocket [`Buffers`].
    pub fn split(&mut self) -> (&mut [u8], &mut [u8], Buffers<'_>) {
        (
            &mut self.tcp_rx,
            &mut self.tcp_tx,
            Buffers::new(&mut self.read, &mut self.write).with_message(&mut self.message),
        )
    }

    /// The same as [`split`](Self::split), as the [`SlotBuffers`](crate::SlotBuffers) of
    /// one server slot.
    pub fn slot(&mut self) -> crate::SlotBuffers<'_> {
        let (tcp_rx, tcp_tx, ws) = self.split();
        crate::SlotBuffers { tcp_rx, tcp_tx, ws }
    }
}

impl<const TCP: usize, const BUF: usize, const MSG: usize> Default for Storage<TCP, BUF, MSG> {
    fn default() -> Self {
        Self::new()
    }
}
