//! `mdbook-lab`: the course's mdBook preprocessor, for a stock `mdbook build`, and the
//! offline build of the book on its own (`mdbook-lab build [BOOK_DIR]`).
//!
//! A thin adapter: mdBook's preprocessor protocol on the outside, the `lab-book` crate's
//! [`LabPreprocessor`] inside — the same code `runner book` calls in-process. It links
//! the book's crates only (no Docker client, database driver or async runtime), so a
//! fresh clone renders the book from its records without compiling the engine. A live
//! or auto build (`[preprocessor.lab] mode`, `LAB_MODE`) runs each chapter it needs with
//! `runner exec` — the engine's one implementation, through its command line. Any error
//! exits non-zero, which makes mdBook fail the build.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use lab_book::{LabPreprocessor, LiveRun};
use lab_core::Chapter;
use mdbook_preprocessor::Preprocessor;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        // Records splice into Markdown, which every renderer reads.
        Some("supports") => return ExitCode::SUCCESS,
        Some("build") => build(args.get(1).map_or("book", String::as_str)),
        Some(other) if other.starts_with('-') || args.len() > 1 => Err(anyhow::anyhow!(
            "usage: mdbook-lab (as mdBook's preprocessor, JSON on stdin) | mdbook-lab supports \
             RENDERER | mdbook-lab build [BOOK_DIR]"
        )),
        _ => preprocess(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mdbook-lab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// mdBook's protocol: the context and book as JSON on stdin, the book back on stdout.
fn preprocess() -> Result<()> {
    let (ctx, book) = mdbook_preprocessor::parse_input(io::stdin())?;
    let book = LabPreprocessor::new(None, Some(Arc::new(RunnerExec))).run(&ctx, book)?;
    serde_json::to_writer(io::stdout(), &book)?;
    Ok(())
}

/// Renders the book in `book_dir` to HTML in-process, as `runner book` does offline.
fn build(book_dir: &str) -> Result<()> {
    let out = lab_book::build(Path::new(book_dir), None, Some(Arc::new(RunnerExec)))?;
    eprintln!("mdbook-lab: rendered to {}", out.display());
    Ok(())
}

/// Runs chapters live with `runner exec <chapter>` (the `runner` beside this binary, or
/// on `PATH`), from the project root; `runner exec` re-records each one.
struct RunnerExec;

impl LiveRun for RunnerExec {
    fn run(&self, book_dir: &Path, chapters: &[&Chapter]) -> Result<()> {
        let root = book_dir
            .parent()
            .context("the book folder has no parent (the project root)")?;
        let runner = runner_binary();
        let mut failed = Vec::new();
        for chapter in chapters {
            let stem = Path::new(&chapter.path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| chapter.path.clone());
            eprintln!(
                "mdbook-lab: running {} live (`runner exec {stem}`)",
                chapter.path
            );
            let status = Command::new(&runner)
                .args(["exec", &stem])
                .current_dir(root)
                // mdBook reads the preprocessor's stdout: the run reports on stderr.
                .stdout(io::stderr())
                .status()
                .with_context(|| {
                    format!(
                        "starting {} (a live build needs the runner: cargo build -p runner)",
                        runner.display()
                    )
                })?;
            if !status.success() {
                failed.push(format!("{} ({status})", chapter.path));
            }
        }
        if !failed.is_empty() {
            bail!(
                "chapters did not run as they expect:\n  {}",
                failed.join("\n  ")
            );
        }
        Ok(())
    }
}

/// `runner` beside this binary when it is there (both built by cargo), else on `PATH`.
fn runner_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("runner")))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("runner"))
}
