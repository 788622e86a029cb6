//! The client's parsing of the server's answer to its opening request.
//!
//! The input's `@A@` is replaced by the accept value the server must send, so the fuzzer
//! gets past that check easily.
//!
//! Invariants: no heap allocation; any prefix of the input is "need more" or the same
//! verdict as the whole; an accepted answer is within the input and `max_header_bytes`,
//! with an offered subprotocol and only offered, well-formed extensions (which the
//! permessage-deflate check then accepts or refuses without panicking); a rejection is
//! not 101, its body within the limit and the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansock::handshake::{ClientHandshake, ClientRequest, ResponseStatus, SliceWriter};
use sansock::{Config, Instant};
use sansock_fuzz::{HeapWindow, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut config = Config::default();
    config.max_header_bytes = 64 + usize::from(input.u8()) * 32;
    config.max_headers = usize::from(input.u8() % 140);
    let cuts: Vec<usize> = (0..3).map(|_| usize::from(input.u16())).collect();
    let raw = input.rest();

    let protocols = ["chat", "superchat"];
    let req = ClientRequest::new("example.com")
        .subprotocols(&protocols)
        .extensions("permessage-deflate; client_max_window_bits");
    let mut rng = |b: &mut [u8]| b.fill(7);
    let mut buf = [0u8; 1024];
    let mut out = SliceWriter::new(&mut buf);
    let hs = ClientHandshake::new(&req, &mut rng, &config, Instant::ZERO, &mut out).unwrap();
    let response = replace(raw, b"@A@", hs.expected_accept().as_bytes());

    let heap = HeapWindow::start();
    let whole = hs.parse_response(&req, &response);
    assert_eq!(heap.allocs(), 0, "parse_response allocated");
    let verdict = |r: &Result<ResponseStatus<'_>, sansock::Error>| match r {
        Ok(ResponseStatus::Partial) => None,
        Ok(ResponseStatus::Accepted(a)) => Some(Ok((101, a.consumed))),
        Ok(ResponseStatus::Rejected(r)) => Some(Ok((r.status, r.consumed))),
        Err(e) => Some(Err(e.clone())),
    };
    for cut in cuts {
        let cut = cut % (response.len() + 1);
        let part = hs.parse_response(&req, &response[..cut]);
        if let Some(v) = verdict(&part) {
            assert_eq!(
                Some(v),
                verdict(&whole),
                "prefix of {cut} bytes decided differently"
            );
        }
    }
    match whole {
        Ok(ResponseStatus::Partial) => {}
        Ok(ResponseStatus::Accepted(a)) => {
            assert!(a.consumed <= response.len() && a.consumed <= config.max_header_bytes);
            assert!(a.subprotocol.is_none_or(|p| protocols.contains(&p)));
            for ext in a.extensions() {
                let ext = ext.expect("accepted extensions are well-formed");
                assert!(ext.name.eq_ignore_ascii_case("permessage-deflate"));
            }
            let _ = sansock::deflate::check_response(a.extensions(), &Default::default());
        }
        Ok(ResponseStatus::Rejected(r)) => {
            assert_ne!(r.status, 101);
            assert!(r.body.len() <= config.max_header_bytes);
            assert!(r.consumed <= response.len());
            let owned = r.to_owned_response();
            assert_eq!(owned.body.len(), r.body.len());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

fn replace(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len() + 32);
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}
