//! What a path does with its connections: the [`Handler`] trait, closures
//! ([`handler_fn`]), and the type-erased form the server stores per path.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sansock::{CloseCode, Message};

use super::session::Session;
use crate::Error;

/// A boxed future, as the server stores handler callbacks.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a session ended, given to [`Handler::on_close`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseInfo {
    /// The close code: the peer's (or its echo of ours) after a closing handshake, the
    /// code the server asked for if the peer never answered, the code of a protocol
    /// error, or 1006 (abnormal) when the connection just broke.
    pub code: CloseCode,
    /// The reason that went with `code`.
    pub reason: String,
    /// Whether the closing handshake completed (both close frames exchanged).
    pub clean: bool,
    /// Whether the server started the close ([`Session::close`], a disconnect, a full
    /// send queue, shutdown).
    pub by_server: bool,
}

/// The service of one path: called for each of its sessions with a per-connection
/// `State` that `on_open` creates and `on_close` consumes.
///
/// The calls of one session are sequential: `on_open`, then `on_message` for each text
/// or binary message in order, then `on_error` if the connection failed, then
/// `on_close` exactly once. Pings, pongs and the closing handshake are answered by the
/// server. While `on_message` runs, that session's next message waits (the sending side
/// keeps going); the calls of different sessions run concurrently. Sending never waits:
/// [`Session::send`] and the broadcasts of [`Server`](super::Server) queue the message.
///
/// ```
/// use sansock_tokio::server::{CloseInfo, Handler, Session};
/// use sansock_tokio::Message;
///
/// /// Counts each connection's messages and echoes them with the count.
/// struct Counter;
///
/// impl Handler for Counter {
///     type State = u64;
///     async fn on_open(&self, session: &Session) -> u64 {
///         let _ = session.send(format!("hello #{}", session.id()));
///         0
///     }
///     async fn on_message(&self, session: &Session, count: &mut u64, msg: Message) {
///         *count += 1;
///         let _ = session.send(format!("{count}: {}", msg.as_text().unwrap_or("(binary)")));
///     }
///     async fn on_close(&self, session: &Session, count: u64, close: CloseInfo) {
///         tracing::info!(id = %session.id(), count, code = close.code.0, "bye");
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// What the handler keeps per connection.
    type State: Send + 'static;

    /// A session opened (the 101 answer was sent). Returns its state.
    fn on_open(&self, session: &Session) -> impl Future<Output = Self::State> + Send;

    /// A text or binary message arrived.
    fn on_message(
        &self,
        session: &Session,
        state: &mut Self::State,
        message: Message,
    ) -> impl Future<Output = ()> + Send;

    /// The connection failed: a protocol error (the peer was sent the RFC's close
    /// code), an I/O error, or a dead peer (no answer to keepalive pings). `on_close`
    /// follows.
    fn on_error(
        &self,
        session: &Session,
        state: &mut Self::State,
        error: Error,
    ) -> impl Future<Output = ()> + Send {
        let _ = (session, state, error);
        async {}
    }

    /// The session ended and left the server's registry; called exactly once.
    fn on_close(
        &self,
        session: &Session,
        state: Self::State,
        close: CloseInfo,
    ) -> impl Future<Output = ()> + Send {
        let _ = (session, state, close);
        async {}
    }
}

type OpenFn = dyn Fn(Session) -> BoxFuture<'static, ()> + Send + Sync;
type MessageFn = dyn Fn(Session, Message) -> BoxFuture<'static, ()> + Send + Sync;
type ErrorFn = dyn Fn(Session, Error) -> BoxFuture<'static, ()> + Send + Sync;
type CloseFn = dyn Fn(Session, CloseInfo) -> BoxFuture<'static, ()> + Send + Sync;

/// A [`Handler`] made of closures, built by [`handler_fn`]. Each closure gets its own
/// [`Session`] handle (a cheap clone), so its future can be `'static`; state shared
/// across calls lives in what the closures capture (or use a [`Handler`] for
/// per-connection state).
#[derive(Clone)]
pub struct FnHandler {
    open: Option<Arc<OpenFn>>,
    message: Arc<MessageFn>,
    error: Option<Arc<ErrorFn>>,
    close: Option<Arc<CloseFn>>,
}

/// A handler from a message closure; add the other callbacks with
/// [`FnHandler::on_open`], [`FnHandler::on_error`] and [`FnHandler::on_close`].
///
/// ```
/// use sansock_tokio::server::{handler_fn, Server};
///
/// let echo = handler_fn(|session, msg| async move {
///     let _ = session.send(msg);
/// })
/// .on_open(|session| async move { tracing::info!(id = %session.id(), "hello") });
/// let server = Server::builder().route("/echo", echo).build();
/// # drop(server);
/// ```
pub fn handler_fn<F, Fut>(on_message: F) -> FnHandler
where
    F: Fn(Session, Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    FnHandler {
        open: None,
        message: Arc::new(move |s, m| Box::pin(on_message(s, m))),
        error: None,
        close: None,
    }
}

impl FnHandler {
    /// Called when a session opens.
    pub fn on_open<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.open = Some(Arc::new(move |s| Box::pin(f(s))));
        self
    }

    /// Called when a session's connection fails (before `on_close`).
    pub fn on_error<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Session, Error) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.error = Some(Arc::new(move |s, e| Box::pin(f(s, e))));
        self
    }

    /// Called once when a session ends.
    pub fn on_close<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Session, CloseInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.close = Some(Arc::new(move |s, c| Box::pin(f(s, c))));
        self
    }
}

impl std::fmt::Debug for FnHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnHandler")
            .field("on_open", &self.open.is_some())
            .field("on_error", &self.error.is_some())
            .field("on_close", &self.close.is_some())
            .finish_non_exhaustive()
    }
}

impl Handler for FnHandler {
    type State = ();

    async fn on_open(&self, session: &Session) {
        if let Some(f) = &self.open {
            f(session.clone()).await;
        }
    }

    async fn on_message(&self, session: &Session, _: &mut (), message: Message) {
        (self.message)(session.clone(), message).await;
    }

    async fn on_error(&self, session: &Session, _: &mut (), error: Error) {
        if let Some(f) = &self.error {
            f(session.clone(), error).await;
        }
    }

    async fn on_close(&self, session: &Session, _: (), close: CloseInfo) {
        if let Some(f) = &self.close {
            f(session.clone(), close).await;
        }
    }
}

// ----- the type-erased form, one per path -----

/// A handler whose `State` type is hidden, so paths with different handlers share a map.
pub(crate) trait Service: Send + Sync + 'static {
    fn open<'a>(self: Arc<Self>, session: &'a Session) -> BoxFuture<'a, Box<dyn Conn>>;
}

/// One session's handler and state.
pub(crate) trait Conn: Send {
    fn message<'a>(&'a mut self, session: &'a Session, message: Message) -> BoxFuture<'a, ()>;
    fn error<'a>(&'a mut self, session: &'a Session, error: Error) -> BoxFuture<'a, ()>;
    fn close<'a>(self: Box<Self>, session: &'a Session, close: CloseInfo) -> BoxFuture<'a, ()>;
}

pub(crate) struct Erased<H>(pub(crate) H);

struct Bound<H: Handler> {
    handler: Arc<Erased<H>>,
    state: H::State,
}

impl<H: Handler> Service for Erased<H> {
    fn open<'a>(self: Arc<Self>, session: &'a Session) -> BoxFuture<'a, Box<dyn Conn>> {
        Box::pin(async move {
            let state = self.0.on_open(session).await;
            Box::new(Bound {
                handler: self,
                state,
            }) as Box<dyn Conn>
        })
    }
}

impl<H: Handler> Conn for Bound<H> {
    fn message<'a>(&'a mut self, session: &'a Session, message: Message) -> BoxFuture<'a, ()> {
        Box::pin(self.handler.0.on_message(session, &mut self.state, message))
    }

    fn error<'a>(&'a mut self, session: &'a Session, error: Error) -> BoxFuture<'a, ()> {
        Box::pin(self.handler.0.on_error(session, &mut self.state, error))
    }

    fn close<'a>(self: Box<Self>, session: &'a Session, close: CloseInfo) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Bound { handler, state } = *self;
            handler.0.on_close(session, state, close).await;
        })
    }
}
