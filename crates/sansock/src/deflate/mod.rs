//! permessage-deflate (RFC 7692): negotiation and the per-message codec.
//!
//! Negotiation works on the [`ExtensionOffers`] the handshake parsed: a server picks the
//! first acceptable offer under its [`DeflateConfig`] policy ([`negotiate`]); a client
//! writes its offer ([`DeflateConfig::offer`]) and checks the server's answer against it
//! ([`check_response`]). The result, [`DeflateParams`], is installed on a connection with
//! [`Connection::enable_deflate`](crate::Connection::enable_deflate).
//!
//! Each message is a raw DEFLATE stream ended by a sync flush whose `00 00 ff ff` tail is
//! removed on the wire (§7.2.1) and put back before inflating (§7.2.2).
//!
//! # Backends
//! Two codecs, chosen at build time, behind the same API:
//!
//! - feature `deflate`: `miniz_oxide` — pure safe Rust, `no_std` + `alloc`, for firmware
//!   and any target without `std`;
//! - feature `deflate-zlib` (implies `std`): zlib-rs through `flate2`, 2–7× faster on
//!   WebSocket-sized messages (`cargo bench -p sansock-benches --bench deflate`), with
//!   memory that scales with the window size. The tokio adapter uses it.
//!
//! # Window sizes
//! A peer may ask us to compress with a smaller window (`*_max_window_bits` = 8..14).
//! zlib does windows 9–15 itself; `miniz_oxide` always uses 32 KiB, and zlib cannot do
//! 8, so in those cases the compressor forgets its history every 2^bits bytes (after a
//! sync flush, so the stream stays one valid DEFLATE stream) and no back-reference ever
//! reaches further than the negotiated window. Inflaters accept every window the peer
//! was allowed.
//!
//! # Memory
//! Both halves are allocated on first use, so a connection that never sends (or never
//! receives) a compressed message holds none of that direction's state; once allocated
//! they live as long as the connection, unless `free_between_messages` (see the README
//! for measured sizes per backend and window). The
//! `threshold` keeps small messages uncompressed, and a peer that never compresses never
//! makes us allocate an inflater.

use alloc::boxed::Box;
use alloc::string::String;
use bytes::BytesMut;

use crate::config::Role;
use crate::error::Error;
use crate::handshake::{ExtensionOffer, ExtensionOffers};

/// The extension's registered name.
pub const NAME: &str = "permessage-deflate";
/// The empty stored block a sync flush ends with; removed on the wire.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What this endpoint offers (client) or accepts (server), and how it compresses.
///
/// As a client the fields are the offer: `*_no_context_takeover` are requested,
/// `server_max_window_bits` asks the server to use at most that window,
/// `client_max_window_bits` limits our own window (we always say we support the
/// parameter). As a server they are the policy: `server_no_context_takeover` and
/// `server_max_window_bits` limit our compressor, `client_no_context_takeover` and
/// `client_max_window_bits` are asked of the client when its offer allows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Reset the server's compression context after every message.
    pub server_no_context_takeover: bool,
    /// Reset the client's compression context after every message.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window (8–15) of the server's compressor.
    pub server_max_window_bits: Option<u8>,
    /// The largest LZ77 window (8–15) of the client's compressor.
    pub client_max_window_bits: Option<u8>,
    /// Compression level, 0 (store) to 9 (best); 1–3 are fast, 6 is zlib's default.
    pub level: u8,
    /// Messages shorter than this are sent uncompressed (RSV1 clear), which RFC 7692
    /// allows per message: compressing a few bytes costs more than it saves.
    pub threshold: usize,
    /// For a direction without context takeover, free the compressor or inflater after
    /// each message instead of resetting it: idle connections then hold no compression
    /// memory at all, at the price of an allocation per compressed message.
    pub free_between_messages: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            level: 3,
            threshold: 64,
            free_between_messages: false,
        }
    }
}

impl DeflateConfig {
    /// The client's `Sec-WebSocket-Extensions` offer for this configuration.
    pub fn offer(&self) -> String {
        let mut s = String::from(NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            push_bits(&mut s, "server_max_window_bits", bits);
        }
        match self.client_max_window_bits {
            Some(bits) => push_bits(&mut s, "client_max_window_bits", bits),
            None => s.push_str("; client_max_window_bits"),
        }
        s
    }
}

fn push_bits(s: &mut String, name: &str, bits: u8) {
    s.push_str("; ");
    s.push_str(name);
    s.push('=');
    let bits = bits.clamp(8, 15);
    if bits >= 10 {
        s.push('1');
    }
    s.push(char::from(b'0' + bits % 10));
}

/// What both ends agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its context after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its context after every message.
    pub client_no_context_takeover: bool,
    /// The server's compressor window, 8–15.
    pub server_max_window_bits: u8,
    /// The client's compressor window, 8–15.
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value a server answers with.
    pub fn response(&self, include_client_bits: bool) -> String {
        let mut s = String::from(NAME);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            push_bits(
                &mut s,
                "server_max_window_bits",
                self.server_max_window_bits,
            );
        }
        if include_client_bits && self.client_max_window_bits < 15 {
            push_bits(
                &mut s,
                "client_max_window_bits",
                self.client_max_window_bits,
            );
        }
        s
    }
}

/// The parameters of one offer or answer, checked for RFC 7692 §7 syntax.
#[derive(Debug, Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

const BAD: Error = Error::InvalidHeader("Sec-WebSocket-Extensions");

fn parse_params(offer: &ExtensionOffer<'_>) -> Result<Parsed, Error> {
    if offer.has_duplicate_params() {
        return Err(BAD);
    }
    let mut p = Parsed::default();
    for (name, value) in offer.params() {
        let bits = || -> Result<u8, Error> {
            let v = value.as_ref().ok_or(BAD)?;
            let text = v.as_str().ok_or(BAD)?;
            // §7.1.2: a decimal 8..15 with no leading zeros.
            if text.is_empty() || text.len() > 2 || text.starts_with('0') {
                return Err(BAD);
            }
            match v.parse_u32() {
                Some(n @ 8..=15) => Ok(n as u8),
                _ => Err(BAD),
            }
        };
        if name.eq_ignore_ascii_case("server_no_context_takeover") {
            if value.is_some() {
                return Err(BAD);
            }
            p.server_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case("client_no_context_takeover") {
            if value.is_some() {
                return Err(BAD);
            }
            p.client_no_context_takeover = true;
        } else if name.eq_ignore_ascii_case("server_max_window_bits") {
            p.server_max_window_bits = Some(bits()?);
        } else if name.eq_ignore_ascii_case("client_max_window_bits") {
            p.client_max_window_bits = Some(if value.is_some() { Some(bits()?) } else { None });
        } else {
            return Err(BAD);
        }
    }
    Ok(p)
}

/// Server side: pick the first permessage-deflate offer that is well-formed and
/// acceptable under `policy`. Malformed offers are declined (skipped), as §5 says; a
/// malformed extension list as a whole fails the handshake.
///
/// Returns the agreed parameters and the `Sec-WebSocket-Extensions` answer, or `None`
/// when nothing was offered or acceptable (the connection goes on uncompressed).
pub fn negotiate(
    offers: ExtensionOffers<'_>,
    policy: &DeflateConfig,
) -> Result<Option<(DeflateParams, String)>, Error> {
    for offer in offers {
        let offer = offer?;
        if !offer.name.eq_ignore_ascii_case(NAME) {
            continue;
        }
        let Ok(p) = parse_params(&offer) else {
            continue;
        };
        let server_bits = match (p.server_max_window_bits, policy.server_max_window_bits) {
            (Some(asked), Some(ours)) => asked.min(ours),
            (Some(asked), None) => asked,
            (None, Some(ours)) => ours.clamp(8, 15),
            (None, None) => 15,
        };
        let (client_bits, include_client_bits) =
            match (p.client_max_window_bits, policy.client_max_window_bits) {
                // The client may only be limited if it said it supports the parameter.
                (Some(offered), Some(ours)) => (offered.unwrap_or(15).min(ours.clamp(8, 15)), true),
                (Some(Some(offered)), None) => (offered, true),
                _ => (15, false),
            };
        let params = DeflateParams {
            server_no_context_takeover: p.server_no_context_takeover
                || policy.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover
                || policy.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        };
        // An offer that names server_max_window_bits needs it echoed (§7.1.2.1).
        let mut response = params.response(include_client_bits);
        if p.server_max_window_bits.is_some() && server_bits == 15 {
            push_bits(&mut response, "server_max_window_bits", 15);
        }
        return Ok(Some((params, response)));
    }
    Ok(None)
}

/// Client side: check the server's accepted extensions against our `offer` (§7.1).
///
/// `Ok(None)`: the server declined compression. Any parameter we did not allow, a
/// malformed value, a window larger than we asked for, or a missing
/// `server_no_context_takeover` we required fails the handshake.
pub fn check_response(
    accepted: ExtensionOffers<'_>,
    offer: &DeflateConfig,
) -> Result<Option<DeflateParams>, Error> {
    let mut found = None;
    for ext in accepted {
        let ext = ext?;
        if !ext.name.eq_ignore_ascii_case(NAME) {
            continue;
        }
        if found.is_some() {
            return Err(BAD);
        }
        let p = parse_params(&ext)?;
        if offer.server_no_context_takeover && !p.server_no_context_takeover {
            return Err(BAD);
        }
        let server_bits = p.server_max_window_bits.unwrap_or(15);
        if offer
            .server_max_window_bits
            .is_some_and(|asked| server_bits > asked)
        {
            return Err(BAD);
        }
        let client_bits = match p.client_max_window_bits {
            None => offer.client_max_window_bits.unwrap_or(15),
            Some(None) => return Err(BAD), // a response must carry a value
            Some(Some(bits)) => bits.min(offer.client_max_window_bits.unwrap_or(15)),
        };
        found = Some(DeflateParams {
            server_no_context_takeover: p.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover
                || offer.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        });
    }
    Ok(found)
}

#[cfg(not(feature = "deflate-zlib"))]
mod miniz;
#[cfg(not(feature = "deflate-zlib"))]
use miniz as backend;
#[cfg(feature = "deflate-zlib")]
mod zlib;
#[cfg(feature = "deflate-zlib")]
use zlib as backend;

/// The name of the codec this build uses (`"miniz_oxide"` or `"zlib-rs"`).
pub const BACKEND: &str = backend::NAME;

/// The compressor and inflater of one connection.
pub(crate) struct Codec {
    level: u8,
    threshold: usize,
    /// Our compressor's window and whether it resets after each message.
    tx_bits: u8,
    tx_reset: bool,
    /// The peer's compressor window: our inflater needs no more.
    rx_bits: u8,
    /// Whether the peer resets after each message (so our inflater may too).
    rx_reset: bool,
    free: bool,
    tx: Option<Box<backend::Tx>>,
    rx: Option<Box<backend::Rx>>,
}

impl core::fmt::Debug for Codec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Codec")
            .field("backend", &BACKEND)
            .field("level", &self.level)
            .field("tx_bits", &self.tx_bits)
            .field("tx_reset", &self.tx_reset)
            .field("rx_bits", &self.rx_bits)
            .field("rx_reset", &self.rx_reset)
            .finish_non_exhaustive()
    }
}

impl Codec {
    pub(crate) fn new(role: Role, params: DeflateParams, config: &DeflateConfig) -> Self {
        let (tx_bits, tx_reset, rx_bits, rx_reset) = match role {
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_max_window_bits,
                params.client_no_context_takeover,
            ),
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_max_window_bits,
                params.server_no_context_takeover,
            ),
        };
        Codec {
            level: config.level.min(9),
            threshold: config.threshold,
            tx_bits: tx_bits.clamp(8, 15),
            tx_reset,
            rx_bits: rx_bits.clamp(8, 15),
            rx_reset,
            free: config.free_between_messages,
            tx: None,
            rx: None,
        }
    }

    pub(crate) fn should_compress(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Compress one whole message into `out` (without the sync-flush tail).
    pub(crate) fn compress(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<(), Error> {
        if input.is_empty() {
            // An empty stored block without its tail (RFC 7692 §7.2.3.6). zlib emits
            // nothing for a second sync flush in a row, so it is written here; the
            // compressor is byte-aligned after the last message and its history is
            // unchanged by an empty block.
            out.extend_from_slice(&[0x00]);
            return Ok(());
        }
        let (level, bits) = (self.level, self.tx_bits);
        let tx = self
            .tx
            .get_or_insert_with(|| Box::new(backend::Tx::new(level, bits)));
        // Windows the backend cannot enforce itself are enforced by segmenting.
        let segment = if bits >= backend::MIN_NATIVE_WINDOW_BITS {
            usize::MAX
        } else {
            1usize << bits
        };
        let start = out.len();
        loop {
            let take = input.len().min(segment);
            let (now, rest) = input.split_at(take);
            tx.compress_sync(now, out)?;
            input = rest;
            if input.is_empty() {
                break;
            }
            // Forget the history so back-references stay inside the negotiated window;
            // the sync flush left the output byte-aligned, so the stream continues.
            tx.reset();
        }
        if out.len() >= start + 4 && out[out.len() - 4..] == TAIL {
            out.truncate(out.len() - 4);
        } else {
            return Err(Error::CompressionFailed);
        }
        if self.tx_reset && self.free {
            self.tx = None;
        } else if self.tx_reset || segment != usize::MAX {
            tx.reset();
        }
        Ok(())
    }

    /// Inflate one chunk of a compressed message into `out`, which may grow to `limit`
    /// bytes at most; `message_end` appends the removed tail and finishes the message.
    pub(crate) fn decompress(
        &mut self,
        chunk: &[u8],
        message_end: bool,
        out: &mut BytesMut,
        limit: usize,
    ) -> Result<(), Error> {
        let bits = self.rx_bits;
        let rx = self
            .rx
            .get_or_insert_with(|| Box::new(backend::Rx::new(bits)));
        rx.inflate(chunk, out, limit)?;
        if message_end {
            rx.inflate(&TAIL, out, limit)?;
            // After a final block the tail may have begun a stream that never ends: the
            // next message starts from a clean inflater either way.
            let stream_ended = rx.take_stream_ended();
            if self.rx_reset && self.free {
                self.rx = None;
            } else if self.rx_reset || stream_ended {
                rx.reset();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::ExtensionOffers;

    fn negotiate_str(offer: &str, policy: &DeflateConfig) -> Option<(DeflateParams, String)> {
        negotiate(ExtensionOffers::from_value(offer), policy).unwrap()
    }

    #[test]
    fn server_accepts_the_first_acceptable_offer() {
        let p = DeflateConfig::default();
        let (params, resp) =
            negotiate_str("permessage-deflate; client_max_window_bits", &p).unwrap();
        assert_eq!(resp, "permessage-deflate");
        assert_eq!(params.client_max_window_bits, 15);
        // A malformed first offer is declined, the second accepted.
        let (params, resp) = negotiate_str(
            "permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=10",
            &p,
        )
        .unwrap();
        assert_eq!(
            (params.server_max_window_bits, resp.as_str()),
            (10, "permessage-deflate; server_max_window_bits=10")
        );
        // Duplicates and unknown parameters are declined.
        assert!(
            negotiate_str(
                "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
                &p
            )
            .is_none()
        );
        assert!(negotiate_str("permessage-deflate; foo", &p).is_none());
        assert!(negotiate_str("permessage-deflate; server_no_context_takeover=1", &p).is_none());
        assert!(negotiate_str("permessage-deflate; server_max_window_bits", &p).is_none());
        assert!(negotiate_str("permessage-deflate; server_max_window_bits=010", &p).is_none());
        assert!(negotiate_str("x-webkit-deflate-frame", &p).is_none());
    }

    #[test]
    fn server_echoes_required_parameters_and_applies_policy() {
        let (params, resp) = negotiate_str(
            "permessage-deflate; server_no_context_takeover",
            &DeflateConfig::default(),
        )
        .unwrap();
        assert!(params.server_no_context_takeover);
        assert_eq!(resp, "permessage-deflate; server_no_context_takeover");
        let policy = DeflateConfig {
            client_max_window_bits: Some(9),
            client_no_context_takeover: true,
            ..Default::default()
        };
        let (params, resp) =
            negotiate_str("permessage-deflate; client_max_window_bits=12", &policy).unwrap();
        assert_eq!(params.client_max_window_bits, 9);
        assert_eq!(
            resp,
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=9"
        );
        // Without client_max_window_bits in the offer the server may not limit the client.
        let (params, resp) = negotiate_str("permessage-deflate", &policy).unwrap();
        assert_eq!(
            (params.client_max_window_bits, resp.as_str()),
            (15, "permessage-deflate; client_no_context_takeover")
        );
    }

    #[test]
    fn client_checks_the_answer_against_its_offer() {
        let mut offer = DeflateConfig::default();
        let check = |s: &str, o: &DeflateConfig| check_response(ExtensionOffers::from_value(s), o);
        assert_eq!(offer.offer(), "permessage-deflate; client_max_window_bits");
        assert!(check("permessage-deflate", &offer).unwrap().is_some());
        assert_eq!(
            check("permessage-deflate; client_max_window_bits=10", &offer)
                .unwrap()
                .unwrap()
                .client_max_window_bits,
            10
        );
        assert!(check("permessage-deflate; client_max_window_bits", &offer).is_err());
        assert!(check("permessage-deflate; server_max_window_bits=16", &offer).is_err());
        assert!(check("permessage-deflate; mystery", &offer).is_err());
        assert!(check("permessage-deflate, permessage-deflate", &offer).is_err());
        offer.server_no_context_takeover = true;
        offer.server_max_window_bits = Some(10);
        assert_eq!(
            offer.offer(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits"
        );
        assert!(
            check("permessage-deflate; server_max_window_bits=10", &offer).is_err(),
            "required takeover missing"
        );
        assert!(
            check(
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
                &offer
            )
            .is_err()
        );
        assert!(
            check(
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
                &offer
            )
            .unwrap()
            .is_some()
        );
        assert_eq!(check("other", &offer).unwrap(), None);
    }

    fn roundtrip(tx_bits: u8, reset: bool, messages: &[&[u8]]) {
        let params = DeflateParams {
            server_no_context_takeover: reset,
            client_no_context_takeover: reset,
            server_max_window_bits: tx_bits,
            client_max_window_bits: tx_bits,
        };
        let cfg = DeflateConfig {
            level: 6,
            ..Default::default()
        };
        let mut a = Codec::new(Role::Server, params, &cfg);
        let mut b = Codec::new(Role::Client, params, &cfg);
        for m in messages {
            let mut wire = BytesMut::new();
            a.compress(m, &mut wire).unwrap();
            assert_ne!(&wire[wire.len().saturating_sub(4)..], &TAIL[..]);
            let mut out = BytesMut::new();
            // Split the compressed message in two to exercise chunked inflation.
            let mid = wire.len() / 2;
            b.decompress(&wire[..mid], false, &mut out, usize::MAX)
                .unwrap();
            b.decompress(&wire[mid..], true, &mut out, usize::MAX)
                .unwrap();
            assert_eq!(&out[..], *m);
        }
    }

    #[test]
    fn round_trip_every_window_with_and_without_takeover() {
        let text: alloc::vec::Vec<u8> = (0..5000u32)
            .flat_map(|i| alloc::format!("message {} ", i % 97).into_bytes())
            .collect();
        for bits in 8..=15 {
            for reset in [false, true] {
                roundtrip(bits, reset, &[&text, b"", b"short", &text, &[0u8; 70000]]);
            }
        }
    }

    #[test]
    fn rfc_7692_7_2_3_1_hello() {
        // "Hello" compressed as in RFC 7692 §7.2.3.1.
        let mut c = Codec::new(
            Role::Client,
            DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            },
            &DeflateConfig::default(),
        );
        let mut out = BytesMut::new();
        c.decompress(
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            true,
            &mut out,
            100,
        )
        .unwrap();
        assert_eq!(&out[..], b"Hello");
        // §7.2.3.2: the same message again with context takeover (a back-reference).
        let mut out = BytesMut::new();
        c.decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00], true, &mut out, 100)
            .unwrap();
        assert_eq!(&out[..], b"Hello");
    }

    #[test]
    fn bomb_stops_at_the_limit() {
        let params = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut a = Codec::new(Role::Server, params, &DeflateConfig::default());
        let zeros = alloc::vec![0u8; 10 << 20];
        let mut wire = BytesMut::new();
        a.compress(&zeros, &mut wire).unwrap();
        assert!(
            wire.len() < 20 << 10,
            "10 MiB of zeros compress to {} bytes",
            wire.len()
        );
        let mut b = Codec::new(Role::Client, params, &DeflateConfig::default());
        let mut out = BytesMut::new();
        assert_eq!(
            b.decompress(&wire, true, &mut out, 1 << 20),
            Err(Error::MessageTooLarge)
        );
        assert!(out.len() <= 1 << 20);
    }

    #[test]
    fn garbage_is_invalid_compressed_data() {
        let params = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut b = Codec::new(Role::Client, params, &DeflateConfig::default());
        let mut out = BytesMut::new();
        assert_eq!(
            b.decompress(&[0xff, 0xff, 0xff, 0xff], true, &mut out, 1000),
            Err(Error::InvalidCompressedData)
        );
    }
}

#[cfg(test)]
mod incompressible {
    use super::*;

    #[test]
    fn random_data_round_trips() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let data: alloc::vec::Vec<u8> = (0..65536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut a = Codec::new(Role::Server, params, &DeflateConfig::default());
        let mut b = Codec::new(Role::Client, params, &DeflateConfig::default());
        for i in 0..200 {
            let data = &data[i % 7..];
            let mut wire = BytesMut::new();
            a.compress(data, &mut wire)
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            let mut out = BytesMut::new();
            b.decompress(&wire, true, &mut out, usize::MAX).unwrap();
            assert_eq!(&out[..], data);
        }
    }
}
