//! Close codes and close frame bodies (RFC 6455 §5.5.1, §7.4).

use core::fmt;

use crate::error::Error;

/// A WebSocket close status code (RFC 6455 §7.4).
///
/// Any `u16` can be held; [`CloseCode::is_sendable`] says whether it may appear in a close
/// frame on the wire. 1005, 1006 and 1015 are reserved for local reporting only.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose for which the connection was established has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: an endpoint is going away (server shutting down, page navigated away).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the endpoint is terminating the connection due to a protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: the endpoint received a type of data it cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present (local reporting only, never sent).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame (local reporting only, never sent).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data within a message was inconsistent with its type (e.g. invalid UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected the server to negotiate an extension it did not.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting (IANA registry).
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: the server acting as a gateway got an invalid response (IANA registry).
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: TLS handshake failure (local reporting only, never sent).
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may be carried by a close frame on the wire.
    ///
    /// Allowed: 1000–1003, 1007–1014 (the registered codes), 3000–3999 (registered with
    /// IANA by libraries and frameworks) and 4000–4999 (private use). Everything else —
    /// below 1000, 1004–1006, 1015, the unassigned 1016–2999, and 5000 and above — is a
    /// protocol error when received.
    pub const fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// The registered name of the code, if it has one.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1000 => "normal closure",
            1001 => "going away",
            1002 => "protocol error",
            1003 => "unsupported data",
            1005 => "no status received",
            1006 => "abnormal closure",
            1007 => "invalid frame payload data",
            1008 => "policy violation",
            1009 => "message too big",
            1010 => "mandatory extension",
            1011 => "internal error",
            1012 => "service restart",
            1013 => "try again later",
            1014 => "bad gateway",
            1015 => "TLS handshake",
            _ => return None,
        })
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "CloseCode({} {})", self.0, name),
            None => write!(f, "CloseCode({})", self.0),
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({})", self.0, name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The longest close reason that fits a control frame: 125 bytes minus the 2-byte code.
pub const MAX_REASON_LEN: usize = 123;

/// A parsed close frame body, borrowing its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code; [`CloseCode::NO_STATUS`] when the frame had an empty body.
    pub code: CloseCode,
    /// The reason, valid UTF-8 of at most 123 bytes.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Parse a close frame body as received (RFC 6455 §5.5.1).
    ///
    /// An empty body means "no status" (1005). A one-byte body, an unsendable code or a
    /// reason that is not UTF-8 fail the connection.
    pub fn parse(payload: &'a [u8]) -> Result<Self, Error> {
        match payload {
            [] => Ok(CloseFrame {
                code: CloseCode::NO_STATUS,
                reason: "",
            }),
            [_] => Err(Error::InvalidClosePayload),
            [hi, lo, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
                if !code.is_sendable() {
                    return Err(Error::InvalidCloseCode(code.0));
                }
                let reason = core::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
                Ok(CloseFrame { code, reason })
            }
        }
    }

    /// Check that this close can be sent: a sendable code (or 1005 meaning "empty body")
    /// and a reason of at most 123 bytes.
    pub fn validate_for_send(&self) -> Result<(), Error> {
        if self.code == CloseCode::NO_STATUS {
            return if self.reason.is_empty() {
                Ok(())
            } else {
                Err(Error::CloseCodeNotSendable(1005))
            };
        }
        if !self.code.is_sendable() {
            return Err(Error::CloseCodeNotSendable(self.code.0));
        }
        if self.reason.len() > MAX_REASON_LEN {
            return Err(Error::ControlPayloadTooLong);
        }
        Ok(())
    }

    /// Write the body (code + reason) into `out`; returns its length (0 for 1005).
    pub(crate) fn write_body(&self, out: &mut [u8; 125]) -> usize {
        if self.code == CloseCode::NO_STATUS {
            return 0;
        }
        out[..2].copy_from_slice(&self.code.0.to_be_bytes());
        out[2..2 + self.reason.len()].copy_from_slice(self.reason.as_bytes());
        2 + self.reason.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendable_ranges_follow_rfc_7_4() {
        for code in 0..=u16::MAX {
            let expected = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(code).is_sendable(), expected, "code {code}");
        }
        for reserved in [1004, 1005, 1006, 1015, 1016, 2999, 5000, 999, 0] {
            assert!(!CloseCode(reserved).is_sendable());
        }
    }

    #[test]
    fn parse_close_bodies() {
        assert_eq!(CloseFrame::parse(&[]).unwrap().code, CloseCode::NO_STATUS);
        assert_eq!(CloseFrame::parse(&[3]), Err(Error::InvalidClosePayload));
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8]).unwrap(),
            CloseFrame {
                code: CloseCode::NORMAL,
                reason: ""
            }
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, b'o', b'k']).unwrap().reason,
            "ok"
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xed]),
            Err(Error::InvalidCloseCode(1005))
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, 0xff]),
            Err(Error::InvalidUtf8)
        );
        assert_eq!(
            CloseFrame::parse(&[0x0f, 0xa0]).unwrap().code,
            CloseCode(4000)
        );
    }

    #[test]
    fn validate_for_send() {
        let long = "x".repeat(124);
        assert_eq!(
            CloseFrame {
                code: CloseCode::NORMAL,
                reason: &long
            }
            .validate_for_send(),
            Err(Error::ControlPayloadTooLong)
        );
        assert!(
            CloseFrame {
                code: CloseCode::NORMAL,
                reason: &long[..123]
            }
            .validate_for_send()
            .is_ok()
        );
        assert_eq!(
            CloseFrame {
                code: CloseCode::ABNORMAL,
                reason: ""
            }
            .validate_for_send(),
            Err(Error::CloseCodeNotSendable(1006))
        );
        assert!(
            CloseFrame {
                code: CloseCode::NO_STATUS,
                reason: ""
            }
            .validate_for_send()
            .is_ok()
        );
    }

    #[test]
    fn names_display_and_conversions() {
        extern crate std;
        use std::format;
        assert_eq!(format!("{}", CloseCode::NORMAL), "1000 (normal closure)");
        assert_eq!(
            format!("{:?}", CloseCode::MESSAGE_TOO_BIG),
            "CloseCode(1009 message too big)"
        );
        assert_eq!(format!("{}", CloseCode(4321)), "4321");
        assert_eq!(format!("{:?}", CloseCode(4321)), "CloseCode(4321)");
        for code in 1000..=1015u16 {
            assert_eq!(CloseCode(code).name().is_some(), code != 1004, "{code}");
        }
        assert_eq!(CloseCode::from(1001u16), CloseCode::GOING_AWAY);
        assert_eq!(u16::from(CloseCode::BAD_GATEWAY), 1014);
    }

    #[test]
    fn write_body_round_trips_through_parse() {
        let reason = "é".repeat(61) + "x"; // 123 bytes
        for code in (1000..=1003).chain(1007..=1014).chain([3000, 4999]) {
            for reason in ["", "ok", reason.as_str()] {
                let f = CloseFrame {
                    code: CloseCode(code),
                    reason,
                };
                f.validate_for_send().unwrap();
                let mut out = [0u8; 125];
                let n = f.write_body(&mut out);
                assert_eq!(n, 2 + reason.len());
                assert_eq!(CloseFrame::parse(&out[..n]), Ok(f));
            }
        }
        let mut out = [0u8; 125];
        let n = CloseFrame {
            code: CloseCode::NO_STATUS,
            reason: "",
        }
        .write_body(&mut out);
        assert_eq!(n, 0);
        assert_eq!(
            CloseFrame::parse(&out[..n]).unwrap().code,
            CloseCode::NO_STATUS
        );
    }
}
