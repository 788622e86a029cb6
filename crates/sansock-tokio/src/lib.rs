//! # sansock-tokio — the tokio adapter of `sansock`
//!
//! Runs the sans-IO `sansock` WebSocket core over tokio sockets. This part of the
//! crate holds the pieces around a connection:
//!
//! - [`url`]: `ws://` / `wss://` URLs (RFC 6455 §3);
//! - [`tls`]: rustls client and server configuration, mutual TLS, handshakes;
//! - [`proxy`]: HTTP `CONNECT` tunnels and proxy settings from the environment;
//! - [`auth`]: HTTP Basic and Digest authentication, client and server side;
//! - [`cookies`]: a checked `Cookie` header;
//! - [`prefixed`]: a stream that replays bytes read ahead of the next layer.
//!
//! All failures are reported as the one [`Error`] type.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod cookies;
pub mod error;
pub mod prefixed;
pub mod proxy;
pub mod tls;
pub mod url;

pub use error::Error;
