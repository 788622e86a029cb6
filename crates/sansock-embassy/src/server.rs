//! The server side: checking and answering the opening handshake.

use sansock::handshake::{
    Decimal, HttpWrite, Request, ServerHandshake, SliceWriter, write_accept, write_error,
    write_reject,
};
use sansock::{Config, Connection};

use crate::engine::check_buffers;
use crate::{Buffers, Error, Transport, WebSocket, now, to_embassy};

/// A request check: `Err(status)` refuses the upgrade with that HTTP status (e.g. 401,
/// 403); anything outside 200–599 is sent as 403.
pub type Check<'o> = &'o dyn Fn(&Request<'_>) -> Result<(), u16>;

/// A document served to plain HTTP requests (a `GET` without `Upgrade: websocket`), so
/// one port can serve a web page and the WebSocket the page opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page<'o> {
    /// The `Content-Type`, e.g. `text/html; charset=utf-8`.
    pub content_type: &'o str,
    /// The body.
    pub body: &'o [u8],
}

/// What a server accepts, checked in this order (the first failing check answers):
///
/// | check | refusal |
/// |---|---|
/// | a valid RFC 6455 request (else [`page`](Self::page) for a plain `GET`) | 400, 405, 426, 431 (from the core) |
/// | [`path`](Self::path), when set | 404 |
/// | [`origins`](Self::origins), when not empty: a present `Origin` must be listed (clients without `Origin`, i.e. not browsers, pass) | 403 |
/// | [`check`](Self::check), when set | its status |
/// | [`subprotocols`](Self::subprotocols): the client's most preferred one the server supports is chosen; none and [`require_subprotocol`](Self::require_subprotocol) | 400 |
///
/// ```
/// use sansock_embassy::{AcceptOptions, Request};
/// fn token_ok(req: &Request<'_>) -> Result<(), u16> {
///     if req.query == Some("token=42") { Ok(()) } else { Err(401) }
/// }
/// let options = AcceptOptions::new()
///     .path("/ws")
///     .origins(&["http://192.168.1.20"])
///     .subprotocols(&["led.v1"])
///     .check(&token_ok)
///     .page("text/html; charset=utf-8", b"<html>...</html>");
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct AcceptOptions<'o> {
    /// The only path accepted (`None`: any path).
    pub path: Option<&'o str>,
    /// Allowed `Origin` values (empty: any).
    pub origins: &'o [&'o str],
    /// Subprotocols the server speaks.
    pub subprotocols: &'o [&'o str],
    /// Refuse clients that offer none of [`subprotocols`](Self::subprotocols).
    pub require_subprotocol: bool,
    /// A final check of the request.
    pub check: Option<Check<'o>>,
    /// Extra headers of the `101` answer (e.g. `Set-Cookie`).
    pub headers: &'o [(&'o str, &'o str)],
    /// The answer to plain HTTP `GET` requests (no `Upgrade`); `None` answers 400.
    pub page: Option<Page<'o>>,
}

impl<'o> AcceptOptions<'o> {
    /// Accept every valid request, no subprotocol, no page.
    pub const fn new() -> Self {
        AcceptOptions {
            path: None,
            origins: &[],
            subprotocols: &[],
            require_subprotocol: false,
            check: None,
            headers: &[],
            page: None,
        }
    }

    /// Sets [`path`](Self::path).
    pub const fn path(mut self, path: &'o str) -> Self {
        self.path = Some(path);
        self
    }

    /// Sets [`origins`](Self::origins).
    pub const fn origins(mut self, origins: &'o [&'o str]) -> Self {
        self.origins = origins;
        self
    }

    /// Sets [`subprotocols`](Self::subprotocols).
    pub const fn subprotocols(mut self, subprotocols: &'o [&'o str]) -> Self {
        self.subprotocols = subprotocols;
        self
    }

    /// Sets [`require_subprotocol`](Self::require_subprotocol).
    pub const fn require_subprotocol(mut self, required: bool) -> Self {
        self.require_subprotocol = required;
        self
    }

    /// Sets [`check`](Self::check).
    pub const fn check(mut self, check: Check<'o>) -> Self {
        self.check = Some(check);
        self
    }

    /// Sets [`headers`](Self::headers).
    pub const fn headers(mut self, headers: &'o [(&'o str, &'o str)]) -> Self {
        self.headers = headers;
        self
    }

    /// Sets [`page`](Self::page).
    pub const fn page(mut self, content_type: &'o str, body: &'o [u8]) -> Self {
        self.page = Some(Page { content_type, body });
        self
    }
}

impl core::fmt::Debug for AcceptOptions<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AcceptOptions")
            .field("path", &self.path)
            .field("origins", &self.origins)
            .field("subprotocols", &self.subprotocols)
            .field("require_subprotocol", &self.require_subprotocol)
            .field("check", &self.check.map(|_| "Fn"))
            .field("headers", &self.headers)
            .field("page", &self.page.map(|p| (p.content_type, p.body.len())))
            .finish()
    }
}

/// The decision on a complete request (or a failed parse): what was written into the
/// write buffer and what follows.
#[derive(Debug)]
pub(crate) enum Answer<'o> {
    /// `101` written (`len` bytes); the request head was `consumed` bytes.
    Accept {
        len: usize,
        consumed: usize,
        subprotocol: Option<&'o str>,
    },
    /// A refusal or a page: head (and short body) written (`len` bytes), then `body`.
    Refuse {
        len: usize,
        status: u16,
        body: &'o [u8],
    },
}

/// Decide on `parsed` (the core's verdict on the request) and write the answer into
/// `out`.
pub(crate) fn answer<'o>(
    options: &AcceptOptions<'o>,
    parsed: Result<Request<'_>, sansock::Error>,
    out: &mut [u8],
) -> Result<Answer<'o>, Error> {
    let mut w = SliceWriter::new(out);
    let write_err = |e: sansock::Error| match e {
        sansock::Error::BufferTooSmall => Error::BufferTooSmall {
            buffer: "write",
            needed: 256,
        },
        e => Error::Protocol(e),
    };
    let req = match parsed {
        Ok(req) => req,
        Err(sansock::Error::MissingUpgrade | sansock::Error::MissingConnectionUpgrade)
            if options.page.is_some() =>
        {
            let page = options.page.unwrap_or(Page {
                content_type: "",
                body: &[],
            });
            write_page_head(&page, &mut w).map_err(write_err)?;
            return Ok(Answer::Refuse {
                len: w.len(),
                status: 200,
                body: page.body,
            });
        }
        Err(e) => {
            write_error(&e, &mut w).map_err(write_err)?;
            return Ok(Answer::Refuse {
                len: w.len(),
                status: e.http_status().unwrap_or(500),
                body: &[],
            });
        }
    };
    let refusal = if options.path.is_some_and(|p| p != req.path) {
        Some(404)
    } else if !options.origins.is_empty()
        && req.origin().is_some_and(|o| !options.origins.contains(&o))
    {
        Some(403)
    } else if let Some(Err(status)) = options.check.map(|check| check(&req)) {
        Some(if (200..=599).contains(&status) {
            status
        } else {
            403
        })
    } else {
        None
    };
    let subprotocol = req
        .subprotocols()
        .find_map(|offered| options.subprotocols.iter().find(|s| **s == offered))
        .copied();
    let refusal = refusal.or((options.require_subprotocol && subprotocol.is_none()).then_some(400));
    if let Some(status) = refusal {
        write_reject(status, &[], &[], &mut w).map_err(write_err)?;
        return Ok(Answer::Refuse {
            len: w.len(),
            status,
            body: &[],
        });
    }
    write_accept(req.key, subprotocol, None, options.headers, &mut w).map_err(write_err)?;
    Ok(Answer::Accept {
        len: w.len(),
        consumed: req.consumed,
        subprotocol,
    })
}

fn write_page_head(page: &Page<'_>, w: &mut SliceWriter<'_>) -> Result<(), sansock::Error> {
    if !page
        .content_type
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
    {
        return Err(sansock::Error::InvalidRequest(
            "page content type contains control characters",
        ));
    }
    w.put(b"HTTP/1.1 200 OK\r\nContent-Type: ")?;
    w.put(page.content_type.as_bytes())?;
    w.put(b"\r\nContent-Length: ")?;
    w.put(Decimal::new(page.body.len() as u64).as_bytes())?;
    w.put(b"\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")
}

/// Parse what arrived so far: `Ok(None)` to read more.
pub(crate) fn parse<'r>(
    hs: &ServerHandshake,
    input: &'r [u8],
    capacity: usize,
) -> Option<Result<Request<'r>, sansock::Error>> {
    match hs.parse_request(input) {
        Ok(Some(req)) => Some(Ok(req)),
        // The read buffer is full and the head is still not complete: too large for us.
        Ok(None) if input.len() >= capacity => Some(Err(sansock::Error::HeadersTooLarge)),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Performs the server's opening handshake over `io` (an accepted `TcpSocket`, or any
/// [`Transport`]): reads the request, checks it against `options`, and answers.
///
/// On success returns the open connection and the chosen subprotocol. A request that is
/// refused — invalid, failing a check, or a plain HTTP `GET` answered with the
/// [`page`](AcceptOptions::page) — is answered, the transport is shut down, and
/// [`Error::NotUpgraded`] says with which status. Bounded by
/// `config.handshake_timeout` (answered with 408).
///
/// For many clients on one port, see [`WsServer`](crate::WsServer).
///
/// ```no_run
/// # async fn demo(stack: embassy_net::Stack<'_>) -> Result<(), sansock_embassy::Error> {
/// use embassy_net::tcp::TcpSocket;
/// use sansock_embassy::{AcceptOptions, Buffers, Config, Event, accept};
/// let (mut tcp_rx, mut tcp_tx) = ([0u8; 1024], [0u8; 1024]);
/// let (mut read, mut write) = ([0u8; 1024], [0u8; 512]);
/// let mut socket = TcpSocket::new(stack, &mut tcp_rx, &mut tcp_tx);
/// socket.accept(8080).await?;
/// let options = AcceptOptions::new().path("/echo");
/// let (mut ws, _) = accept(
///     &mut socket, &options, Config::microcontroller(), Buffers::new(&mut read, &mut write),
/// ).await?;
/// let mut echo = [0u8; 128];
/// while let Some(event) = ws.recv().await {
///     if let Event::Text(t) = event? {
///         let n = t.len().min(echo.len());
///         echo[..n].copy_from_slice(&t.as_bytes()[..n]);
///         ws.send_binary(&echo[..n]).await?;
///     }
/// }
/// # Ok(()) }
/// ```
pub async fn accept<'b, 'o, T: Transport>(
    mut io: T,
    options: &AcceptOptions<'o>,
    config: Config,
    buffers: Buffers<'b>,
) -> Result<(WebSocket<'b, T>, Option<&'o str>), Error> {
    check_buffers(&buffers)?;
    let hs = ServerHandshake::new(&config, now());
    let deadline = hs.poll_timeout().map(to_embassy);
    let capacity = buffers.read.len();
    let read_request = async {
        let mut len = 0;
        loop {
            let n = io.read(&mut buffers.read[len..]).await.map_err(Error::io)?;
            if n == 0 {
                return Err(Error::Protocol(sansock::Error::ConnectionReset));
            }
            len += n;
            if let Some(parsed) = parse(&hs, &buffers.read[..len], capacity) {
                let decision = answer(options, parsed, buffers.write)?;
                return Ok((decision, len));
            }
        }
    };
    let outcome = match deadline {
        Some(at) => match embassy_time::with_deadline(at, read_request).await {
            Ok(r) => r,
            Err(_) => {
                let mut w = SliceWriter::new(&mut *buffers.write);
                write_error(&sansock::Error::HandshakeTimeout, &mut w)?;
                let len = w.len();
                Ok((
                    Answer::Refuse {
                        len,
                        status: 408,
                        body: &[],
                    },
                    0,
                ))
            }
        },
        None => read_request.await,
    };
    let (decision, len) = match outcome {
        Ok(o) => o,
        Err(e) => {
            io.abort();
            return Err(e);
        }
    };
    match decision {
        Answer::Accept {
            len: out,
            consumed,
            subprotocol,
        } => {
            io.write_all(&buffers.write[..out])
                .await
                .map_err(Error::io)?;
            io.push().await.map_err(Error::io)?;
            buffers.read.copy_within(consumed..len, 0);
            let conn = Connection::server(config, now());
            Ok((
                WebSocket::from_upgraded(io, conn, buffers, len - consumed)?,
                subprotocol,
            ))
        }
        Answer::Refuse {
            len: out,
            status,
            body,
        } => {
            let timeout = crate::engine::to_duration(config.close_timeout);
            let respond = async {
                io.write_all(&buffers.write[..out]).await?;
                io.write_all(body).await?;
                io.shutdown().await
            };
            if !matches!(
                embassy_time::with_timeout(timeout, respond).await,
                Ok(Ok(()))
            ) {
                io.abort();
            }
            Err(Error::NotUpgraded { status })
        }
    }
}
