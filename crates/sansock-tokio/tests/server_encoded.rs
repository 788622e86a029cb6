//! `EncodedMessage` and `WriteHalf::send_encoded`: frames built once, shared by every
//! server connection, with the core's send state kept honest.

use std::time::Duration;

use bytes::Bytes;
use sansock::{CloseCode, DataKind, Message, Role};
use sansock_tokio::{Config, EncodedMessage, Error, WebSocket};
use tokio::net::{TcpListener, TcpStream};

async fn pair() -> (WebSocket<TcpStream>, WebSocket<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    let server =
        WebSocket::from_upgraded(s.unwrap().0, Role::Server, Config::default(), Bytes::new());
    let client =
        WebSocket::from_upgraded(c.unwrap(), Role::Client, Config::default(), Bytes::new());
    (server, client)
}

async fn recv(ws: &mut WebSocket<TcpStream>) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.recv())
        .await
        .expect("in time")
        .expect("a message")
        .expect("no error")
}

#[test]
fn frames_are_what_the_core_would_write() {
    let one = EncodedMessage::new(&Message::text("hi")).unwrap();
    assert_eq!(&one.as_bytes()[..], b"\x81\x02hi");
    assert_eq!(one.kind(), DataKind::Text);
    assert_eq!(one.payload_len(), 2);
    let empty = EncodedMessage::new(&Message::binary(Vec::new())).unwrap();
    assert_eq!(&empty.as_bytes()[..], b"\x82\x00");
    let split = EncodedMessage::with_max_frame_size(&Message::binary(vec![9u8; 5]), 2).unwrap();
    assert_eq!(
        &split.as_bytes()[..],
        b"\x02\x02\x09\x09\x00\x02\x09\x09\x80\x01\x09"
    );
    let big = EncodedMessage::new(&Message::binary(vec![0u8; 70_000])).unwrap();
    assert_eq!(&big.as_bytes()[..4], b"\x82\x7f\x00\x00");
    assert!(EncodedMessage::new(&Message::Ping(Bytes::new())).is_none());
}

#[tokio::test]
async fn shared_frames_interleave_with_ordinary_sends_in_order() {
    let (mut server, mut client) = pair().await;
    let shared = EncodedMessage::with_max_frame_size(&Message::text("shared é"), 3).unwrap();
    server.feed(Message::text("before")).await.unwrap();
    server.feed_encoded(&shared).await.unwrap();
    server.feed(Message::binary(vec![1, 2, 3])).await.unwrap();
    server.send_encoded(&shared).await.unwrap();
    assert_eq!(server.buffered_amount(), 0, "send_encoded flushes");
    assert_eq!(recv(&mut client).await, Message::text("before"));
    assert_eq!(recv(&mut client).await, Message::text("shared é"));
    assert_eq!(recv(&mut client).await, Message::binary(vec![1, 2, 3]));
    assert_eq!(recv(&mut client).await, Message::text("shared é"));
}

#[tokio::test]
async fn refused_after_close_inside_a_streamed_message_and_on_clients() {
    let (mut server, mut client) = pair().await;
    let msg = EncodedMessage::new(&Message::text("x")).unwrap();
    // A client must mask: refused.
    assert!(matches!(
        client.send_encoded(&msg).await,
        Err(Error::Protocol(sansock::Error::InvalidRequest(_)))
    ));
    // Inside a streamed message: refused, and the streamed message can still finish.
    server
        .send_chunk(DataKind::Binary, b"ab", false)
        .await
        .unwrap();
    assert!(matches!(
        server.send_encoded(&msg).await,
        Err(Error::Protocol(sansock::Error::MessageInProgress))
    ));
    server
        .send_chunk(DataKind::Binary, b"cd", true)
        .await
        .unwrap();
    assert_eq!(recv(&mut client).await, Message::binary(b"abcd".to_vec()));
    // After close: refused.
    server.close(CloseCode::NORMAL, "bye").await.unwrap();
    assert!(matches!(
        server.send_encoded(&msg).await,
        Err(Error::Protocol(sansock::Error::ConnectionClosed))
    ));
    assert!(matches!(recv(&mut client).await, Message::Close(_)));
}

#[tokio::test]
async fn one_encoding_reaches_many_connections() {
    let mut pairs = Vec::new();
    for _ in 0..20 {
        pairs.push(pair().await);
    }
    let payload = vec![42u8; 200_000];
    let msg = EncodedMessage::new(&Message::binary(payload.clone())).unwrap();
    for (server, _) in &mut pairs {
        server.feed_encoded(&msg).await.unwrap();
    }
    let readers: Vec<_> = pairs
        .into_iter()
        .map(|(mut server, mut client)| {
            tokio::spawn(async move {
                let (got, flushed) = tokio::join!(recv(&mut client), server.flush());
                flushed.unwrap();
                got
            })
        })
        .collect();
    for r in readers {
        assert_eq!(r.await.unwrap(), Message::binary(payload.clone()));
    }
}
