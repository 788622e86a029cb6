//! The opening handshake over a stream, both roles. The HTTP rules live in
//! [`sansock::handshake`]; this module only reads and writes the bytes and keeps the
//! deadline.

use bytes::{Buf, BytesMut};
use sansock::RandomSource;
use sansock::handshake::client::{ClientHandshake, ClientRequest, ResponseStatus};
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
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }
}

pub(crate) struct OsRng;

impl RandomSource for OsRng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, dest);
    }
}

fn now_of(epoch: tokio::time::Instant) -> sansock::Instant {
    sansock::Instant::from_millis(epoch.elapsed().as_millis() as u64)
}

/// Perform the client handshake on `stream` (already connected, TLS already done).
///
/// A non-101 answer is [`Error::Rejected`] with the whole response, so the caller can
/// follow a 401 challenge or report a 403.
pub async fn client_handshake<S>(mut stream: S, request: &ClientRequest<'_>, config: Config) -> Result<(WebSocket<S>, HandshakeResponse), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let epoch = tokio::time::Instant::now();
    let mut out = Vec::with_capacity(256);
    let hs = ClientHandshake::new(request, &mut OsRng, &config.protocol, now_of(epoch), &mut out)?;
    let deadline = hs.poll_timeout().map(|t| epoch + std::time::Duration::from_millis(t.as_millis()));
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
                    return Err(Error::Rejected(Box::new(r.to_owned_response())));
                }
                ResponseStatus::Accepted(a) => {
                    let response = HandshakeResponse {
                        subprotocol: a.subprotocol.map(str::to_owned),
                        extensions: a.headers.get_str("sec-websocket-extensions").map(str::to_owned),
                        headers: a.headers.iter().map(|(n, v)| (n.to_owned(), v.to_vec())).collect(),
                    };
                    let consumed = a.consumed;
                    buf.advance(consumed);
                    return Ok((buf.freeze(), response));
                }
            }
        }
    };
    let (leftover, response) = match deadline {
        Some(d) => tokio::time::timeout_at(d, work).await.map_err(|_| Error::Protocol(sansock::Error::HandshakeTimeout))??,
        None => work.await?,
    };
    debug!(subprotocol = ?response.subprotocol, "client handshake complete");
    Ok((WebSocket::from_upgraded(stream, sansock::Role::Client, config, leftover), response))
}
