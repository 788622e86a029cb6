//! Randomness the caller provides.
//!
//! The client's `Sec-WebSocket-Key` and every client masking key must be unpredictable
//! (RFC 6455 §4.1, §5.3). The core draws no random numbers itself: the caller passes a
//! source — the OS generator on a host, the hardware RNG on a microcontroller.

/// A source of unpredictable bytes.
///
/// Implemented for every `FnMut(&mut [u8])`, so a closure over any generator works:
///
/// ```
/// use sansock::RandomSource;
/// let mut counter = 0u8;
/// let mut rng = |buf: &mut [u8]| buf.iter_mut().for_each(|b| { counter = counter.wrapping_add(1); *b = counter });
/// let mut key = [0u8; 4];
/// rng.fill_bytes(&mut key);
/// assert_eq!(key, [1, 2, 3, 4]);
/// ```
pub trait RandomSource {
    /// Fill `dest` with random bytes.
    fn fill_bytes(&mut self, dest: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> RandomSource for F {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self(dest)
    }
}

/// The randomness of a server connection: servers never mask, so it is never drawn from.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRandom;

impl RandomSource for NoRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // Only reachable if a client connection was built with `NoRandom`, which the
        // constructors do not allow; zeros keep that impossible case panic-free.
        dest.fill(0);
    }
}
