//! The server's parsing of the client's opening request.
//!
//! Invariants: no heap allocation; any prefix of the input is "need more" or the same
//! verdict as the whole (the result does not depend on how the request trickles in);
//! an accepted request is GET, has a valid 24-character key, a path starting with `/`,
//! `consumed` within the input and `max_header_bytes`, and survives `OwnedRequest`; an
//! answer written for it is a `101` with the right accept value; every error has an HTTP
//! status and `write_error` answers it with that status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansock::handshake::{ServerHandshake, SliceWriter, accept_key, write_accept, write_error};
use sansock::{Config, Instant};
use sansock_fuzz::{HeapWindow, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut config = Config::default();
    config.max_header_bytes = 64 + usize::from(input.u8()) * 32;
    config.max_headers = usize::from(input.u8() % 140);
    let cuts: Vec<usize> = (0..3).map(|_| usize::from(input.u16())).collect();
    let request = input.rest();

    let hs = ServerHandshake::new(&config, Instant::ZERO);
    let heap = HeapWindow::start();
    let whole = hs.parse_request(request);
    assert_eq!(heap.allocs(), 0, "parse_request allocated");
    let verdict = |r: &Result<Option<sansock::handshake::Request<'_>>, sansock::Error>| match r {
        Ok(None) => None,
        Ok(Some(req)) => Some(Ok(req.consumed)),
        Err(e) => Some(Err(e.clone())),
    };
    for cut in cuts {
        let cut = cut % (request.len() + 1);
        let part = hs.parse_request(&request[..cut]);
        if let Some(v) = verdict(&part) {
            assert_eq!(
                Some(v),
                verdict(&whole),
                "prefix of {cut} bytes decided differently"
            );
        }
    }
    let mut buf = vec![0u8; 32 << 10];
    match whole {
        Ok(None) => assert!(request.len() <= config.max_header_bytes),
        Ok(Some(req)) => {
            assert!(req.consumed <= request.len() && req.consumed <= config.max_header_bytes);
            assert_eq!(req.method, "GET");
            assert!(req.path.starts_with('/'));
            assert_eq!(req.key.len(), 24);
            assert!(req.headers.len() <= config.max_headers);
            assert_eq!(req.raw_head(), &request[..req.consumed]);
            let owned = req.to_owned_request();
            let back = owned.request();
            assert_eq!(
                (
                    back.method,
                    back.target,
                    back.path,
                    back.query,
                    back.host,
                    back.key
                ),
                (
                    req.method, req.target, req.path, req.query, req.host, req.key
                )
            );
            assert_eq!(back.headers.iter().count(), req.headers.iter().count());
            for p in req.subprotocols() {
                assert!(!p.is_empty());
            }
            for ext in req.extensions() {
                assert!(ext.is_ok(), "validated extensions yield errors");
            }
            let _ = sansock::deflate::negotiate(req.extensions(), &Default::default());
            let mut out = SliceWriter::new(&mut buf);
            let chosen = req
                .subprotocols()
                .find(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()));
            write_accept(req.key, chosen, None, &[], &mut out).expect("accept fits");
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut resp = httparse::Response::new(&mut headers);
            assert!(resp.parse(out.written()).unwrap().is_complete());
            assert_eq!(resp.code, Some(101));
            let accept = resp
                .headers
                .iter()
                .find(|h| h.name == "Sec-WebSocket-Accept")
                .unwrap();
            assert_eq!(accept.value, accept_key(req.key.as_bytes()));
        }
        Err(e) => {
            let status = e.http_status().expect("a request error has a status");
            assert!(matches!(status, 400 | 405 | 426 | 431), "{e:?} → {status}");
            let mut out = SliceWriter::new(&mut buf);
            write_error(&e, &mut out).expect("error answer fits");
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut resp = httparse::Response::new(&mut headers);
            assert!(resp.parse(out.written()).unwrap().is_complete());
            assert_eq!(resp.code, Some(status));
        }
    }
});
