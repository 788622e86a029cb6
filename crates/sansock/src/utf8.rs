//! Incremental UTF-8 validation that fails fast (RFC 6455 §8.1).
//!
//! Text arrives in frames and reads of arbitrary size, so a code point can be split
//! anywhere. The validator keeps at most three bytes of an unfinished code point and
//! rejects the input the moment a byte makes it impossible to be valid UTF-8 — not at
//! the end of the message. The bulk of each chunk goes through `core::str::from_utf8`,
//! whose ASCII fast path is hard to beat.

use core::str;

/// Validates a stream of UTF-8 fed in chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// The input can no longer become valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Validator {
    /// A validator at the start of a string.
    pub const fn new() -> Self {
        Utf8Validator {
            pending: [0; 4],
            pending_len: 0,
        }
    }

    /// Validate the next chunk. Fails as soon as the bytes seen so far are not a prefix
    /// of any valid UTF-8 string.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), InvalidUtf8> {
        while self.pending_len > 0 {
            let Some((&b, rest)) = input.split_first() else {
                return Ok(());
            };
            input = rest;
            self.pending[usize::from(self.pending_len)] = b;
            self.pending_len += 1;
            match str::from_utf8(&self.pending[..usize::from(self.pending_len)]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) => {} // still a valid prefix of one code point
            }
        }
        match str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                // The tail is the valid beginning of a code point: at most 3 bytes.
                let tail = &input[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Whether the input so far ends on a code point boundary (a complete string).
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    /// Check the end of the string: an unfinished code point is invalid.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.is_complete();
        *self = Self::new();
        if complete { Ok(()) } else { Err(InvalidUtf8) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_code_points_validate() {
        let s = "κόσμε €𝄞".as_bytes();
        for cut in 0..=s.len() {
            let mut v = Utf8Validator::new();
            v.feed(&s[..cut]).unwrap();
            v.feed(&s[cut..]).unwrap();
            v.finish().unwrap();
        }
    }

    #[test]
    fn fails_at_first_impossible_byte() {
        // 0xF4 0x90 starts a code point above U+10FFFF: invalid after two bytes.
        let mut v = Utf8Validator::new();
        v.feed(&[0xf4]).unwrap();
        assert_eq!(v.feed(&[0x90]), Err(InvalidUtf8));
        // Overlong encoding rejected at its first byte.
        assert_eq!(Utf8Validator::new().feed(&[0xc0]), Err(InvalidUtf8));
        // Surrogate half rejected at its second byte.
        let mut v = Utf8Validator::new();
        v.feed(&[0xed]).unwrap();
        assert_eq!(v.feed(&[0xa0]), Err(InvalidUtf8));
    }

    #[test]
    fn unfinished_code_point_fails_at_end() {
        let mut v = Utf8Validator::new();
        v.feed(&[b'a', 0xe2, 0x82]).unwrap();
        assert!(!v.is_complete());
        assert_eq!(v.finish(), Err(InvalidUtf8));
    }

    fn possible(prefix: &[u8]) -> bool {
        match str::from_utf8(prefix) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
    }

    #[test]
    fn every_two_byte_prefix_fails_exactly_when_impossible() {
        for a in 0..=255u8 {
            let mut v = Utf8Validator::new();
            let first = v.feed(&[a]);
            assert_eq!(first.is_ok(), possible(&[a]), "{a:#x}");
            if first.is_err() {
                continue;
            }
            for b in 0..=255u8 {
                let mut w = v.clone();
                assert_eq!(w.feed(&[b]).is_ok(), possible(&[a, b]), "{a:#x} {b:#x}");
                // Whole, in one piece, agrees too.
                assert_eq!(
                    Utf8Validator::new().feed(&[a, b]).is_ok(),
                    possible(&[a, b])
                );
            }
        }
    }

    #[test]
    fn third_and_fourth_bytes_of_the_edge_leads() {
        for lead in [0xe0u8, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4] {
            for second in 0x80..=0xbfu8 {
                for third in [0x00u8, 0x7f, 0x80, 0xbf, 0xc0, 0xff] {
                    let s = [lead, second, third];
                    let mut v = Utf8Validator::new();
                    let r = v
                        .feed(&s[..1])
                        .and_then(|()| v.feed(&s[1..2]))
                        .and_then(|()| v.feed(&s[2..]));
                    assert_eq!(r.is_ok(), possible(&s), "{s:x?}");
                    if r.is_ok() && lead >= 0xf0 {
                        assert!(!v.is_complete());
                        assert_eq!(
                            v.feed(&[0x80]).is_ok(),
                            possible(&[lead, second, third, 0x80])
                        );
                        assert!(v.is_complete());
                    }
                }
            }
        }
    }

    #[test]
    fn finish_resets_even_after_an_unfinished_code_point() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xf0, 0x9f]).unwrap();
        assert_eq!(v.finish(), Err(InvalidUtf8));
        assert!(v.is_complete());
        v.feed(b"fresh").unwrap();
        assert_eq!(v.finish(), Ok(()));
    }
}
