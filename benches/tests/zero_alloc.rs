//! The steady-state echo path of `sansock_tokio` allocates nothing per message.
//!
//! A counting global allocator counts the allocations made on the server's thread (a
//! current-thread tokio runtime running the echo loop of `examples/echo-server`). A
//! blocking client on the test thread sends masked messages one at a time and reads
//! each echo back. After a warm-up, a window of 250 more round trips must not allocate
//! at all, for every message size up to the read buffer size (`Config::read_chunk`,
//! 64 KiB), and for larger single-frame messages too (256 KiB, 1 MiB), which the core
//! receives in place into a buffer the adapter keeps while large messages keep coming.

#![allow(clippy::print_stderr)]
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use sansock::frame::{FrameHeader, MAX_HEADER_LEN, OpCode};
use sansock::mask::apply_mask;

struct Counting;

static SERVER_ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            SERVER_ALLOCS.fetch_add(1, SeqCst);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            SERVER_ALLOCS.fetch_add(1, SeqCst);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Start an echo server on its own thread; returns its address.
fn echo_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut ws = sansock_tokio::accept(stream).await.unwrap();
            // From here on, every allocation of this thread is counted.
            COUNTED.with(|c| c.set(true));
            while let Some(Ok(msg)) = ws.recv().await {
                if msg.is_data() && ws.send(msg).await.is_err() {
                    break;
                }
            }
            COUNTED.with(|c| c.set(false));
        });
    });
    addr
}

struct Client {
    tcp: TcpStream,
    frame: Vec<u8>,
    echo: Vec<u8>,
}

impl Client {
    fn connect(addr: std::net::SocketAddr, len: usize) -> Self {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.write_all(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some(key),
            payload_len: len as u64,
        };
        let mut hb = [0u8; MAX_HEADER_LEN];
        let n = h.encode(&mut hb);
        let mut frame = hb[..n].to_vec();
        frame.extend((0..len).map(|i| i as u8));
        apply_mask(&mut frame[n..], key, 0);
        let echo_len = FrameHeader { mask: None, ..h }.encoded_len() + len;
        Client {
            tcp,
            frame,
            echo: vec![0; echo_len],
        }
    }

    fn round_trip(&mut self) {
        self.tcp.write_all(&self.frame).unwrap();
        self.tcp.read_exact(&mut self.echo).unwrap();
    }
}

#[test]
fn steady_state_echo_allocates_nothing_per_message() {
    let mut report = Vec::new();
    for len in [
        16usize,
        1 << 10,
        16 << 10,
        60 << 10,
        64 << 10,
        256 << 10,
        1 << 20,
    ] {
        let addr = echo_server();
        let mut client = Client::connect(addr, len);
        for _ in 0..200 {
            client.round_trip();
        }
        // Windows of 250 round trips until one allocates nothing. On a busy machine a
        // write of a long echo can stay partly queued (its payload is sent from the
        // read buffer without a copy), and the next read then needs a fresh buffer:
        // that is not the steady state, but it can happen in any window.
        let mut windows = Vec::new();
        for _ in 0..5 {
            let before = SERVER_ALLOCS.load(SeqCst);
            for _ in 0..250 {
                client.round_trip();
            }
            windows.push(SERVER_ALLOCS.load(SeqCst) - before);
            if windows.last() == Some(&0) {
                break;
            }
        }
        report.push((len, windows));
    }
    eprintln!("allocations in windows of 250 echoed messages (server thread): {report:?}");
    for (len, windows) in report {
        assert_eq!(
            windows.last(),
            Some(&0),
            "{len}-byte messages allocate: {windows:?}"
        );
    }
}
