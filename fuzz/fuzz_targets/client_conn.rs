//! A client connection fed arbitrary bytes (after a few bytes of setup: limits,
//! auto-pong, permessage-deflate, reserved bits, and how to split the stream).
//!
//! Invariants (see `sansock_fuzz::connection_target`): the same events, error and
//! control frames for the stream fed whole, split as the input says, byte by byte, and
//! through `read_message`; no allocation on the borrowed path; bounded heap on the owned
//! path; valid UTF-8 prefixes at every chunk of text; valid close codes in and out.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sansock_fuzz::connection_target(sansock::Role::Client, data);
});
