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

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mdbook_preprocessor::book::Book;
use mdbook_preprocessor::{Preprocessor, PreprocessorContext};

use crate::lab::{Chapter, LabErrors, parse_chapter};
use crate::record::{self, ChapterRecord, Freshness};
use crate::render;
use crate::settings::Settings;

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

/// A chapter file of the book with its lab content.
#[derive(Debug, Clone)]
pub struct LabChapter {
    /// The chapter's lab blocks.
    pub chapter: Chapter,
    /// Its Markdown source.
    pub source: String,
}

/// Reads and parses every chapter under `book/src` that has lab blocks, sorted by path.
/// Markup errors of all chapters are reported together.
pub fn lab_chapters(book: &Path) -> Result<Vec<LabChapter>> {
    let src = book.join("src");
    let mut files = Vec::new();
    collect_markdown(&src, &mut files).with_context(|| format!("reading {}", src.display()))?;
    files.sort();
    let mut chapters = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        let source = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        match parse_chapter(&display_path(book, &rel), &rel, &source) {
            Ok(chapter) if chapter.blocks.is_empty() && chapter.precondition.is_none() => {}
            Ok(chapter) => chapters.push(LabChapter { chapter, source }),
            Err(LabErrors(errs)) => errors.extend(errs),
        }
    }
    if !errors.is_empty() {
        return Err(LabErrors(errors).into());
    }
    Ok(chapters)
}

fn display_path(book: &Path, rel: &str) -> String {
    let name = book
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "book".into());
    format!("{name}/src/{rel}")
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_markdown(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    Ok(())
}

/// Finds a chapter by number (`4`), `chapter-4`, or file stem.
pub fn select<'a>(chapters: &'a [LabChapter], selector: &str) -> Result<&'a LabChapter> {
    let wanted = if selector.chars().all(|c| c.is_ascii_digit()) {
        format!("chapter-{selector}")
    } else {
        selector.trim_end_matches(".md").to_string()
    };
    let found: Vec<&LabChapter> = chapters
        .iter()
        .filter(|c| {
            let stem = c.chapter.stem();
            stem == wanted || stem.starts_with(&format!("{wanted}-"))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "no lab chapter matches {selector:?} (chapters: {})",
            chapters
                .iter()
                .map(|c| c.chapter.stem())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        many => bail!(
            "{selector:?} matches several chapters: {}",
            many.iter()
                .map(|c| c.chapter.stem())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The state of the book's records, as `runner check` reports it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckSummary {
    /// Lab chapters.
    pub chapters: usize,
    /// Lab blocks.
    pub blocks: usize,
    /// Blocks with a record made from their current text.
    pub fresh: usize,
    /// Blocks whose record was made from other text.
    pub stale: usize,
    /// Blocks with no record.
    pub missing: usize,
    /// Checks whose fresh record held.
    pub checks_passed: usize,
    /// Checks whose fresh record did not hold.
    pub checks_failed: usize,
    /// Steps whose fresh record did not end as the chapter expects.
    pub steps_failed: usize,
    /// One line per problem: `book/src/chapter-2.md:41 [id] stale`.
    pub problems: Vec<String>,
}

impl CheckSummary {
    /// Whether the book can be built offline as it is.
    pub fn ok(&self) -> bool {
        self.stale == 0 && self.missing == 0 && self.checks_failed == 0 && self.steps_failed == 0
    }

    /// The one-line summary.
    pub fn line(&self) -> String {
        format!(
            "{} chapters, {} blocks: {} fresh, {} stale, {} missing; checks: {} passed, {} failed; steps failed: {}",
            self.chapters,
            self.blocks,
            self.fresh,
            self.stale,
            self.missing,
            self.checks_passed,
            self.checks_failed,
            self.steps_failed
        )
    }
}

/// Compares every lab block with its record.
pub fn check(book: &Path) -> Result<CheckSummary> {
    let chapters = lab_chapters(book)?;
    let mut summary = CheckSummary {
        chapters: chapters.len(),
        ..Default::default()
    };
    for lab in &chapters {
        let chapter = &lab.chapter;
        let record = record::load(book, chapter)?;
        let file = display_path(book, &chapter.path);
        for (block, fresh) in chapter
            .blocks
            .iter()
            .zip(record::freshness(chapter, record.as_ref()))
        {
            summary.blocks += 1;
            let at = format!("{} [{}]", block.location(&file), block.id);
            match fresh {
                Freshness::Stale => {
                    summary.stale += 1;
                    summary.problems.push(format!(
                        "{at}: stale (its text changed since it was recorded)"
                    ));
                }
                Freshness::Missing => {
                    summary.missing += 1;
                    summary.problems.push(format!("{at}: no record"));
                }
                Freshness::Fresh => {
                    summary.fresh += 1;
                    let r = record
                        .as_ref()
                        .and_then(|r| r.fresh_for(block))
                        .expect("fresh implies a record");
                    match &r.check {
                        Some(c) if c.passed => summary.checks_passed += 1,
                        Some(c) => {
                            summary.checks_failed += 1;
                            summary
                                .problems
                                .push(format!("{at}: check did not hold: {}", c.claim));
                        }
                        None if !r.ok => {
                            summary.steps_failed += 1;
                            summary
                                .problems
                                .push(format!("{at}: step did not end as expected"));
                        }
                        None => {}
                    }
                }
            }
        }
    }
    Ok(summary)
}

/// The `lab` preprocessor.
pub struct LabPreprocessor {
    mode: Option<Mode>,
}

impl LabPreprocessor {
    /// A preprocessor whose mode comes from `book.toml` / `LAB_MODE`, unless `mode` is given.
    pub fn new(mode: Option<Mode>) -> LabPreprocessor {
        LabPreprocessor { mode }
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
            run_live(&book_dir, mode)?;
        }
        let mut problems = Vec::new();
        let mut failure: Option<anyhow::Error> = None;
        book.for_each_chapter_mut(|chapter| {
            if failure.is_some() {
                return;
            }
            let Some(path) = chapter.source_path.clone() else {
                return;
            };
            let rel = path.to_string_lossy().into_owned();
            let parsed = match parse_chapter(&display_path(&book_dir, &rel), &rel, &chapter.content)
            {
                Ok(parsed) => parsed,
                Err(errs) => {
                    failure = Some(errs.into());
                    return;
                }
            };
            if parsed.blocks.is_empty() && parsed.precondition.is_none() {
                return;
            }
            let record = match record::load(&book_dir, &parsed) {
                Ok(record) => record,
                Err(err) => {
                    failure = Some(err);
                    return;
                }
            };
            let file = display_path(&book_dir, &rel);
            for (block, fresh) in parsed
                .blocks
                .iter()
                .zip(record::freshness(&parsed, record.as_ref()))
            {
                match fresh {
                    Freshness::Fresh => {}
                    Freshness::Stale => {
                        problems.push(format!("{}: stale record", block.location(&file)))
                    }
                    Freshness::Missing => {
                        problems.push(format!("{}: no record", block.location(&file)))
                    }
                }
            }
            let empty = ChapterRecord {
                chapter: rel.clone(),
                recorded_at: String::new(),
                server_version: None,
                duration_ms: 0,
                blocks: Vec::new(),
            };
            chapter.content =
                render::splice(&chapter.content, &parsed, record.as_ref().unwrap_or(&empty));
        });
        if let Some(err) = failure {
            return Err(err);
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
fn run_live(book_dir: &Path, mode: Mode) -> Result<()> {
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
            todo.push(lab.clone());
        }
    }
    if todo.is_empty() {
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let cluster = crate::cluster::Cluster::connect(settings).await?;
        let mut engine = crate::run::Engine::new(cluster, true);
        let mut failed = Vec::new();
        for lab in &todo {
            eprintln!("lab: running {} live", lab.chapter.path);
            let record = engine.run_chapter(&lab.chapter).await?;
            let bad: Vec<String> = record
                .blocks
                .iter()
                .filter(|b| !b.ok)
                .map(|b| format!("{}:{} [{}]", lab.chapter.path, b.line, b.id))
                .collect();
            record::save(book_dir, &lab.chapter, &record)?;
            failed.extend(bad);
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

/// Builds the book in-process (mdbook-driver) with the lab preprocessor.
pub fn build(book_dir: &Path, mode: Option<Mode>) -> Result<PathBuf> {
    let mut book = mdbook_driver::MDBook::load(book_dir)
        .with_context(|| format!("loading the book at {}", book_dir.display()))?;
    book.with_preprocessor(LabPreprocessor::new(mode));
    book.build().context("building the book")?;
    Ok(book.build_dir_for("html"))
}
