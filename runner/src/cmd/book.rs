//! `runner book`: renders book/book/ in-process with mdbook-driver.

use std::process::ExitCode;
use std::time::Instant;

use runner::book::Mode;
use runner::cluster::settings::Settings;

use super::console::Console;

/// Arguments of `runner book`.
#[derive(clap::Args)]
pub struct BookArgs {
    /// Re-run every lab chapter against the cluster first (records are rewritten).
    #[arg(long, conflicts_with = "auto")]
    live: bool,
    /// Re-run only the chapters whose records are missing or stale.
    #[arg(long)]
    auto: bool,
}

pub fn run(args: BookArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::discover()?;
    let mode = if args.live {
        Mode::Live
    } else if args.auto {
        Mode::Auto
    } else {
        Mode::Offline
    };
    let started = Instant::now();
    let out = runner::book::build(&settings.book_dir(), Some(mode), Console::shared())?;
    eprintln!(
        "book: rendered to {} in {:.2} s ({:?})",
        out.strip_prefix(&settings.root).unwrap_or(&out).display(),
        started.elapsed().as_secs_f64(),
        mode
    );
    Ok(ExitCode::SUCCESS)
}
