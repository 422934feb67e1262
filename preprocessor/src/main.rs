//! `mdbook-lab`: the course's mdBook preprocessor, for a stock `mdbook build`.
//!
//! A thin adapter: mdBook's preprocessor protocol on the outside, the runner library's
//! [`LabPreprocessor`](runner::book::LabPreprocessor) inside — the same code
//! `runner book` calls in-process. Steps of a live run and the library's messages are
//! logged to stderr through `tracing`, filtered by `MDBOOK_LOG` as mdBook's own log is;
//! any error exits non-zero, which makes mdBook fail the build.

use std::io;
use std::process::ExitCode;

use std::sync::Arc;

use mdbook_preprocessor::Preprocessor;
use runner::book::LabPreprocessor;
use runner::lab::engine::Traced;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("supports") {
        // Records splice into Markdown, which every renderer reads.
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mdbook-lab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    init_logging();
    let (ctx, book) = mdbook_preprocessor::parse_input(io::stdin())?;
    let book = LabPreprocessor::new(None, Arc::new(Traced)).run(&ctx, book)?;
    serde_json::to_writer(io::stdout(), &book)?;
    Ok(())
}

/// Logs to stderr like mdBook: `MDBOOK_LOG` (e.g. `debug`) filters, `info` by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MDBOOK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
