//! The book: finding its lab chapters, checking their records, and building it.
//!
//! [`LabPreprocessor`] is the one implementation of the `lab` preprocessor: the
//! `mdbook-lab` binary wraps it for a stock `mdbook build`, and `runner book` hands it to
//! mdbook-driver in-process. Its mode decides where output comes from:
//!
//! - `offline` (default): the records only; a missing or stale record fails the build
//!   with the list of `file:line`s to re-run.
//! - `auto`: chapters with a missing or stale record run live first.
//! - `live`: every lab chapter runs live first.
//!
//! The mode comes from `[preprocessor.lab] mode` in `book.toml`, overridden by the
//! `LAB_MODE` environment variable.

pub mod chart;
pub mod diagram;
pub mod html;
pub mod render;
pub mod timeline;
pub mod xref;

mod check;
mod preprocessor;

pub use check::{CheckSummary, check};
pub use preprocessor::{LabPreprocessor, LiveRun, Mode};

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use std::sync::Arc;

/// Builds the book in-process (mdbook-driver) with the lab preprocessor; `live` runs
/// the chapters a live or auto mode asks for.
pub fn build(
    book_dir: &Path,
    mode: Option<Mode>,
    live: Option<Arc<dyn LiveRun>>,
) -> Result<PathBuf> {
    let mut book = mdbook_driver::MDBook::load(book_dir)
        .with_context(|| format!("loading the book at {}", book_dir.display()))?;
    book.with_preprocessor(LabPreprocessor::new(mode, live));
    book.build().context("building the book")?;
    Ok(book.build_dir_for("html"))
}
