//! `mdbook-lab`: the course's mdBook preprocessor, for a stock `mdbook build`.
//!
//! A thin adapter: mdBook's preprocessor protocol on the outside, the runner library's
//! [`LabPreprocessor`](runner::book::LabPreprocessor) inside — the same code
//! `runner book` calls in-process. Logs go to stderr; any error exits non-zero, which
//! makes mdBook fail the build.

use std::io;
use std::process::ExitCode;

use mdbook_preprocessor::Preprocessor;
use runner::book::LabPreprocessor;

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
    let (ctx, book) = mdbook_preprocessor::parse_input(io::stdin())?;
    let book = LabPreprocessor::new(None).run(&ctx, book)?;
    serde_json::to_writer(io::stdout(), &book)?;
    Ok(())
}
