//! The little HTTP the server speaks besides the upgrade: reading a request head within
//! its limits, plain requests for a fallback (an HTML page beside the WebSocket), and
//! refusals.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sansock::handshake::server::{Request, ServerHandshake, write_error, write_reject};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Error;

/// A request head, as the server's admission checks and the HTTP fallback see it.
///
/// The standalone server builds it from what it read; an application that mounts the
/// server into its own HTTP stack builds it from its request to call
/// [`Server::admit`](super::Server::admit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    method: String,
    target: String,
    path_len: usize,
    headers: Vec<(String, Vec<u8>)>,
}

impl HttpRequest {
    /// A request with `method` and request target (`/path?query`).
    pub fn new(method: impl Into<String>, target: impl Into<String>) -> Self {
        let target = target.into();
        let path_len = target.find('?').unwrap_or(target.len());
        HttpRequest {
            method: method.into(),
            target,
            path_len,
            headers: Vec::new(),
        }
    }

    /// Add a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path of the target.
    pub fn path(&self) -> &str {
        &self.target[..self.path_len]
    }

    /// The query of the target, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.get(self.path_len + 1..)
    }

    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// A copy of an upgrade request parsed by the core (for example from
    /// [`PendingUpgrade::request`](crate::PendingUpgrade::request)).
    pub fn from_request(request: &Request<'_>) -> Self {
        let mut r = HttpRequest::new(request.method, request.target);
        r.headers = request
            .headers
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_vec()))
            .collect();
        r
    }

    fn from_parsed(req: &httparse::Request<'_, '_>) -> Option<Self> {
        let mut r = HttpRequest::new(req.method?, req.path?);
        r.headers = req
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect();
        Some(r)
    }
}

/// An HTTP answer: a page for a plain request, or a refusal of an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl HttpResponse {
    /// An empty answer with `status` (200–599).
    pub fn new(status: u16) -> Self {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// 200 with an HTML page.
    pub fn html(body: impl Into<Bytes>) -> Self {
        HttpResponse::new(200)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_body(body)
    }

    /// `status` with a plain-text body.
    pub fn text(status: u16, body: impl Into<Bytes>) -> Self {
        HttpResponse::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(body)
    }

    /// Add a header (not `Connection`, `Content-Length` or `Transfer-Encoding`: the
    /// server writes those).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The bytes on the wire, with `Content-Length` and `Connection: close`; without
    /// the body for a `HEAD` request.
    pub(crate) fn encode(&self, head_only: bool) -> Vec<u8> {
        let headers: Vec<(&str, &str)> = self.headers().collect();
        let mut out = Vec::with_capacity(128 + self.body.len());
        if write_reject(self.status, &headers, &self.body, &mut out).is_err() {
            out.clear();
            let _ = write_reject(500, &[], b"bad response from the application\n", &mut out);
            return out;
        }
        if head_only {
            out.truncate(out.len() - self.body.len());
        }
        out
    }
}

/// The view of a request head the admission checks need, over both
/// [`Request`] (what the server parsed) and [`HttpRequest`] (what a mounting
/// application gives).
pub(crate) trait Head: Sync {
    fn method(&self) -> &str;
    fn target(&self) -> &str;
    fn path(&self) -> &str;
    fn query(&self) -> Option<&str>;
    fn header(&self, name: &str) -> Option<&[u8]>;
    fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }
    /// Every value of the comma-separated list headers called `name`.
    fn subprotocols(&self) -> Vec<String>;
}

impl Head for Request<'_> {
    fn method(&self) -> &str {
        self.method
    }
    fn target(&self) -> &str {
        self.target
    }
    fn path(&self) -> &str {
        self.path
    }
    fn query(&self) -> Option<&str> {
        self.query
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        Request::header(self, name)
    }
    fn subprotocols(&self) -> Vec<String> {
        Request::subprotocols(self).map(str::to_owned).collect()
    }
}

impl Head for HttpRequest {
    fn method(&self) -> &str {
        &self.method
    }
    fn target(&self) -> &str {
        &self.target
    }
    fn path(&self) -> &str {
        HttpRequest::path(self)
    }
    fn query(&self) -> Option<&str> {
        HttpRequest::query(self)
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        HttpRequest::header(self, name)
    }
    fn subprotocols(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Protocol"))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    }
}

/// What arrived on a new connection.
pub(crate) enum Incoming {
    /// A valid upgrade request: parse `buf` again to borrow it.
    Upgrade(BytesMut),
    /// A complete request that is not an upgrade, and why it is not.
    Plain(HttpRequest, sansock::Error),
    /// A broken request (answered by the caller with its status).
    Bad(sansock::Error),
}

/// Read one request head, at most `max_header_bytes` (431 beyond). The caller bounds
/// the time.
pub(crate) async fn read_head<S>(
    stream: &mut S,
    hs: &ServerHandshake,
    max_headers: usize,
) -> Result<Incoming, Error>
where
    S: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        match hs.parse_request(&buf) {
            Ok(None) => continue,
            Ok(Some(_)) => return Ok(Incoming::Upgrade(buf)),
            Err(
                e @ (sansock::Error::MethodNotGet
                | sansock::Error::MissingUpgrade
                | sansock::Error::MissingConnectionUpgrade),
            ) => {
                // A complete, well-formed head that is no upgrade: a plain request.
                let mut slots = vec![httparse::EMPTY_HEADER; max_headers.max(1)];
                let mut req = httparse::Request::new(&mut slots);
                return Ok(match req.parse(&buf) {
                    Ok(httparse::Status::Complete(_)) => match HttpRequest::from_parsed(&req) {
                        Some(r) => Incoming::Plain(r, e),
                        None => Incoming::Bad(e),
                    },
                    _ => Incoming::Bad(e),
                });
            }
            Err(e) => return Ok(Incoming::Bad(e)),
        }
    }
}

/// Write `bytes` and close our side; then, if `linger`, drain what the client still
/// sends for a moment (at most 1 s), so the answer is not lost to a reset. Bounded in
/// time either way.
pub(crate) async fn answer_and_close<S>(stream: &mut S, bytes: &[u8], linger: bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(1), write).await,
        Ok(Ok(()))
    ) || !linger
    {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 1024];
        let mut drained = 0usize;
        while drained < 64 << 10 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// The bytes of the answer to a broken request.
pub(crate) fn error_answer(e: &sansock::Error) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = write_error(e, &mut out);
    out
}
