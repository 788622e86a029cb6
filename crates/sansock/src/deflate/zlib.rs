//! The zlib-rs backend (through `flate2`): fast, `std` only. zlib enforces windows of
//! 9–15 bits itself, and its memory follows the window: about 2^(bits+2) bytes plus
//! 130 KiB of hash and pending buffers for a compressor, 2^bits plus 7 KiB for an
//! inflater.

use bytes::{BufMut, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::TAIL;
use crate::error::Error;

pub(super) const NAME: &str = "zlib-rs";
/// zlib cannot compress with an 8-bit window (it silently uses 9); the codec segments.
pub(super) const MIN_NATIVE_WINDOW_BITS: u8 = 9;

pub(super) struct Tx(Compress);

impl Tx {
    pub(super) fn new(level: u8, bits: u8) -> Self {
        Tx(Compress::new_with_window_bits(
            Compression::new(u32::from(level)),
            false,
            bits.clamp(9, 15),
        ))
    }

    /// Compress with a sync flush. zlib has finished the flush once a call returns with
    /// output space left over.
    pub(super) fn compress_sync(
        &mut self,
        mut input: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        let start = out.len();
        let mut room = input.len() + input.len() / 64 + 64;
        loop {
            let at = out.len();
            out.put_bytes(0, room);
            let (in0, out0) = (self.0.total_in(), self.0.total_out());
            let r = self.0.compress(input, &mut out[at..], FlushCompress::Sync);
            let consumed = (self.0.total_in() - in0) as usize;
            let written = (self.0.total_out() - out0) as usize;
            out.truncate(at + written);
            input = &input[consumed..];
            match r {
                Ok(Status::Ok | Status::BufError) => {}
                Ok(Status::StreamEnd) | Err(_) => return Err(Error::CompressionFailed),
            }
            if input.is_empty() && written < room {
                let done = out.len() >= start + 4 && out[out.len() - 4..] == TAIL;
                return if done {
                    Ok(())
                } else {
                    Err(Error::CompressionFailed)
                };
            }
            if consumed == 0 && written == 0 {
                return Err(Error::CompressionFailed);
            }
            room = 64 << 10;
        }
    }

    pub(super) fn reset(&mut self) {
        self.0.reset();
    }
}

pub(super) struct Rx {
    z: Decompress,
    /// A final block ended the DEFLATE stream during this message (RFC 7692 §7.2.3.4).
    stream_ended: bool,
}

impl Rx {
    /// An inflater for a peer that compresses with at most `bits` of window: a peer that
    /// reaches further back broke the negotiation and fails with 1007.
    pub(super) fn new(bits: u8) -> Self {
        Rx {
            z: Decompress::new_with_window_bits(false, bits.clamp(9, 15)),
            stream_ended: false,
        }
    }

    pub(super) fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut BytesMut,
        limit: usize,
    ) -> Result<(), Error> {
        loop {
            let at = out.len();
            // At the limit, only a byte that would go past it is an error: probe with one,
            // and check the rest of the input like any other (trailing data, corruption).
            let mut probe = [0u8; 1];
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let (r, room) = if at >= limit {
                let r = self.z.decompress(input, &mut probe, FlushDecompress::Sync);
                if self.z.total_out() > out0 {
                    return Err(Error::MessageTooLarge);
                }
                (r, 1)
            } else {
                let room = (input.len() * 4).clamp(1024, 256 << 10).min(limit - at);
                out.put_bytes(0, room);
                let r = self
                    .z
                    .decompress(input, &mut out[at..], FlushDecompress::Sync);
                out.truncate(at + (self.z.total_out() - out0) as usize);
                (r, room)
            };
            let consumed = (self.z.total_in() - in0) as usize;
            let written = (self.z.total_out() - out0) as usize;
            input = &input[consumed..];
            match r {
                // A sender may flush with a final block (RFC 7692 §7.2.3.4): whatever
                // follows starts a new DEFLATE stream, and so does the next message.
                Ok(Status::StreamEnd) => {
                    self.stream_ended = true;
                    self.z.reset(false);
                    if input.is_empty() {
                        return Ok(());
                    }
                }
                Ok(Status::Ok | Status::BufError) => {
                    if input.is_empty() && written < room {
                        return Ok(());
                    }
                    if consumed == 0 && written == 0 {
                        return Err(Error::InvalidCompressedData);
                    }
                }
                Err(_) => return Err(Error::InvalidCompressedData),
            }
        }
    }

    pub(super) fn take_stream_ended(&mut self) -> bool {
        core::mem::take(&mut self.stream_ended)
    }

    pub(super) fn reset(&mut self) {
        self.z.reset(false);
        self.stream_ended = false;
    }
}
