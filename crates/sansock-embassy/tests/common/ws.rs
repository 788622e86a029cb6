//! WebSocket helpers shared by the adapter's tests: a deterministic RNG, a test
//! configuration, an echo server and a message collector.

use embassy_net::Stack;
use embassy_net::tcp::TcpSocket;
use sansock_embassy::{AcceptOptions, Buffers, Config, DataKind, Event, accept};

/// A xorshift generator (tests only: masking keys must be unpredictable in real use).
pub struct TestRng(pub u64);

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dst)
    }
}

/// Microcontroller limits, widened so messages of a few hundred KiB pass, and 1000-byte
/// outgoing frames so every big message is fragmented.
pub fn config() -> Config {
    let mut c = Config::microcontroller();
    c.max_frame_size = 1 << 20;
    c.max_message_size = 1 << 20;
    c.max_send_frame_size = 1000;
    c.close_timeout = core::time::Duration::from_millis(1500);
    c
}

/// A received message, reassembled from fragments if need be.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    pub kind: DataKind,
    pub data: Vec<u8>,
    /// How many events it took (1: delivered whole).
    pub pieces: usize,
}

/// Collects fragments into messages.
#[derive(Default)]
pub struct Assembler {
    buf: Vec<u8>,
    pieces: usize,
}

impl Assembler {
    /// Feeds an event; returns a data message once complete.
    pub fn feed(&mut self, event: Event<'_>) -> Option<Received> {
        match event {
            Event::Text(t) => Some(Received {
                kind: DataKind::Text,
                data: t.as_bytes().to_vec(),
                pieces: 1,
            }),
            Event::Binary(b) => Some(Received {
                kind: DataKind::Binary,
                data: b.to_vec(),
                pieces: 1,
            }),
            Event::Fragment(f) => {
                if f.first {
                    assert!(self.buf.is_empty(), "a new message inside a message");
                    self.pieces = 0;
                }
                self.buf.extend_from_slice(f.data);
                self.pieces += 1;
                f.last.then(|| Received {
                    kind: f.kind,
                    data: std::mem::take(&mut self.buf),
                    pieces: self.pieces,
                })
            }
            _ => None,
        }
    }
}

/// Accepts one connection on `port` and echoes every data message until the client
/// closes. Returns how the connection ended (`None`: clean).
pub async fn echo_server(
    stack: Stack<'static>,
    port: u16,
    config: Config,
    message_buffer: usize,
) -> Option<sansock_embassy::Error> {
    let (mut tcp_rx, mut tcp_tx) = (vec![0u8; 4096], vec![0u8; 4096]);
    let (mut read, mut write, mut message) =
        (vec![0u8; 2048], vec![0u8; 1024], vec![0u8; message_buffer]);
    let mut socket = TcpSocket::new(stack, &mut tcp_rx, &mut tcp_tx);
    socket.accept(port).await.expect("accept");
    let buffers = Buffers::new(&mut read, &mut write).with_message(&mut message);
    let (mut ws, _) = accept(&mut socket, &AcceptOptions::new(), config, buffers)
        .await
        .expect("server handshake");
    let mut asm = Assembler::default();
    while let Some(event) = ws.recv().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => return Some(e),
        };
        if let Some(msg) = asm.feed(event) {
            ws.send(msg.kind, &msg.data).await.expect("echo");
        }
    }
    None
}

/// `len` bytes of text with multi-byte characters (so fragments split code points).
pub fn text_of(len: usize) -> String {
    let mut s = String::new();
    let parts = ["a", "é", "€", "😀", "z"];
    let mut i = 0;
    while s.len() < len {
        let p = parts[i % parts.len()];
        if s.len() + p.len() > len {
            s.push('x');
        } else {
            s.push_str(p);
        }
        i += 1;
    }
    s
}

/// `len` bytes of a recognisable binary pattern.
pub fn binary_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) % 251) as u8).collect()
}
