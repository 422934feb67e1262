//! How the command line shows a run: the engine's events as a transcript on stderr, and
//! the library's `tracing` messages as plain lines.

use std::sync::Arc;

use runner::lab::engine::{Observer, SharedObserver, StepEnd, ran_on};
use runner::lab::record::BlockRecord;
use runner::lab::{Block, Chapter, Runner};

/// Prints each step as it starts (`$ command` / `> sql`), what it prints, and how it
/// ended (`✔ exit 0 in 0.42 s`, `✔ check held: … (figure)`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Console;

impl Console {
    /// A console observer, shared.
    pub fn shared() -> SharedObserver {
        Arc::new(Console)
    }
}

impl Observer for Console {
    fn note(&self, text: &str) {
        eprintln!("{text}");
    }

    fn step_started(&self, chapter: &Chapter, block: &Block, command: &str) {
        let kind = if block.check {
            "check"
        } else if block.background {
            "background"
        } else {
            "step"
        };
        eprintln!(
            "\n── {} [{}] {kind} on {} ──",
            block.location(&chapter.path),
            block.id,
            ran_on(block)
        );
        let prompt = if block.runner == Runner::Shell {
            "$"
        } else {
            ">"
        };
        for line in command.lines() {
            eprintln!("{prompt} {line}");
        }
    }

    fn output(&self, text: &str) {
        eprint!("{text}");
    }

    fn step_ended(&self, block: &Block, record: &BlockRecord) {
        if block.background {
            eprintln!(
                "── background step {} ended ──\n{}",
                block.id,
                record.output.trim_end()
            );
        }
        let mark = if record.ok { "✔" } else { "✘" };
        match &record.check {
            Some(check) => eprintln!("{mark} {}", check.verdict()),
            None => eprintln!(
                "{mark} {} in {:.2} s",
                StepEnd::of(record, block.timeout),
                record.duration_ms as f64 / 1000.0
            ),
        }
    }
}

/// Shows the library's `tracing` messages (cluster, images) as plain lines on stderr;
/// `RUNNER_LOG` (e.g. `debug`) shows more.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNNER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_level(false)
        .with_ansi(false)
        .try_init();
}
