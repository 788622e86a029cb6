//! WebSocket URLs (RFC 6455 §3): `ws://host[:port]/path?query` and `wss://...`.
//!
//! Parsing is done by the [`url`] crate (WHATWG URL), which already knows `ws`
//! and `wss` as special schemes with default ports 80 and 443, handles IPv6
//! literals, percent-encodes the path and converts international domain names
//! to punycode. On top of it this module is stricter where RFC 6455 / RFC 3986
//! are: no fragment, no whitespace or control characters, no backslashes, and an
//! explicit `//` authority.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

use crate::Error;
use crate::auth::Credentials;

/// A parsed `ws://` or `wss://` URL.
///
/// `Display` prints the URL without its credentials, so it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct WsUrl {
    secure: bool,
    host: String,
    is_ipv6: bool,
    port: u16,
    path_and_query: String,
    credentials: Option<Credentials>,
}

impl WsUrl {
    /// Parses a WebSocket URL.
    ///
    /// Fails for schemes other than `ws`/`wss` (compared case-insensitively), a
    /// fragment (even an empty one), a missing host, whitespace, control
    /// characters or backslashes anywhere, and userinfo that is not valid UTF-8
    /// after percent-decoding or whose user name holds a colon.
    pub fn parse(input: &str) -> Result<Self, Error> {
        if input
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
        {
            // The WHATWG parser would silently strip or reinterpret these.
            return Err(Error::MalformedUrl(
                "whitespace, control character or backslash in URL",
            ));
        }
        let Some((scheme, rest)) = input.split_once(':') else {
            return Err(Error::MalformedUrl("missing scheme"));
        };
        let secure = if scheme.eq_ignore_ascii_case("ws") {
            false
        } else if scheme.eq_ignore_ascii_case("wss") {
            true
        } else {
            return Err(Error::UnsupportedScheme(scheme.to_owned()));
        };
        let Some(after_slashes) = rest.strip_prefix("//") else {
            // WHATWG accepts `ws:host`; RFC 6455 §3 requires `ws://host`.
            return Err(Error::MalformedUrl("expected `//` after the scheme"));
        };
        let authority = after_slashes
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        let host_part = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if host_part.is_empty() || host_part.starts_with(':') {
            // WHATWG would skip extra slashes and take `ws:///h` as host `h`.
            return Err(Error::MalformedUrl("missing host"));
        }
        if input.contains('#') {
            return Err(Error::UrlHasFragment);
        }

        let parsed = ::url::Url::parse(input)?;
        let (host, is_ipv6) = match parsed.host() {
            Some(::url::Host::Domain(d)) if !d.is_empty() => (d.to_owned(), false),
            Some(::url::Host::Ipv4(ip)) => (ip.to_string(), false),
            Some(::url::Host::Ipv6(ip)) => (ip.to_string(), true),
            _ => return Err(Error::MalformedUrl("missing host")),
        };
        let port = parsed
            .port_or_known_default()
            .ok_or(Error::MalformedUrl("missing port"))?;

        let mut path_and_query = parsed.path().to_owned();
        if path_and_query.is_empty() {
            path_and_query.push('/');
        }
        if let Some(q) = parsed.query() {
            path_and_query.push('?');
            path_and_query.push_str(q);
        }

        let credentials = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            (user, pass) => {
                let user = decode_userinfo(user)?;
                let pass = decode_userinfo(pass.unwrap_or(""))?;
                Some(Credentials::new(user, pass)?)
            }
        };

        Ok(WsUrl {
            secure,
            host,
            is_ipv6,
            port,
            path_and_query,
            credentials,
        })
    }

    /// `true` for `wss://`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// `"ws"` or `"wss"`.
    pub fn scheme(&self) -> &'static str {
        if self.secure { "wss" } else { "ws" }
    }

    /// The host without brackets: a lower-case (punycode) domain name, or an IP
    /// address in its canonical text form. This is what to resolve and what to
    /// use as the TLS server name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host as an IP address, if it is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The port, explicit or the scheme default (80 for `ws`, 443 for `wss`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the port is the scheme's default.
    pub fn is_default_port(&self) -> bool {
        self.port == if self.secure { 443 } else { 80 }
    }

    /// The request target for the opening handshake's request line: the path
    /// (at least `/`) followed by `?query` if there is one, percent-encoded.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// User name and password from the URL's userinfo, percent-decoded; to be
    /// sent as Basic credentials.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The value for the `Host` header (RFC 9110 §7.2): the host, bracketed if
    /// IPv6, followed by `:port` only when the port is not the scheme default.
    pub fn host_header(&self) -> String {
        if self.is_default_port() {
            self.bracketed_host()
        } else {
            self.authority()
        }
    }

    /// `host:port` with the port always present and IPv6 bracketed: what to hand
    /// to `TcpStream::connect` or to put in a proxy `CONNECT` request.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.bracketed_host(), self.port)
    }

    fn bracketed_host(&self) -> String {
        if self.is_ipv6 {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

fn decode_userinfo(s: &str) -> Result<String, Error> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::InvalidCredentials("userinfo is not UTF-8 after percent-decoding"))
}

impl FromStr for WsUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        WsUrl::parse(s)
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme(),
            self.host_header(),
            self.path_and_query
        )
    }
}

impl fmt::Debug for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsUrl")
            .field("url", &format_args!("{self}"))
            .field("credentials", &self.credentials)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> WsUrl {
        WsUrl::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn defaults_and_explicit_ports() {
        let u = ok("ws://example.com");
        assert!(!u.is_secure());
        assert_eq!(
            (u.host(), u.port(), u.path_and_query()),
            ("example.com", 80, "/")
        );
        assert_eq!(u.host_header(), "example.com");
        assert_eq!(u.authority(), "example.com:80");

        let u = ok("wss://example.com/chat");
        assert!(u.is_secure());
        assert_eq!((u.port(), u.host_header()), (443, "example.com".to_owned()));

        let u = ok("wss://example.com:8443/");
        assert_eq!(u.host_header(), "example.com:8443");
        assert_eq!(u.authority(), "example.com:8443");

        // The default port written out explicitly is still the default.
        let u = ok("ws://example.com:80/x");
        assert_eq!(u.host_header(), "example.com");
        // ... but port 443 on plain ws is not.
        assert_eq!(ok("ws://example.com:443").host_header(), "example.com:443");
    }

    #[test]
    fn scheme_and_host_are_case_insensitive() {
        let u = ok("WSS://Example.COM/Path");
        assert!(u.is_secure());
        assert_eq!(u.host(), "example.com");
        assert_eq!(u.path_and_query(), "/Path");
        assert_eq!(u.to_string(), "wss://example.com/Path");
    }

    #[test]
    fn ipv6_literals() {
        let u = ok("ws://[::1]:9001/socket?x=1");
        assert_eq!(u.host(), "::1");
        assert_eq!(u.ip(), Some("::1".parse().unwrap()));
        assert_eq!(u.host_header(), "[::1]:9001");
        assert_eq!(u.authority(), "[::1]:9001");
        let u = ok("wss://[2001:DB8::0:1]");
        assert_eq!(u.host(), "2001:db8::1");
        assert_eq!(u.host_header(), "[2001:db8::1]");
        assert_eq!(u.authority(), "[2001:db8::1]:443");
        assert!(WsUrl::parse("ws://[::1/").is_err());
        assert!(WsUrl::parse("ws://[zz::1]/").is_err());
    }

    #[test]
    fn ipv4_and_idn() {
        let u = ok("ws://127.0.0.1:8080");
        assert_eq!(u.ip(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        assert_eq!(ok("ws://bücher.example/").host(), "xn--bcher-kva.example");
    }

    #[test]
    fn path_and_query_are_kept_and_encoded() {
        let u = ok("ws://h/a/b?c=d&e=%20f");
        assert_eq!(u.path_and_query(), "/a/b?c=d&e=%20f");
        assert_eq!(ok("ws://h?q").path_and_query(), "/?q");
        assert_eq!(ok("ws://h/é").path_and_query(), "/%C3%A9");
    }

    #[test]
    fn userinfo_becomes_credentials_and_is_not_displayed() {
        let u = ok("wss://al%20ice:p%40ss:w@example.com/");
        let c = u.credentials().unwrap();
        assert_eq!((c.username(), c.password()), ("al ice", "p@ss:w"));
        assert_eq!(u.to_string(), "wss://example.com/");
        assert!(!format!("{u:?}").contains("p@ss"));
        let u = ok("ws://bob@h/");
        assert_eq!(u.credentials().unwrap().password(), "");
        assert!(ok("ws://h/").credentials().is_none());
        // A colon hidden in the user name would break Basic's user:pass split.
        assert!(matches!(
            WsUrl::parse("ws://a%3Ab:c@h/"),
            Err(Error::InvalidCredentials(_))
        ));
        assert!(matches!(
            WsUrl::parse("ws://a:%FF@h/"),
            Err(Error::InvalidCredentials(_))
        ));
    }

    #[test]
    fn rejects() {
        assert!(matches!(
            WsUrl::parse("http://h/"),
            Err(Error::UnsupportedScheme(s)) if s == "http"
        ));
        assert!(matches!(
            WsUrl::parse("wsx://h/"),
            Err(Error::UnsupportedScheme(_))
        ));
        assert!(matches!(
            WsUrl::parse("ws://h/#frag"),
            Err(Error::UrlHasFragment)
        ));
        assert!(matches!(
            WsUrl::parse("ws://h/#"),
            Err(Error::UrlHasFragment)
        ));
        for bad in [
            "",
            "ws",
            "ws:",
            "ws:h/",
            "ws:/h/",
            "ws://",
            "ws:///path",
            "ws:////h/",
            "ws://user@/",
            "ws://user@:80/",
            "ws://:80/",
            "ws://h:99999/",
            "ws://h:port/",
            "ws://h /",
            "ws://h/\r\nX: y",
            "ws:\\\\h\\",
            " ws://h/",
        ] {
            assert!(WsUrl::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn from_str_works() {
        let u: WsUrl = "ws://h:1/".parse().unwrap();
        assert_eq!(u.port(), 1);
    }
}
