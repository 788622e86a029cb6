//! A 256 MiB message streamed client → server over loopback with
//! `WriteHalf::send_from_reader` and `ReadHalf::recv_chunk`, with every heap allocation
//! of this test binary counted: the message must never be held in memory.
//!
//! This binary holds one test only, so nothing else allocates while it measures.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use common::{listener, within};
use sansock_tokio::{ClientBuilder, CloseCode, Config, DataKind, Message};
use tokio::io::{AsyncRead, ReadBuf};

/// Counts the bytes currently allocated and the peak since the last reset.
struct CountingAlloc;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(n: usize) {
    CURRENT.fetch_sub(n, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the only addition is bookkeeping on atomics, which
// neither allocates nor touches the memory handed out.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator, i.e. by System, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by System with `layout`; the caller upholds the
        // rest of `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A position-dependent checksum (Fletcher-style over bytes, 64-bit sums): catches lost,
/// repeated and reordered bytes, not only a wrong count.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Checksum {
    len: u64,
    s1: u64,
    s2: u64,
}

impl Checksum {
    fn update(&mut self, data: &[u8]) {
        let (mut s1, mut s2) = (self.s1, self.s2);
        for &b in data {
            s1 = s1.wrapping_add(u64::from(b));
            s2 = s2.wrapping_add(s1);
        }
        self.s1 = s1;
        self.s2 = s2;
        self.len += data.len() as u64;
    }
}

/// The byte at position `i` of the test message: not constant, so the checksum means
/// something.
fn pattern(i: u64) -> u8 {
    (i ^ (i >> 9) ^ (i >> 17)) as u8
}

/// Generates `len` pattern bytes on demand, holding none of them, and checksums what it
/// hands out.
struct PatternReader {
    pos: u64,
    len: u64,
    sum: Checksum,
}

impl AsyncRead for PatternReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.len - self.pos) as usize;
        let start = self.pos;
        let out = buf.initialize_unfilled_to(n);
        for (k, b) in out.iter_mut().enumerate() {
            *b = pattern(start + k as u64);
        }
        self.sum.update(out);
        buf.advance(n);
        self.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

const MESSAGE: u64 = 256 << 20;
const FRAME: usize = 1 << 20;
/// What the transfer may add to the heap at its peak. Expected: the sender's two
/// read-ahead chunks (2 × 1 MiB frame), its write buffer (`max_write_buffer` 128 KiB plus
/// one frame, at most doubled by `BytesMut` growth: < 2.3 MiB), the receiver's read
/// buffer (a few × `read_chunk` 4 KiB): under 4.5 MiB (about 3 MiB measured), against
/// 256 MiB if the message were held anywhere. (With 4 MiB frames the same sum is about
/// 16 MiB, and this bound fails.)
const PEAK_BOUND: usize = 8 << 20;

#[tokio::test]
async fn a_256_mib_message_streams_in_bounded_memory() {
    within(300, async {
        let (listener, addr) = listener().await;
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut config = Config::default();
            config.protocol.max_message_size = MESSAGE;
            config.protocol.max_frame_size = FRAME as u64;
            let ws = sansock_tokio::accept_with_config(tcp, config)
                .await
                .unwrap();
            let (mut rd, _wr) = ws.split();
            let mut sum = Checksum::default();
            let mut chunks = 0u64;
            loop {
                let chunk = rd.recv_chunk().await.unwrap().unwrap();
                assert_eq!(chunk.kind, DataKind::Binary);
                assert_eq!(chunk.message_start, chunks == 0, "one message only");
                chunks += 1;
                sum.update(&chunk.data);
                if chunk.message_end {
                    break;
                }
            }
            // The client closes next; the reader sees it and then the end.
            match rd.recv().await {
                Some(Ok(Message::Close(Some(c)))) => assert_eq!(c.code, CloseCode::NORMAL),
                other => panic!("expected the client's close, got {other:?}"),
            }
            assert!(rd.recv().await.is_none());
            (sum, chunks)
        });

        let url = format!("ws://127.0.0.1:{}/upload", addr.port());
        let (ws, _) = ClientBuilder::new(&url).unwrap().connect().await.unwrap();
        let (mut rd, mut wr) = ws.split();

        // Measure from here: connections are up, only the transfer is left.
        let baseline = CURRENT.load(Ordering::SeqCst);
        PEAK.store(baseline, Ordering::SeqCst);

        let mut reader = PatternReader {
            pos: 0,
            len: MESSAGE,
            sum: Checksum::default(),
        };
        let sent = wr
            .send_from_reader(DataKind::Binary, &mut reader, FRAME)
            .await
            .unwrap();
        assert_eq!(sent, MESSAGE);
        wr.close(CloseCode::NORMAL, "uploaded").await.unwrap();
        // The client's read half sees the server's echo of the close, then the end.
        assert!(matches!(rd.recv().await, Some(Ok(Message::Close(_)))));
        assert!(rd.recv().await.is_none());

        let (received, chunks) = server.await.unwrap();
        let peak = PEAK.load(Ordering::SeqCst) - baseline;
        assert_eq!(received.len, MESSAGE, "every byte arrived once");
        assert_eq!(received, reader.sum, "same bytes in the same order");
        assert!(chunks > 1, "the message arrived in chunks");
        assert!(
            peak < PEAK_BOUND,
            "the heap grew by {peak} bytes during the transfer (bound {PEAK_BOUND})"
        );
    })
    .await;
}
