//! Cancel safety of `recv()` inside `tokio::select!` over loopback TCP: a short sleep
//! keeps winning the race and dropping the `recv` future, often in the middle of a
//! message (between fragments, or inside a frame that arrives in pieces), while the peer
//! sends 1,000 messages of varying sizes. Every message must arrive exactly once, whole
//! and in order.

mod common;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use common::{listener, within};
use sansock_tokio::{CloseCode, Config, DataKind, Message, Role, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

const MESSAGES: usize = 1000;

/// A stream whose writes trickle out: at most 8 KiB per write, and a 1 ms pause after
/// every 64 KiB, so large frames reach the receiver in many pieces over time.
struct Trickle<S> {
    inner: S,
    since_pause: usize,
    pause: Option<Pin<Box<Sleep>>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Trickle<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Trickle<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(p) = &mut this.pause {
            ready!(p.as_mut().poll(cx));
            this.pause = None;
        }
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..buf.len().min(8 << 10)]))?;
        this.since_pause += n;
        if this.since_pause >= 64 << 10 {
            this.since_pause = 0;
            this.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(1))));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Message `i`: its kind, payload, and where the sender splits it into fragments
/// (`None`: sent whole with `send`).
fn message(i: usize) -> (DataKind, Vec<u8>, Option<Vec<usize>>) {
    let len = match i % 10 {
        0 => 0,
        1..=3 => i * 13 % 200,
        4..=6 => i * 997 % 20_000,
        7 | 8 => 50_000 + i * 7919 % 150_000,
        _ => 125 + i % 4,
    };
    let kind = if i.is_multiple_of(3) {
        DataKind::Text
    } else {
        DataKind::Binary
    };
    let payload = match kind {
        DataKind::Text => {
            // Multi-byte characters, so fragments can end inside a code point.
            let chars = ['a', 'é', '€', '𝄞', ' ', 'z'];
            let mut s = format!("#{i}:");
            let mut k = i;
            while s.len() < len {
                s.push(chars[k % chars.len()]);
                k = k.wrapping_mul(31).wrapping_add(7);
            }
            s.into_bytes()
        }
        DataKind::Binary => {
            let mut b = (i as u32).to_be_bytes().to_vec();
            b.extend((0..len).map(|k| (k * 7 + i) as u8));
            b
        }
    };
    let splits = (i % 4 == 1).then(|| {
        // 2 to 5 fragments at uneven points, sometimes an empty one.
        let pieces = 2 + i % 4 + (i / 4) % 3;
        let mut points: Vec<usize> = (1..pieces)
            .map(|k| (payload.len() * k * 7 / (pieces * 8)).min(payload.len()))
            .collect();
        if i % 8 == 5 {
            points.push(points[0]); // an empty fragment
            points.sort_unstable();
        }
        points
    });
    (kind, payload, splits)
}

fn expected(i: usize) -> Message {
    let (kind, payload, _) = message(i);
    match kind {
        DataKind::Text => Message::text(String::from_utf8(payload).unwrap()),
        DataKind::Binary => Message::Binary(Bytes::from(payload)),
    }
}

/// Sends the 1,000 messages (and a ping every 50), then closes. `inside` is true while
/// a message is being sent.
async fn send_all<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocket<S>,
    inside: Arc<AtomicBool>,
) {
    for i in 0..MESSAGES {
        if i % 50 == 0 {
            ws.send(Message::Ping(Bytes::from(format!("p{i}"))))
                .await
                .unwrap();
        }
        let (kind, payload, splits) = message(i);
        inside.store(true, Ordering::SeqCst);
        match splits {
            None => ws.send(expected(i)).await.unwrap(),
            Some(points) => {
                let mut bounds = vec![0];
                bounds.extend(points);
                bounds.push(payload.len());
                for (k, w) in bounds.windows(2).enumerate() {
                    let last = k == bounds.len() - 2;
                    ws.send_chunk(kind, &payload[w[0]..w[1]], last)
                        .await
                        .unwrap();
                    if !last {
                        // Let the receiver see part of the message and wait for more.
                        ws.flush().await.unwrap();
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }
        inside.store(false, Ordering::SeqCst);
    }
    ws.close(CloseCode::NORMAL, "all sent").await.unwrap();
}

#[derive(Debug, Default)]
struct Received {
    messages: usize,
    pings: usize,
    cancelled: usize,
    cancelled_inside: usize,
    close: Option<(CloseCode, String)>,
}

/// Receives with `recv()` raced against a 100 µs sleep until the connection ends.
async fn receive_all<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocket<S>,
    inside: Arc<AtomicBool>,
) -> Received {
    let mut got = Received::default();
    loop {
        tokio::select! {
            msg = ws.recv() => match msg {
                None => break,
                Some(Err(e)) => panic!("after {} messages: {e:?}", got.messages),
                Some(Ok(Message::Ping(p))) => {
                    assert_eq!(p, format!("p{}", got.messages).as_bytes());
                    got.pings += 1;
                }
                Some(Ok(Message::Close(Some(c)))) => {
                    got.close = Some((c.code, c.reason.to_string()));
                }
                Some(Ok(msg)) => {
                    assert!(got.messages < MESSAGES, "an extra message: {msg:?}");
                    let want = expected(got.messages);
                    assert!(
                        msg == want,
                        "message {} differs: got {} bytes, expected {}",
                        got.messages,
                        msg.len(),
                        want.len()
                    );
                    got.messages += 1;
                }
            },
            _ = tokio::time::sleep(Duration::from_micros(100)) => {
                got.cancelled += 1;
                if inside.load(Ordering::SeqCst) {
                    got.cancelled_inside += 1;
                }
            }
        }
    }
    got
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let (l, addr) = listener().await;
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    (c.unwrap(), s.unwrap().0)
}

fn trickle(s: TcpStream) -> Trickle<TcpStream> {
    Trickle {
        inner: s,
        since_pause: 0,
        pause: None,
    }
}

fn check(got: &Received) {
    assert_eq!(got.messages, MESSAGES, "every message arrived");
    assert_eq!(got.pings, MESSAGES / 50);
    assert_eq!(
        got.close,
        Some((CloseCode::NORMAL, "all sent".to_owned())),
        "the sender's close came last"
    );
    // The race was real: recv futures were dropped, many of them mid-message.
    assert!(
        got.cancelled_inside >= 100,
        "only {} of {} cancellations happened mid-message",
        got.cancelled_inside,
        got.cancelled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_recv_is_cancel_safe() {
    within(120, async {
        let (c, s) = tcp_pair().await;
        let inside = Arc::new(AtomicBool::new(false));
        let sender =
            WebSocket::from_upgraded(trickle(s), Role::Server, Config::default(), Bytes::new());
        let receiver = WebSocket::from_upgraded(c, Role::Client, Config::default(), Bytes::new());
        let sending = tokio::spawn(send_all(sender, inside.clone()));
        let got = receive_all(receiver, inside).await;
        sending.await.unwrap();
        check(&got);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_recv_is_cancel_safe() {
    within(120, async {
        let (c, s) = tcp_pair().await;
        let inside = Arc::new(AtomicBool::new(false));
        // Masked frames this way: unmasking must resume at the right key offset.
        let sender =
            WebSocket::from_upgraded(trickle(c), Role::Client, Config::default(), Bytes::new());
        let receiver = WebSocket::from_upgraded(s, Role::Server, Config::default(), Bytes::new());
        let sending = tokio::spawn(send_all(sender, inside.clone()));
        let got = receive_all(receiver, inside).await;
        sending.await.unwrap();
        check(&got);
    })
    .await;
}
