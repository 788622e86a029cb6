//! Tunnels through an HTTP proxy with `CONNECT` (RFC 9110 §9.3.6).
//!
//! Only `http://` proxies are supported (the hop to the proxy is plain TCP; a
//! `wss://` connection then runs TLS end to end inside the tunnel). Credentials
//! for the proxy are sent as Basic `Proxy-Authorization`.
//!
//! Nothing here applies a timeout: wrap the calls in `tokio::time::timeout`.

use std::fmt;
use std::net::IpAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;
use crate::auth::Credentials;
use crate::prefixed::PrefixedStream;

/// The largest proxy response head accepted, in bytes.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// The most header fields accepted in a proxy response.
const MAX_HEADERS: usize = 64;

/// Where the HTTP proxy is and how to authenticate to it.
///
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

impl ProxyConfig {
    /// A proxy at `host:port` (IPv6 with or without brackets), without credentials.
    pub fn new(host: &str, port: u16) -> Result<Self, Error> {
        Ok(ProxyConfig {
            host: validate_host(host)?.to_owned(),
            port,
            credentials: None,
        })
    }

    /// Adds Basic credentials for `Proxy-Authorization`.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Parses a proxy URL: `http://[user:password@]host[:port][/]`, or the bare
    /// `host[:port]` found in many environments. The port defaults to 80, the
    /// `http` default; userinfo is percent-decoded into credentials.
    ///
    /// Other schemes (`https://`, `socks5://`, ...) are refused with
    /// [`Error::UnsupportedScheme`].
    pub fn parse(proxy_url: &str) -> Result<Self, Error> {
        let proxy_url = proxy_url.trim();
        let with_scheme;
        let full = if proxy_url.contains("://") {
            proxy_url
        } else {
            with_scheme = format!("http://{proxy_url}");
            &with_scheme
        };
        let (scheme, _) = full
            .split_once("://")
            .ok_or(Error::MalformedUrl("missing scheme"))?;
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(Error::UnsupportedScheme(scheme.to_owned()));
        }
        if full
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
        {
            return Err(Error::MalformedUrl(
                "whitespace, control character or backslash in URL",
            ));
        }
        let parsed = ::url::Url::parse(full)?;
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(Error::MalformedUrl("a proxy URL has no path or query"));
        }
        let host = match parsed.host() {
            Some(::url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(::url::Host::Ipv4(ip)) => ip.to_string(),
            Some(::url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(Error::MalformedUrl("missing host")),
        };
        let port = parsed
            .port_or_known_default()
            .ok_or(Error::MalformedUrl("missing port"))?;
        let credentials = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            (user, pass) => {
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map(|c| c.into_owned())
                        .map_err(|_| {
                            Error::InvalidCredentials(
                                "userinfo is not UTF-8 after percent-decoding",
                            )
                        })
                };
                Some(Credentials::new(
                    decode(user)?,
                    decode(pass.unwrap_or(""))?,
                )?)
            }
        };
        Ok(ProxyConfig {
            host,
            port,
            credentials,
        })
    }

    /// The proxy for a connection to `target_host`, as the environment says:
    /// `https_proxy` for `secure` targets and `http_proxy` otherwise, then
    /// `all_proxy`; each looked up lower-case first, then upper-case, empty values
    /// ignored. `Ok(None)` means connect directly: no variable is set, `no_proxy`
    /// matches the host (see [`no_proxy_matches`]), or the host is `localhost` or a
    /// loopback address (a proxy cannot reach this machine's loopback).
    ///
    /// Like Go's `net/http`, upper-case `HTTP_PROXY` is ignored when
    /// `REQUEST_METHOD` is set: under CGI a client's `Proxy:` request header
    /// arrives as `HTTP_PROXY` ("httpoxy").
    ///
    /// Only consulted when the caller asks; nothing in this crate reads the
    /// environment on its own.
    pub fn from_env(target_host: &str, secure: bool) -> Result<Option<Self>, Error> {
        Self::from_env_with(target_host, secure, |name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables looked up through `var`
    /// instead of the process environment.
    pub fn from_env_with<F>(target_host: &str, secure: bool, var: F) -> Result<Option<Self>, Error>
    where
        F: Fn(&str) -> Option<String>,
    {
        let get = |names: &[&str]| {
            names
                .iter()
                .filter_map(|n| var(n))
                .find(|v| !v.trim().is_empty())
        };
        if is_local(target_host) {
            return Ok(None);
        }
        if let Some(no_proxy) = get(&["no_proxy", "NO_PROXY"])
            && no_proxy_matches(&no_proxy, target_host)
        {
            tracing::debug!(target_host, "no_proxy matches: connecting directly");
            return Ok(None);
        }
        let scheme_specific = if secure {
            get(&["https_proxy", "HTTPS_PROXY"])
        } else if var("REQUEST_METHOD").is_some() {
            get(&["http_proxy"])
        } else {
            get(&["http_proxy", "HTTP_PROXY"])
        };
        match scheme_specific.or_else(|| get(&["all_proxy", "ALL_PROXY"])) {
            Some(url) => ProxyConfig::parse(&url).map(Some),
            None => Ok(None),
        }
    }

    /// The proxy host (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The credentials sent to the proxy, if any.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// `host:port` of the proxy, IPv6 bracketed.
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("authority", &self.authority())
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// Whether a `no_proxy` list says `host` must be reached directly.
///
/// The list is comma-separated, entries trimmed and compared
/// case-insensitively:
/// - `*` matches every host;
/// - a domain (`example.com`, `.example.com` or `*.example.com`) matches itself
///   and every subdomain, but not `badexample.com`;
/// - an IP address matches that address; `addr/len` (CIDR) matches the range.
///
/// A `:port` on an entry is ignored: the entry then matches every port.
pub fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    let host = strip_brackets(host.trim())
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    no_proxy.split(',').any(|entry| {
        let entry = entry.trim();
        if entry == "*" {
            return true;
        }
        if let Some((net, len)) = entry.split_once('/') {
            return match (host_ip, net.parse::<IpAddr>(), len.parse::<u8>()) {
                (Some(ip), Ok(net), Ok(len)) => cidr_contains(net, len, ip),
                _ => false,
            };
        }
        let entry = strip_port(entry);
        if let Ok(ip) = entry.parse::<IpAddr>() {
            return host_ip == Some(ip);
        }
        let domain = entry
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if domain.is_empty() || host_ip.is_some() {
            return false;
        }
        host == domain
            || (host.len() > domain.len()
                && host.ends_with(&domain)
                && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
    })
}

fn strip_brackets(h: &str) -> &str {
    h.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h)
}

/// Drops a `:port` suffix from `host:port` or `[v6]:port`; bare IPv6 is kept whole.
fn strip_port(entry: &str) -> &str {
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => entry,
    }
}

fn cidr_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

fn is_local(host: &str) -> bool {
    let host = strip_brackets(host).trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Accepts a host for a request line: a domain name, IPv4, or IPv6 with or
/// without brackets. Returns it without brackets.
fn validate_host(host: &str) -> Result<&str, Error> {
    let bare = strip_brackets(host);
    let ok = !bare.is_empty()
        && if bare.contains(':') {
            bare.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            // RFC 3986 reg-name: unreserved / pct-encoded / sub-delims, minus the
            // ones that would let a name smuggle more into the request line.
            bare.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+;=".contains(&b))
        };
    if ok {
        Ok(bare)
    } else {
        Err(Error::InvalidHost(host.to_owned()))
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Connects to the proxy over TCP and opens a tunnel to `target_host:target_port`.
///
/// Returns the stream with any bytes the proxy sent after its response head
/// queued for reading first. See [`connect_tunnel`] for the errors.
pub async fn connect_via_proxy(
    proxy: &ProxyConfig,
    target_host: &str,
    target_port: u16,
) -> Result<PrefixedStream<TcpStream>, Error> {
    let stream = TcpStream::connect((proxy.host.as_str(), proxy.port)).await?;
    connect_tunnel(stream, target_host, target_port, proxy.credentials.as_ref()).await
}

/// Sends `CONNECT target_host:target_port` over an existing connection to a proxy
/// and reads the answer.
///
/// Any 2xx opens the tunnel. A 407 becomes [`Error::ProxyAuthRequired`], any
/// other status [`Error::ProxyRefused`]. The response head may be at most
/// [`MAX_RESPONSE_HEAD`] bytes; bytes that arrive after it are kept in the
/// returned [`PrefixedStream`].
pub async fn connect_tunnel<S>(
    mut stream: S,
    target_host: &str,
    target_port: u16,
    credentials: Option<&Credentials>,
) -> Result<PrefixedStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let target = authority(validate_host(target_host)?, target_port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(c) = credentials {
        request.push_str("Proxy-Authorization: ");
        request.push_str(&c.basic_header_value());
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;

    let mut buf = Vec::with_capacity(1024);
    loop {
        let room = MAX_RESPONSE_HEAD - buf.len();
        if room == 0 {
            return Err(Error::ProxyResponseTooLarge {
                limit: MAX_RESPONSE_HEAD,
            });
        }
        let n = (&mut stream).take(room as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(Error::ProxyClosed);
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => continue,
            Err(_) => return Err(Error::ProxyMalformedResponse),
        };
        let status = response.code.ok_or(Error::ProxyMalformedResponse)?;
        match status {
            200..=299 => {
                tracing::debug!(target = %target, status, "CONNECT tunnel open");
                let leftover = buf.split_off(head_len);
                return Ok(PrefixedStream::new(leftover, stream));
            }
            407 => {
                return Err(Error::ProxyAuthRequired {
                    credentials_sent: credentials.is_some(),
                });
            }
            _ => {
                let reason = sanitize_reason(response.reason.unwrap_or(""));
                tracing::debug!(target = %target, status, reason, "CONNECT refused");
                return Err(Error::ProxyRefused { status, reason });
            }
        }
    }
}

/// Keeps a peer-chosen reason phrase short and printable before it goes into an error.
fn sanitize_reason(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn parse_proxy_urls() {
        let p = ProxyConfig::parse("http://proxy.example:3128").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.example", 3128));
        assert!(p.credentials().is_none());

        let p = ProxyConfig::parse("proxy.example:8080").unwrap();
        assert_eq!(p.port(), 8080);
        let p = ProxyConfig::parse("HTTP://proxy.example/").unwrap();
        assert_eq!(p.port(), 80);

        let p = ProxyConfig::parse("http://us%40er:p%3Ass@[::1]:3128").unwrap();
        assert_eq!(p.host(), "::1");
        assert_eq!(p.authority(), "[::1]:3128");
        let c = p.credentials().unwrap();
        assert_eq!((c.username(), c.password()), ("us@er", "p:ss"));
        assert!(!format!("{p:?}").contains("p:ss"));

        assert!(matches!(
            ProxyConfig::parse("socks5://h:1080"),
            Err(Error::UnsupportedScheme(_))
        ));
        assert!(matches!(
            ProxyConfig::parse("https://h:443"),
            Err(Error::UnsupportedScheme(_))
        ));
        assert!(ProxyConfig::parse("http://h:3128/path").is_err());
        assert!(ProxyConfig::parse("http://").is_err());
        assert!(ProxyConfig::parse("http://h:x").is_err());
    }

    #[test]
    fn env_selection_by_scheme_and_case() {
        let vars = env(&[
            ("http_proxy", "http://plain:1"),
            ("HTTPS_PROXY", "http://secure:2"),
        ]);
        let p = ProxyConfig::from_env_with("example.com", false, &vars)
            .unwrap()
            .unwrap();
        assert_eq!(p.host(), "plain");
        let p = ProxyConfig::from_env_with("example.com", true, &vars)
            .unwrap()
            .unwrap();
        assert_eq!(p.host(), "secure");

        // Lower case wins over upper case.
        let vars = env(&[("https_proxy", "low:1"), ("HTTPS_PROXY", "up:2")]);
        let p = ProxyConfig::from_env_with("example.com", true, &vars)
            .unwrap()
            .unwrap();
        assert_eq!(p.host(), "low");

        // ALL_PROXY is the fallback; empty values count as unset.
        let vars = env(&[("https_proxy", ""), ("ALL_PROXY", "all:3")]);
        let p = ProxyConfig::from_env_with("example.com", true, &vars)
            .unwrap()
            .unwrap();
        assert_eq!((p.host(), p.port()), ("all", 3));

        assert_eq!(
            ProxyConfig::from_env_with("example.com", true, env(&[])).unwrap(),
            None
        );
    }

    #[test]
    fn httpoxy_guard() {
        let vars = env(&[("HTTP_PROXY", "evil:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(
            ProxyConfig::from_env_with("example.com", false, &vars).unwrap(),
            None
        );
        let vars = env(&[("HTTP_PROXY", "fine:1")]);
        assert!(
            ProxyConfig::from_env_with("example.com", false, &vars)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn env_no_proxy_and_loopback_bypass() {
        let vars = env(&[
            ("ALL_PROXY", "p:1"),
            ("NO_PROXY", "internal.example, 10.0.0.0/8"),
        ]);
        let direct = |h| {
            ProxyConfig::from_env_with(h, false, &vars)
                .unwrap()
                .is_none()
        };
        assert!(direct("internal.example"));
        assert!(direct("ws.internal.example"));
        assert!(direct("10.1.2.3"));
        assert!(direct("localhost"));
        assert!(direct("127.0.0.1"));
        assert!(direct("[::1]"));
        assert!(!direct("example.com"));
        assert!(!direct("11.1.2.3"));

        let bad = env(&[("ALL_PROXY", "socks5://p:1")]);
        assert!(ProxyConfig::from_env_with("example.com", false, bad).is_err());
    }

    #[test]
    fn no_proxy_rules() {
        assert!(no_proxy_matches("*", "anything.example"));
        assert!(no_proxy_matches("example.com", "example.com"));
        assert!(no_proxy_matches("example.com", "EXAMPLE.com."));
        assert!(no_proxy_matches("example.com", "a.b.example.com"));
        assert!(no_proxy_matches(".example.com", "a.example.com"));
        assert!(no_proxy_matches(".example.com", "example.com"));
        assert!(no_proxy_matches("*.example.com", "a.example.com"));
        assert!(!no_proxy_matches("example.com", "badexample.com"));
        assert!(!no_proxy_matches("example.com", "example.com.evil"));
        assert!(no_proxy_matches(
            "foo, example.com:8080 ,bar",
            "example.com"
        ));
        assert!(no_proxy_matches("192.168.1.1", "192.168.1.1"));
        assert!(!no_proxy_matches("192.168.1.1", "192.168.1.2"));
        assert!(no_proxy_matches("192.168.0.0/16", "192.168.77.1"));
        assert!(!no_proxy_matches("192.168.0.0/16", "192.169.0.1"));
        assert!(no_proxy_matches("0.0.0.0/0", "8.8.8.8"));
        assert!(no_proxy_matches("::1", "[::1]"));
        assert!(no_proxy_matches("[2001:db8::1]:443", "2001:db8::1"));
        assert!(no_proxy_matches("2001:db8::/32", "2001:db8:1::5"));
        assert!(!no_proxy_matches("2001:db8::/32", "2001:db9::5"));
        // Malformed entries match nothing rather than everything.
        assert!(!no_proxy_matches("10.0.0.0/99, /8, ., ,", "10.0.0.1"));
        assert!(!no_proxy_matches("", "example.com"));
        // A domain entry never matches an IP host.
        assert!(!no_proxy_matches("1.1", "1.1.1.1"));
    }

    #[test]
    fn host_validation() {
        assert!(ProxyConfig::new("proxy.example", 1).is_ok());
        assert!(ProxyConfig::new("[::1]", 1).is_ok());
        assert!(ProxyConfig::new("", 1).is_err());
        assert!(ProxyConfig::new("a b", 1).is_err());
        assert!(ProxyConfig::new("a\r\nb", 1).is_err());
        assert!(ProxyConfig::new("a/b", 1).is_err());
        assert!(ProxyConfig::new("a:b", 1).is_err());
    }

    async fn request_sent(host: &str, creds: Option<&Credentials>) -> (String, Result<(), Error>) {
        let (mut proxy_side, client_side) = tokio::io::duplex(4096);
        let server = async {
            let mut got = Vec::new();
            let mut chunk = [0u8; 256];
            while !got.ends_with(b"\r\n\r\n") {
                let n = proxy_side.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&chunk[..n]);
            }
            proxy_side
                .write_all(b"HTTP/1.1 200 OK\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(got).unwrap()
        };
        let client = connect_tunnel(client_side, host, 9000, creds);
        let (sent, res) = tokio::join!(server, client);
        (sent, res.map(|_| ()))
    }

    #[tokio::test]
    async fn connect_request_format() {
        let (sent, res) = request_sent("::1", None).await;
        res.unwrap();
        assert_eq!(
            sent,
            "CONNECT [::1]:9000 HTTP/1.1\r\nHost: [::1]:9000\r\n\r\n"
        );

        let creds = Credentials::new("Aladdin", "open sesame").unwrap();
        let (sent, res) = request_sent("example.com", Some(&creds)).await;
        res.unwrap();
        assert_eq!(
            sent,
            "CONNECT example.com:9000 HTTP/1.1\r\nHost: example.com:9000\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn target_host_injection_is_refused_before_sending() {
        let (_proxy_side, client_side) = tokio::io::duplex(64);
        let res = connect_tunnel(client_side, "h\r\nX-Evil: 1", 80, None).await;
        assert!(matches!(res, Err(Error::InvalidHost(_))));
    }

    #[test]
    fn reason_phrase_is_sanitized() {
        assert_eq!(sanitize_reason("Forbidden\u{1b}[31m"), "Forbidden[31m");
        assert_eq!(sanitize_reason(&"x".repeat(1000)).len(), 128);
    }
}
