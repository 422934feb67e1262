//! Lab steps: the model (blocks, chapters, records: the `lab-core` crate, re-exported
//! here), and what runs them against a cluster — the engine, and the reader's terminal.

pub use lab_core::*;

pub mod engine;
pub mod reader;
