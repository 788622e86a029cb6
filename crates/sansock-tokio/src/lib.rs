//! # sansock-tokio — WebSockets for tokio on the sansock core
//!
//! A thin adapter: [`sansock`] holds every protocol rule; this crate moves bytes between
//! it and a tokio stream, drives its timers, and adds what a std host needs:
//!
//! - [`ws`]: the connection — `recv`/`send`, `Stream`/`Sink`, split halves, streaming;
//! - [`client`]: `connect("ws://…" | "wss://…")` and a builder for the rest;
//! - [`handshake`]: the opening handshake over any stream, both roles;
//! - [`url`]: `ws://` / `wss://` URLs (RFC 6455 §3);
//! - [`tls`]: rustls client and server configuration, mutual TLS, handshakes;
//! - [`proxy`]: HTTP `CONNECT` tunnels and proxy settings from the environment;
//! - [`server`]: a ready-made server — services by path, sessions, broadcast, admission,
//!   graceful shutdown;
//! - [`auth`]: HTTP Basic and Digest authentication, client and server side;
//! - [`cookies`]: a checked `Cookie` header;
//! - [`prefixed`]: a stream that replays bytes read ahead of the next layer;
//! - `upgrade` (feature `hyper`): WebSocket upgrades inside a hyper 1.x server.
//!
//! All failures are reported as the one [`Error`] type.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod cookies;
pub mod error;
pub mod handshake;
pub mod prefixed;
pub mod proxy;
pub mod server;
pub mod tls;
#[cfg(feature = "hyper")]
pub mod upgrade;
pub mod url;
pub mod ws;

pub use client::{ClientBuilder, ClientStream, connect};
pub use error::Error;
pub use handshake::{
    Accept, Answer, PendingUpgrade, accept, accept_with, accept_with_config, client_handshake,
    read_request,
};
pub use sansock::{CloseCode, DataKind, Message, OwnedCloseFrame, Role, State, Utf8Bytes};
pub use server::{Handler, Server, Session};
pub use ws::{Chunk, Config, EncodedMessage, ReadHalf, WebSocket, WriteHalf};
