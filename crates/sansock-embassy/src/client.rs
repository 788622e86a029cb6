//! The client side: opening handshake over a connected transport.

use sansock::handshake::{ClientHandshake, ClientRequest, ResponseStatus, SliceWriter};
use sansock::{Config, Connection};

use crate::engine::check_buffers;
use crate::{Buffers, Error, RandCore, Transport, WebSocket, now, to_embassy};

/// Performs the client's opening handshake over `io` (a connected `TcpSocket`, or any
/// [`Transport`]) and returns the open connection and the subprotocol the server chose
/// (one of `request.subprotocols`).
///
/// The request (Host, path and query, Origin, subprotocols, extra headers, Basic auth) is
/// written into the write buffer and must fit; the response head must fit the read
/// buffer. Bytes that arrive after the response stay in the read buffer and belong to the
/// connection. `rng` (any `rand_core` 0.9 generator, e.g. esp-hal's `Rng`) supplies the
/// `Sec-WebSocket-Key` and every masking key. The whole handshake is bounded by
/// `config.handshake_timeout`.
///
/// Errors: [`Error::Rejected`] with the status when the server answers anything but
/// `101`; [`Error::Protocol`] for an invalid request or response (e.g.
/// [`sansock::Error::InvalidAccept`], [`sansock::Error::HandshakeTimeout`]);
/// [`Error::Io`] when the transport fails.
///
/// ```no_run
/// # async fn demo(socket: &mut embassy_net::tcp::TcpSocket<'_>, rng: impl rand_core::RngCore) -> Result<(), sansock_embassy::Error> {
/// use sansock_embassy::{Buffers, ClientRequest, Config, connect};
/// let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
/// let request = ClientRequest::new("example.com")
///     .path("/chat?room=1")
///     .origin("http://example.com")
///     .subprotocols(&["chat.v2", "chat"])
///     .headers(&[("X-Device", "esp32c3")])
///     .basic_auth("user", "secret");
/// let (mut ws, chosen) = connect(
///     socket, &request, Config::microcontroller(), rng, Buffers::new(&mut read, &mut write),
/// ).await?;
/// ws.send_text(chosen.unwrap_or("no subprotocol")).await?;
/// # Ok(()) }
/// ```
pub async fn connect<'b, 'r, T: Transport, G: rand_core::RngCore>(
    mut io: T,
    request: &ClientRequest<'r>,
    config: Config,
    mut rng: G,
    buffers: Buffers<'b>,
) -> Result<(WebSocket<'b, T, RandCore<G>>, Option<&'r str>), Error> {
    check_buffers(&buffers)?;
    let mut writer = SliceWriter::new(&mut *buffers.write);
    let hs = ClientHandshake::new(
        request,
        &mut RandCore(&mut rng),
        &config,
        now(),
        &mut writer,
    )
    .map_err(|e| match e {
        sansock::Error::BufferTooSmall => Error::BufferTooSmall {
            buffer: "write",
            needed: buffers_needed(request),
        },
        e => Error::Protocol(e),
    })?;
    let request_len = writer.len();

    let deadline = hs.poll_timeout().map(to_embassy);
    let exchange = async {
        io.write_all(&buffers.write[..request_len])
            .await
            .map_err(Error::io)?;
        io.push().await.map_err(Error::io)?;
        let mut len = 0;
        loop {
            if len == buffers.read.len() {
                return Err(Error::BufferTooSmall {
                    buffer: "read",
                    needed: len + 1,
                });
            }
            let n = io.read(&mut buffers.read[len..]).await.map_err(Error::io)?;
            if n == 0 {
                return Err(Error::Protocol(sansock::Error::ConnectionReset));
            }
            len += n;
            match hs.parse_response(request, &buffers.read[..len])? {
                ResponseStatus::Partial => {}
                ResponseStatus::Accepted(ok) => {
                    let chosen = ok
                        .subprotocol
                        .and_then(|p| request.subprotocols.iter().find(|o| **o == p).copied());
                    return Ok((ok.consumed, len, chosen));
                }
                ResponseStatus::Rejected(no) => {
                    return Err(Error::Rejected { status: no.status });
                }
            }
        }
    };
    let result = match deadline {
        Some(at) => embassy_time::with_deadline(at, exchange)
            .await
            .unwrap_or(Err(Error::Protocol(sansock::Error::HandshakeTimeout))),
        None => exchange.await,
    };
    let (consumed, len, chosen) = match result {
        Ok(r) => r,
        Err(e) => {
            io.abort();
            return Err(e);
        }
    };
    buffers.read.copy_within(consumed..len, 0);
    let conn = Connection::client(config, RandCore(rng), now());
    Ok((
        WebSocket::from_upgraded(io, conn, buffers, len - consumed)?,
        chosen,
    ))
}

/// A rough size for a request that did not fit: enough for the head the request asks for.
fn buffers_needed(request: &ClientRequest<'_>) -> usize {
    let headers: usize = request
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum();
    let protocols: usize = request.subprotocols.iter().map(|p| p.len() + 2).sum();
    let auth = request
        .basic_auth
        .map_or(0, |(u, p)| 24 + (u.len() + p.len() + 1).div_ceil(3) * 4);
    160 + request.host.len()
        + request.path_and_query.len()
        + request.origin.map_or(0, |o| o.len() + 10)
        + request.extensions.map_or(0, |e| e.len() + 28)
        + protocols
        + 26
        + auth
        + headers
}
