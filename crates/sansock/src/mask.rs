//! Payload masking (RFC 6455 §5.3).
//!
//! XOR with a 4-byte key is its own inverse, so one function masks and unmasks. The loop
//! works on 64-byte blocks of 8-byte words so that the compiler emits wide vector XORs
//! in safe Rust; the slice may start at any address and any key offset.

/// XOR `buf` with `key`, as if `buf` started `offset` bytes into the payload.
///
/// Returns the offset for the next chunk of the same payload, so a payload can be
/// (un)masked in pieces of any size:
///
/// ```
/// use sansock::mask::apply_mask;
/// let key = [1, 2, 3, 4];
/// let mut whole = *b"hello, world";
/// let mut split = whole;
/// apply_mask(&mut whole, key, 0);
/// let off = apply_mask(&mut split[..5], key, 0);
/// apply_mask(&mut split[5..], key, off);
/// assert_eq!(whole, split);
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) -> usize {
    let next = (offset + buf.len()) & 3;
    // On long payloads, bytes up to a 32-byte boundary one at a time, so the wide loads
    // and stores of the bulk never straddle cache lines (a payload usually starts 2–14
    // bytes into a read buffer, after its frame header): 40 → 54 GiB/s on 1 MiB at an
    // odd address (`benches/benches/core.rs`, group `unmask`).
    let head = if buf.len() >= 4096 {
        buf.as_ptr().align_offset(32).min(buf.len())
    } else {
        0
    };
    let (head, buf) = buf.split_at_mut(head);
    for (i, b) in head.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
    let k = rotate_key(key, offset + head.len());
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut blocks = buf.chunks_exact_mut(64);
    for block in &mut blocks {
        for w in block.chunks_exact_mut(8) {
            xor_word(w, word);
        }
    }
    let rest = blocks.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for w in &mut words {
        xor_word(w, word);
    }
    for (b, m) in words.into_remainder().iter_mut().zip(k.iter().cycle()) {
        *b ^= m;
    }
    next
}

#[inline(always)]
fn xor_word(w: &mut [u8], word: u64) {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(w);
    w.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
}

/// The key as seen from byte `offset` of the payload.
#[inline]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let s = offset & 3;
    [key[s], key[(s + 1) & 3], key[(s + 2) & 3], key[(s + 3) & 3]]
}

/// A masking key with a running position, for payloads produced or consumed in chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Masker {
    key: [u8; 4],
    offset: usize,
}

impl Masker {
    /// A masker at the start of a payload.
    pub const fn new(key: [u8; 4]) -> Self {
        Masker { key, offset: 0 }
    }

    /// The masking key.
    pub const fn key(&self) -> [u8; 4] {
        self.key
    }

    /// Mask (or unmask) the next chunk of the payload in place.
    #[inline]
    pub fn apply(&mut self, chunk: &mut [u8]) {
        self.offset = apply_mask(chunk, self.key, self.offset);
    }

    /// Copy `src` into `dst` (same length) and mask it, for callers whose payload is
    /// immutable.
    pub fn apply_copy(&mut self, src: &[u8], dst: &mut [u8]) {
        dst.copy_from_slice(src);
        self.apply(dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn rfc_5_7_masked_hello() {
        // "Hello" masked with 37 fa 21 3d, from RFC 6455 §5.7.
        let mut p = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut p, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&p, b"Hello");
    }

    #[test]
    fn matches_naive_for_all_lengths_offsets_and_alignments() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let src: [u8; 300] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        for start in 0..9 {
            for len in [0, 1, 3, 7, 8, 9, 63, 64, 65, 129, 200] {
                for off in 0..4 {
                    let mut a = src;
                    let mut b = src;
                    let next = apply_mask(&mut a[start..start + len], key, off);
                    naive(&mut b[start..start + len], key, off);
                    assert_eq!(a, b, "start {start} len {len} off {off}");
                    assert_eq!(next, (off + len) % 4);
                }
            }
        }
    }

    /// Long payloads take the aligned path: every start address and key offset, and
    /// lengths around the threshold, still match the byte-by-byte definition.
    #[test]
    fn long_payloads_match_naive_at_every_alignment() {
        let key = [0x01, 0x80, 0x7f, 0xfe];
        let src: [u8; 4200] = core::array::from_fn(|i| (i * 31 + 7) as u8);
        for start in 0..40 {
            for len in [4095, 4096, 4097, 4130, 4200 - 40] {
                for off in 0..4 {
                    let mut a = src;
                    let mut b = src;
                    let next = apply_mask(&mut a[start..start + len], key, off);
                    naive(&mut b[start..start + len], key, off);
                    assert!(a == b, "start {start} len {len} off {off}");
                    assert_eq!(next, (off + len) % 4);
                }
            }
        }
    }

    #[test]
    fn rotate_key_is_the_key_seen_from_the_offset() {
        let key = [10, 20, 30, 40];
        for off in 0..12 {
            let k = rotate_key(key, off);
            for (i, b) in k.iter().enumerate() {
                assert_eq!(*b, key[(off + i) % 4]);
            }
        }
    }

    #[test]
    fn masker_keeps_its_place_and_copies() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let src: [u8; 37] = core::array::from_fn(|i| i as u8);
        let mut whole = src;
        naive(&mut whole, key, 0);
        let mut m = Masker::new(key);
        let mut out = [0u8; 37];
        m.apply_copy(&src[..5], &mut out[..5]);
        m.apply_copy(&src[5..6], &mut out[5..6]);
        let mut rest = [0u8; 31];
        rest.copy_from_slice(&src[6..]);
        m.apply(&mut rest);
        out[6..].copy_from_slice(&rest);
        assert_eq!(out, whole);
        assert_eq!(m.key(), key);
    }
}
