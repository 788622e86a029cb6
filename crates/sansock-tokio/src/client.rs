//! Connecting to a WebSocket server: `ws://` and `wss://`, proxies, credentials.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use sansock::handshake::client::ClientRequest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::{Instrument, debug, debug_span};

use crate::auth::{Credentials, DigestChallenge, generate_cnonce};
use crate::handshake::{HandshakeResponse, client_handshake};
use crate::prefixed::PrefixedStream;
use crate::proxy::{ProxyConfig, connect_via_proxy};
use crate::tls::{ClientConfig, ClientTlsStream, connect_tls, default_client_config};
use crate::url::WsUrl;
use crate::ws::{Config, WebSocket};
use crate::{Error, cookies};

/// The stream under a client WebSocket: plain TCP or TLS, maybe through a proxy tunnel.
#[derive(Debug)]
pub enum ClientStream {
    /// `ws://`.
    Plain(PrefixedStream<TcpStream>),
    /// `wss://`.
    Tls(Box<ClientTlsStream<PrefixedStream<TcpStream>>>),
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connect to `url` (`ws://…` or `wss://…`) with the defaults.
///
/// ```no_run
/// # async fn demo() -> Result<(), sansock_tokio::Error> {
/// let (mut ws, _response) = sansock_tokio::connect("ws://127.0.0.1:9001/chat").await?;
/// ws.send("hello").await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<(WebSocket<ClientStream>, HandshakeResponse), Error> {
    ClientBuilder::new(url)?.connect().await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyChoice {
    None,
    FromEnv,
}

/// Everything about a client connection beyond its URL.
///
/// ```no_run
/// # async fn demo() -> Result<(), sansock_tokio::Error> {
/// use sansock_tokio::ClientBuilder;
/// let (ws, response) = ClientBuilder::new("wss://example.com/feed?room=1")?
///     .origin("https://example.com")
///     .subprotocols(["v2.feed", "v1.feed"])
///     .header("X-Client", "sansock")
///     .cookie("session", "abc123")
///     .digest_auth("user", "secret")?
///     .connect_timeout(std::time::Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: WsUrl,
    origin: Option<String>,
    subprotocols: Vec<String>,
    extensions: Option<String>,
    headers: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    credentials: Option<Credentials>,
    basic_up_front: bool,
    config: Config,
    connect_timeout: Option<Duration>,
    tls: Option<Arc<ClientConfig>>,
    proxy: Option<ProxyConfig>,
    proxy_choice: ProxyChoice,
}

impl ClientBuilder {
    /// Start from a `ws://` or `wss://` URL. Userinfo in the URL becomes Basic
    /// credentials sent up front.
    pub fn new(url: &str) -> Result<Self, Error> {
        let url = WsUrl::parse(url)?;
        let credentials = url.credentials().cloned();
        Ok(ClientBuilder {
            basic_up_front: credentials.is_some(),
            url,
            origin: None,
            subprotocols: Vec::new(),
            extensions: None,
            headers: Vec::new(),
            cookies: Vec::new(),
            credentials,
            config: Config::default(),
            connect_timeout: Some(Duration::from_secs(10)),
            tls: None,
            proxy: None,
            proxy_choice: ProxyChoice::None,
        })
    }

    /// The `Origin` header.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Subprotocols to offer, most preferred first.
    pub fn subprotocols<I: IntoIterator<Item = impl Into<String>>>(mut self, protocols: I) -> Self {
        self.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// A raw `Sec-WebSocket-Extensions` offer.
    pub fn extensions(mut self, offer: impl Into<String>) -> Self {
        self.extensions = Some(offer.into());
        self
    }

    /// An extra request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A cookie for the `Cookie` header.
    pub fn cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// HTTP Basic credentials, sent with the first request.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Result<Self, Error> {
        self.credentials = Some(Credentials::new(user, password)?);
        self.basic_up_front = true;
        Ok(self)
    }

    /// Credentials used only when the server answers 401: Digest (RFC 7616) or Basic,
    /// whichever its challenge asks for, on a second request.
    pub fn digest_auth(mut self, user: &str, password: &str) -> Result<Self, Error> {
        self.credentials = Some(Credentials::new(user, password)?);
        self.basic_up_front = false;
        Ok(self)
    }

    /// The connection's limits, timers and buffers (the handshake timeout is
    /// `config.protocol.handshake_timeout`).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// How long the TCP (and proxy) connection may take; `None` waits forever.
    pub fn connect_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.connect_timeout = timeout.into();
        self
    }

    /// How long the opening handshake may take.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.protocol.handshake_timeout = timeout;
        self
    }

    /// A custom rustls configuration for `wss://` (own roots, custom verifier, client
    /// certificate for mutual TLS). Build it with
    /// [`tls::client_config`](crate::tls::client_config) or rustls directly, with an
    /// explicit crypto provider. Default: the webpki roots with ring.
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Tunnel through an HTTP proxy with `CONNECT`.
    pub fn proxy(mut self, proxy: ProxyConfig) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Take the proxy from `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY`. Off
    /// unless asked for.
    pub fn proxy_from_env(mut self) -> Self {
        self.proxy_choice = ProxyChoice::FromEnv;
        self
    }

    /// Connect, perform the handshake, and answer a 401 challenge once if credentials
    /// were given.
    pub async fn connect(self) -> Result<(WebSocket<ClientStream>, HandshakeResponse), Error> {
        let span = debug_span!("ws_connect", url = %self.url);
        async move {
            let authorization = if self.basic_up_front {
                self.credentials.as_ref().map(|c| c.basic_header_value())
            } else {
                None
            };
            match self.attempt(authorization.as_deref()).await {
                Err(Error::Rejected(resp))
                    if resp.status == 401 && self.credentials.is_some() && !self.basic_up_front =>
                {
                    let creds = self
                        .credentials
                        .as_ref()
                        .ok_or(Error::NoSupportedChallenge)?;
                    let challenges: Vec<&str> = resp
                        .headers
                        .iter()
                        .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
                        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
                        .collect();
                    let answer = match DigestChallenge::select(challenges.iter().copied()) {
                        Ok(challenge) => {
                            let cnonce = generate_cnonce()?;
                            challenge.authorization(
                                creds,
                                "GET",
                                self.url.path_and_query(),
                                1,
                                &cnonce,
                            )?
                        }
                        Err(_)
                            if challenges.iter().any(|c| {
                                c.trim_start().to_ascii_lowercase().starts_with("basic")
                            }) =>
                        {
                            creds.basic_header_value()
                        }
                        Err(e) => return Err(e),
                    };
                    debug!("answering 401 challenge");
                    self.attempt(Some(&answer)).await
                }
                other => other,
            }
        }
        .instrument(span)
        .await
    }

    async fn attempt(
        &self,
        authorization: Option<&str>,
    ) -> Result<(WebSocket<ClientStream>, HandshakeResponse), Error> {
        let stream = self.open_stream().await?;
        let subprotocols: Vec<&str> = self.subprotocols.iter().map(String::as_str).collect();
        let cookie =
            cookies::cookie_header(self.cookies.iter().map(|(n, v)| (n.as_str(), v.as_str())))?;
        let mut headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if let Some(c) = &cookie {
            headers.push(("Cookie", c));
        }
        if let Some(a) = authorization {
            headers.push(("Authorization", a));
        }
        let host = if self.url.host().contains(':') {
            format!("[{}]", self.url.host())
        } else {
            self.url.host().to_owned()
        };
        let mut request = ClientRequest::new(&host)
            .path(self.url.path_and_query())
            .subprotocols(&subprotocols)
            .headers(&headers);
        if !self.url.is_default_port() {
            request = request.port(self.url.port());
        }
        if let Some(o) = &self.origin {
            request = request.origin(o);
        }
        #[cfg(feature = "deflate")]
        let offer = match (&self.config.deflate, &self.extensions) {
            (Some(d), Some(e)) => Some(format!("{}, {e}", d.offer())),
            (Some(d), None) => Some(d.offer()),
            (None, e) => e.clone(),
        };
        #[cfg(not(feature = "deflate"))]
        let offer = self.extensions.clone();
        if let Some(e) = &offer {
            request = request.extensions(e);
        }
        client_handshake(stream, &request, self.config.clone()).await
    }

    async fn open_stream(&self) -> Result<ClientStream, Error> {
        let proxy = match (&self.proxy, self.proxy_choice) {
            (Some(p), _) => Some(p.clone()),
            (None, ProxyChoice::FromEnv) => {
                ProxyConfig::from_env(self.url.host(), self.url.is_secure())?
            }
            (None, ProxyChoice::None) => None,
        };
        let connect = async {
            match &proxy {
                Some(p) => {
                    debug!(proxy = %p.authority(), "CONNECT through proxy");
                    connect_via_proxy(p, self.url.host(), self.url.port()).await
                }
                None => {
                    let tcp = TcpStream::connect((self.url.host(), self.url.port())).await?;
                    Ok(PrefixedStream::new(Vec::new(), tcp))
                }
            }
        };
        let tcp = match self.connect_timeout {
            Some(t) => tokio::time::timeout(t, connect)
                .await
                .map_err(|_| Error::Io(std::io::ErrorKind::TimedOut.into()))??,
            None => connect.await?,
        };
        let _ = tcp.get_ref().set_nodelay(true);
        if !self.url.is_secure() {
            return Ok(ClientStream::Plain(tcp));
        }
        let config = match &self.tls {
            Some(c) => c.clone(),
            None => default_client_config()?,
        };
        Ok(ClientStream::Tls(Box::new(
            connect_tls(tcp, self.url.host(), config).await?,
        )))
    }
}
