//! `read_message` receives a large single-frame message in place: its payload stays at
//! the front of the caller's buffer as it arrives over many reads (unmasked and checked
//! at once), the buffer gets room for the rest of the frame, and the finished message
//! is split off that buffer without a copy.

use bytes::{BufMut, BytesMut};
use sansock::{Config, Connection, Error, Instant, Message, State};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const NOW: Instant = Instant::ZERO;

/// A masked client frame (FIN), built by hand.
fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(&KEY);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    f
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Append `bytes` the way a reader does: into the spare room, growing only if needed.
fn arrive(input: &mut BytesMut, bytes: &[u8]) {
    input.put_slice(bytes);
}

#[test]
fn large_frame_in_pieces_is_split_off_the_read_buffer() {
    let data = payload(300_000);
    let wire = masked(0x2, &data);
    let mut server = Connection::server(Config::default(), NOW);
    let mut input = BytesMut::with_capacity(4096);
    let mut pieces = wire.chunks(4096);
    arrive(&mut input, pieces.next().unwrap());
    assert_eq!(server.read_message(&mut input, NOW), Ok(None));
    // The header is gone, the payload so far is unmasked where it was, and there is
    // room for the rest of the frame.
    let start = input.as_ptr();
    assert_eq!(input.len(), 4096 - 10 - 4);
    assert_eq!(&input[..], &data[..input.len()]);
    assert!(input.capacity() >= data.len());
    assert_eq!(
        server.frame_bytes_pending(),
        (data.len() - input.len()) as u64
    );
    for piece in pieces {
        arrive(&mut input, piece);
        if let Some(m) = server.read_message(&mut input, NOW).unwrap() {
            let Message::Binary(b) = m else {
                panic!("{m:?}")
            };
            assert_eq!(b.as_ptr(), start, "split off the buffer, not copied");
            assert_eq!(&b[..], &data[..]);
            assert!(input.is_empty());
            assert_eq!(server.frame_bytes_pending(), 0);
            // The next message reads normally after it.
            arrive(&mut input, &masked(0x1, b"next"));
            assert_eq!(
                server.read_message(&mut input, NOW),
                Ok(Some(Message::text("next")))
            );
            return;
        }
        assert_eq!(input.as_ptr(), start, "the buffer never moved");
    }
    panic!("the message never completed");
}

#[test]
fn bytes_after_the_frame_stay_for_the_next_message() {
    let data = payload(70_000);
    let mut wire = masked(0x2, &data);
    wire.extend_from_slice(&masked(0x9, b"p"));
    wire.extend_from_slice(&masked(0x2, b"after"));
    for cut in [20, 40_000, 70_013, wire.len() - 3] {
        let mut server = Connection::server(Config::default(), NOW);
        let mut input = BytesMut::new();
        let mut got = Vec::new();
        for piece in [&wire[..cut], &wire[cut..]] {
            arrive(&mut input, piece);
            while let Some(m) = server.read_message(&mut input, NOW).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            [
                Message::Binary(data.clone().into()),
                Message::Ping(b"p"[..].into()),
                Message::Binary(b"after"[..].into())
            ],
            "cut at {cut}"
        );
        assert!(input.is_empty(), "cut at {cut}");
    }
}

#[test]
fn invalid_utf8_in_a_large_text_frame_fails_before_the_frame_ends() {
    let mut text = vec![b'a'; 100_000];
    text[5000] = 0xff;
    let wire = masked(0x1, &text);
    let mut server = Connection::server(Config::default(), NOW);
    let mut input = BytesMut::new();
    arrive(&mut input, &wire[..4000]);
    assert_eq!(server.read_message(&mut input, NOW), Ok(None));
    arrive(&mut input, &wire[4000..8000]);
    assert_eq!(
        server.read_message(&mut input, NOW),
        Err(Error::InvalidUtf8),
        "fails as soon as the bad byte is in, 92 KB before the frame ends"
    );
    assert_eq!(server.state(), State::Closed);
}

#[test]
fn an_announced_frame_past_the_limit_fails_before_any_room_is_made() {
    let mut config = Config::default();
    config.max_message_size = 64 << 10;
    config.max_frame_size = 1 << 20;
    let wire = masked(0x2, &payload(100_000));
    let mut server = Connection::server(config, NOW);
    let mut input = BytesMut::with_capacity(1024);
    arrive(&mut input, &wire[..1024]);
    assert_eq!(
        server.read_message(&mut input, NOW),
        Err(Error::MessageTooLarge)
    );
    assert!(
        input.capacity() < 64 << 10,
        "no room made for a refused frame"
    );
}

#[test]
fn fragments_are_still_assembled() {
    let data = payload(50_000);
    let mut wire = Vec::new();
    // Two fragments by hand: FIN off on the first.
    let mut first = masked(0x2, &data[..30_000]);
    first[0] &= 0x7f;
    wire.extend_from_slice(&first);
    wire.extend_from_slice(&masked(0x0, &data[30_000..]));
    for step in [1000, 7777, wire.len()] {
        let mut server = Connection::server(Config::default(), NOW);
        let mut input = BytesMut::new();
        let mut got = None;
        for piece in wire.chunks(step) {
            arrive(&mut input, piece);
            if let Some(m) = server.read_message(&mut input, NOW).unwrap() {
                got = Some(m);
            }
        }
        assert_eq!(
            got,
            Some(Message::Binary(data.clone().into())),
            "step {step}"
        );
        assert!(input.is_empty(), "fragments are consumed as they come");
    }
}
