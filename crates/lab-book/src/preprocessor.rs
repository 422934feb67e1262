//! The `lab` preprocessor: records spliced into the chapters, after running live the
//! chapters the mode asks for.

use std::path::Path;

use anyhow::{Result, bail};
use mdbook_preprocessor::book::Book;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use std::sync::Arc;

use super::{diagram, render, xref};
use lab_core::Chapter;
use lab_core::chapters::{display_path, lab_chapters};
use lab_core::parse_chapter;
use lab_core::record::{self, ChapterRecord, Freshness};

/// Where the preprocessor takes output from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Records only.
    Offline,
    /// Run chapters whose records are missing or stale.
    Auto,
    /// Run every lab chapter.
    Live,
}

impl std::str::FromStr for Mode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "offline" => Ok(Mode::Offline),
            "auto" => Ok(Mode::Auto),
            "live" => Ok(Mode::Live),
            other => bail!("unknown lab mode {other:?} (offline, auto, live)"),
        }
    }
}

/// What runs chapters against a cluster and saves their records, for the `auto` and
/// `live` modes. This crate renders; running is the engine's (the `runner` crate):
/// `runner book` hands it the engine in-process, `mdbook-lab` runs `runner exec`.
pub trait LiveRun: Send + Sync {
    /// Runs `chapters` of the book in `book_dir` live and saves their records; fails when
    /// a step did not end as its chapter expects.
    fn run(&self, book_dir: &Path, chapters: &[&Chapter]) -> Result<()>;
}

/// The `lab` preprocessor.
pub struct LabPreprocessor {
    mode: Option<Mode>,
    live: Option<Arc<dyn LiveRun>>,
}

impl LabPreprocessor {
    /// A preprocessor whose mode comes from `book.toml` / `LAB_MODE`, unless `mode` is
    /// given; `live` runs the chapters a live or auto mode asks for (without it, those
    /// modes fail, naming `runner book --live`).
    pub fn new(mode: Option<Mode>, live: Option<Arc<dyn LiveRun>>) -> LabPreprocessor {
        LabPreprocessor { mode, live }
    }

    fn mode(&self, ctx: &PreprocessorContext) -> Result<Mode> {
        if let Some(mode) = self.mode {
            return Ok(mode);
        }
        if let Ok(mode) = std::env::var("LAB_MODE") {
            return mode.parse();
        }
        match ctx.config.get::<String>("preprocessor.lab.mode")? {
            Some(mode) => mode.parse(),
            None => Ok(Mode::Offline),
        }
    }
}

impl Preprocessor for LabPreprocessor {
    fn name(&self) -> &str {
        "lab"
    }

    fn run(&self, ctx: &PreprocessorContext, mut book: Book) -> Result<Book> {
        let mode = self.mode(ctx)?;
        let book_dir = ctx.root.clone();
        if mode != Mode::Offline {
            let Some(live) = &self.live else {
                bail!(
                    "the lab mode is {mode:?}, and this build cannot run chapters: \
                     build with `runner book --live` (or `--auto`)"
                );
            };
            run_live(&book_dir, mode, live.as_ref())?;
        }
        let mut problems = Vec::new();
        let mut unresolved = Vec::new();
        let mut records = xref::Records::default();
        let mut failure: Option<anyhow::Error> = None;
        book.for_each_chapter_mut(|chapter| {
            if failure.is_some() {
                return;
            }
            let Some(path) = chapter.source_path.clone() else {
                return;
            };
            let rel = path.to_string_lossy().into_owned();
            let file = display_path(&book_dir, &rel);
            // Other chapters' values (`{{chapter-4-…:lost}}`), on any page.
            let references = match xref::resolve(&book_dir, &mut records, &file, &chapter.content) {
                Ok(edits) => edits,
                Err(errors) => {
                    unresolved.extend(errors);
                    Vec::new()
                }
            };
            let parsed = match parse_chapter(&file, &rel, &chapter.content) {
                Ok(parsed) => parsed,
                Err(errs) => {
                    failure = Some(errs.into());
                    return;
                }
            };
            if parsed.blocks.is_empty() && parsed.precondition.is_none() {
                if !references.is_empty() {
                    chapter.content = render::apply(&chapter.content, references);
                }
                return;
            }
            let record = match record::load(&book_dir, &parsed) {
                Ok(record) => record,
                Err(err) => {
                    failure = Some(err);
                    return;
                }
            };
            problems.extend(record::unrecorded(&parsed, record.as_ref(), &file));
            unresolved.extend(diagram::problems(&parsed, record.as_ref(), &file));
            let empty = ChapterRecord {
                format: record::FORMAT,
                chapter: rel.clone(),
                recorded_at: chrono::DateTime::UNIX_EPOCH,
                server_version: None,
                duration_ms: 0,
                blocks: Vec::new(),
            };
            chapter.content = render::splice_with(
                &chapter.content,
                &parsed,
                record.as_ref().unwrap_or(&empty),
                references,
            );
        });
        if let Some(err) = failure {
            return Err(err);
        }
        if !unresolved.is_empty() {
            bail!(
                "{} value(s) or diagram(s) cannot be rendered from the records:\n  {}",
                unresolved.len(),
                unresolved.join("\n  ")
            );
        }
        if !problems.is_empty() {
            bail!(
                "{} lab block(s) have no record made from their current text; re-run their chapters \
                 (`runner exec <chapter>`, or build with `runner book --live`):\n  {}",
                problems.len(),
                problems.join("\n  ")
            );
        }
        Ok(book)
    }
}

/// Runs the chapters the mode asks for (every lab chapter, or those with a missing or
/// stale record) through `live`.
fn run_live(book_dir: &Path, mode: Mode, live: &dyn LiveRun) -> Result<()> {
    let chapters = lab_chapters(book_dir)?;
    let mut todo = Vec::new();
    for lab in &chapters {
        let record = record::load(book_dir, &lab.chapter)?;
        let fresh = record::freshness(&lab.chapter, record.as_ref());
        if mode == Mode::Live || fresh.iter().any(|f| *f != Freshness::Fresh) {
            todo.push(&lab.chapter);
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    live.run(book_dir, &todo)
}
