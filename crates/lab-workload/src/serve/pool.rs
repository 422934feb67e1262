//! The app's connections to the database: at most `size`, reused, replaced when broken.
//!
//! A semaphore holds the slots; idle connections wait in a stack (the most recently
//! used first, so a burst does not keep every connection warm). A request takes a slot
//! within the connect bound — or is told the app is busy — then an idle connection or
//! a new one, also within the connect bound. A connection comes back only if it is
//! still usable: after a failover every old connection is broken, each is dropped on
//! its first failure, and the next request connects again (to wherever pgbouncer now
//! points). No background task: nothing to leak, nothing to cancel.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::load::connection::Conn;

/// The pool.
pub(super) struct Pool {
    slots: Semaphore,
    idle: Mutex<Vec<Conn>>,
    connect_bound: Duration,
}

/// A slot of the pool, with the idle connection it found (if any).
pub(super) struct Slot<'a> {
    _permit: SemaphorePermit<'a>,
    /// An idle connection to reuse, or `None`: connect.
    pub(super) conn: Option<Conn>,
}

impl Pool {
    /// A pool of at most `size` connections.
    pub(super) fn new(size: usize, connect_bound: Duration) -> Pool {
        Pool {
            slots: Semaphore::new(size),
            idle: Mutex::new(Vec::with_capacity(size)),
            connect_bound,
        }
    }

    /// How long a request may wait for a slot, and then for a connection.
    pub(super) fn connect_bound(&self) -> Duration {
        self.connect_bound
    }

    /// A slot within the connect bound; `None` when every connection stayed busy.
    pub(super) async fn slot(&self) -> Option<Slot<'_>> {
        let permit = tokio::time::timeout(self.connect_bound, self.slots.acquire())
            .await
            .ok()?
            .ok()?;
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        Some(Slot {
            _permit: permit,
            conn,
        })
    }

    /// Gives a connection back, unless it broke.
    pub(super) fn put_back(&self, conn: Conn, broken: bool) {
        if !broken && !conn.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}
