//! The engine of the PostgreSQL Replication Deep Dive.
//!
//! One library serves two front ends: the `runner` command line and the `mdbook-lab`
//! preprocessor. Each step of the course — running a lab block, recording its output,
//! splicing it into a chapter, writing load, verifying a ledger — is implemented once,
//! here.

pub mod book;
pub mod chaos;
pub mod cluster;
pub mod consistency;
pub mod lab;
pub mod load;
pub mod serve;
pub mod verify;
pub mod watch;
