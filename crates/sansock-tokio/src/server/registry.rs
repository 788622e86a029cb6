//! The open sessions of a server, by id.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::session::{Session, SessionId};

#[derive(Default)]
pub(crate) struct Registry {
    sessions: RwLock<HashMap<SessionId, Session>>,
}

impl Registry {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<SessionId, Session>> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<SessionId, Session>> {
        self.sessions.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn insert(&self, session: Session) {
        self.write().insert(session.id(), session);
    }

    pub(crate) fn remove(&self, id: SessionId) {
        self.write().remove(&id);
    }

    pub(crate) fn get(&self, id: SessionId) -> Option<Session> {
        self.read().get(&id).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// Every session, in id order.
    pub(crate) fn all(&self) -> Vec<Session> {
        let mut all: Vec<Session> = self.read().values().cloned().collect();
        all.sort_by_key(Session::id);
        all
    }

    /// Call `f` for every session `filter` selects, under the read lock (so `f` must
    /// not wait: queueing a message does not).
    pub(crate) fn for_each(
        &self,
        mut filter: impl FnMut(&Session) -> bool,
        mut f: impl FnMut(&Session),
    ) {
        for s in self.read().values() {
            if filter(s) {
                f(s);
            }
        }
    }
}
