//! Whether a step ended as its chapter expects: one judgement for the engine and for
//! reader mode, so a chapter typed by hand is held to exactly the same checks.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::output::{Table, capture_line, parse_bars, parse_series};
use crate::record::{BlockRecord, CheckRecord};
use crate::{Block, Expect};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepEnd {
    /// It exited with this status.
    Exit(i64),
    /// It was still running at its bound and was stopped.
    TimedOut(Duration),
    /// It ended without an exit status (killed by a signal, or never started).
    #[default]
    NoStatus,
}

impl StepEnd {
    /// The end a record describes; `bound` is the block's timeout.
    pub fn of(record: &BlockRecord, bound: Duration) -> StepEnd {
        match (record.timed_out, record.exit_code) {
            (true, _) => StepEnd::TimedOut(bound),
            (false, Some(code)) => StepEnd::Exit(code),
            (false, None) => StepEnd::NoStatus,
        }
    }

    /// The exit status, when it exited.
    pub fn exit_code(self) -> Option<i64> {
        match self {
            StepEnd::Exit(code) => Some(code),
            _ => None,
        }
    }

    /// Whether it hit its bound.
    pub fn timed_out(self) -> bool {
        matches!(self, StepEnd::TimedOut(_))
    }
}

impl fmt::Display for StepEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepEnd::Exit(code) => write!(f, "exit {code}"),
            StepEnd::TimedOut(bound) => write!(f, "stopped at its {} s bound", bound.as_secs_f64()),
            StepEnd::NoStatus => f.write_str("no exit status"),
        }
    }
}

/// What one attempt of a step produced.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    /// Standard output and error, interleaved.
    pub(crate) output: String,
    /// How it ended.
    pub(crate) end: StepEnd,
    /// For checks and captures from SQL: the result.
    pub(crate) table: Option<Table>,
}

/// The verdict on one attempt of a step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judgement {
    /// For a check: whether it held, and the figure behind it.
    pub(crate) check: Option<CheckRecord>,
    /// The values it captured.
    pub(crate) captures: BTreeMap<String, String>,
    /// Whether it ended as the chapter expects (and its check held).
    pub(crate) ok: bool,
}

/// Whether an outcome meets the block's expectation; its check and captures.
pub(crate) fn judge(block: &Block, outcome: &Outcome) -> Judgement {
    let exit_ok = match (block.expect, outcome.end) {
        (Expect::Success, StepEnd::Exit(code)) => code == 0,
        (Expect::Failure, StepEnd::Exit(code)) => code != 0,
        (Expect::Exit(want), StepEnd::Exit(code)) => code == want,
        (Expect::Timeout, end) => end.timed_out(),
        _ => false,
    };
    let mut captures = BTreeMap::new();
    for name in &block.captures {
        let value = match &outcome.table {
            Some(table) => table.first(name).map(str::to_string),
            None => capture_line(&outcome.output, name),
        };
        if let Some(value) = value {
            captures.insert(name.clone(), value);
        }
    }
    let captured_all = captures.len() == block.captures.len();
    let check = block.check.then(|| {
        let (passed, figure) = match &outcome.table {
            Some(table) => (table.holds() && exit_ok, table.figure()),
            None => (exit_ok, captures.clone().into_iter().collect()),
        };
        CheckRecord {
            claim: block.claim.clone().unwrap_or_default(),
            passed,
            figure,
        }
    });
    let chart_ok = (block.chart.is_none() || parse_series(&outcome.output).is_ok())
        && (block.bars.is_none() || parse_bars(&outcome.output).is_ok());
    let ok = exit_ok && captured_all && chart_ok && check.as_ref().is_none_or(|c| c.passed);
    Judgement {
        check,
        captures,
        ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_chapter;

    fn block(src: &str) -> Block {
        parse_chapter("c.md", "c.md", src).unwrap().blocks.remove(0)
    }

    #[test]
    fn a_check_holds_on_its_first_cell_and_exit() {
        let b = block("```sql check claim=\"x\" capture=n\nSELECT true, 1 AS n;\n```\n");
        let held = Outcome {
            end: StepEnd::Exit(0),
            table: Some(Table::from_csv("ok,n\nt,1\n").unwrap()),
            ..Outcome::default()
        };
        let j = judge(&b, &held);
        assert!(j.ok && j.check.as_ref().unwrap().passed);
        assert_eq!(j.captures["n"], "1");
        let failed = Outcome {
            table: Some(Table::from_csv("ok,n\nf,2\n").unwrap()),
            ..held.clone()
        };
        assert!(!judge(&b, &failed).ok);
        let timed_out = Outcome {
            end: StepEnd::TimedOut(Duration::from_secs(3)),
            ..held
        };
        assert!(
            !judge(&b, &timed_out).ok,
            "a check that timed out never holds"
        );
    }

    #[test]
    fn expectations_and_the_one_display() {
        let b = block("```sh lab expect-timeout timeout=3s\nsleep 9\n```\n");
        let end = StepEnd::TimedOut(b.timeout);
        assert!(
            judge(
                &b,
                &Outcome {
                    end,
                    ..Outcome::default()
                }
            )
            .ok
        );
        assert_eq!(end.to_string(), "stopped at its 3 s bound");
        assert_eq!(StepEnd::Exit(2).to_string(), "exit 2");
        assert_eq!(StepEnd::NoStatus.to_string(), "no exit status");
        let b = block("```sh lab expect-exit=2\nexit 2\n```\n");
        let j = judge(
            &b,
            &Outcome {
                end: StepEnd::Exit(2),
                ..Outcome::default()
            },
        );
        assert!(j.ok);
    }
}
