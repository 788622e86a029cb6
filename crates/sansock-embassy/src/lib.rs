//! # sansock-embassy — the embassy adapter for the sansock WebSocket core
//!
//! Not written yet: this crate so far only fixes the dependencies the adapter will stand on
//! (`embassy-net` TCP sockets, `embedded-io-async` 0.7, `embassy-time` 0.5, `rand_core` 0.9)
//! and carries the host test harness in `tests/common` (two in-memory embassy-net stacks,
//! and an embassy-net stack on a TAP device inside a throw-away network namespace).
#![no_std]
