//! The protocol core on its own: a client and a server `sansock` state machine talking
//! through two in-memory byte pipes, with no sockets, no clock and no runtime. Shows the
//! whole life of a connection: opening handshake, a text message, a fragmented binary
//! message, a ping answered automatically, and the closing handshake.
//!
//! `cargo run --release -p sansock-examples --example sans-io`
#![allow(clippy::print_stdout)]

use bytes::{Buf, BytesMut};
use sansock::conn::{DataKind, Event};
use sansock::handshake::{
    ClientHandshake, ClientRequest, ResponseStatus, ServerHandshake, write_accept,
};
use sansock::{CloseCode, Config, Connection, Instant, RandomSource};

/// A toy generator for the demo; real programs pass the OS or hardware RNG.
struct Xorshift(u64);
impl RandomSource for Xorshift {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

/// Feed everything in `wire` to `conn`, printing the events.
fn drain<R: RandomSource>(who: &str, conn: &mut Connection<R>, wire: &mut BytesMut, now: Instant) {
    let mut at = 0;
    loop {
        let read = conn.read(&mut wire[at..], now).expect("valid stream");
        at += read.consumed;
        match read.event {
            Some(Event::Data(d)) => println!(
                "{who}: {:?} chunk of {} bytes (start {}, end {}){}",
                d.kind,
                d.payload.len(),
                d.message_start,
                d.message_end,
                match d.kind {
                    DataKind::Text => format!(": {:?}", String::from_utf8_lossy(d.payload)),
                    DataKind::Binary => String::new(),
                }
            ),
            Some(Event::Ping(p)) => {
                println!("{who}: ping {:?} (pong queued automatically)", p.as_bytes())
            }
            Some(Event::Pong(p)) => println!("{who}: pong {:?}", p.as_bytes()),
            Some(Event::Close(c)) => {
                println!("{who}: close {} {:?} (echo queued)", c.code(), c.reason())
            }
            None if read.consumed == 0 => break,
            None => {}
        }
    }
    wire.advance(at);
}

/// Move the control frames a connection owes onto its outgoing pipe.
fn transmit<R: RandomSource>(conn: &mut Connection<R>, wire: &mut BytesMut) {
    while let Some(frame) = conn.poll_transmit() {
        wire.extend_from_slice(&frame);
    }
}

fn main() {
    let now = Instant::ZERO;
    let config = Config::default();
    let (mut to_server, mut to_client) = (BytesMut::new(), BytesMut::new());

    // Opening handshake.
    let request = ClientRequest::new("example.com")
        .path("/chat")
        .subprotocols(&["chat.v1"]);
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let hs =
        ClientHandshake::new(&request, &mut rng, &config, now, &mut to_server).expect("request");
    println!("client -> server:\n{}", String::from_utf8_lossy(&to_server));
    let server_hs = ServerHandshake::new(&config, now);
    let req = server_hs
        .parse_request(&to_server)
        .expect("valid request")
        .expect("complete request");
    println!(
        "server: GET {} from host {}, offered {:?}",
        req.path,
        req.host,
        req.subprotocols().collect::<Vec<_>>()
    );
    write_accept(req.key, Some("chat.v1"), None, &[], &mut to_client).expect("response");
    let consumed = req.consumed;
    to_server.advance(consumed);
    println!("server -> client:\n{}", String::from_utf8_lossy(&to_client));
    match hs
        .parse_response(&request, &to_client)
        .expect("valid response")
    {
        ResponseStatus::Accepted(a) => {
            println!("client: accepted, subprotocol {:?}", a.subprotocol);
            let n = a.consumed;
            to_client.advance(n);
        }
        other => panic!("unexpected {other:?}"),
    }

    let mut client = Connection::client(config.clone(), rng, now);
    let mut server = Connection::server(config, now);

    // A text message, then a 10 KiB binary message fragmented into 4 KiB frames.
    client
        .encode_message(
            DataKind::Text,
            "hello from the core".as_bytes(),
            &mut to_server,
        )
        .expect("open");
    let payload = vec![0xab; 10 << 10];
    for (range, last) in sansock::conn::Fragments::new(payload.len(), 4 << 10) {
        let mut frame = client
            .encode_frame(DataKind::Binary, range.len(), last)
            .expect("open");
        let mut chunk = payload[range].to_vec();
        frame.mask(&mut chunk);
        to_server.extend_from_slice(frame.header());
        to_server.extend_from_slice(&chunk);
    }
    client.ping(b"are you there?", now).expect("open");
    transmit(&mut client, &mut to_server);
    drain("server", &mut server, &mut to_server, now);
    transmit(&mut server, &mut to_client);
    drain("client", &mut client, &mut to_client, now);

    // Closing handshake: the client closes, the server echoes and closes TCP first.
    client.close(CloseCode::NORMAL, "bye", now).expect("open");
    transmit(&mut client, &mut to_server);
    drain("server", &mut server, &mut to_server, now);
    transmit(&mut server, &mut to_client);
    println!(
        "server: state {:?}, close the transport now: {}",
        server.state(),
        server.wants_close_transport()
    );
    drain("client", &mut client, &mut to_client, now);
    println!(
        "client: state {:?}, waits for the server's FIN: {}",
        client.state(),
        !client.wants_close_transport()
    );
}
