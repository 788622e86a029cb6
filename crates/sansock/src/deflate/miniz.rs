//! The `miniz_oxide` backend: pure safe Rust, `no_std` + `alloc`.

use bytes::{BufMut, BytesMut};
use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::TAIL;
use crate::error::Error;

pub(super) const NAME: &str = "miniz_oxide";
/// miniz always compresses with a 32 KiB window: smaller ones are enforced by the codec.
pub(super) const MIN_NATIVE_WINDOW_BITS: u8 = 15;

pub(super) struct Tx(CompressorOxide);

impl Tx {
    pub(super) fn new(level: u8, _bits: u8) -> Self {
        Tx(CompressorOxide::new(create_comp_flags_from_zip_params(
            i32::from(level),
            -15,
            0,
        )))
    }

    pub(super) fn compress_sync(&mut self, input: &[u8], out: &mut BytesMut) -> Result<(), Error> {
        deflate_all(&mut self.0, input, out, first_room(input.len()), 64 << 10)
    }

    pub(super) fn reset(&mut self) {
        self.0.reset();
    }
}

/// miniz inflates with a 32 KiB window whatever the peer's: fine for every peer.
pub(super) struct Rx {
    state: alloc::boxed::Box<InflateState>,
    /// A final block ended the DEFLATE stream during this message (RFC 7692 §7.2.3.4).
    stream_ended: bool,
}

impl Rx {
    pub(super) fn new(_bits: u8) -> Self {
        Rx {
            state: InflateState::new_boxed(DataFormat::Raw),
            stream_ended: false,
        }
    }

    pub(super) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
        limit: usize,
    ) -> Result<(), Error> {
        inflate_all(&mut self.state, input, out, limit, &mut self.stream_ended)
    }

    pub(super) fn take_stream_ended(&mut self) -> bool {
        core::mem::take(&mut self.stream_ended)
    }

    pub(super) fn reset(&mut self) {
        self.state.reset(DataFormat::Raw);
        self.stream_ended = false;
    }
}

/// Room for incompressible data (stored blocks add 5 bytes per 64 KiB) and the flush,
/// so one call usually finishes.
fn first_room(len: usize) -> usize {
    len + len / 64 + 64
}

/// Compress `input` with a sync flush. The flush is complete only once the output ends
/// with its empty stored block: miniz can stop short when the output space runs out
/// mid-flush, so the loop goes on until the tail is there.
fn deflate_all(
    tx: &mut CompressorOxide,
    mut input: &[u8],
    out: &mut BytesMut,
    mut room: usize,
    next_room: usize,
) -> Result<(), Error> {
    let start = out.len();
    let mut idle = 0;
    loop {
        let at = out.len();
        out.put_bytes(0, room);
        let r = miniz_oxide::deflate::stream::deflate(tx, input, &mut out[at..], MZFlush::Sync);
        out.truncate(at + r.bytes_written);
        input = &input[r.bytes_consumed..];
        if r.status.is_err_and(|e| e != MZError::Buf) {
            return Err(Error::CompressionFailed);
        }
        if input.is_empty()
            && out.len() >= start + 4
            && out[out.len() - 4..] == TAIL
            && r.bytes_written < room
        {
            return Ok(());
        }
        idle = if r.bytes_written == 0 && r.bytes_consumed == 0 {
            idle + 1
        } else {
            0
        };
        if idle > 2 {
            return Err(Error::CompressionFailed);
        }
        room = next_room;
    }
}

fn inflate_all(
    rx: &mut InflateState,
    mut input: &[u8],
    out: &mut BytesMut,
    limit: usize,
    stream_ended: &mut bool,
) -> Result<(), Error> {
    loop {
        let at = out.len();
        // At the limit, only a byte that would go past it is an error: probe with one,
        // and check the rest of the input like any other (trailing data, corruption).
        let mut probe = [0u8; 1];
        let (r, room) = if at >= limit {
            let r = miniz_oxide::inflate::stream::inflate(rx, input, &mut probe, MZFlush::Sync);
            if r.bytes_written > 0 {
                return Err(Error::MessageTooLarge);
            }
            (r, 1)
        } else {
            let room = (input.len() * 4).clamp(1024, 256 << 10).min(limit - at);
            out.put_bytes(0, room);
            let r = miniz_oxide::inflate::stream::inflate(rx, input, &mut out[at..], MZFlush::Sync);
            out.truncate(at + r.bytes_written);
            (r, room)
        };
        input = &input[r.bytes_consumed..];
        match r.status {
            Ok(MZStatus::StreamEnd) => {
                // A sender may flush with a final block (RFC 7692 §7.2.3.4): whatever
                // follows starts a new DEFLATE stream, and so does the next message.
                *stream_ended = true;
                rx.reset(DataFormat::Raw);
                if input.is_empty() {
                    return Ok(());
                }
            }
            Ok(_) | Err(MZError::Buf) => {
                if input.is_empty() && r.bytes_written < room {
                    return Ok(());
                }
                if r.bytes_written == 0 && r.bytes_consumed == 0 {
                    return Err(Error::InvalidCompressedData);
                }
            }
            Err(_) => return Err(Error::InvalidCompressedData),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;
    use crate::deflate::{Codec, DeflateConfig, DeflateParams};

    /// Regression (Autobahn 12.2.9): when the output space ran out in the middle of the
    /// sync flush, the message went out without its end. Any output chunking must give
    /// a complete, inflatable message.
    #[test]
    fn tiny_output_chunks_still_finish_the_flush() {
        let text: alloc::vec::Vec<u8> = (0..3000u32)
            .flat_map(|i| alloc::format!("{} ", i * 7 % 113).into_bytes())
            .collect();
        // Incompressible bytes go out as stored blocks, which miniz hands out in pieces.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: alloc::vec::Vec<u8> = (0..70_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for (first, room) in [
            (64usize, 64usize),
            (100, 100),
            (35_000, 256),
            (32_768, 256),
            (1000, 4096),
        ] {
            let mut tx = CompressorOxide::new(create_comp_flags_from_zip_params(3, -15, 0));
            let mut rx = InflateState::new_boxed(DataFormat::Raw);
            for msg in [
                &text[..],
                &noise[..],
                &text[..777],
                b"",
                &noise[9..40_000],
                &text[5..],
            ] {
                let mut wire = BytesMut::new();
                deflate_all(&mut tx, msg, &mut wire, first, room).unwrap();
                assert_eq!(&wire[wire.len() - 4..], &TAIL, "room {room}");
                let mut out = BytesMut::new();
                inflate_all(&mut rx, &wire, &mut out, usize::MAX, &mut false).unwrap();
                assert_eq!(&out[..], msg, "room {room}");
            }
        }
    }

    /// Regression (Autobahn 12.2.9, a bitmap): a message whose compressed size lands
    /// near the output chunk size left the sync flush unfinished. Sweep the
    /// compression ratio from 0 to 1 and check every message ends complete.
    #[test]
    fn every_ratio_round_trips() {
        let params = DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut a = Codec::new(Role::Server, params, &DeflateConfig::default());
        let mut b = Codec::new(Role::Client, params, &DeflateConfig::default());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..160usize {
            let random_share = step % 40; // out of 40
            let data: alloc::vec::Vec<u8> = (0..65536usize)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if (i / 64) % 40 < random_share {
                        x as u8
                    } else {
                        (i / 64) as u8
                    }
                })
                .collect();
            let mut wire = BytesMut::new();
            a.compress(&data, &mut wire)
                .unwrap_or_else(|e| panic!("step {step}: {e}"));
            let mut out = BytesMut::new();
            b.decompress(&wire, true, &mut out, usize::MAX).unwrap();
            assert_eq!(&out[..], &data[..], "step {step}");
        }
    }
}
