//! Proves the in-memory harness: a real TCP session between two embassy-net stacks.
#![allow(clippy::print_stdout)] // reports the echo time

mod common;

use embassy_futures::join::join;
use embassy_net::tcp::TcpSocket;
use embedded_io_async::Write;

const PORT: u16 = 7000;
const LEN: usize = 100 * 1024;

/// A pattern that is not periodic over any small power of two, so a lost, duplicated or
/// reordered segment cannot go unnoticed.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) % 251) as u8).collect()
}

#[test]
fn tcp_echo_100_kib_between_two_in_memory_stacks() {
    let data = pattern(LEN);
    let sent = data.clone();
    let started = std::time::Instant::now();

    let (echoed_by_server, received) = common::run_pair(move |server, client| async move {
        let server_side = async move {
            let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
            let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
            socket.accept(PORT).await.expect("accept");
            assert_eq!(
                socket.remote_endpoint().map(|e| e.addr),
                Some(common::CLIENT_IP.into())
            );
            let mut buf = [0u8; 1500];
            let mut total = 0;
            loop {
                let n = socket.read(&mut buf).await.expect("server read");
                if n == 0 {
                    break; // the client's FIN
                }
                socket.write_all(&buf[..n]).await.expect("server write");
                total += n;
            }
            socket.close();
            socket.flush().await.expect("server FIN acked");
            total
        };

        let client_side = async move {
            let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
            let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
            socket
                .connect((common::SERVER_IP, PORT))
                .await
                .expect("connect");
            let mut received = Vec::with_capacity(LEN);
            {
                let (mut reader, mut writer) = socket.split();
                // Write and read at once: the echo would stall on full buffers otherwise.
                let write = async {
                    writer.write_all(&data).await.expect("client write");
                    writer.flush().await.expect("client flush");
                };
                let read = async {
                    let mut buf = [0u8; 1500];
                    while received.len() < LEN {
                        let n = reader.read(&mut buf).await.expect("client read");
                        assert_ne!(n, 0, "server closed early after {} bytes", received.len());
                        received.extend_from_slice(&buf[..n]);
                    }
                };
                join(write, read).await;
            }
            socket.close();
            // The server answers our FIN with its own: read must now report EOF.
            let mut buf = [0u8; 16];
            let n = socket
                .read(&mut buf)
                .await
                .expect("client read after close");
            assert_eq!(n, 0, "no data expected after the echo");
            received
        };

        join(server_side, client_side).await
    });

    assert_eq!(echoed_by_server, LEN);
    assert_eq!(received.len(), LEN);
    assert!(received == sent, "echoed bytes differ from the bytes sent");
    println!(
        "100 KiB echoed through two in-memory embassy-net stacks in {:?}",
        started.elapsed()
    );
}

#[test]
fn harness_timeout_fails_instead_of_hanging() {
    let outcome = std::panic::catch_unwind(|| {
        common::run_pair_timeout(
            std::time::Duration::from_millis(300),
            |server, _client| async move {
                // Nobody connects: accept waits forever.
                let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
                let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
                let _ = socket.accept(PORT).await;
            },
        )
    });
    let message = outcome.expect_err("a hang must fail");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.contains("harness timeout"),
        "unexpected panic: {message}"
    );
}

#[test]
fn harness_passes_on_panics_from_the_test_future() {
    let outcome = std::panic::catch_unwind(|| {
        common::run_pair(|_server, _client| async move {
            panic!("boom inside the executor");
        })
    });
    let message = outcome.expect_err("the panic must reach the test");
    let message = message
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| message.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert_eq!(message, "boom inside the executor");
}

#[test]
fn spawned_tasks_serve_several_connections() {
    let replies = common::run_pair(|server, client| async move {
        // An accept loop as a background task, one connection at a time.
        common::spawn(async move {
            let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
            loop {
                let mut socket = TcpSocket::new(server, &mut rx, &mut tx);
                socket.accept(PORT).await.expect("accept");
                let mut buf = [0u8; 64];
                let n = socket.read(&mut buf).await.expect("read");
                socket.write_all(&buf[..n]).await.expect("write");
                socket.close();
                socket.flush().await.expect("flush");
            }
        });
        let mut replies = Vec::new();
        for i in 0..3u8 {
            let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
            let mut socket = TcpSocket::new(client, &mut rx, &mut tx);
            // The accept loop may not be listening again yet: a refused SYN is retried.
            let mut attempts = 0;
            while let Err(e) = socket.connect((common::SERVER_IP, PORT)).await {
                attempts += 1;
                assert!(attempts < 50, "connect {i}: {e:?}");
                embassy_time::Timer::after_millis(10).await;
            }
            socket.write_all(&[b'a' + i]).await.expect("write");
            let mut buf = [0u8; 8];
            let n = socket.read(&mut buf).await.expect("read");
            replies.push(buf[..n].to_vec());
            socket.close();
            socket.flush().await.expect("flush");
        }
        replies
    });
    assert_eq!(replies, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}
