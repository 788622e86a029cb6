//! A ready-made WebSocket server: services by path, a registry of sessions, broadcast,
//! admission (client limit, Origin, subprotocols, authentication), keepalive and
//! graceful shutdown.
//!
//! - [`Server`]: built with [`Server::builder`], it serves a [`TcpListener`]
//!   ([`Server::serve`]), with TLS ([`Server::serve_tls`]), any accepted stream
//!   ([`Server::serve_stream`]), or connections upgraded elsewhere
//!   ([`Server::serve_connection`]). A clone is a handle: count, list, send, broadcast,
//!   disconnect, shut down.
//! - [`Handler`]: what a path does — `on_open`, `on_message`, `on_error`, `on_close`
//!   with per-connection state; or closures with [`handler_fn`].
//! - [`Session`]: one connection — id, peer address, path, identity, subprotocol — and
//!   its bounded send queue ([`SendQueue`], [`Overflow`]).
//! - [`Auth`]: HTTP Basic, HTTP Digest, bearer tokens (header or query parameter).
//!
//! # Mounting into an existing HTTP server (hyper, axum)
//! Let the application answer its own routes and upgrade the WebSocket requests
//! itself (for example with `sansock_tokio::upgrade` and the `hyper` feature), then hand
//! each upgraded connection to the server:
//!
//! 1. build an [`HttpRequest`] from the request (method, target, headers) and call
//!    [`Server::admit`]: it applies the route table, the client limit, the Origin
//!    allow-list, subprotocol selection and authentication, exactly as for the
//!    server's own connections. `Err(response)` is the refusal to send (401 with its
//!    challenges, 403, 404, 503); `Ok(admission)` tells the subprotocol to put in the
//!    101 answer;
//! 2. after the upgrade, `server.serve_connection(ws, admission.into_connection_info(peer))`
//!    runs the session (spawn it; it returns when the session ends).
//!
//! [`ConnectionInfo::new`] also works without [`Server::admit`] (then only the route
//! table and the client limit apply, and a refusal is a close frame: 1008 for an
//! unknown path, 1013 when full, 1001 during shutdown).
//!
//! # Limits
//! Nothing grows without bound: connections still in their handshake
//! ([`ServerBuilder::max_handshakes`]), each one's time ([`ServerBuilder::handshake_timeout`],
//! which covers TLS, the request and authentication) and header size
//! ([`ServerBuilder::max_header_bytes`]), open sessions ([`ServerBuilder::max_clients`]),
//! and each session's send queue ([`ServerBuilder::send_queue`]). Dead peers are found
//! by keepalive pings ([`ServerBuilder::keepalive`]) and removed from the registry.

mod auth;
mod handler;
mod http;
mod queue;
mod registry;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sansock::handshake::OwnedRequest;
use sansock::handshake::server::{ServerHandshake, write_accept};
use sansock::{CloseCode, Message, Role};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

pub use auth::Auth;
pub use handler::{CloseInfo, FnHandler, Handler, handler_fn};
pub use http::{HttpRequest, HttpResponse};
pub use queue::{Overflow, SendQueue};
pub use session::{ConnectionInfo, SendError, Session, SessionId};

use crate::Error;
use crate::ws::{Config, EncodedMessage, WebSocket};
use handler::{Erased, Service};
use http::{Head, Incoming};
use queue::Pushed;
use registry::Registry;

type FallbackFn = dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync;

/// Everything the builder sets.
struct Settings {
    connection: Config,
    handshake_timeout: Duration,
    max_clients: usize,
    max_handshakes: usize,
    origins: Option<Vec<String>>,
    subprotocols: Vec<String>,
    require_subprotocol: bool,
    auth: Vec<Auth>,
    send_queue: SendQueue,
    shutdown_timeout: Duration,
    fallback: Option<Arc<FallbackFn>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Done,
}

pub(crate) struct ServerInner {
    settings: Settings,
    routes: HashMap<String, Arc<dyn Service>>,
    registry: Registry,
    next_id: AtomicU64,
    /// Open sessions plus admitted connections about to open.
    clients: AtomicUsize,
    /// Connections in their handshake.
    handshakes: AtomicUsize,
    /// Running connection tasks (handshakes and sessions).
    tasks: watch::Sender<usize>,
    phase: watch::Sender<Phase>,
    report: Mutex<Option<ShutdownReport>>,
}

impl ServerInner {
    fn is_shutting_down(&self) -> bool {
        *self.phase.borrow() != Phase::Running
    }

    fn encode(&self, message: &Message) -> Option<EncodedMessage> {
        EncodedMessage::with_max_frame_size(
            message,
            self.settings.connection.protocol.max_send_frame_size,
        )
    }
}

/// A place among [`ServerBuilder::max_clients`], held from admission to the end of the
/// session.
struct Permit(Arc<ServerInner>);

impl Permit {
    fn acquire(server: &Arc<ServerInner>) -> Option<Permit> {
        let max = server.settings.max_clients;
        server
            .clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(server.clone()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a running connection task, for shutdown to wait on.
struct Task(Arc<ServerInner>);

impl Task {
    fn new(server: &Arc<ServerInner>) -> Self {
        server.tasks.send_modify(|n| *n += 1);
        Task(server.clone())
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.tasks.send_modify(|n| *n -= 1);
    }
}

/// Counts a connection in its handshake.
struct Handshaking(Arc<ServerInner>);

impl Drop for Handshaking {
    fn drop(&mut self) {
        self.0.handshakes.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a handshake ended.
/// permessage-deflate as negotiated for one connection.
#[cfg(feature = "deflate")]
type Deflate = (
    sansock::deflate::DeflateParams,
    sansock::deflate::DeflateConfig,
);
#[cfg(not(feature = "deflate"))]
type Deflate = ();

enum Step {
    /// The 101 was sent.
    Upgraded(Box<(Admission, Bytes, OwnedRequest, Option<Deflate>)>),
    /// Another answer is to be sent, then the connection closed.
    Answer(Vec<u8>),
}

/// What [`Server::admit`] found out about an acceptable upgrade request: hand it to
/// [`Server::serve_connection`] through [`Admission::into_connection_info`]. It holds
/// a place among [`ServerBuilder::max_clients`] until the session ends (or until it is
/// dropped).
pub struct Admission {
    path: String,
    query: Option<String>,
    identity: Option<String>,
    subprotocol: Option<String>,
    admitted: Admitted,
}

pub(crate) struct Admitted {
    permit: Permit,
    service: Arc<dyn Service>,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .field("subprotocol", &self.subprotocol)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// The path (which service will run the session).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The identity authentication gave, if authentication is configured.
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// The subprotocol to name in the 101 answer (`Sec-WebSocket-Protocol`), if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The session's details, for [`Server::serve_connection`].
    pub fn into_connection_info(self, peer_addr: Option<SocketAddr>) -> ConnectionInfo {
        let mut info = ConnectionInfo::new(self.path);
        info.query = self.query;
        info.peer_addr = peer_addr;
        info.identity = self.identity;
        info.subprotocol = self.subprotocol;
        info.admitted = Some(self.admitted);
        info
    }
}

/// How many sessions a broadcast reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Sessions that queued the message.
    pub queued: usize,
    /// Sessions whose full queue dropped a message ([`Overflow::DropNewest`]).
    pub dropped: usize,
    /// Sessions whose full queue got them disconnected ([`Overflow::Disconnect`]).
    pub disconnected: usize,
    /// Sessions already closing.
    pub closed: usize,
}

/// What [`Server::shutdown`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Sessions open when shutdown began (each was sent a close frame with 1001).
    pub sessions: usize,
    /// Sessions (and handshakes) still running at the shutdown timeout, then cut.
    pub forced: usize,
}

/// A WebSocket server: services by path, a registry of sessions, admission, broadcast
/// and graceful shutdown.
///
/// A `Server` is a cheap handle (an `Arc`): clone it into handlers, admin tasks and the
/// shutdown signal. [`serve`](Self::serve) runs the accept loop until
/// [`shutdown`](Self::shutdown) is called on any clone, and returns once the shutdown
/// is complete.
///
/// ```no_run
/// use std::time::Duration;
/// use sansock_tokio::server::{handler_fn, Auth, Server};
/// use sansock_tokio::Message;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// // Everything a client sends on /chat goes to every client of /chat.
/// let chat = handler_fn(|session, msg: Message| async move {
///     session.server().broadcast_to_path("/chat", msg);
/// });
/// let server = Server::builder()
///     .route("/chat", chat)
///     .max_clients(1000)
///     .allowed_origins(["https://chat.example"])
///     .subprotocols(["chat.v1"])
///     .auth(Auth::bearer_in_query("chat", "access_token", |token| async move {
///         (token == "let-me-in").then(|| "guest".to_owned())
///     }))
///     .keepalive(Some(Duration::from_secs(20)), Duration::from_secs(10))
///     .build();
///
/// // Ctrl-C: stop accepting, close everyone with 1001, wait (bounded), return.
/// let handle = server.clone();
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     handle.shutdown().await;
/// });
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// server.serve(listener).await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut paths: Vec<&String> = self.inner.routes.keys().collect();
        paths.sort();
        f.debug_struct("Server")
            .field("paths", &paths)
            .field("sessions", &self.session_count())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Server`]; see [`Server::builder`].
pub struct ServerBuilder {
    settings: Settings,
    routes: HashMap<String, Arc<dyn Service>>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder").finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        let connection = Config::default();
        ServerBuilder {
            settings: Settings {
                handshake_timeout: connection.protocol.handshake_timeout,
                connection,
                max_clients: 10_000,
                max_handshakes: 1024,
                origins: None,
                subprotocols: Vec::new(),
                require_subprotocol: false,
                auth: Vec::new(),
                send_queue: SendQueue::default(),
                shutdown_timeout: Duration::from_secs(10),
                fallback: None,
            },
            routes: HashMap::new(),
        }
    }
}

impl ServerBuilder {
    /// Serve `handler` at `path` (exact match, without query). Requests for other paths
    /// are refused with 404.
    pub fn route(mut self, path: impl Into<String>, handler: impl Handler) -> Self {
        self.routes.insert(path.into(), Arc::new(Erased(handler)));
        self
    }

    /// The connections' limits, timers and buffers (message and frame sizes,
    /// keepalive, close timeout, write buffer). The handshake timeout and header limit
    /// are taken from it too, unless set afterwards.
    pub fn connection_config(mut self, config: Config) -> Self {
        self.settings.handshake_timeout = config.protocol.handshake_timeout;
        self.settings.connection = config;
        self
    }

    /// How long a connection may take from TCP accept to the 101 answer: TLS, the
    /// request, authentication. Slower clients are answered 408 (when the request is
    /// not complete) and cut off. Default: 10 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.settings.handshake_timeout = timeout;
        self.settings.connection.protocol.handshake_timeout = timeout;
        self
    }

    /// The largest request head; beyond it the answer is 431. Default: 16 KiB.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.settings.connection.protocol.max_header_bytes = bytes;
        self
    }

    /// Keepalive: ping a peer silent for `interval` (`None`: never) and remove it from
    /// the registry (close 1001, `on_error` with `PeerUnresponsive`) if nothing arrives
    /// within `timeout` of the ping. Default: 30 s and 20 s.
    pub fn keepalive(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.settings.connection.protocol.keepalive_interval = interval;
        self.settings.connection.protocol.pong_timeout = timeout;
        self
    }

    /// How long a session that is being closed (by the server, a full queue or
    /// shutdown) has to complete the closing handshake before it is cut. Default: 5 s.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connection.protocol.close_timeout = timeout;
        self
    }

    /// The most open sessions; more upgrade requests are answered 503. Default: 10,000.
    pub fn max_clients(mut self, max: usize) -> Self {
        self.settings.max_clients = max;
        self
    }

    /// The most connections in their handshake at once; more are closed at accept.
    /// Default: 1024.
    pub fn max_handshakes(mut self, max: usize) -> Self {
        self.settings.max_handshakes = max;
        self
    }

    /// Accept only requests whose `Origin` is one of these (ASCII case-insensitive,
    /// e.g. `https://chat.example`); others are answered 403. Requests without
    /// `Origin` (not from a browser) are accepted. Default: any origin.
    pub fn allowed_origins<I: IntoIterator<Item = impl Into<String>>>(
        mut self,
        origins: I,
    ) -> Self {
        self.settings.origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// The subprotocols the server speaks, in its order of preference: the first one
    /// the client offered is chosen. Default: none.
    pub fn subprotocols<I: IntoIterator<Item = impl Into<String>>>(mut self, protocols: I) -> Self {
        self.settings.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Refuse (400) requests that offer none of [`subprotocols`](Self::subprotocols).
    /// Default: accept them without a subprotocol.
    pub fn require_subprotocol(mut self, required: bool) -> Self {
        self.settings.require_subprotocol = required;
        self
    }

    /// Require authentication with this scheme (call again to accept several; the
    /// first that accepts gives the identity). Default: no authentication.
    pub fn auth(mut self, scheme: Auth) -> Self {
        self.settings.auth.push(scheme);
        self
    }

    /// Each session's send-queue limits and overflow policy. Default:
    /// [`SendQueue::default`]. A `Disconnect` code that may not be sent becomes 1008.
    pub fn send_queue(mut self, mut queue: SendQueue) -> Self {
        if let Overflow::Disconnect(code) = queue.overflow
            && !code.is_sendable()
        {
            queue.overflow = Overflow::Disconnect(CloseCode::POLICY_VIOLATION);
        }
        self.settings.send_queue = queue;
        self
    }

    /// How long [`Server::shutdown`] waits for sessions to close before cutting the
    /// rest. Default: 10 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Answer requests that are not WebSocket upgrades (a page, a health check) with
    /// `f`, one request per connection. Without it they get 400 (or 405 for other
    /// methods than GET).
    pub fn http_fallback<F>(mut self, f: F) -> Self
    where
        F: Fn(&HttpRequest) -> HttpResponse + Send + Sync + 'static,
    {
        self.settings.fallback = Some(Arc::new(f));
        self
    }

    /// The server.
    pub fn build(self) -> Server {
        Server {
            inner: Arc::new(ServerInner {
                settings: self.settings,
                routes: self.routes,
                registry: Registry::default(),
                next_id: AtomicU64::new(1),
                clients: AtomicUsize::new(0),
                handshakes: AtomicUsize::new(0),
                tasks: watch::Sender::new(0),
                phase: watch::Sender::new(Phase::Running),
                report: Mutex::new(None),
            }),
        }
    }
}

impl Server {
    /// A builder with the defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    // ----- serving -----

    /// Accept connections from `listener` until [`shutdown`](Self::shutdown); returns
    /// when the shutdown is complete. Accept errors (e.g. out of file descriptors) are
    /// logged and retried after a pause.
    pub async fn serve(&self, listener: TcpListener) {
        self.accept_loop(listener, None).await;
    }

    /// [`serve`](Self::serve) over TLS (`wss://`); the TLS handshake counts against
    /// the handshake timeout. Build the acceptor with
    /// [`tls_acceptor_from_pem`](crate::tls::tls_acceptor_from_pem).
    pub async fn serve_tls(&self, listener: TcpListener, acceptor: TlsAcceptor) {
        self.accept_loop(listener, Some(acceptor)).await;
    }

    async fn accept_loop(&self, listener: TcpListener, tls: Option<TlsAcceptor>) {
        let mut phase = self.inner.phase.subscribe();
        info!(addr = ?listener.local_addr().ok(), tls = tls.is_some(), "server listening");
        loop {
            let accepted = tokio::select! {
                _ = phase.wait_for(|p| *p != Phase::Running) => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(handshaking) = self.start_handshake() else {
                debug!(%peer, "too many handshakes in progress: connection dropped");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let tls = tls.clone();
            let task = Task::new(&self.inner);
            tokio::spawn(async move {
                let deadline = Instant::now() + server.inner.settings.handshake_timeout;
                match tls {
                    None => {
                        server
                            .serve_until(stream, Some(peer), deadline, handshaking, task)
                            .await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout_at(
                            deadline,
                            crate::tls::accept_tls(&acceptor, stream),
                        )
                        .await
                        {
                            Ok(Ok(tls)) => {
                                server
                                    .serve_until(tls, Some(peer), deadline, handshaking, task)
                                    .await
                            }
                            Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        drop(listener);
        // Shutdown began: wait until it is complete.
        let _ = phase.wait_for(|p| *p == Phase::Done).await;
    }

    fn start_handshake(&self) -> Option<Handshaking> {
        let max = self.inner.settings.max_handshakes;
        self.inner
            .handshakes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Handshaking(self.inner.clone()))
    }

    /// Serve one accepted stream (plain TCP, TLS, a Unix socket, …): the handshake with
    /// every admission check, then the session. Returns when the session ends.
    pub async fn serve_stream<S>(&self, stream: S, peer_addr: Option<SocketAddr>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let task = Task::new(&self.inner);
        let Some(handshaking) = self.start_handshake() else {
            debug!(peer = ?peer_addr, "too many handshakes in progress: connection dropped");
            return;
        };
        let deadline = Instant::now() + self.inner.settings.handshake_timeout;
        self.serve_until(stream, peer_addr, deadline, handshaking, task)
            .await;
    }

    async fn serve_until<S>(
        &self,
        mut stream: S,
        peer: Option<SocketAddr>,
        deadline: Instant,
        handshaking: Handshaking,
        task: Task,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut phase = self.inner.phase.subscribe();
        let result = tokio::select! {
            r = tokio::time::timeout_at(deadline, self.handshake(&mut stream, peer)) => r,
            _ = phase.wait_for(|p| *p != Phase::Running) => return,
        };
        let (admission, leftover, request, deflate) = match result {
            Ok(Ok(Step::Upgraded(accepted))) => *accepted,
            Ok(Ok(Step::Answer(answer))) => {
                // Outside the handshake deadline, bounded on its own.
                http::answer_and_close(&mut stream, &answer, true).await;
                return;
            }
            Ok(Err(e)) => {
                debug!(?peer, error = %e, "handshake failed");
                return;
            }
            Err(_) => {
                debug!(?peer, "handshake timed out");
                let answer = http::error_answer(&sansock::Error::HandshakeTimeout);
                http::answer_and_close(&mut stream, &answer, false).await;
                return;
            }
        };
        drop(handshaking);
        #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
        let mut ws = WebSocket::from_upgraded(
            stream,
            Role::Server,
            self.inner.settings.connection.clone(),
            leftover,
        );
        #[cfg(feature = "deflate")]
        if let Some((params, policy)) = deflate {
            ws.enable_deflate(params, &policy);
        }
        #[cfg(not(feature = "deflate"))]
        let _ = deflate;
        let info = admission.into_connection_info(peer).with_request(request);
        self.run(ws, info, task).await;
    }

    /// Read the request; send the 101, or say what other answer to send.
    async fn handshake<S>(&self, stream: &mut S, peer: Option<SocketAddr>) -> Result<Step, Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let protocol = &self.inner.settings.connection.protocol;
        let hs = ServerHandshake::new(protocol, sansock::Instant::ZERO);
        let mut buf = match http::read_head(stream, &hs, protocol.max_headers).await? {
            Incoming::Upgrade(buf) => buf,
            Incoming::Plain(req, e) => {
                let answer = match &self.inner.settings.fallback {
                    Some(f) => {
                        let resp = f(&req);
                        debug!(
                            ?peer,
                            method = req.method(),
                            path = req.path(),
                            status = resp.status(),
                            "plain HTTP request"
                        );
                        resp.encode(req.method().eq_ignore_ascii_case("HEAD"))
                    }
                    None => http::error_answer(&e),
                };
                return Ok(Step::Answer(answer));
            }
            Incoming::Bad(e) => {
                debug!(?peer, error = %e, status = ?e.http_status(), "bad upgrade request");
                return Ok(Step::Answer(http::error_answer(&e)));
            }
        };
        let (admission, consumed, request, out, deflate) = {
            let req = match hs.parse_request(&buf) {
                Ok(Some(req)) => req,
                _ => return Err(Error::Protocol(sansock::Error::MalformedHttp)),
            };
            let admission = match self.admit_head(&req, peer).await {
                Ok(a) => a,
                Err(resp) => return Ok(Step::Answer(resp.encode(false))),
            };
            // permessage-deflate under the connection config's policy.
            #[cfg(feature = "deflate")]
            let (deflate, extensions) = match &self.inner.settings.connection.deflate {
                Some(policy) => match sansock::deflate::negotiate(req.extensions(), policy)? {
                    Some((params, header)) => (Some((params, policy.clone())), Some(header)),
                    None => (None, None),
                },
                None => (None, None),
            };
            #[cfg(not(feature = "deflate"))]
            let (deflate, extensions): (Option<Deflate>, Option<String>) = (None, None);
            let mut out = Vec::with_capacity(256);
            write_accept(
                req.key,
                admission.subprotocol(),
                extensions.as_deref(),
                &[],
                &mut out,
            )?;
            (
                admission,
                req.consumed,
                req.to_owned_request(),
                out,
                deflate,
            )
        };
        stream.write_all(&out).await?;
        stream.flush().await?;
        let leftover = buf.split_off(consumed).freeze();
        Ok(Step::Upgraded(Box::new((
            admission, leftover, request, deflate,
        ))))
    }

    // ----- admission -----

    /// Run the admission checks on an upgrade request received elsewhere (see the
    /// module docs on mounting): route, shutdown, Origin, subprotocol, client limit,
    /// authentication. `Err` is the answer to send instead of 101: 404 unknown path,
    /// 403 Origin not allowed, 400 no acceptable subprotocol, 503 full or shutting
    /// down, 401 with `WWW-Authenticate` challenges.
    pub async fn admit(
        &self,
        request: &HttpRequest,
        peer_addr: Option<SocketAddr>,
    ) -> Result<Admission, HttpResponse> {
        self.admit_head(request, peer_addr).await
    }

    async fn admit_head(
        &self,
        head: &(impl Head + ?Sized),
        peer: Option<SocketAddr>,
    ) -> Result<Admission, HttpResponse> {
        let refuse = |status: u16, why: &'static str| {
            debug!(?peer, path = head.path(), status, why, "upgrade refused");
            HttpResponse::text(status, format!("{why}\n"))
        };
        let settings = &self.inner.settings;
        if self.inner.is_shutting_down() {
            return Err(refuse(503, "server shutting down"));
        }
        let Some(service) = self.inner.routes.get(head.path()) else {
            return Err(refuse(404, "no WebSocket service at this path"));
        };
        if let Some(allowed) = &settings.origins
            && let Some(origin) = head.header("Origin")
            && !allowed
                .iter()
                .any(|a| a.as_bytes().eq_ignore_ascii_case(origin))
        {
            return Err(refuse(403, "origin not allowed"));
        }
        let offered = head.subprotocols();
        let subprotocol = settings
            .subprotocols
            .iter()
            .find(|p| offered.iter().any(|o| o == *p))
            .cloned();
        if subprotocol.is_none() && settings.require_subprotocol {
            return Err(refuse(400, "no supported subprotocol offered"));
        }
        let Some(permit) = Permit::acquire(&self.inner) else {
            return Err(refuse(503, "too many clients").with_header("Retry-After", "5"));
        };
        let identity = match auth::authenticate(&settings.auth, head).await {
            Ok(identity) => identity,
            Err(resp) => {
                debug!(?peer, path = head.path(), status = 401, "upgrade refused");
                return Err(resp);
            }
        };
        Ok(Admission {
            path: head.path().to_owned(),
            query: head.query().map(str::to_owned),
            identity,
            subprotocol,
            admitted: Admitted {
                permit,
                service: service.clone(),
            },
        })
    }

    /// Run a WebSocket upgraded elsewhere as a session of this server (see the module
    /// docs on mounting). Returns when the session ends; spawn it.
    ///
    /// Without an [`Admission`] in `info`, the route table and the client limit are
    /// checked here and a refusal is a close frame (1008 unknown path, 1013 full, 1001
    /// shutting down).
    pub async fn serve_connection<S>(&self, mut ws: WebSocket<S>, mut info: ConnectionInfo)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let task = Task::new(&self.inner);
        if info.admitted.is_none() {
            let refusal = if self.inner.is_shutting_down() {
                Some((CloseCode::GOING_AWAY, "server shutting down"))
            } else if let Some(service) = self.inner.routes.get(&info.path) {
                match Permit::acquire(&self.inner) {
                    Some(permit) => {
                        info.admitted = Some(Admitted {
                            permit,
                            service: service.clone(),
                        });
                        None
                    }
                    None => Some((CloseCode::TRY_AGAIN_LATER, "too many clients")),
                }
            } else {
                Some((
                    CloseCode::POLICY_VIOLATION,
                    "no WebSocket service at this path",
                ))
            };
            if let Some((code, reason)) = refusal {
                debug!(path = %info.path, code = code.0, reason, "connection refused");
                let _ = ws.close(code, reason).await;
                return;
            }
        }
        self.run(ws, info, task).await;
    }

    async fn run<S>(&self, ws: WebSocket<S>, mut info: ConnectionInfo, task: Task)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Some(Admitted { permit, service }) = info.admitted.take() else {
            return;
        };
        session::run(self.inner.clone(), ws, info, service).await;
        drop(permit);
        drop(task);
    }

    // ----- the registry -----

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.inner.registry.len()
    }

    /// Every open session, in id order.
    pub fn sessions(&self) -> Vec<Session> {
        self.inner.registry.all()
    }

    /// The session with this id, if it is open.
    pub fn session(&self, id: SessionId) -> Option<Session> {
        self.inner.registry.get(id)
    }

    /// Queue a text or binary message for one session.
    pub fn send(&self, id: SessionId, message: impl Into<Message>) -> Result<(), SendError> {
        self.session(id)
            .ok_or(SendError::NoSuchSession)?
            .send(message)
    }

    /// Close one session with `code` and `reason` after what is queued for it;
    /// `false` if there is no such session or it was already closing.
    pub fn disconnect(&self, id: SessionId, code: CloseCode, reason: &str) -> bool {
        self.session(id).is_some_and(|s| s.close(code, reason))
    }

    /// Queue a text or binary message for every session. The message is framed once
    /// and the bytes are shared by every queue; nothing waits for any receiver. A
    /// ping, pong or close message reaches nobody.
    pub fn broadcast(&self, message: impl Into<Message>) -> Delivery {
        self.broadcast_filter(message, |_| true)
    }

    /// [`broadcast`](Self::broadcast) to the sessions of one path.
    pub fn broadcast_to_path(&self, path: &str, message: impl Into<Message>) -> Delivery {
        self.broadcast_filter(message, |s| s.path() == path)
    }

    /// [`broadcast`](Self::broadcast) to every session of one identity.
    pub fn send_to_identity(&self, identity: &str, message: impl Into<Message>) -> Delivery {
        self.broadcast_filter(message, |s| s.identity() == Some(identity))
    }

    /// [`broadcast`](Self::broadcast) to the sessions `filter` selects (for example,
    /// everyone but the sender). `filter` runs under the registry's read lock: keep it
    /// short and do not call back into the registry.
    pub fn broadcast_filter(
        &self,
        message: impl Into<Message>,
        filter: impl FnMut(&Session) -> bool,
    ) -> Delivery {
        let message = message.into();
        let Some(encoded) = self.inner.encode(&message) else {
            warn!("broadcast of a control message ignored");
            return Delivery::default();
        };
        let mut d = Delivery::default();
        self.inner
            .registry
            .for_each(filter, |s| match s.push(&encoded) {
                Pushed::Queued => d.queued += 1,
                Pushed::Dropped => d.dropped += 1,
                Pushed::Overflowed => d.disconnected += 1,
                Pushed::Closed => d.closed += 1,
            });
        d
    }

    // ----- shutdown -----

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.is_shutting_down()
    }

    /// Stop accepting, close every session with 1001 ("going away") after what is
    /// queued for it, wait for them to end within the shutdown timeout, cut the rest,
    /// and return. Connections still in their handshake are dropped. Calling it again
    /// (or from several places) waits for the same shutdown. The work runs in its own
    /// task, so it completes even if this future is dropped (for example when a
    /// handler calls it and its session is closed by it).
    pub async fn shutdown(&self) -> ShutdownReport {
        let first = self.inner.phase.send_if_modified(|p| {
            if *p == Phase::Running {
                *p = Phase::Draining;
                true
            } else {
                false
            }
        });
        let mut phase = self.inner.phase.subscribe();
        if first {
            let inner = self.inner.clone();
            tokio::spawn(async move {
                let report = drain(&inner).await;
                *inner.report.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
                inner.phase.send_replace(Phase::Done);
            });
        }
        let _ = phase.wait_for(|p| *p == Phase::Done).await;
        self.inner
            .report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_default()
    }
}

async fn drain(inner: &Arc<ServerInner>) -> ShutdownReport {
    let sessions = inner.registry.all();
    info!(
        sessions = sessions.len(),
        "shutting down: closing every session with 1001"
    );
    for s in &sessions {
        s.close(CloseCode::GOING_AWAY, "server shutting down");
    }
    let mut tasks = inner.tasks.subscribe();
    let timeout = inner.settings.shutdown_timeout;
    let mut forced = 0;
    if tokio::time::timeout(timeout, tasks.wait_for(|n| *n == 0))
        .await
        .is_err()
    {
        let left = inner.registry.all();
        forced = (*tasks.borrow()).max(left.len());
        warn!(
            left = forced,
            "shutdown timeout: cutting the remaining connections"
        );
        for s in &left {
            s.kill();
        }
        // Cut sessions end at once; only their `on_close` may still run.
        let _ = tokio::time::timeout(Duration::from_secs(1), tasks.wait_for(|n| *n == 0)).await;
    }
    info!(sessions = sessions.len(), forced, "shutdown complete");
    ShutdownReport {
        sessions: sessions.len(),
        forced,
    }
}

#[allow(dead_code)]
fn assert_send<T: Send>(_: &T) {}

#[allow(dead_code)]
fn futures_are_send(server: &Server, ws: WebSocket<tokio::net::TcpStream>, l: TcpListener) {
    assert_send(&server.serve(l));
    assert_send(&server.serve_connection(ws, ConnectionInfo::new("/")));
    assert_send(&server.shutdown());
}
