//! `runner check`: every lab block against its record, without Docker.

use std::path::Path;

use anyhow::{Context, Result};

use super::{diagram, xref};
use lab_core::chapters::{display_path, lab_chapters};
use lab_core::record::{self, Freshness};

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
    /// What cannot be rendered from the records: a `{{chapter:name}}` naming no recorded
    /// value, a `topology=` step whose output is not `runner topology`'s table.
    pub unrenderable: usize,
    /// One line per problem: `book/src/chapter-2.md:41 [id] stale`.
    pub problems: Vec<String>,
}

impl CheckSummary {
    /// Whether the book can be built offline as it is.
    pub fn ok(&self) -> bool {
        self.stale == 0
            && self.missing == 0
            && self.checks_failed == 0
            && self.steps_failed == 0
            && self.unrenderable == 0
    }

    /// The one-line summary.
    pub fn line(&self) -> String {
        let unrenderable = match self.unrenderable {
            0 => String::new(),
            n => format!("; cannot render: {n}"),
        };
        format!(
            "{} chapters, {} blocks: {} fresh, {} stale, {} missing; checks: {} passed, {} failed; steps failed: {}{unrenderable}",
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
        summary
            .problems
            .extend(record::unrecorded(chapter, record.as_ref(), &file));
        let undrawable = diagram::problems(chapter, record.as_ref(), &file);
        summary.unrenderable += undrawable.len();
        summary.problems.extend(undrawable);
        for (block, fresh) in chapter
            .blocks
            .iter()
            .zip(record::freshness(chapter, record.as_ref()))
        {
            summary.blocks += 1;
            let at = format!("{} [{}]", block.location(&file), block.id);
            match fresh {
                Freshness::Stale => summary.stale += 1,
                Freshness::Missing => summary.missing += 1,
                Freshness::Fresh => {
                    summary.fresh += 1;
                    let Some(r) = record.as_ref().and_then(|r| r.fresh_for(block)) else {
                        continue;
                    };
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
    // Values one page takes from other chapters' records, on every page of the book.
    let mut records = xref::Records::default();
    for (file, source) in markdown_files(book)? {
        if let Err(errors) = xref::resolve(book, &mut records, &file, &source) {
            summary.unrenderable += errors.len();
            summary.problems.extend(errors);
        }
    }
    Ok(summary)
}

/// Every Markdown file under `book/src`, as (`book/src/…` name, text), sorted.
fn markdown_files(book: &Path) -> Result<Vec<(String, String)>> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
        Ok(())
    }
    let src = book.join("src");
    let mut paths = Vec::new();
    walk(&src, &mut paths).with_context(|| format!("reading {}", src.display()))?;
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&src).unwrap_or(&path).to_string_lossy();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok((display_path(book, &rel), text))
        })
        .collect()
}
