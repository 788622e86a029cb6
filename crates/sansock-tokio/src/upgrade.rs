//! WebSocket upgrades inside a [hyper] 1.x server (feature `hyper`).
//!
//! hyper parses the request; the rules of RFC 6455 §4.2.1 are still the core's
//! ([`sansock::handshake::server::check_request`]), so a request is accepted or refused
//! here exactly as [`crate::handshake::read_request`] would. [`upgrade`] answers a valid
//! request with the `101` response for the application to return, and a
//! [`HyperWebSocket`] future that yields the [`WebSocket`] once hyper has sent that
//! response and handed the connection over. A refused request gives an [`UpgradeError`]
//! with the status the RFC calls for, ready to return as a response.
//!
//! The connection must be served with upgrades enabled:
//! `hyper::server::conn::http1::Builder::new().serve_connection(io, service).with_upgrades()`.
//! Only HTTP/1.1 upgrades are supported, not WebSockets over HTTP/2 (RFC 8441).
//!
//! Bytes the client sent right after its request head (its first frames, in the same
//! TCP segment) are not lost: hyper keeps what it read past the head and
//! [`Upgraded`] replays it before reading from the socket.
//!
//! [hyper]: https://docs.rs/hyper/1

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use sansock::handshake::accept_key;
use sansock::handshake::server::{check_accept, check_request, error_answer, wants_websocket};
use tracing::debug;

use crate::handshake::Accept;
use crate::ws::{Config, WebSocket};
use crate::{Error, Role};

/// The WebSocket a [`HyperWebSocket`] yields: over hyper's upgraded connection.
pub type UpgradedWebSocket = WebSocket<TokioIo<Upgraded>>;

/// Whether `req` asks for a WebSocket upgrade (`Upgrade: websocket` and
/// `Connection: upgrade`), valid or not.
///
/// Use it to route: such a request is answered by [`upgrade`] (with `101`, or with the
/// status of its [`UpgradeError`]), any other by the HTTP application.
pub fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    wants_websocket(header_list(req))
}

/// Accepts a WebSocket upgrade request with no subprotocol and no extra headers.
///
/// Returns the `101 Switching Protocols` response, which the service must return for
/// the upgrade to happen, and a future that resolves to the [`WebSocket`] once hyper has
/// sent it; spawn a task that awaits it. A request that breaks RFC 6455 §4.2.1 gives an
/// [`UpgradeError`] carrying the status to answer (400, 405, or 426 with
/// `Sec-WebSocket-Version: 13`); [`UpgradeError::to_response`] builds that answer. The
/// request is left untouched then.
///
/// The `101` response's body type `R` is the service's (an empty body:
/// `http_body_util::Full<Bytes>`, `Empty<Bytes>`, `String`, … anything with `Default`).
///
/// ```no_run
/// use std::convert::Infallible;
///
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper::body::Incoming;
/// use hyper::server::conn::http1;
/// use hyper::service::service_fn;
/// use hyper::{Request, Response};
/// use hyper_util::rt::TokioIo;
/// use sansock_tokio::upgrade::{is_upgrade_request, upgrade};
///
/// async fn handle(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     if !is_upgrade_request(&req) {
///         return Ok(Response::new(Full::from("a WebSocket echo lives here")));
///     }
///     match upgrade(&mut req, Default::default()) {
///         Ok((response, websocket)) => {
///             tokio::spawn(async move {
///                 let mut ws = websocket.await?;
///                 while let Some(msg) = ws.recv().await {
///                     let msg = msg?;
///                     if msg.is_data() {
///                         ws.send(msg).await?;
///                     }
///                 }
///                 Ok::<_, sansock_tokio::Error>(())
///             });
///             Ok(response)
///         }
///         Err(refused) => Ok(refused.to_response()),
///     }
/// }
///
/// # async fn serve() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     tokio::spawn(
///         http1::Builder::new()
///             .serve_connection(TokioIo::new(tcp), service_fn(handle))
///             .with_upgrades(),
///     );
/// }
/// # }
/// ```
pub fn upgrade<B, R: Default>(
    req: &mut Request<B>,
    config: Config,
) -> Result<(Response<R>, HyperWebSocket), UpgradeError> {
    upgrade_with(req, config, Accept::default())
}

/// [`upgrade`] with a chosen subprotocol, an extension answer and extra response headers.
///
/// The subprotocol must be one the client offered (see [`offered_subprotocols`]); the
/// parameters are checked like [`crate::PendingUpgrade::accept`] checks them, and a bad
/// one is an [`UpgradeError`] with status 500 (a bug of the application, not of the
/// client).
///
/// ```
/// use sansock_tokio::Accept;
/// use sansock_tokio::upgrade::{offered_subprotocols, upgrade_with};
///
/// let mut req = http::Request::get("/chat")
///     .header("Host", "example.com")
///     .header("Upgrade", "websocket")
///     .header("Connection", "Upgrade")
///     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
///     .header("Sec-WebSocket-Version", "13")
///     .header("Sec-WebSocket-Protocol", "v2.chat, v1.chat")
///     .body(())
///     .unwrap();
/// let mut accept = Accept::default().header("Set-Cookie", "seen=1");
/// if let Some(p) = offered_subprotocols(&req).find(|p| p.starts_with("v1.")) {
///     accept = accept.subprotocol(p);
/// }
/// let (response, _websocket) = upgrade_with::<_, String>(&mut req, Default::default(), accept)?;
/// assert_eq!(response.status(), 101);
/// assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// assert_eq!(response.headers()["sec-websocket-protocol"], "v1.chat");
/// # Ok::<(), sansock_tokio::upgrade::UpgradeError>(())
/// ```
pub fn upgrade_with<B, R: Default>(
    req: &mut Request<B>,
    config: Config,
    accept: Accept,
) -> Result<(Response<R>, HyperWebSocket), UpgradeError> {
    let target = request_target(req.uri());
    let checked = check_request(
        req.method().as_str(),
        &target,
        req.version() == Version::HTTP_11,
        header_list(req),
    )
    .map_err(|error| {
        debug!(%error, status = ?error.http_status(), "bad upgrade request");
        UpgradeError { error }
    })?;
    let extra: Vec<(&str, &str)> = accept
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    check_accept(
        accept.subprotocol.as_deref(),
        accept.extensions.as_deref(),
        &extra,
    )?;
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            &accept_key(checked.key.as_bytes())[..],
        );
    if let Some(p) = &accept.subprotocol {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    if let Some(e) = &accept.extensions {
        response = response.header(header::SEC_WEBSOCKET_EXTENSIONS, e);
    }
    for (name, value) in extra {
        response = response.header(name, value);
    }
    // `check_accept` already refused every name and value `http` would refuse.
    let response = response.body(R::default()).map_err(|_| {
        UpgradeError::from(sansock::Error::InvalidRequest(
            "response header refused by the http crate",
        ))
    })?;
    debug!(path = checked.path, subprotocol = ?accept.subprotocol, "upgrade accepted");
    drop(target);
    let websocket = HyperWebSocket {
        on_upgrade: hyper::upgrade::on(req),
        config: Some(config),
    };
    Ok((response, websocket))
}

/// The subprotocols the client offered in `req`, in its order of preference.
pub fn offered_subprotocols<B>(req: &Request<B>) -> impl Iterator<Item = &str> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim_matches([' ', '\t']))
        .filter(|p| !p.is_empty())
}

/// The request's headers as the core reads them.
fn header_list<B>(req: &Request<B>) -> impl Iterator<Item = (&str, &[u8])> {
    req.headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
}

/// The request target as it was sent: hyper keeps origin-form targets as they came
/// and absolute-form ones as a whole URI.
fn request_target(uri: &http::Uri) -> Cow<'_, str> {
    match (uri.scheme(), uri.authority(), uri.path_and_query()) {
        (None, None, Some(pq)) => Cow::Borrowed(pq.as_str()),
        _ => Cow::Owned(uri.to_string()),
    }
}

/// The WebSocket of an accepted upgrade, once hyper has sent the `101` response and
/// handed the connection over.
///
/// It fails with [`Error::Io`] when the upgrade did not happen: the client went away,
/// the service did not return the `101` response, or the connection was served without
/// `with_upgrades()`.
#[must_use = "the WebSocket is only available by awaiting this future"]
pub struct HyperWebSocket {
    on_upgrade: OnUpgrade,
    config: Option<Config>,
}

impl fmt::Debug for HyperWebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperWebSocket").finish_non_exhaustive()
    }
}

impl Future for HyperWebSocket {
    type Output = Result<UpgradedWebSocket, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = ready!(Pin::new(&mut self.on_upgrade).poll(cx))
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let config = self.config.take().unwrap_or_default();
        // `Upgraded` replays what hyper read past the request head before reading from
        // the socket, so there is nothing left over to hand to the connection.
        Poll::Ready(Ok(WebSocket::from_upgraded(
            TokioIo::new(upgraded),
            Role::Server,
            config,
            Bytes::new(),
        )))
    }
}

/// A refused upgrade request, with the HTTP answer RFC 6455 §4.2.1 calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeError {
    error: sansock::Error,
}

impl UpgradeError {
    /// The status to answer with: 400 for a malformed request, 405 for a method other
    /// than `GET`, 426 for a `Sec-WebSocket-Version` other than 13, 500 for a bad
    /// [`Accept`].
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(error_answer(&self.error).0)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The rule the request broke.
    pub fn error(&self) -> &sansock::Error {
        &self.error
    }

    /// The answer to return: [`status`](UpgradeError::status), its headers
    /// (`Sec-WebSocket-Version: 13` with 426, `Allow: GET` with 405) and the rule broken
    /// as a plain-text body, as [`crate::handshake::read_request`] would send it.
    pub fn to_response<R: From<Bytes>>(&self) -> Response<R> {
        let (_, headers) = error_answer(&self.error);
        let mut response = Response::new(R::from(Bytes::from(format!("{}\n", self.error))));
        *response.status_mut() = self.status();
        for (name, value) in headers {
            // The core's names and values are constants `http` accepts.
            if let Ok(name) = header::HeaderName::from_bytes(name.as_bytes()) {
                let value = header::HeaderValue::from_static(value);
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

impl From<sansock::Error> for UpgradeError {
    fn from(error: sansock::Error) -> Self {
        UpgradeError { error }
    }
}

impl From<UpgradeError> for Error {
    fn from(e: UpgradeError) -> Self {
        Error::Protocol(e.error)
    }
}

impl fmt::Display for UpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket upgrade refused with HTTP {}", self.status())
    }
}

impl std::error::Error for UpgradeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_back_as_sent() {
        for (sent, borrowed) in [
            ("/chat?room=1", true),
            ("ws://example.com/chat?q", false),
            ("http://example.com", false),
            ("example.com:443", false),
            ("*", true),
        ] {
            let uri: http::Uri = sent.parse().unwrap();
            let target = request_target(&uri);
            assert_eq!(matches!(target, Cow::Borrowed(_)), borrowed, "{sent}");
            // `http` spells an empty absolute path as `/`.
            assert_eq!(target.trim_end_matches('/'), sent, "{sent}");
        }
    }

    #[test]
    fn is_upgrade_request_looks_only_at_the_upgrade_headers() {
        let req = |upgrade: &str, connection: &str| {
            Request::get("/")
                .header("Upgrade", upgrade)
                .header("Connection", connection)
                .body(())
                .unwrap()
        };
        assert!(is_upgrade_request(&req("WebSocket", "keep-alive, Upgrade")));
        assert!(!is_upgrade_request(&req("h2c", "Upgrade")));
        assert!(!is_upgrade_request(&req("websocket", "close")));
        assert!(!is_upgrade_request(&Request::get("/").body(()).unwrap()));
    }

    #[test]
    fn offered_subprotocols_in_order() {
        let req = Request::get("/")
            .header("Sec-WebSocket-Protocol", "a, b ,")
            .header("Sec-WebSocket-Protocol", "c")
            .body(())
            .unwrap();
        assert!(offered_subprotocols(&req).eq(["a", "b", "c"]));
    }
}
