//! # sansock — the sans-IO WebSocket protocol core
//!
//! A pure state machine for RFC 6455: bytes in, events out; messages in, bytes out;
//! time and randomness passed in. It never touches a socket, a clock or a random number
//! generator on its own, and it runs in `no_std` with or without `alloc`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod close;
pub mod config;
pub mod conn;
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
#[cfg(feature = "alloc")]
pub mod message;
pub mod rng;
pub mod time;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use config::{Config, Role};
pub use conn::{Connection, DataKind, Event, State};
pub use error::Error;
#[cfg(feature = "alloc")]
pub use message::{Message, OwnedCloseFrame, Utf8Bytes};
pub use rng::{NoRandom, RandomSource};
pub use time::Instant;
