//! `runner watch`: replication as it happens, one screen refreshed every second.
//!
//! [`probe`] collects a [`Snapshot`] of the cluster — every node probed at once over a
//! connection it keeps, every query and the whole frame bounded well under the refresh
//! interval, a node that does not answer recorded as down — plus the writer's rates
//! read from the tail of its ledger ([`writer`]). [`view`] turns a snapshot into a
//! ratatui frame or into plain text; it is pure, so a synthetic snapshot renders in a
//! test exactly as a live one does. The terminal loop lives in the CLI
//! (`cmd/watch.rs`).

pub mod probe;
pub mod topology;
pub mod view;
pub mod writer;

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use probe::Prober;
pub use writer::{LedgerTail, WriterSource, WriterStats};

/// Whether a node (or pgbouncer) answered this frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// It answered every query of the frame.
    Up,
    /// Its container is not running, or it did not answer within the bound: why.
    Down(String),
}

impl Reach {
    /// Whether it answered.
    pub fn is_up(&self) -> bool {
        matches!(self, Reach::Up)
    }
}

/// What a primary's `pg_stat_replication` says about one standby.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replication {
    /// The primary whose view this row is.
    pub upstream: String,
    /// `startup`, `catchup`, `streaming`, `backup`, `stopping`.
    pub state: String,
    /// `async`, `potential`, `sync`, `quorum`.
    pub sync_state: String,
    /// `sync_priority` (0 for an asynchronous standby).
    pub sync_priority: Option<i64>,
    /// Bytes of WAL the primary has not sent yet.
    pub sent_bytes: Option<i64>,
    /// Bytes of WAL the standby has not written yet.
    pub write_bytes: Option<i64>,
    /// Bytes of WAL the standby has not flushed yet.
    pub flush_bytes: Option<i64>,
    /// Bytes of WAL the standby has not replayed yet.
    pub replay_bytes: Option<i64>,
    /// `write_lag`, in seconds (NULL once the standby is idle and caught up).
    pub write_lag: Option<f64>,
    /// `flush_lag`, in seconds.
    pub flush_lag: Option<f64>,
    /// `replay_lag`, in seconds.
    pub replay_lag: Option<f64>,
}

/// A standby's WAL receiver (`pg_stat_wal_receiver`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receiver {
    /// `streaming`, `starting`, `waiting`, `restarting`, `stopping`; `None` when no WAL
    /// receiver runs (its upstream is gone, or it is between retries).
    pub status: Option<String>,
    /// `sender_host:sender_port`.
    pub upstream: Option<String>,
}

/// One PostgreSQL node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The compose service (or, for a replication row that names no service, its
    /// `application_name`).
    pub name: String,
    /// Whether it answered.
    pub reach: Reach,
    /// `primary` or `standby` (from `pg_is_in_recovery()`); on the Patroni cluster,
    /// Patroni's role (`leader`, `sync_standby`, `replica`).
    pub role: Option<String>,
    /// The timeline it runs on.
    pub timeline: Option<i64>,
    /// Patroni's state of the member (`running`, `streaming`, `stopped`, …).
    pub patroni_state: Option<String>,
    /// Its row in a primary's `pg_stat_replication`.
    pub replication: Option<Replication>,
    /// A standby's WAL receiver.
    pub receiver: Option<Receiver>,
    /// `pg_get_wal_replay_pause_state()` when not `not paused`.
    pub replay_paused: Option<String>,
    /// `recovery_min_apply_delay` when it is not 0.
    pub apply_delay: Option<String>,
}

impl Node {
    /// A node that did not answer.
    pub fn down(name: &str, why: impl Into<String>) -> Node {
        Node {
            name: name.to_string(),
            reach: Reach::Down(why.into()),
            role: None,
            timeline: None,
            patroni_state: None,
            replication: None,
            receiver: None,
            replay_paused: None,
            apply_delay: None,
        }
    }

    /// Whether it is a primary (or Patroni's leader).
    pub fn is_primary(&self) -> bool {
        matches!(
            self.role.as_deref(),
            Some("primary" | "leader" | "standby_leader")
        )
    }
}

/// A replication slot on a primary (`pg_replication_slots`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    /// The node that holds it.
    pub node: String,
    /// `slot_name`.
    pub name: String,
    /// `physical` or `logical`.
    pub slot_type: String,
    /// Whether a receiver uses it now.
    pub active: bool,
    /// `reserved`, `extended`, `unreserved`, `lost`.
    pub wal_status: Option<String>,
    /// Bytes of WAL it keeps (current LSN − `restart_lsn`).
    pub retained_bytes: Option<i64>,
    /// `safe_wal_size` (NULL when `max_slot_wal_keep_size` is -1).
    pub safe_wal_size: Option<i64>,
}

/// Commits waiting for a synchronous standby on a primary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncWaits {
    /// The primary.
    pub node: String,
    /// Backends whose `wait_event` is `SyncRep`.
    pub count: i64,
    /// How long the oldest has waited (since its statement started), in seconds.
    pub oldest: Option<f64>,
    /// `synchronous_standby_names`.
    pub standby_names: String,
}

/// One pool of pgbouncer's `SHOW POOLS`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pool {
    /// `database`.
    pub database: String,
    /// `user`.
    pub user: String,
    /// Clients linked to a server.
    pub cl_active: i64,
    /// Clients waiting for a server.
    pub cl_waiting: i64,
    /// Servers linked to a client.
    pub sv_active: i64,
    /// Idle servers.
    pub sv_idle: i64,
    /// How long the oldest waiting client has waited, in seconds.
    pub maxwait: f64,
}

/// pgbouncer: its pools and where its databases point.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooler {
    /// Whether its admin console answered.
    pub reach: Reach,
    /// `SHOW POOLS`, without the admin console's own.
    pub pools: Vec<Pool>,
    /// `SHOW DATABASES`: name and `host:port` of each database in use.
    pub databases: Vec<(String, String)>,
}

/// Everything one frame shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The compose project.
    pub project: String,
    /// When the probe started.
    pub at: DateTime<Utc>,
    /// How long the probe took.
    pub took: Duration,
    /// The PostgreSQL nodes, in the service table's order.
    pub nodes: Vec<Node>,
    /// The primaries' replication slots.
    pub slots: Vec<Slot>,
    /// SyncRep waits per primary.
    pub sync_waits: Vec<SyncWaits>,
    /// pgbouncer, when its container exists.
    pub pgbouncer: Option<Pooler>,
    /// The writer, when a ledger is followed.
    pub writer: Option<WriterStats>,
    /// What the probe could not see (Docker or Patroni's API unreachable, …).
    pub notes: Vec<String>,
}
