//! Frame header decoding, whole and split, and encoding round trips.
//!
//! Invariants: `FrameHeader::decode` and a `HeaderDecoder` fed any split agree on the
//! header, its length and the error; the decoder never consumes a byte past the header;
//! a decoded header is minimal (re-encoding gives back exactly the same bytes) and obeys
//! the control-frame rules; "need more" only happens with fewer than 14 bytes; any
//! header built from the input encodes to `encoded_len` bytes and decodes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansock::frame::{FrameHeader, HeaderDecoder, MAX_HEADER_LEN, OpCode};
use sansock_fuzz::{Input, chunks};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let sizes = input.splits();
    let build = input.bytes(10);
    let wire = input.rest();

    let whole = FrameHeader::decode(wire);
    match &whole {
        Ok(Some((h, n))) => {
            assert!(*n <= MAX_HEADER_LEN && *n <= wire.len());
            assert_eq!(*n, h.encoded_len());
            let mut out = [0u8; MAX_HEADER_LEN];
            assert_eq!(h.encode(&mut out), *n);
            assert_eq!(&out[..*n], &wire[..*n], "decoded header is not minimal");
            assert_eq!(FrameHeader::decode(&wire[..n - 1]), Ok(None));
            if h.opcode.is_control() {
                assert!(h.fin && h.payload_len <= 125);
            }
            assert!(h.payload_len >> 63 == 0);
        }
        Ok(None) => assert!(wire.len() < MAX_HEADER_LEN),
        Err(_) => {}
    }

    // The incremental decoder, fed in pieces.
    let mut dec = HeaderDecoder::new();
    let mut consumed = 0;
    let mut got = Ok(None);
    for chunk in chunks(wire, &sizes) {
        match dec.decode(chunk) {
            Ok((n, h)) => {
                assert!(n <= chunk.len());
                consumed += n;
                if let Some(h) = h {
                    got = Ok(Some((h, consumed)));
                    break;
                }
                assert_eq!(
                    n,
                    chunk.len(),
                    "bytes left over while the header is incomplete"
                );
            }
            Err(e) => {
                got = Err(e);
                break;
            }
        }
    }
    assert_eq!(got, whole, "split decoding disagrees");
    if got == Ok(None) {
        assert_eq!(dec.is_mid_header(), !wire.is_empty());
    }

    // Encoding any well-formed header round-trips.
    let mut b = Input(build);
    let flags = b.u8();
    let opcode = [
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ][usize::from(flags % 6)];
    let mut len = u64::from_be_bytes(core::array::from_fn(|_| b.u8())) >> (flags >> 2 & 63);
    len &= u64::MAX >> 1;
    if opcode.is_control() {
        len %= 126;
    }
    let h = FrameHeader {
        fin: opcode.is_control() || flags & 0x80 != 0,
        rsv: (flags >> 3) & 7,
        opcode,
        mask: (flags & 0x40 != 0).then(|| [b.u8(), 1, 2, 3]),
        payload_len: len,
    };
    let mut out = [0u8; MAX_HEADER_LEN];
    let n = h.encode(&mut out);
    assert_eq!(n, h.encoded_len());
    assert_eq!(FrameHeader::decode(&out[..n]), Ok(Some((h, n))));
});
