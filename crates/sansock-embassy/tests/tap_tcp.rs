//! Proves the TAP harness: embassy-net talking TCP to the host kernel's stack.
//!
//! Runs inside a throw-away network namespace (see `common::tuntap`); skips itself with a
//! message when that cannot be made (no root, no `/dev/net/tun`).

mod common;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener};
use std::time::Duration;

use common::tuntap;
use embassy_futures::join::join;
use embassy_net::tcp::TcpSocket;
use embedded_io_async::{Read, Write};

const BULK: usize = 100 * 1024;

#[test]
fn tap_tcp_with_host_kernel() {
    tuntap::netns_test("tap_tcp_with_host_kernel", || {
        let tap = tuntap::open_tap();
        let listener = TcpListener::bind((tuntap::HOST_IP, 0)).expect("bind on the TAP address");
        let port = listener.local_addr().unwrap().port();

        // Host side: answer one line, then echo everything until EOF.
        let host = std::thread::spawn(move || {
            let (mut stream, peer) = listener.accept().expect("accept");
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while line.last() != Some(&b'\n') {
                stream.read_exact(&mut byte).expect("read the line");
                line.push(byte[0]);
            }
            stream.write_all(b"kernel got: ").unwrap();
            stream.write_all(&line).unwrap();
            let mut buf = [0u8; 4096];
            let mut echoed = 0;
            loop {
                let n = stream.read(&mut buf).expect("read bulk");
                if n == 0 {
                    break;
                }
                stream.write_all(&buf[..n]).expect("echo bulk");
                echoed += n;
            }
            stream.shutdown(Shutdown::Write).unwrap();
            (peer, echoed)
        });

        let data: Vec<u8> = (0..BULK).map(|i| (i.wrapping_mul(7) % 253) as u8).collect();
        let sent = data.clone();
        let (answer, received) = tuntap::run_on_tap(tap, move |stack| async move {
            let (mut rx, mut tx) = ([0u8; 4096], [0u8; 4096]);
            let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
            socket
                .connect((tuntap::HOST_IP, port))
                .await
                .expect("connect to the kernel");

            socket.write_all(b"hello from embassy-net\n").await.unwrap();
            let expected_len = b"kernel got: hello from embassy-net\n".len();
            let mut answer = vec![0u8; expected_len];
            socket
                .read_exact(&mut answer)
                .await
                .expect("read the answer");

            let mut received = Vec::with_capacity(BULK);
            {
                let (mut reader, mut writer) = socket.split();
                let write = async {
                    writer.write_all(&data).await.expect("write bulk");
                    writer.flush().await.expect("flush bulk");
                };
                let read = async {
                    let mut buf = [0u8; 1500];
                    while received.len() < BULK {
                        let n = reader.read(&mut buf).await.expect("read bulk");
                        assert_ne!(n, 0, "kernel closed early after {} bytes", received.len());
                        received.extend_from_slice(&buf[..n]);
                    }
                };
                join(write, read).await;
            }
            socket.close();
            let mut buf = [0u8; 16];
            assert_eq!(socket.read(&mut buf).await.expect("read EOF"), 0);
            socket.flush().await.expect("FIN acked");
            (answer, received)
        });

        assert_eq!(answer, b"kernel got: hello from embassy-net\n");
        assert!(received == sent, "bulk echo through the kernel differs");
        let (peer, echoed) = host.join().expect("host thread");
        assert_eq!(peer.ip(), tuntap::STACK_IP);
        assert_eq!(echoed, BULK);
    });
}
