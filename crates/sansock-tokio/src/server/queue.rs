//! Each session's send queue: bounded, with a policy for a receiver that does not keep
//! up, and the close/kill requests that end a session.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use sansock::CloseCode;
use tokio::sync::Notify;

use crate::ws::EncodedMessage;

/// What happens when a message does not fit in a session's send queue.
///
/// A session's queue holds messages handed to it (by [`Session::send`] or a broadcast)
/// that its connection has not taken yet. Broadcast messages are shared, not copied,
/// but each one counts fully against every queue it sits in.
///
/// [`Session::send`]: super::Session::send
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the slow session: its queue is emptied at once (the memory is freed), a
    /// close frame with this code follows what is already on the wire, and the
    /// connection is cut if the close cannot complete within the close timeout.
    /// Use [`CloseCode::POLICY_VIOLATION`] (1008, the default) or
    /// [`CloseCode::TRY_AGAIN_LATER`] (1013).
    Disconnect(CloseCode),
    /// Keep the session and drop the message that does not fit (the newest).
    DropNewest,
    /// Keep the session and drop the oldest queued messages until the new one fits.
    DropOldest,
}

/// The bounds of each session's send queue and what to do beyond them.
///
/// A single message larger than `max_bytes` is still accepted into an empty queue, so
/// every message can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendQueue {
    /// The most messages waiting per session (at least 1). Default: 1024.
    pub max_messages: usize,
    /// The most bytes (frames as sent) waiting per session. Default: 4 MiB.
    pub max_bytes: usize,
    /// What to do when a message does not fit. Default:
    /// `Disconnect(CloseCode::POLICY_VIOLATION)`.
    pub overflow: Overflow,
}

impl Default for SendQueue {
    fn default() -> Self {
        SendQueue {
            max_messages: 1024,
            max_bytes: 4 << 20,
            overflow: Overflow::Disconnect(CloseCode::POLICY_VIOLATION),
        }
    }
}

impl SendQueue {
    /// The defaults with another overflow policy.
    pub fn with_overflow(overflow: Overflow) -> Self {
        SendQueue {
            overflow,
            ..SendQueue::default()
        }
    }

    /// Limits and policy.
    pub fn new(max_messages: usize, max_bytes: usize, overflow: Overflow) -> Self {
        SendQueue {
            max_messages,
            max_bytes,
            overflow,
        }
    }
}

/// The answer to a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// The message was dropped (`DropNewest`).
    Dropped,
    /// The queue overflowed and the session is being disconnected.
    Overflowed,
    /// The session is closing or closed.
    Closed,
}

#[derive(Default)]
struct State {
    queue: VecDeque<EncodedMessage>,
    bytes: usize,
    close: Option<(CloseCode, String)>,
    close_sent: bool,
    kill: bool,
    ended: bool,
    dropped: u64,
}

/// What the writer does next.
pub(crate) enum Next {
    Send(EncodedMessage, bool),
    Close(CloseCode, String),
    Wait,
}

#[derive(Default)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer: a message or a close request.
    pub(crate) writer: Notify,
    /// Wakes the session task: a close request (arms its deadline) or a kill.
    pub(crate) control: Notify,
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, msg: &EncodedMessage, limits: &SendQueue) -> Pushed {
        let size = msg.as_bytes().len();
        let mut st = self.lock();
        if st.close.is_some() || st.kill || st.ended {
            return Pushed::Closed;
        }
        let max_messages = limits.max_messages.max(1);
        let fits = |st: &State| {
            st.queue.is_empty()
                || (st.queue.len() < max_messages && st.bytes + size <= limits.max_bytes)
        };
        if !fits(&st) {
            match limits.overflow {
                Overflow::DropNewest => {
                    st.dropped += 1;
                    return Pushed::Dropped;
                }
                Overflow::DropOldest => {
                    while !fits(&st) {
                        let Some(old) = st.queue.pop_front() else {
                            break;
                        };
                        st.bytes -= old.as_bytes().len();
                        st.dropped += 1;
                    }
                }
                Overflow::Disconnect(code) => {
                    st.dropped += st.queue.len() as u64 + 1;
                    st.queue = VecDeque::new();
                    st.bytes = 0;
                    st.close = Some((code, "send queue full".into()));
                    drop(st);
                    self.writer.notify_one();
                    self.control.notify_one();
                    return Pushed::Overflowed;
                }
            }
        }
        st.bytes += size;
        st.queue.push_back(msg.clone());
        drop(st);
        self.writer.notify_one();
        Pushed::Queued
    }

    /// Ask for a close after what is queued; `false` if one was already asked for.
    pub(crate) fn close(&self, code: CloseCode, reason: &str) -> bool {
        let mut st = self.lock();
        if st.close.is_some() || st.kill || st.ended {
            return false;
        }
        st.close = Some((code, reason.to_owned()));
        drop(st);
        self.writer.notify_one();
        self.control.notify_one();
        true
    }

    /// Cut the connection now.
    pub(crate) fn kill(&self) {
        let mut st = self.lock();
        if st.ended {
            return;
        }
        st.kill = true;
        drop(st);
        self.control.notify_one();
    }

    /// The session is over: refuse everything and free the queue.
    pub(crate) fn end(&self) {
        let mut st = self.lock();
        st.ended = true;
        st.queue = VecDeque::new();
        st.bytes = 0;
    }

    pub(crate) fn next(&self) -> Next {
        let mut st = self.lock();
        if let Some(m) = st.queue.pop_front() {
            st.bytes -= m.as_bytes().len();
            let more = !st.queue.is_empty();
            return Next::Send(m, more);
        }
        match &st.close {
            Some((code, reason)) => Next::Close(*code, reason.clone()),
            None => Next::Wait,
        }
    }

    pub(crate) fn close_requested(&self) -> Option<(CloseCode, String)> {
        self.lock().close.clone()
    }

    /// The writer sent the requested close frame (the peer had not closed first).
    pub(crate) fn mark_close_sent(&self) {
        self.lock().close_sent = true;
    }

    /// The close frame the server sent, if it sent one before the peer's close.
    pub(crate) fn close_sent(&self) -> Option<(CloseCode, String)> {
        let st = self.lock();
        st.close.clone().filter(|_| st.close_sent)
    }

    pub(crate) fn killed(&self) -> bool {
        self.lock().kill
    }

    /// (messages, bytes) waiting.
    pub(crate) fn len(&self) -> (usize, usize) {
        let st = self.lock();
        (st.queue.len(), st.bytes)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}
