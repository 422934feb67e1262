//! Reading a ledger back: every op with how it ended, checked line by line.
//!
//! The parser is strict where a mistake would change a count — an op settled twice,
//! settled without an attempt, outside the run's id range, a second header — and
//! lenient only where the writer's death explains the damage: an unfinished last line
//! is dropped with a note.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use super::super::errors::ErrorClass;
use super::{HEADER_PREFIX, Header};

/// How an attempted op ended, as far as the writer knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The commit returned OK at this time.
    Ack(Duration),
    /// The op failed at this time, with this class.
    Fail(Duration, ErrorClass),
}

/// One op of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// When it was sent.
    pub attempted: Duration,
    /// How it ended; `None` when the writer stopped (or was killed) before knowing.
    pub outcome: Option<Outcome>,
}

impl OpRecord {
    /// The ack time, when the op was acknowledged.
    pub fn acked_at(&self) -> Option<Duration> {
        match self.outcome {
            Some(Outcome::Ack(t)) => Some(t),
            _ => None,
        }
    }
}

/// A parsed ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// The run's header.
    pub header: Header,
    /// Every attempted op by id.
    pub ops: BTreeMap<i64, OpRecord>,
    /// The time of the `end` line, when the writer finished normally.
    pub end: Option<Duration>,
    /// The latest time any line carries (the end of what the ledger saw).
    pub last_event: Duration,
    /// Things the reader should know (a truncated last line that was ignored).
    pub notes: Vec<String>,
}

impl Ledger {
    /// Reads and parses the ledger at `path` — a runner ledger, or k6's JSON output
    /// ([`super::k6`]); errors name the file and the line.
    pub fn read(path: &Path) -> Result<Ledger> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the ledger {}", path.display()))?;
        // A write cut short can only leave a partial *last* line; decode lossily so the
        // parser can say which line is bad instead of failing on the whole file.
        let text = String::from_utf8_lossy(&bytes);
        if super::k6::is_k6_json(&text) {
            return super::k6::parse(&text, &path.display().to_string());
        }
        Ledger::parse(&text, &path.display().to_string())
    }

    /// Parses ledger text; `origin` names it in errors (`origin:line: ...`).
    pub fn parse(text: &str, origin: &str) -> Result<Ledger> {
        let mut lines: Vec<&str> = text.split('\n').collect();
        let mut notes = Vec::new();
        // `split` leaves "" after a final newline; anything else is an unfinished line.
        let last = lines.pop().unwrap_or_default();
        if !last.is_empty() {
            notes.push(format!(
                "{origin}:{}: ignored a truncated last line (the writer was stopped \
                 mid-write): {last:?}",
                lines.len() + 1
            ));
        }
        let Some(first) = lines.first() else {
            bail!("{origin}: the ledger is empty (no header line)");
        };
        let header = Header::parse(first).with_context(|| format!("{origin}:1"))?;
        let range = header.op_range();
        let mut ledger = Ledger {
            header,
            ops: BTreeMap::new(),
            end: None,
            last_event: Duration::ZERO,
            notes,
        };
        for (index, line) in lines.iter().enumerate().skip(1) {
            let n = index + 1;
            ledger
                .apply(line, &range)
                .with_context(|| format!("{origin}:{n}: {line:?}"))?;
        }
        Ok(ledger)
    }

    fn apply(&mut self, line: &str, range: &RangeInclusive<i64>) -> Result<()> {
        if line.trim().is_empty() {
            return Ok(());
        }
        if line.starts_with(HEADER_PREFIX) {
            bail!("a second header: a ledger holds one run");
        }
        if line.starts_with('#') {
            return Ok(());
        }
        let words: Vec<&str> = line.split(' ').collect();
        let op = |word: &str| -> Result<i64> {
            let op: i64 = word
                .parse()
                .with_context(|| format!("op id {word:?} is not an integer"))?;
            if !range.contains(&op) {
                bail!("op id {op} is outside the run's range {range:?}");
            }
            Ok(op)
        };
        let time = match words.as_slice() {
            ["attempt", id, t] => {
                let (op, t) = (op(id)?, parse_secs(t)?);
                if self.ops.contains_key(&op) {
                    bail!("op {op} attempted twice");
                }
                self.ops.insert(
                    op,
                    OpRecord {
                        attempted: t,
                        outcome: None,
                    },
                );
                t
            }
            ["ack", id, t] => self.settle(op(id)?, Outcome::Ack, t)?,
            ["fail", id, t, class] => {
                let class = ErrorClass::from_token(class)
                    .with_context(|| format!("unknown error class {class:?}"))?;
                self.settle(op(id)?, |t| Outcome::Fail(t, class), t)?
            }
            ["end", t] => {
                let t = parse_secs(t)?;
                self.end = Some(t);
                t
            }
            _ => bail!("expected `attempt ID T`, `ack ID T`, `fail ID T CLASS` or `end T`"),
        };
        self.last_event = self.last_event.max(time);
        Ok(())
    }

    fn settle(
        &mut self,
        op: i64,
        outcome: impl FnOnce(Duration) -> Outcome,
        t: &str,
    ) -> Result<Duration> {
        let t = parse_secs(t)?;
        let record = self
            .ops
            .get_mut(&op)
            .ok_or_else(|| anyhow!("op {op} settled but never attempted"))?;
        if record.outcome.is_some() {
            bail!("op {op} settled twice");
        }
        record.outcome = Some(outcome(t));
        Ok(t)
    }

    /// How many ops were acknowledged.
    pub fn acknowledged(&self) -> usize {
        self.ops.values().filter(|r| r.acked_at().is_some()).count()
    }

    /// The end of the run: the `end` line, else the last event.
    pub fn end_time(&self) -> Duration {
        self.end.unwrap_or(self.last_event)
    }
}

/// Parses a ledger time (`12.000345`, seconds since the start).
fn parse_secs(text: &str) -> Result<Duration> {
    let valid = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|b| *b == b'.').count() <= 1;
    let secs: f64 = if valid { text.parse().ok() } else { None }
        .with_context(|| format!("time {text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).with_context(|| format!("time {text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::header;
    use super::super::{LedgerWriter, format_secs, op_base, random_run_id};
    use super::*;

    #[test]
    fn writer_output_parses_back() {
        let dir = std::env::temp_dir().join(format!("ledger-test-{}", random_run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger");
        let w = LedgerWriter::create(&path, &header()).unwrap();
        let base = op_base(7);
        w.attempt(base + 1, Duration::from_micros(1_000)).unwrap();
        w.attempt(base + 2, Duration::from_micros(1_500)).unwrap();
        w.ack(base + 1, Duration::from_micros(2_000)).unwrap();
        w.fail(
            base + 2,
            Duration::from_micros(3_000),
            &ErrorClass::ReadOnly,
        )
        .unwrap();
        w.attempt(base + 3, Duration::from_micros(4_000)).unwrap();
        w.end(Duration::from_secs(5)).unwrap();
        drop(w);
        let ledger = Ledger::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(ledger.header, header());
        assert_eq!(ledger.ops.len(), 3);
        assert_eq!(ledger.acknowledged(), 1);
        assert_eq!(
            ledger.ops[&(base + 2)].outcome,
            Some(Outcome::Fail(
                Duration::from_millis(3),
                ErrorClass::ReadOnly
            ))
        );
        assert_eq!(ledger.ops[&(base + 3)].outcome, None);
        assert_eq!(ledger.end, Some(Duration::from_secs(5)));
        assert!(ledger.notes.is_empty());
    }

    fn text(body: &str) -> String {
        format!("{}\n{body}", header().line())
    }

    #[test]
    fn a_truncated_last_line_is_ignored_with_a_note() {
        let base = op_base(7);
        let t = text(&format!(
            "attempt {} 0.1\nack {} 0.2\nattempt {}",
            base + 1,
            base + 1,
            base + 2
        ));
        let ledger = Ledger::parse(&t, "l").unwrap();
        assert_eq!(ledger.ops.len(), 1);
        assert_eq!(ledger.notes.len(), 1);
        assert!(
            ledger.notes[0].starts_with("l:4: ignored a truncated last line"),
            "{:?}",
            ledger.notes
        );
    }

    #[test]
    fn a_malformed_line_elsewhere_is_an_error_with_its_number() {
        let base = op_base(7);
        let t = text(&format!(
            "attempt {} 0.1\nack {}\nattempt {} 0.3\n",
            base + 1,
            base + 1,
            base + 2
        ));
        let err = format!("{:#}", Ledger::parse(&t, "l").unwrap_err());
        assert!(err.starts_with("l:3: "), "{err}");
    }

    #[test]
    fn inconsistent_ledgers_are_errors() {
        let base = op_base(7);
        for (body, what) in [
            (format!("ack {} 0.1\n", base + 1), "never attempted"),
            (
                format!("attempt {} 0.1\nattempt {} 0.2\n", base + 1, base + 1),
                "attempted twice",
            ),
            (
                format!(
                    "attempt {} 0.1\nack {} 0.2\nack {} 0.3\n",
                    base + 1,
                    base + 1,
                    base + 1
                ),
                "settled twice",
            ),
            (
                format!("attempt {} 0.1\n", op_base(8) + 1),
                "outside the run's range",
            ),
            (
                format!("attempt {} 0.1\nfail {} 0.2 bogus\n", base + 1, base + 1),
                "unknown error class",
            ),
            (format!("attempt {} -1\n", base + 1), "not a number"),
            (format!("{}\n", header().line()), "a second header"),
        ] {
            let err = format!("{:#}", Ledger::parse(&text(&body), "l").unwrap_err());
            assert!(err.contains(what), "{what}: {err}");
        }
    }

    #[test]
    fn not_a_ledger() {
        let err = format!("{:#}", Ledger::parse("hello\n", "l").unwrap_err());
        assert!(err.starts_with("l:1: not a runner ledger"), "{err}");
        let err = format!("{:#}", Ledger::parse("", "l").unwrap_err());
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn secs_parse() {
        assert_eq!(
            parse_secs("1.000002").unwrap(),
            Duration::from_micros(1_000_002)
        );
        assert_eq!(parse_secs("3").unwrap(), Duration::from_secs(3));
        assert!(parse_secs("1e3").is_err());
        assert!(parse_secs("").is_err());
        assert!(parse_secs("1.2.3").is_err());
        assert_eq!(format_secs(Duration::from_micros(12_000_345)), "12.000345");
    }
}
