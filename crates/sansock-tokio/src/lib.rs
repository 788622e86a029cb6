//! # sansock-tokio — WebSockets for tokio on the sansock core
//!
//! A thin adapter: [`sansock`] holds every protocol rule; this crate moves bytes between
//! it and a tokio stream, drives its timers, and adds what a std host needs — TLS,
//! proxies, authentication, the futures `Stream`/`Sink` traits.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod ws;

pub use error::Error;
pub use sansock::{CloseCode, DataKind, Message, OwnedCloseFrame, Role, State, Utf8Bytes};
pub use ws::{Chunk, Config, ReadHalf, WebSocket, WriteHalf};
