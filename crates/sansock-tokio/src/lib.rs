//! # sansock-tokio — the tokio adapter of `sansock`
//!
//! Runs the sans-IO `sansock` WebSocket core over tokio sockets. This part of the
//! crate holds the pieces around a connection:
//!
//!
//! All failures are reported as the one [`Error`] type.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;

pub use error::Error;
