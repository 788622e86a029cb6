//! The one error type of the core.
//!
//! Every variant names the rule that was broken. Errors raised while reading a
//! connection carry the close code the RFC asks for ([`Error::close_code`]);
//! errors raised while parsing a handshake request carry the HTTP status the
//! server should answer with ([`Error::http_status`]).

use core::fmt;

use crate::close::CloseCode;

/// Everything that can go wrong in the core.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ----- framing (RFC 6455 §5) -----
    /// RSV1, RSV2 or RSV3 is set but no negotiated extension defines it (§5.2).
    ReservedBitsSet,
    /// The opcode is one of the reserved values 0x3–0x7 or 0xB–0xF (§5.2).
    UnknownOpcode(u8),
    /// A control frame had FIN clear (§5.5: control frames MUST NOT be fragmented).
    FragmentedControlFrame,
    /// A control frame's payload was longer than 125 bytes (§5.5).
    ControlFrameTooLong,
    /// A continuation frame arrived while no fragmented message was open (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame arrived inside a fragmented message (§5.4).
    ExpectedContinuation,
    /// A client sent an unmasked frame (§5.1: the server MUST close the connection).
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1: the client MUST close the connection).
    MaskedFrame,
    /// The payload length was not encoded in the minimal number of bytes (§5.2).
    NonMinimalLength,
    /// The most significant bit of a 64-bit payload length was set (§5.2).
    LengthMsbSet,
    /// A close frame carried a status code that may not be sent on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A close frame had a one-byte payload (§5.5.1: a body starts with a two-byte code).
    InvalidClosePayload,
    /// A text message or close reason was not valid UTF-8 (§8.1), detected at the first bad byte.
    InvalidUtf8,
    /// A frame's payload exceeded the configured `max_frame_size`.
    FrameTooLarge,
    /// A message exceeded the configured `max_message_size` (for a compressed message:
    /// once inflated).
    MessageTooLarge,
    /// A compressed message could not be inflated (RFC 7692 §6.2).
    InvalidCompressedData,
    /// The compressor failed (an internal error, not caused by the peer).
    CompressionFailed,
    /// The peer stayed silent past the keepalive pong deadline: the connection is
    /// considered dead (reported locally as 1006).
    PeerUnresponsive,
    /// The peer did not answer our close frame within `close_timeout` (reported locally as 1006).
    CloseTimeout,
    /// The handshake did not complete within `handshake_timeout`.
    HandshakeTimeout,
    /// The peer closed the transport without completing the closing handshake
    /// (reported locally as 1006).
    ConnectionReset,

    // ----- caller errors -----
    /// The connection is closing or closed; no more data may be sent (§5.5.1).
    ConnectionClosed,
    /// A new message was started before the previous fragmented message was finished.
    MessageInProgress,
    /// A continuation was sent while no fragmented message was open.
    NoMessageInProgress,
    /// A ping, pong or close payload was longer than 125 bytes, or a close reason longer
    /// than 123 bytes (§5.5).
    ControlPayloadTooLong,
    /// The close code may not be sent by an endpoint (1005, 1006, 1015, or out of range).
    CloseCodeNotSendable(u16),
    /// The caller's output buffer is too small for what had to be written.
    BufferTooSmall,
    /// A frame's payload did not match the length announced in its header.
    PayloadLengthMismatch,

    // ----- handshake, both roles (RFC 6455 §4) -----
    /// The HTTP head was not well-formed.
    MalformedHttp,
    /// The HTTP head exceeded `max_header_bytes` (answered with 431).
    HeadersTooLarge,
    /// The HTTP head had more than `max_headers` fields (answered with 431).
    TooManyHeaders,
    /// The request method was not GET (§4.2.1 item 1).
    MethodNotGet,
    /// The request was not HTTP/1.1 or later (§4.2.1 item 1).
    UnsupportedHttpVersion,
    /// The request had no Host header (§4.2.1 item 2).
    MissingHost,
    /// `Upgrade: websocket` was missing (§4.2.1 item 3, §4.2.2 item 2 on the client).
    MissingUpgrade,
    /// `Connection` did not contain the `upgrade` token (§4.2.1 item 4).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` was missing, repeated, or not base64 of 16 bytes (§4.2.1 item 5).
    InvalidKey,
    /// `Sec-WebSocket-Version` was not 13 (§4.2.1 item 6; answered with 426).
    UnsupportedVersion,
    /// The response's `Sec-WebSocket-Accept` did not match our key (§4.1, client item 4).
    InvalidAccept,
    /// The server chose a subprotocol that was not offered (§4.1, client item 6).
    UnofferedSubprotocol,
    /// The server answered with an extension that was not offered (§4.1, client item 5).
    UnofferedExtension,
    /// A handshake header had a value that is not allowed (duplicate or malformed).
    InvalidHeader(&'static str),
    /// The caller-provided request or response parameters were invalid (bad header name,
    /// CR/LF in a value, empty host).
    InvalidRequest(&'static str),
    /// A refusing handshake response announced a body larger than `max_header_bytes`.
    BodyTooLarge,
}

impl Error {
    /// The close code to send when this error fails an open connection, if it is one
    /// raised by the peer's input.
    pub fn close_code(&self) -> Option<CloseCode> {
        use Error::*;
        Some(match self {
            ReservedBitsSet
            | UnknownOpcode(_)
            | FragmentedControlFrame
            | ControlFrameTooLong
            | UnexpectedContinuation
            | ExpectedContinuation
            | UnmaskedFrame
            | MaskedFrame
            | NonMinimalLength
            | LengthMsbSet
            | InvalidCloseCode(_)
            | InvalidClosePayload => CloseCode::PROTOCOL_ERROR,
            InvalidUtf8 | InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            CompressionFailed => CloseCode::INTERNAL_ERROR,
            FrameTooLarge | MessageTooLarge => CloseCode::MESSAGE_TOO_BIG,
            PeerUnresponsive | CloseTimeout | ConnectionReset => CloseCode::ABNORMAL,
            _ => return None,
        })
    }

    /// The HTTP status a server answers with when a request fails this way.
    pub fn http_status(&self) -> Option<u16> {
        use Error::*;
        Some(match self {
            MalformedHttp
            | MissingHost
            | MissingUpgrade
            | MissingConnectionUpgrade
            | InvalidKey
            | InvalidHeader(_)
            | UnsupportedHttpVersion => 400,
            MethodNotGet => 405,
            HandshakeTimeout => 408,
            UnsupportedVersion => 426,
            HeadersTooLarge | TooManyHeaders => 431,
            _ => return None,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            ReservedBitsSet => {
                f.write_str("reserved bit set without a negotiated extension (RFC 6455 §5.2)")
            }
            UnknownOpcode(op) => write!(f, "reserved opcode {op:#x} (RFC 6455 §5.2)"),
            FragmentedControlFrame => f.write_str("fragmented control frame (RFC 6455 §5.5)"),
            ControlFrameTooLong => {
                f.write_str("control frame payload over 125 bytes (RFC 6455 §5.5)")
            }
            UnexpectedContinuation => {
                f.write_str("continuation frame without a message to continue (RFC 6455 §5.4)")
            }
            ExpectedContinuation => {
                f.write_str("new data frame inside a fragmented message (RFC 6455 §5.4)")
            }
            UnmaskedFrame => f.write_str("client frame not masked (RFC 6455 §5.1)"),
            MaskedFrame => f.write_str("server frame masked (RFC 6455 §5.1)"),
            NonMinimalLength => f.write_str("payload length not minimally encoded (RFC 6455 §5.2)"),
            LengthMsbSet => {
                f.write_str("most significant bit of 64-bit length set (RFC 6455 §5.2)")
            }
            InvalidCloseCode(c) => write!(f, "close code {c} may not be sent (RFC 6455 §7.4)"),
            InvalidClosePayload => f.write_str("one-byte close payload (RFC 6455 §5.5.1)"),
            InvalidUtf8 => {
                f.write_str("invalid UTF-8 in text message or close reason (RFC 6455 §8.1)")
            }
            FrameTooLarge => f.write_str("frame larger than max_frame_size"),
            MessageTooLarge => f.write_str("message larger than max_message_size"),
            InvalidCompressedData => {
                f.write_str("compressed message does not inflate (RFC 7692 §6.2)")
            }
            CompressionFailed => f.write_str("compressor failed"),
            PeerUnresponsive => {
                f.write_str("peer did not answer keepalive within the pong deadline")
            }
            CloseTimeout => f.write_str("peer did not complete the closing handshake in time"),
            HandshakeTimeout => f.write_str("opening handshake did not complete in time"),
            ConnectionReset => f.write_str("peer closed the transport without a closing handshake"),
            ConnectionClosed => f.write_str("connection is closing or closed"),
            MessageInProgress => f.write_str("a fragmented message is still being sent"),
            NoMessageInProgress => f.write_str("no fragmented message is being sent"),
            ControlPayloadTooLong => f.write_str(
                "control payload over 125 bytes or close reason over 123 bytes (RFC 6455 §5.5)",
            ),
            CloseCodeNotSendable(c) => {
                write!(f, "close code {c} may not be sent (RFC 6455 §7.4.1)")
            }
            BufferTooSmall => f.write_str("output buffer too small"),
            PayloadLengthMismatch => f.write_str("payload length differs from the frame header"),
            MalformedHttp => f.write_str("malformed HTTP head"),
            HeadersTooLarge => f.write_str("HTTP head larger than max_header_bytes"),
            TooManyHeaders => f.write_str("more HTTP header fields than max_headers"),
            MethodNotGet => f.write_str("handshake method is not GET (RFC 6455 §4.2.1)"),
            UnsupportedHttpVersion => f.write_str("handshake is not HTTP/1.1 (RFC 6455 §4.2.1)"),
            MissingHost => f.write_str("missing Host header (RFC 6455 §4.2.1)"),
            MissingUpgrade => f.write_str("missing `Upgrade: websocket` (RFC 6455 §4.2.1)"),
            MissingConnectionUpgrade => {
                f.write_str("`Connection` lacks the `upgrade` token (RFC 6455 §4.2.1)")
            }
            InvalidKey => {
                f.write_str("Sec-WebSocket-Key missing or not base64 of 16 bytes (RFC 6455 §4.2.1)")
            }
            UnsupportedVersion => f.write_str("Sec-WebSocket-Version is not 13 (RFC 6455 §4.2.1)"),
            InvalidAccept => {
                f.write_str("Sec-WebSocket-Accept does not match the key (RFC 6455 §4.1)")
            }
            UnofferedSubprotocol => {
                f.write_str("server chose a subprotocol that was not offered (RFC 6455 §4.1)")
            }
            UnofferedExtension => f.write_str(
                "server answered with an extension that was not offered (RFC 6455 §4.1)",
            ),
            InvalidHeader(h) => write!(f, "invalid or duplicate {h} header"),
            InvalidRequest(what) => write!(f, "invalid handshake parameter: {what}"),
            BodyTooLarge => f.write_str("handshake response body larger than max_header_bytes"),
        }
    }
}

impl core::error::Error for Error {}
