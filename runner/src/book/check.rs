//! `runner check`: every lab block against its record, without Docker.

use std::path::Path;

use anyhow::Result;

use crate::lab::chapters::{display_path, lab_chapters};
use crate::lab::record::{self, Freshness};

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
        summary
            .problems
            .extend(record::unrecorded(chapter, record.as_ref(), &file));
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
    Ok(summary)
}
