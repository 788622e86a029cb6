//! A session: one open WebSocket of the server, its identity, its send queue, and the
//! task that runs it.

use std::fmt;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sansock::handshake::OwnedRequest;
use sansock::{CloseCode, Message};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tracing::{Instrument, info, info_span, warn};

use super::ServerInner;
use super::handler::{CloseInfo, Conn, Service};
use super::queue::{Next, Outbox, Pushed};
use crate::Error;
use crate::ws::{EncodedMessage, ReadHalf, WebSocket, WriteHalf};

/// A session's number, unique for the life of its [`Server`](super::Server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub(crate) u64);

impl SessionId {
    /// The number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No session has this id (any more).
    NoSuchSession,
    /// The session is closing or closed.
    Closed,
    /// The send queue was full: the message was dropped
    /// ([`Overflow::DropNewest`](super::Overflow::DropNewest)), or the session is being
    /// disconnected for it ([`Overflow::Disconnect`](super::Overflow::Disconnect)).
    QueueFull,
    /// Only text and binary messages can be queued; pings, pongs and the close
    /// handshake are the server's.
    NotData,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::NoSuchSession => "no such session",
            SendError::Closed => "the session is closed",
            SendError::QueueFull => "the session's send queue is full",
            SendError::NotData => "only text and binary messages can be sent",
        })
    }
}

impl std::error::Error for SendError {}

/// What is known about a connection when it becomes a session.
///
/// The server fills it for the connections it accepts. An application that upgrades
/// connections itself (for example with hyper) and hands them over with
/// [`Server::serve_connection`](super::Server::serve_connection) builds it, preferably
/// from an [`Admission`](super::Admission) so the server's limits and checks apply.
#[derive(Debug)]
pub struct ConnectionInfo {
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) peer_addr: Option<SocketAddr>,
    pub(crate) identity: Option<String>,
    pub(crate) subprotocol: Option<String>,
    pub(crate) request: Option<OwnedRequest>,
    pub(crate) admitted: Option<super::Admitted>,
}

impl ConnectionInfo {
    /// A connection to the service at `path` (with no query, peer, identity or
    /// subprotocol known yet).
    pub fn new(path: impl Into<String>) -> Self {
        ConnectionInfo {
            path: path.into(),
            query: None,
            peer_addr: None,
            identity: None,
            subprotocol: None,
            request: None,
            admitted: None,
        }
    }

    /// The query of the request target.
    pub fn with_query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// The peer's address.
    pub fn with_peer_addr(mut self, addr: SocketAddr) -> Self {
        self.peer_addr = Some(addr);
        self
    }

    /// The authenticated identity.
    pub fn with_identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// The subprotocol the 101 answer chose.
    pub fn with_subprotocol(mut self, subprotocol: impl Into<String>) -> Self {
        self.subprotocol = Some(subprotocol.into());
        self
    }

    /// The whole upgrade request, kept for the handler.
    pub fn with_request(mut self, request: OwnedRequest) -> Self {
        self.request = Some(request);
        self
    }
}

pub(crate) struct SessionInner {
    pub(crate) id: SessionId,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) peer_addr: Option<SocketAddr>,
    pub(crate) identity: Option<String>,
    pub(crate) subprotocol: Option<String>,
    pub(crate) request: Option<OwnedRequest>,
    pub(crate) opened_at: SystemTime,
    pub(crate) outbox: Outbox,
    pub(crate) ended: watch::Sender<bool>,
    pub(crate) server: Arc<ServerInner>,
}

/// A handle to one session: who it is, and a way to send to it or close it.
///
/// Cheap to clone; handlers get one per call, [`Server::sessions`](super::Server::sessions)
/// lists them. Sending never waits: the message joins the session's bounded queue (see
/// [`SendQueue`](super::SendQueue)).
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("Session")
            .field("id", &i.id)
            .field("path", &i.path)
            .field("peer_addr", &i.peer_addr)
            .field("identity", &i.identity)
            .field("subprotocol", &i.subprotocol)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.inner.id
    }

    /// The path of the upgrade request (which service it belongs to).
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The query of the upgrade request, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.inner.query.as_deref()
    }

    /// The peer's address, if known.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer_addr
    }

    /// The identity authentication gave, if any.
    pub fn identity(&self) -> Option<&str> {
        self.inner.identity.as_deref()
    }

    /// The negotiated subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.inner.subprotocol.as_deref()
    }

    /// The upgrade request (headers, cookies, …), when the server read it itself.
    pub fn request(&self) -> Option<&OwnedRequest> {
        self.inner.request.as_ref()
    }

    /// When the session opened.
    pub fn opened_at(&self) -> SystemTime {
        self.inner.opened_at
    }

    /// The server this session belongs to, e.g. to broadcast from a handler.
    pub fn server(&self) -> super::Server {
        super::Server {
            inner: self.inner.server.clone(),
        }
    }

    /// Queue a text or binary message for this session.
    pub fn send(&self, message: impl Into<Message>) -> Result<(), SendError> {
        let message = message.into();
        let encoded = self
            .inner
            .server
            .encode(&message)
            .ok_or(SendError::NotData)?;
        self.send_encoded(&encoded)
    }

    /// Queue a message framed once for many sessions (shared, not copied).
    pub fn send_encoded(&self, message: &EncodedMessage) -> Result<(), SendError> {
        match self.push(message) {
            Pushed::Queued => Ok(()),
            Pushed::Dropped | Pushed::Overflowed => Err(SendError::QueueFull),
            Pushed::Closed => Err(SendError::Closed),
        }
    }

    pub(crate) fn push(&self, message: &EncodedMessage) -> Pushed {
        let pushed = self
            .inner
            .outbox
            .push(message, &self.inner.server.settings.send_queue);
        if pushed == Pushed::Overflowed {
            warn!(
                session = self.inner.id.0,
                "send queue full: disconnecting the slow session"
            );
        }
        pushed
    }

    /// Close the session with `code` and `reason` (at most 123 bytes) after the messages
    /// already queued (a longer reason is cut at a character boundary). The peer has
    /// the close timeout to answer; then the connection is cut. `false` if the session
    /// was already closing or `code` may not be sent (1005, 1006, 1015, out of range).
    pub fn close(&self, code: CloseCode, reason: &str) -> bool {
        if !code.is_sendable() {
            return false;
        }
        let mut end = reason.len().min(sansock::close::MAX_REASON_LEN);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.inner.outbox.close(code, &reason[..end])
    }

    /// Messages and bytes waiting in the send queue.
    pub fn queued(&self) -> (usize, usize) {
        self.inner.outbox.len()
    }

    /// Messages the send-queue policy dropped so far.
    pub fn dropped(&self) -> u64 {
        self.inner.outbox.dropped()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        *self.inner.ended.borrow()
    }

    /// Wait until the session has ended (its `on_close` has run).
    pub async fn closed(&self) {
        let mut rx = self.inner.ended.subscribe();
        let _ = rx.wait_for(|ended| *ended).await;
    }

    pub(crate) fn kill(&self) {
        self.inner.outbox.kill();
    }
}

/// How the connection part of a session ended.
enum Outcome {
    /// `recv` ended: closing handshake done or the transport ended.
    Ended,
    /// The connection failed.
    Failed(Error),
    /// Cut by the server: close timeout, kill, shutdown deadline.
    Cut,
}

/// Run a session to its end: register it, call the handler, pump both directions.
pub(crate) async fn run<S>(
    server: Arc<ServerInner>,
    ws: WebSocket<S>,
    info: ConnectionInfo,
    service: Arc<dyn Service>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = SessionId(
        server
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    );
    let session = Session {
        inner: Arc::new(SessionInner {
            id,
            path: info.path,
            query: info.query,
            peer_addr: info.peer_addr,
            identity: info.identity,
            subprotocol: info.subprotocol,
            request: info.request,
            opened_at: SystemTime::now(),
            outbox: Outbox::default(),
            ended: watch::Sender::new(false),
            server: server.clone(),
        }),
    };
    let span = info_span!("session", id = id.0);
    async move {
        server.registry.insert(session.clone());
        // Even if a handler panics: out of the registry, queue freed, waiters woken.
        let _registered = Registered(&session);
        if server.is_shutting_down() {
            // Shutdown began while this one was being admitted.
            session.close(CloseCode::GOING_AWAY, "server shutting down");
        }
        info!(
            session = id.0,
            path = %session.path(),
            peer = ?session.peer_addr(),
            identity = ?session.identity(),
            subprotocol = ?session.subprotocol(),
            "session opened"
        );
        drive(&server, &session, ws, service).await;
    }
    .instrument(span)
    .await;
}

struct Registered<'a>(&'a Session);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let inner = &self.0.inner;
        inner.outbox.end();
        inner.server.registry.remove(inner.id);
        inner.ended.send_replace(true);
    }
}

async fn drive<S>(
    server: &ServerInner,
    session: &Session,
    ws: WebSocket<S>,
    service: Arc<dyn Service>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let outbox = &session.inner.outbox;
    let close_timeout = server.settings.connection.protocol.close_timeout;
    let (mut rd, mut wr) = ws.split();

    // on_open, unless the session is cut first.
    let mut conn = {
        let open = service.open(session);
        let mut open = pin!(open);
        loop {
            tokio::select! {
                conn = &mut open => break Some(conn),
                () = outbox.control.notified() => {
                    if outbox.killed() {
                        break None;
                    }
                }
            }
        }
    };

    let outcome = match conn.as_deref_mut() {
        None => Outcome::Cut,
        Some(conn) => {
            let reader = pin!(read_loop(&mut rd, conn, session));
            let writer = pin!(write_loop(&mut wr, session));
            pump(reader, writer, session, close_timeout).await
        }
    };
    outbox.end();
    server.registry.remove(session.id());

    let requested = outbox.close_requested();
    let sent = outbox.close_sent();
    let peer = rd.peer_close();
    // The close that started it: ours if we sent one before the peer's (the peer's
    // is then only its echo), else the peer's; without a closing handshake, the
    // error's code, or the code we asked for, or 1006.
    let (code, reason) = if let Some((code, reason)) = sent.clone().or_else(|| peer.clone()) {
        (code, reason)
    } else if let Outcome::Failed(e) = &outcome
        && let Some(code) = e.close_code()
    {
        (code, e.to_string())
    } else if let Some((code, reason)) = &requested {
        (*code, reason.clone())
    } else if let Outcome::Failed(e) = &outcome {
        (CloseCode::ABNORMAL, e.to_string())
    } else {
        (CloseCode::ABNORMAL, String::new())
    };
    let close = CloseInfo {
        code,
        reason,
        clean: peer.is_some() && !matches!(outcome, Outcome::Failed(_) | Outcome::Cut),
        by_server: sent.is_some() || (peer.is_none() && requested.is_some()),
    };
    // Drop the transport before the last callbacks: the peer learns at once.
    drop((rd, wr));
    let Some(mut conn) = conn else {
        info!(
            session = session.id().0,
            code = close.code.0,
            "session closed before it opened"
        );
        return;
    };
    if let Outcome::Failed(e) = outcome {
        warn!(session = session.id().0, error = %e, "session error");
        conn.error(session, e).await;
    }
    info!(
        session = session.id().0,
        code = close.code.0,
        reason = %close.reason,
        clean = close.clean,
        by_server = close.by_server,
        "session closed"
    );
    conn.close(session, close).await;
}

/// Poll reader and writer until the connection is over or cut.
async fn pump(
    mut reader: std::pin::Pin<&mut impl Future<Output = Outcome>>,
    mut writer: std::pin::Pin<&mut impl Future<Output = Result<(), Error>>>,
    session: &Session,
    close_timeout: Duration,
) -> Outcome {
    let outbox = &session.inner.outbox;
    let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
    let mut deadline = pin!(tokio::time::sleep_until(far));
    let mut armed = false;
    let mut writer_done = false;
    let check = || {
        if outbox.killed() {
            return Err(());
        }
        Ok(outbox.close_requested().is_some())
    };
    // A close may have been asked for before this started (e.g. during on_open).
    if check().unwrap_or(true) {
        armed = true;
        deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + close_timeout);
    }
    loop {
        tokio::select! {
            outcome = &mut reader => return outcome,
            result = &mut writer, if !writer_done => {
                writer_done = true;
                if let Err(e) = result {
                    return Outcome::Failed(e);
                }
            }
            () = outbox.control.notified() => match check() {
                Err(()) => return Outcome::Cut,
                Ok(true) if !armed => {
                    armed = true;
                    deadline.as_mut().reset(tokio::time::Instant::now() + close_timeout);
                }
                Ok(_) => {}
            },
            () = &mut deadline, if armed => return Outcome::Cut,
        }
    }
}

async fn read_loop<S>(rd: &mut ReadHalf<S>, conn: &mut dyn Conn, session: &Session) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(item) = rd.recv().await {
        match item {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => conn.message(session, m).await,
            // Pings are answered by the connection; the peer's close is echoed by it and
            // `recv` ends once the closing handshake is over.
            Ok(_) => {}
            Err(e) => return Outcome::Failed(e),
        }
    }
    Outcome::Ended
}

/// Take messages from the queue and write them; send the close frame once asked for
/// and everything before it is written. Returns after the close frame.
async fn write_loop<S>(wr: &mut WriteHalf<S>, session: &Session) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let outbox = &session.inner.outbox;
    loop {
        match outbox.next() {
            Next::Send(msg, more) => {
                let sent = match wr.feed_encoded(&msg).await {
                    Ok(()) if more => Ok(()),
                    Ok(()) => wr.flush().await,
                    Err(e) => Err(e),
                };
                match sent {
                    Ok(()) => {}
                    // The peer's close arrived first: the reader finishes the session.
                    Err(Error::Protocol(sansock::Error::ConnectionClosed)) => {
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            Next::Close(code, reason) => {
                return match wr.close(code, &reason).await {
                    Ok(()) => {
                        outbox.mark_close_sent();
                        Ok(())
                    }
                    // The peer closed first (or the connection failed): the reader
                    // reports it.
                    Err(Error::Protocol(sansock::Error::ConnectionClosed)) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            Next::Wait => outbox.writer.notified().await,
        }
    }
}
