//! What the course runs against the cluster, beyond a chapter's own steps.
//!
//! Its modules are layered, lowest first, and import only from lower ones (the
//! workspace's `layers` test checks it):
//!
//! - `load`: the writer (`runner load`) and its ledger — every transaction with its
//!   outcome;
//! - `verify`, `serve`, `consistency`: a ledger checked against a node, the application
//!   tier that writes through the pooler, and the probes that count what readers see;
//! - `chaos`, `watch`: repeated failovers with their distributions, and the live view
//!   of the cluster.

pub mod chaos;
pub mod consistency;
pub mod load;
pub mod serve;
pub mod verify;
pub mod watch;
