//! Consistency: what readers of a replicated database see, counted.
//!
//! Replication turns one database into several copies, and a client that reads from
//! more than one of them — or from a copy other than the one it wrote to — can observe
//! histories no single node would produce: its own write missing, time running
//! backwards, a row that was there and then never existed. Chapter 9 shows each of
//! them live, then its fix, and every claim is a count.
//!
//! - `log.rs`: the reader log, one event per line (writes, reads, skipped nodes);
//! - `check.rs`: the checker — stale reads, regressions, phantom-then-lost — a pure
//!   function over a log, tested on hand-made histories;
//! - `expect.rs`: what a chapter expects of the counts, and the verdict line;
//! - `probe.rs`: the bounded probe clients that make the logs against the cluster;
//! - `survivor.rs`: what the node that survived a failover holds of the rows read.

pub mod check;
pub mod expect;
pub mod log;
pub mod probe;
pub mod survivor;

pub use check::{Anomalies, FinalState, check, keys_seen};
pub use expect::Expect;
pub use log::{Event, History, LogWriter};
