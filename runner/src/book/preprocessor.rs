//! The `lab` preprocessor: records spliced into the chapters, after running live the
//! chapters the mode asks for.

use std::path::Path;

use anyhow::{Context, Result, bail};
use mdbook_preprocessor::book::Book;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use super::{diagram, render, xref};
use crate::cluster::settings::Settings;
use crate::lab::chapters::{display_path, lab_chapters};
use crate::lab::engine::{Engine, SharedObserver};
use crate::lab::parse_chapter;
use crate::lab::record::{self, ChapterRecord, Freshness};

/// Where the preprocessor takes output from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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

/// The `lab` preprocessor.
pub struct LabPreprocessor {
    mode: Option<Mode>,
    observer: SharedObserver,
}

impl LabPreprocessor {
    /// A preprocessor whose mode comes from `book.toml` / `LAB_MODE`, unless `mode` is
    /// given; a live run reports its steps to `observer`.
    pub fn new(mode: Option<Mode>, observer: SharedObserver) -> LabPreprocessor {
        LabPreprocessor { mode, observer }
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
            run_live(&book_dir, mode, self.observer.clone())?;
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
                chapter: rel.clone(),
                recorded_at: String::new(),
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

/// Runs the chapters the mode asks for against the cluster and saves their records.
fn run_live(book_dir: &Path, mode: Mode, observer: SharedObserver) -> Result<()> {
    let root = book_dir
        .parent()
        .context("the book folder has no parent (the project root)")?;
    let settings = Settings::load(root)?;
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
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let cluster = crate::cluster::Cluster::connect(settings).await?;
        let mut engine = Engine::new(cluster, observer);
        let mut failed = Vec::new();
        for chapter in todo {
            engine
                .observer
                .note(&format!("lab: running {} live", chapter.path));
            failed.extend(engine.record_chapter(book_dir, chapter).await?.failed);
        }
        if !failed.is_empty() {
            bail!(
                "steps did not end as their chapters expect:\n  {}",
                failed.join("\n  ")
            );
        }
        Ok(())
    })
}
