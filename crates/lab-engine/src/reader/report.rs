//! What reader mode reports: how each typed block ended, and a chapter's summary.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::StepEnd;
use crate::record::CheckRecord;

/// How one block ended when typed.
#[derive(Debug, Clone)]
pub struct ReaderBlock {
    /// The block's id.
    pub id: String,
    /// The line of its opening fence.
    pub line: usize,
    /// Whether it is a check.
    pub check: bool,
    /// A hidden check: run in the terminal, though the reader does not type it.
    pub hidden: bool,
    /// What the terminal showed (cleaned; a SQL result as psql's table).
    pub output: String,
    /// How it ended: the status of the first failing command, or of the stopped job;
    /// timed out when it hit its bound (and got a Ctrl-C).
    pub end: StepEnd,
    /// How many times it was typed (`wait-until`).
    pub attempts: u32,
    /// The check's outcome, for checks.
    pub check_record: Option<CheckRecord>,
    /// Captured values.
    pub captures: BTreeMap<String, String>,
    /// Whether it ended as the chapter expects.
    pub ok: bool,
    /// What went wrong in the typing itself (an unfinished command, a closed terminal).
    pub problem: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

/// A chapter typed as a reader.
#[derive(Debug, Clone)]
pub struct ReaderReport {
    /// The chapter's path.
    pub chapter: String,
    /// The blocks typed (and hidden checks run), in chapter order.
    pub blocks: Vec<ReaderBlock>,
    /// Hidden steps left out.
    pub skipped: usize,
    /// The whole run, precondition included.
    pub duration: Duration,
}

impl ReaderReport {
    /// Blocks that did not end as the chapter expects.
    pub fn failed(&self) -> Vec<&ReaderBlock> {
        self.blocks.iter().filter(|b| !b.ok).collect()
    }

    /// Checks that held, and that did not.
    pub fn checks(&self) -> (usize, usize) {
        let checks = self.blocks.iter().filter(|b| b.check);
        let held = checks.clone().filter(|b| b.ok).count();
        (held, checks.count() - held)
    }

    /// One line: blocks typed, checks held and failed, time.
    pub fn summary(&self) -> String {
        let (held, failed) = self.checks();
        let typed = self.blocks.iter().filter(|b| !b.hidden).count();
        let hidden = self.blocks.len() - typed;
        let bad = self.failed().len();
        let mut line = format!(
            "{} as a reader: {} typed in {:.1} s, {held} {} held, {failed} failed, {} did not \
             end as the chapter expects",
            self.chapter,
            plural(typed, "block"),
            self.duration.as_secs_f64(),
            if held == 1 { "check" } else { "checks" },
            plural(bad, "block"),
        );
        if hidden > 0 || self.skipped > 0 {
            line.push_str(&format!(
                " ({} run, {} not typed)",
                plural(hidden, "hidden check"),
                plural(self.skipped, "hidden step")
            ));
        }
        line
    }
}

/// `1 block`, `2 blocks`.
fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
