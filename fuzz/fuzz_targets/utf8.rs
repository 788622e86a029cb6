//! `Utf8Validator` against `core::str::from_utf8`, on arbitrary bytes split anywhere.
//!
//! Invariants: the validator accepts the whole input (and `finish` succeeds) exactly
//! when `from_utf8` does; it fails on exactly the chunk holding the first byte that makes
//! the input impossible to complete (fail fast, never early); `is_complete` after every
//! chunk says whether the bytes so far are a whole string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansock::utf8::Utf8Validator;
use sansock_fuzz::{Input, chunks, utf8_possible};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let sizes = input.splits();
    let text = input.rest();
    // The first prefix length at which the bytes can no longer become UTF-8.
    let impossible_at = match core::str::from_utf8(text) {
        Ok(_) => None,
        Err(e) => {
            let from = e.valid_up_to() + 1;
            (from..=text.len()).find(|&n| !utf8_possible(&text[..n]))
        }
    };
    let mut v = Utf8Validator::new();
    let mut seen = 0;
    let mut failed_at = None;
    for chunk in chunks(text, &sizes) {
        let r = v.feed(chunk);
        seen += chunk.len();
        if r.is_err() {
            failed_at = Some(seen);
            break;
        }
        assert!(
            utf8_possible(&text[..seen]),
            "accepted an impossible prefix"
        );
        assert_eq!(v.is_complete(), core::str::from_utf8(&text[..seen]).is_ok());
    }
    match impossible_at {
        Some(n) => {
            let end = failed_at.expect("invalid input accepted");
            // The failing chunk is exactly the one that holds byte n-1.
            assert_eq!(end, chunk_end_for(text, &sizes, n), "went bad at byte {n}");
        }
        None => {
            assert_eq!(failed_at, None, "valid prefix rejected");
            let whole_ok = core::str::from_utf8(text).is_ok();
            assert_eq!(v.finish().is_ok(), whole_ok);
            assert!(v.is_complete(), "finish resets");
        }
    }
});

/// The end of the chunk that holds byte `n - 1`.
fn chunk_end_for(text: &[u8], sizes: &[usize], n: usize) -> usize {
    let mut at = 0;
    for c in chunks(text, sizes) {
        at += c.len();
        if at >= n {
            return at;
        }
    }
    at
}
