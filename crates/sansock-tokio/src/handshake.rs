//! The opening handshake over a stream, both roles. The HTTP rules live in
//! [`sansock::handshake`]; this module only reads and writes the bytes and keeps the
//! deadline.

use bytes::{Buf, BytesMut};
use sansock::RandomSource;
use sansock::handshake::client::{ClientHandshake, ClientRequest, ResponseStatus};
use sansock::handshake::server::{
    OwnedRequest, Request, ServerHandshake, write_accept, write_error, write_reject,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use crate::Error;
use crate::ws::{Config, WebSocket};

/// What the server answered to a successful client handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// The subprotocol the server chose, if any.
    pub subprotocol: Option<String>,
    /// The raw `Sec-WebSocket-Extensions` answer, if any.
    pub extensions: Option<String>,
    /// Every response header, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl HandshakeResponse {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

pub(crate) struct OsRng;

impl RandomSource for OsRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        use rand::{RngCore, SeedableRng};
        rand::rngs::StdRng::from_os_rng().fill_bytes(dest);
    }
}

fn now_of(epoch: tokio::time::Instant) -> sansock::Instant {
    sansock::Instant::from_millis(epoch.elapsed().as_millis() as u64)
}

/// Perform the client handshake on `stream` (already connected, TLS already done).
///
/// A non-101 answer is [`Error::Rejected`] with the whole response, so the caller can
/// follow a 401 challenge or report a 403. A refusal without `Content-Length` (or
/// `Transfer-Encoding`) has a body that runs until the server closes the connection
/// (RFC 9112 §6.3); it is read until then, the handshake deadline, or
/// `max_header_bytes`, whichever comes first.
pub async fn client_handshake<S>(
    mut stream: S,
    request: &ClientRequest<'_>,
    config: Config,
) -> Result<(WebSocket<S>, HandshakeResponse), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let epoch = tokio::time::Instant::now();
    let mut out = Vec::with_capacity(256);
    let hs = ClientHandshake::new(
        request,
        &mut OsRng,
        &config.protocol,
        now_of(epoch),
        &mut out,
    )?;
    let deadline = hs
        .poll_timeout()
        .map(|t| epoch + std::time::Duration::from_millis(t.as_millis()));
    let work = async {
        stream.write_all(&out).await?;
        stream.flush().await?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            match hs.parse_response(request, &buf)? {
                ResponseStatus::Partial => continue,
                ResponseStatus::Rejected(r) => {
                    debug!(status = r.status, "handshake rejected");
                    let response = r.to_owned_response();
                    let consumed = r.consumed;
                    buf.advance(consumed);
                    return Ok(Err((response, buf)));
                }
                ResponseStatus::Accepted(a) => {
                    let response = HandshakeResponse {
                        subprotocol: a.subprotocol.map(str::to_owned),
                        extensions: a
                            .headers
                            .get_str("sec-websocket-extensions")
                            .map(str::to_owned),
                        headers: a
                            .headers
                            .iter()
                            .map(|(n, v)| (n.to_owned(), v.to_vec()))
                            .collect(),
                    };
                    let consumed = a.consumed;
                    buf.advance(consumed);
                    return Ok(Ok((buf.freeze(), response)));
                }
            }
        }
    };
    let outcome = match deadline {
        Some(d) => tokio::time::timeout_at(d, work)
            .await
            .map_err(|_| Error::Protocol(sansock::Error::HandshakeTimeout))??,
        None => work.await?,
    };
    let (leftover, response) = match outcome {
        Ok(accepted) => accepted,
        Err((mut response, mut rest)) => {
            if body_until_close(&response) {
                // Best effort: the status and headers are the answer; a body cut short
                // by the deadline, the limit or a broken connection is still reported.
                let limit = config.protocol.max_header_bytes;
                let read_rest = async {
                    while rest.len() < limit {
                        if stream.read_buf(&mut rest).await? == 0 {
                            break;
                        }
                    }
                    Ok::<_, std::io::Error>(())
                };
                let _ = match deadline {
                    Some(d) => tokio::time::timeout_at(d, read_rest).await.ok(),
                    None => Some(read_rest.await),
                };
                rest.truncate(limit);
                response.body = rest.freeze();
            }
            return Err(Error::Rejected(Box::new(response)));
        }
    };
    #[cfg(feature = "deflate")]
    let deflate = match (&config.deflate, &response.extensions) {
        (Some(offer), Some(answer)) => sansock::deflate::check_response(
            sansock::handshake::ExtensionOffers::from_value(answer),
            offer,
        )?
        .map(|params| (params, offer.clone())),
        _ => None,
    };
    debug!(subprotocol = ?response.subprotocol, extensions = ?response.extensions, "client handshake complete");
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut ws = WebSocket::from_upgraded(stream, sansock::Role::Client, config, leftover);
    #[cfg(feature = "deflate")]
    if let Some((params, offer)) = deflate {
        ws.enable_deflate(params, &offer);
    }
    Ok((ws, response))
}

/// Whether a refusal's body is delimited by the end of the connection (RFC 9112 §6.3):
/// it declared no length, and its status allows a body.
fn body_until_close(response: &sansock::handshake::client::OwnedResponse) -> bool {
    !matches!(response.status, 100..=199 | 204 | 304)
        && response.header("content-length").is_none()
        && response.header("transfer-encoding").is_none()
}

/// The server's answer to an upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Upgrade the connection.
    Accept(Accept),
    /// Refuse it with any status, headers and body (401 with `WWW-Authenticate`, 403 for
    /// a bad Origin, …).
    Reject {
        /// The HTTP status, 200–599.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
}

impl Answer {
    /// Accept with no subprotocol and no extra headers.
    pub fn accept() -> Self {
        Answer::Accept(Accept::default())
    }

    /// Reject with `status` and a plain-text body.
    pub fn reject(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Answer::Reject {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// How to accept an upgrade: the chosen subprotocol, the extension answer, extra headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    /// The subprotocol chosen among those the client offered.
    pub subprotocol: Option<String>,
    /// The raw `Sec-WebSocket-Extensions` answer.
    pub extensions: Option<String>,
    /// Extra response headers, e.g. `Set-Cookie`.
    pub headers: Vec<(String, String)>,
}

impl Accept {
    /// Choose a subprotocol.
    pub fn subprotocol(mut self, p: impl Into<String>) -> Self {
        self.subprotocol = Some(p.into());
        self
    }

    /// Add a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// An upgrade request read from a stream, waiting for the application's decision.
///
/// ```no_run
/// # async fn demo(stream: tokio::net::TcpStream) -> Result<(), sansock_tokio::Error> {
/// use sansock_tokio::handshake::{read_request, Accept};
/// let pending = read_request(stream, Default::default()).await?;
/// if pending.request().origin() != Some("https://example.com") {
///     return pending.reject(403, &[], b"origin not allowed").await;
/// }
/// let path = pending.request().path.to_owned();
/// let mut ws = pending.accept(Accept::default().header("Set-Cookie", "seen=1")).await?;
/// ws.send(format!("welcome to {path}")).await?;
/// # Ok(()) }
/// ```
pub struct PendingUpgrade<S> {
    stream: S,
    request: OwnedRequest,
    leftover: bytes::Bytes,
    config: Config,
}

impl<S> std::fmt::Debug for PendingUpgrade<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingUpgrade")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> PendingUpgrade<S> {
    /// The request: path, query, headers, Origin, cookies, offered subprotocols and
    /// extensions.
    pub fn request(&self) -> Request<'_> {
        self.request.request()
    }

    /// The request as an owned value (to keep after accepting).
    pub fn owned_request(&self) -> &OwnedRequest {
        &self.request
    }

    /// The stream, e.g. to read its peer address or TLS session.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Send the 101 answer and open the WebSocket.
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    pub async fn accept(mut self, mut answer: Accept) -> Result<WebSocket<S>, Error> {
        // permessage-deflate under the configured policy, unless the application
        // answered the extensions itself.
        #[cfg(feature = "deflate")]
        let deflate = match (&self.config.deflate, &answer.extensions) {
            (Some(policy), None) => {
                match sansock::deflate::negotiate(self.request.request().extensions(), policy)? {
                    Some((params, header)) => {
                        answer.extensions = Some(header);
                        Some((params, policy.clone()))
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let headers: Vec<(&str, &str)> = answer
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let mut out = Vec::with_capacity(256);
        write_accept(
            self.request.request().key,
            answer.subprotocol.as_deref(),
            answer.extensions.as_deref(),
            &headers,
            &mut out,
        )?;
        self.stream.write_all(&out).await?;
        self.stream.flush().await?;
        debug!(path = self.request.request().path, subprotocol = ?answer.subprotocol, "server handshake complete");
        #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
        let mut ws = WebSocket::from_upgraded(
            self.stream,
            sansock::Role::Server,
            self.config,
            self.leftover,
        );
        #[cfg(feature = "deflate")]
        if let Some((params, policy)) = deflate {
            ws.enable_deflate(params, &policy);
        }
        Ok(ws)
    }

    /// Refuse the upgrade and close the stream.
    pub async fn reject(
        mut self,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), Error> {
        let mut out = Vec::with_capacity(128 + body.len());
        write_reject(status, headers, body, &mut out)?;
        debug!(status, "upgrade rejected");
        self.stream.write_all(&out).await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    /// Act on an [`Answer`]: `Ok(Some(ws))` when accepted, `Ok(None)` when rejected.
    pub async fn answer(self, answer: Answer) -> Result<Option<WebSocket<S>>, Error> {
        match answer {
            Answer::Accept(a) => self.accept(a).await.map(Some),
            Answer::Reject {
                status,
                headers,
                body,
            } => {
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                self.reject(status, &h, &body).await.map(|()| None)
            }
        }
    }
}

/// Read and check an upgrade request from `stream`, within `handshake_timeout` and the
/// header limits. A request that breaks RFC 6455 §4.2.1 is answered here with its status
/// (400, 405, 426 with `Sec-WebSocket-Version: 13`, 431, 408 on timeout) and returned as
/// [`Error::Protocol`].
pub async fn read_request<S>(mut stream: S, config: Config) -> Result<PendingUpgrade<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let epoch = tokio::time::Instant::now();
    let hs = ServerHandshake::new(&config.protocol, now_of(epoch));
    let deadline = hs
        .poll_timeout()
        .map(|t| epoch + std::time::Duration::from_millis(t.as_millis()));
    let mut buf = BytesMut::with_capacity(1024);
    let parsed = async {
        loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            match hs.parse_request(&buf) {
                Ok(Some(req)) => return Ok(Ok((req.to_owned_request(), req.consumed))),
                Ok(None) => continue,
                Err(e) => return Ok(Err(e)),
            }
        }
    };
    let outcome = match deadline {
        Some(d) => tokio::time::timeout_at(d, parsed)
            .await
            .unwrap_or(Ok(Err(sansock::Error::HandshakeTimeout)))?,
        None => parsed.await?,
    };
    match outcome {
        Ok((request, consumed)) => {
            buf.advance(consumed);
            Ok(PendingUpgrade {
                stream,
                request,
                leftover: buf.freeze(),
                config,
            })
        }
        Err(e) => {
            debug!(error = %e, status = ?e.http_status(), "bad upgrade request");
            let mut out = Vec::new();
            if write_error(&e, &mut out).is_ok() {
                // The client may already be gone; the error to report is the request's.
                let _ = stream.write_all(&out).await;
                let _ = stream.shutdown().await;
            }
            Err(Error::Protocol(e))
        }
    }
}

/// Accept a WebSocket on `stream` with the default configuration, any path, no
/// subprotocol.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// let (stream, _) = listener.accept().await?;
/// let mut ws = sansock_tokio::accept(stream).await?;
/// while let Some(msg) = ws.recv().await {
///     let msg = msg?;
///     if msg.is_data() { ws.send(msg).await?; }
/// }
/// # Ok(()) }
/// ```
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with_config(stream, Config::default()).await
}

/// [`accept`] with a configuration.
pub async fn accept_with_config<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    config: Config,
) -> Result<WebSocket<S>, Error> {
    read_request(stream, config)
        .await?
        .accept(Accept::default())
        .await
}

/// Accept or reject after looking at the request. `Ok(None)` means the callback rejected
/// it (the rejection was sent). For async decisions use [`read_request`].
pub async fn accept_with<S, F>(
    stream: S,
    config: Config,
    callback: F,
) -> Result<Option<WebSocket<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&Request<'_>) -> Answer,
{
    let pending = read_request(stream, config).await?;
    let answer = callback(&pending.request());
    pending.answer(answer).await
}
