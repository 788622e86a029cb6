//! Frame headers (RFC 6455 §5.2): incremental decoding and encoding.
//!
//! The decoder checks the rules that a header alone can break — reserved opcodes,
//! fragmented or oversized control frames, the 64-bit length's top bit, non-minimal
//! length encodings. Rules that depend on the connection (role, negotiated extensions,
//! limits, fragmentation state) are checked by [`Connection`](crate::Connection).

use crate::error::Error;

/// The longest frame header: 2 bytes, 8 bytes of extended length, 4 bytes of mask key.
pub const MAX_HEADER_LEN: usize = 14;
/// The longest payload of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame's opcode (§5.2, §11.8). Reserved values are rejected when decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation = 0x0,
    /// 0x1: starts a text message.
    Text = 0x1,
    /// 0x2: starts a binary message.
    Binary = 0x2,
    /// 0x8: close.
    Close = 0x8,
    /// 0x9: ping.
    Ping = 0x9,
    /// 0xA: pong.
    Pong = 0xA,
}

impl OpCode {
    /// Decode an opcode nibble; reserved values are a protocol error.
    pub fn from_u8(op: u8) -> Result<Self, Error> {
        Ok(match op {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(Error::UnknownOpcode(other)),
        })
    }

    /// Close, ping and pong are control frames (opcodes with the high bit set).
    pub const fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A decoded or to-be-encoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

/// RSV1: used by permessage-deflate (RFC 7692) to mark a compressed message.
pub const RSV1: u8 = 0b100;

impl FrameHeader {
    /// The number of bytes this header takes on the wire.
    pub const fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xffff => 4,
            _ => 10,
        };
        if self.mask.is_some() { len + 4 } else { len }
    }

    /// Encode into `out`, returning the number of bytes written. Lengths are always
    /// minimally encoded.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode as u8;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xffff => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }

    /// Decode a complete header from the start of `buf`. Returns `Ok(None)` when more
    /// bytes are needed, otherwise the header and its length on the wire.
    pub fn decode(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, Error> {
        let [b0, b1, ..] = *buf else { return Ok(None) };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        let opcode = OpCode::from_u8(b0 & 0x0f)?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7f;
        if opcode.is_control() {
            if !fin {
                return Err(Error::FragmentedControlFrame);
            }
            if len7 > 125 {
                return Err(Error::ControlFrameTooLong);
            }
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let total = 2 + ext + if masked { 4 } else { 0 };
        if buf.len() < total {
            return Ok(None);
        }
        let payload_len = match ext {
            2 => {
                let len = u64::from(u16::from_be_bytes([buf[2], buf[3]]));
                if len < 126 {
                    return Err(Error::NonMinimalLength);
                }
                len
            }
            8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(Error::LengthMsbSet);
                }
                if len <= 0xffff {
                    return Err(Error::NonMinimalLength);
                }
                len
            }
            _ => u64::from(len7),
        };
        let mask = masked.then(|| {
            let at = 2 + ext;
            [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]
        });
        Ok(Some((
            FrameHeader {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            total,
        )))
    }
}

/// Decodes a header that may arrive split across any number of reads.
#[derive(Debug, Clone, Default)]
pub struct HeaderDecoder {
    buf: [u8; MAX_HEADER_LEN],
    have: u8,
}

impl HeaderDecoder {
    /// A decoder waiting for the first byte of a header.
    pub const fn new() -> Self {
        HeaderDecoder {
            buf: [0; MAX_HEADER_LEN],
            have: 0,
        }
    }

    /// Feed bytes; returns how many were consumed and the header once complete. Bytes
    /// after the header are never consumed.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<FrameHeader>), Error> {
        if self.have == 0 {
            // Fast path: the whole header is in `input`, nothing to copy.
            if let Some((h, n)) = FrameHeader::decode(input)? {
                return Ok((n, Some(h)));
            }
        }
        let mut consumed = 0;
        // Take one byte at a time up to the known header length, so no byte of the
        // payload is ever swallowed.
        loop {
            let have = usize::from(self.have);
            let need = match FrameHeader::decode(&self.buf[..have])? {
                Some((h, _)) => {
                    self.have = 0;
                    return Ok((consumed, Some(h)));
                }
                None => header_len_hint(&self.buf[..have]),
            };
            let take = (need - have).min(input.len() - consumed);
            if take == 0 {
                return Ok((consumed, None));
            }
            self.buf[have..have + take].copy_from_slice(&input[consumed..consumed + take]);
            self.have += take as u8;
            consumed += take;
        }
    }

    /// Whether part of a header has been buffered.
    pub fn is_mid_header(&self) -> bool {
        self.have != 0
    }
}

/// How many bytes the header starting with `prefix` needs (2 until the length byte is known).
fn header_len_hint(prefix: &[u8]) -> usize {
    match prefix {
        [_, b1, ..] => {
            let ext = match b1 & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
        }
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(b: &[u8]) -> Result<Option<(FrameHeader, usize)>, Error> {
        FrameHeader::decode(b)
    }

    #[test]
    fn rfc_5_7_examples() {
        // Single-frame unmasked text "Hello".
        let (h, n) = dec(&[0x81, 0x05, 0x48, 0x65]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.mask, n),
            (true, OpCode::Text, 5, None, 2)
        );
        // Masked "Hello".
        let (h, n) = dec(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]).unwrap().unwrap();
        assert_eq!((h.mask, n), (Some([0x37, 0xfa, 0x21, 0x3d]), 6));
        // Fragmented "Hel" + "lo".
        let (h, _) = dec(&[0x01, 0x03]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (false, OpCode::Text));
        let (h, _) = dec(&[0x80, 0x02]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode), (true, OpCode::Continuation));
        // Unmasked ping "Hello".
        assert_eq!(dec(&[0x89, 0x05]).unwrap().unwrap().0.opcode, OpCode::Ping);
        // 256-byte binary, 16-bit length; 64 KiB binary, 64-bit length.
        assert_eq!(
            dec(&[0x82, 0x7e, 0x01, 0x00])
                .unwrap()
                .unwrap()
                .0
                .payload_len,
            256
        );
        let h = [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(dec(&h).unwrap().unwrap().0.payload_len, 65536);
    }

    #[test]
    fn header_rules() {
        for op in [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            assert_eq!(dec(&[0x80 | op, 0]), Err(Error::UnknownOpcode(op)));
        }
        assert_eq!(dec(&[0x09, 0x00]), Err(Error::FragmentedControlFrame));
        assert_eq!(dec(&[0x89, 0x7e]), Err(Error::ControlFrameTooLong));
        assert_eq!(dec(&[0x82, 0x7e, 0x00, 0x7d]), Err(Error::NonMinimalLength));
        assert_eq!(
            dec(&[0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff]),
            Err(Error::NonMinimalLength)
        );
        assert_eq!(
            dec(&[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::LengthMsbSet)
        );
        assert_eq!(dec(&[0x82, 0x7e, 0x01]), Ok(None));
    }

    #[test]
    fn encode_decode_each_length_class() {
        for len in [0u64, 125, 126, 0xffff, 0x1_0000, (1 << 63) - 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let h = FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: OpCode::Binary,
                    mask,
                    payload_len: len,
                };
                let mut out = [0; MAX_HEADER_LEN];
                let n = h.encode(&mut out);
                assert_eq!(n, h.encoded_len());
                assert_eq!(dec(&out[..n]).unwrap(), Some((h, n)));
                assert_eq!(dec(&out[..n - 1]).unwrap(), None);
            }
        }
    }

    #[test]
    fn decoder_one_byte_at_a_time_never_eats_payload() {
        let mut wire = [0u8; 20];
        let h = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Text,
            mask: Some([9, 8, 7, 6]),
            payload_len: 300,
        };
        let mut out = [0; MAX_HEADER_LEN];
        let n = h.encode(&mut out);
        wire[..n].copy_from_slice(&out[..n]);
        let mut d = HeaderDecoder::new();
        let mut got = None;
        for i in 0..wire.len() {
            let (c, hdr) = d.decode(&wire[i..i + 1]).unwrap();
            if let Some(hdr) = hdr {
                assert_eq!(i + 1, n);
                assert_eq!(c, 1);
                got = Some(hdr);
                break;
            }
            assert_eq!(c, 1);
        }
        assert_eq!(got, Some(h));
    }

    #[test]
    fn header_len_hint_for_every_length_byte() {
        assert_eq!(header_len_hint(&[]), 2);
        assert_eq!(header_len_hint(&[0x81]), 2);
        for b1 in 0..=255u8 {
            let ext = match b1 & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let key = if b1 & 0x80 != 0 { 4 } else { 0 };
            assert_eq!(header_len_hint(&[0x82, b1]), 2 + ext + key, "b1 {b1:#x}");
            assert_eq!(header_len_hint(&[0x82, b1, 0, 0]), 2 + ext + key);
        }
    }

    #[test]
    fn every_opcode_nibble() {
        for op in 0..16u8 {
            match OpCode::from_u8(op) {
                Ok(code) => {
                    assert!(matches!(op, 0x0..=0x2 | 0x8..=0xa));
                    assert_eq!(code as u8, op);
                    assert_eq!(code.is_control(), op >= 8);
                }
                Err(e) => {
                    assert!(matches!(op, 0x3..=0x7 | 0xb..=0xf));
                    assert_eq!(e, Error::UnknownOpcode(op));
                }
            }
        }
    }

    #[test]
    fn decoder_is_reusable_and_reports_partial_headers() {
        let mut d = HeaderDecoder::new();
        assert!(!d.is_mid_header());
        assert_eq!(d.decode(&[0x82, 0x7e, 0x01]), Ok((3, None)));
        assert!(d.is_mid_header());
        let (n, h) = d.decode(&[0x00, 0xaa, 0xbb]).unwrap();
        assert_eq!((n, h.map(|h| h.payload_len)), (1, Some(256)));
        assert!(!d.is_mid_header());
        // The next header starts from scratch.
        assert_eq!(d.decode(&[0x89]), Ok((1, None)));
        let (n, h) = d.decode(&[0x00]).unwrap();
        assert_eq!((n, h.map(|h| h.opcode)), (1, Some(OpCode::Ping)));
    }
}
