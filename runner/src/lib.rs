//! The PostgreSQL Replication Deep Dive's command line, over the workspace's layers.
//!
//! Each layer is a crate, and Cargo refuses an arrow pointing up:
//!
//! - `lab-core`: the lab model (chapters, blocks, records, services, settings);
//! - `lab-book`: the book (splicing, charts, diagrams, record checks) — all an offline
//!   build needs, and all `mdbook-lab` links;
//! - `lab-cluster`: Docker, compose, images, bounded sessions and waits, Patroni, HAProxy;
//! - `lab-engine`: a chapter's steps run, judged and recorded (and typed as a reader);
//! - `lab-workload`: the writer, the application tier, verification, consistency
//!   probes, repeated failovers, the live view.
//!
//! This crate holds what joins them — a live book build (`book`: the engine behind
//! `lab-book`'s `LiveRun`) — and the `runner` command line. Its modules re-export the
//! layers under the names the command line and the tests use (`runner::cluster`,
//! `runner::lab`, `runner::load`, …).

pub mod book;

pub use lab_cluster as cluster;
pub use lab_engine as lab;
pub use lab_workload::{chaos, consistency, load, serve, verify, watch};
