//! What the engine reports while it runs, and who listens.
//!
//! The library never prints: the engine (and reader mode) tell an [`Observer`] what
//! happens — a step starts, prints a line, ends — and each front end decides how to show
//! it. The `runner` CLI prints a console transcript; `mdbook-lab` logs through
//! `tracing`, as mdBook does; tests stay [`Silent`].

use std::sync::Arc;

use crate::record::BlockRecord;
use crate::{Block, Chapter};

/// Events of a run. Every method has a default that ignores the event.
pub trait Observer: Send + Sync {
    /// A line of progress that is not a step's (a precondition, a note of reader mode).
    fn note(&self, _text: &str) {}
    /// A step starts; `command` is its text as run.
    fn step_started(&self, _chapter: &Chapter, _block: &Block, _command: &str) {}
    /// A foreground step printed `text` (one or more whole lines).
    fn output(&self, _text: &str) {}
    /// A step ended (a background one when it is stopped or ends), with its record.
    fn step_ended(&self, _block: &Block, _record: &BlockRecord) {}
}

/// Shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {}

/// Reports through `tracing`: a step's end at `info`, its text and output at `debug`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Traced;

impl Observer for Traced {
    fn note(&self, text: &str) {
        tracing::info!("{text}");
    }

    fn step_started(&self, chapter: &Chapter, block: &Block, command: &str) {
        tracing::debug!(
            "{} [{}]: {command}",
            block.location(&chapter.path),
            block.id
        );
    }

    fn output(&self, text: &str) {
        tracing::debug!("{}", text.trim_end());
    }

    fn step_ended(&self, block: &Block, record: &BlockRecord) {
        let verdict = match &record.check {
            Some(check) if check.passed => format!("check held: {}", check.claim),
            Some(check) => format!("check did NOT hold: {}", check.claim),
            None if record.ok => format!("ended as expected in {} ms", record.duration_ms),
            None => format!("did NOT end as expected ({} ms)", record.duration_ms),
        };
        if record.ok {
            tracing::info!("[{}] {verdict}", block.id);
        } else {
            tracing::warn!("[{}] {verdict}", block.id);
        }
    }
}

/// A shared observer.
pub type SharedObserver = Arc<dyn Observer>;
