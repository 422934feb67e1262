//! The loss check: a Jepsen-style set checker over the writer's ledger.
//!
//! `runner verify` answers one question per node: of the writes the server
//! acknowledged to the load writer, which are on this node? [`verify`] reads the
//! ledger ([`crate::load::Ledger`]), asks the node for the run's op id range only
//! (`op_id BETWEEN lo AND hi`, which keeps runs apart), and builds the
//! [`VerifyReport`]:
//!
//! - `set_check.rs`: the four kinds of id — ok, lost, recovered, unexpected — from
//!   in-memory sets, tested without a database;
//! - `gap.rs`: the longest stretch without a successful write, the outage as the
//!   client saw it;
//! - this file: the first and last lost ops with their wall-clock times, the
//!   `key: value` lines the book engine captures, the one-line verdict, and the
//!   [`Expectation`] a chapter states (`--expect-no-loss`, `--expect-loss`).

mod gap;
mod set_check;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use lab_cluster::session::{Bounds, Session};
use serde::Serialize;
use tokio_postgres::types::Type;

use crate::load::ledger::format_secs;
use crate::load::{Ledger, Outcome};

pub use gap::Gap;
pub use set_check::SetCheck;

use gap::longest_gap;
use set_check::check_ledger;

/// A lost op, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostOp {
    /// Its op id.
    pub id: i64,
    /// When it was sent (offset from the start).
    pub attempted: Duration,
    /// When it was acknowledged (offset from the start).
    pub acknowledged: Duration,
    /// When it was sent, on the wall clock.
    pub attempted_at: DateTime<Utc>,
}

/// Everything `runner verify` reports.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The ledger file.
    pub ledger: String,
    /// The run's id.
    pub run_id: u32,
    /// What the writer wrote to.
    pub target: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// The node checked.
    pub on: String,
    /// The set check.
    pub check: SetCheck,
    /// Attempted ops with no outcome line (the writer stopped before knowing).
    pub unresolved: usize,
    /// Ops with a `fail` line.
    pub failed: usize,
    /// The run's length per the ledger, seconds.
    pub duration_s: f64,
    /// Acknowledged writes per second over the run.
    pub write_rate: f64,
    /// The longest stretch without a successful write.
    pub longest_gap: Gap,
    /// The lost op attempted first.
    pub first_lost: Option<LostOp>,
    /// The lost op attempted last.
    pub last_lost: Option<LostOp>,
    /// Notes from parsing (a truncated last line).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Builds the report of `ledger` against the ids `present` on the node `on`.
    fn new(ledger: &Ledger, present: &BTreeSet<i64>, ledger_name: &str, on: &str) -> VerifyReport {
        let check = check_ledger(ledger, present);
        let acks: Vec<Duration> = ledger.ops.values().filter_map(|r| r.acked_at()).collect();
        let end = ledger.end_time();
        // Count from the first attempt: connecting at the start is not an outage.
        let first_attempt = ledger.ops.values().map(|r| r.attempted).min();
        let gap = longest_gap(&acks, first_attempt.unwrap_or_default(), end);
        let lost_op = |id: &i64| {
            ledger.ops.get(id).map(|r| LostOp {
                id: *id,
                attempted: r.attempted,
                acknowledged: r.acked_at().unwrap_or_default(),
                attempted_at: ledger.header.at(r.attempted),
            })
        };
        let by_attempt = |a: &&i64, b: &&i64| {
            let t = |id: &i64| ledger.ops.get(id).map(|r| r.attempted);
            t(a).cmp(&t(b)).then(a.cmp(b))
        };
        let first_lost = check.lost.iter().min_by(by_attempt).and_then(lost_op);
        let last_lost = check.lost.iter().max_by(by_attempt).and_then(lost_op);
        VerifyReport {
            ledger: ledger_name.to_string(),
            run_id: ledger.header.run_id,
            target: ledger.header.target.clone(),
            started_at: ledger.header.start,
            on: on.to_string(),
            unresolved: ledger.ops.values().filter(|r| r.outcome.is_none()).count(),
            failed: ledger
                .ops
                .values()
                .filter(|r| matches!(r.outcome, Some(Outcome::Fail(..))))
                .count(),
            duration_s: end.as_secs_f64(),
            write_rate: if end.is_zero() {
                0.0
            } else {
                check.acknowledged as f64 / end.as_secs_f64()
            },
            check,
            longest_gap: gap,
            first_lost,
            last_lost,
            notes: ledger.notes.clone(),
        }
    }

    fn at(&self, t: Duration) -> String {
        (self.started_at + chrono::Duration::from_std(t).unwrap_or_default())
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Seconds since the Unix epoch of `t` into the run (what `date +%s.%N` prints), so a
    /// chapter can subtract its own timestamps from the ledger's.
    fn epoch(&self, t: Duration) -> String {
        let at = self.started_at + chrono::Duration::from_std(t).unwrap_or_default();
        format!("{:.3}", at.timestamp_micros() as f64 / 1e6)
    }

    /// Stable `key: value` lines, for the book engine.
    pub fn key_values(&self) -> String {
        let mut out = String::new();
        let mut kv = |key: &str, value: String| {
            let _ = writeln!(out, "{key}: {value}");
        };
        let c = &self.check;
        kv("run_id", self.run_id.to_string());
        kv("on", self.on.clone());
        kv("attempted", c.attempted.to_string());
        kv("acknowledged", c.acknowledged.to_string());
        kv("failed", self.failed.to_string());
        kv("unresolved", self.unresolved.to_string());
        kv("present", c.present.to_string());
        kv("ok", c.ok.to_string());
        kv("lost", c.lost.len().to_string());
        kv("recovered", c.recovered.len().to_string());
        kv("unexpected", c.unexpected.len().to_string());
        kv("duration_s", format!("{:.3}", self.duration_s));
        kv("write_rate", format!("{:.1}", self.write_rate));
        let g = &self.longest_gap;
        kv(
            "longest_gap_ms",
            format!("{:.1}", g.length().as_secs_f64() * 1000.0),
        );
        kv("longest_gap_start", self.at(g.start));
        kv("longest_gap_end", self.at(g.end));
        kv("longest_gap_start_epoch", self.epoch(g.start));
        kv("longest_gap_end_epoch", self.epoch(g.end));
        kv("longest_gap_start_s", format_secs(g.start));
        kv("longest_gap_end_s", format_secs(g.end));
        kv("longest_gap_closed", g.closed.to_string());
        for (name, op) in [
            ("first_lost", &self.first_lost),
            ("last_lost", &self.last_lost),
        ] {
            if let Some(op) = op {
                kv(&format!("{name}_id"), op.id.to_string());
                kv(
                    &format!("{name}_attempted_at"),
                    op.attempted_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                );
                kv(&format!("{name}_attempted_s"), format_secs(op.attempted));
                kv(
                    &format!("{name}_acknowledged_s"),
                    format_secs(op.acknowledged),
                );
                // As `date +%s.%N` prints it, to compare with a chapter's own timestamps.
                kv(&format!("{name}_attempted_epoch"), self.epoch(op.attempted));
                kv(
                    &format!("{name}_acknowledged_epoch"),
                    self.epoch(op.acknowledged),
                );
            }
        }
        out
    }

    /// A one-line verdict for a reader.
    pub fn verdict(&self) -> String {
        let c = &self.check;
        match (c.lost.len(), c.unexpected.len()) {
            (0, 0) => format!(
                "every acknowledged write is on {} ({} ok, {} recovered)",
                self.on,
                c.ok,
                c.recovered.len()
            ),
            (lost, 0) => format!(
                "{lost} acknowledged writes are missing on {} (of {} acknowledged)",
                self.on, c.acknowledged
            ),
            (lost, unexpected) => format!(
                "{lost} acknowledged writes are missing and {unexpected} rows were never \
                 attempted on {}",
                self.on
            ),
        }
    }

    /// The report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// What the caller expects of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// No acknowledged write lost and nothing unexpected — of at least one acknowledged
    /// write: a run that acknowledged nothing shows nothing (0 of 0) and fails it.
    NoLoss,
    /// At least one acknowledged write lost (the asynchronous-replication lesson).
    Loss,
}

impl Expectation {
    /// The expectation of a command's `--expect-no-loss` / `--expect-loss` flags.
    pub fn from_flags(expect_no_loss: bool, expect_loss: bool) -> Option<Expectation> {
        if expect_no_loss {
            Some(Expectation::NoLoss)
        } else if expect_loss {
            Some(Expectation::Loss)
        } else {
            None
        }
    }

    /// Why the report does not meet the expectation, or `None` when it does.
    pub fn failure(self, report: &VerifyReport) -> Option<String> {
        let c = &report.check;
        match self {
            Expectation::NoLoss if c.acknowledged == 0 => Some(format!(
                "expected no loss, but the ledger has no acknowledged write to look for on {}: \
                 0 of 0 proves nothing",
                report.on
            )),
            Expectation::NoLoss if !c.lost.is_empty() || !c.unexpected.is_empty() => Some(format!(
                "expected no loss, but {} acknowledged writes are lost and {} rows are \
                 unexpected on {}",
                c.lost.len(),
                c.unexpected.len(),
                report.on
            )),
            Expectation::Loss if c.lost.is_empty() => Some(format!(
                "expected acknowledged writes to be lost, but all {} are on {}",
                c.acknowledged, report.on
            )),
            _ => None,
        }
    }
}

/// The op ids of `range` present in `rental` on the node at `conninfo` (named `on`),
/// within `bound`.
async fn fetch_present(
    conninfo: &str,
    on: &str,
    range: RangeInclusive<i64>,
    bound: Duration,
) -> Result<BTreeSet<i64>> {
    let config: tokio_postgres::Config = conninfo.parse().context("the connection string")?;
    let bounds = Bounds {
        connect: bound,
        query: bound,
    };
    let query = async {
        let session = Session::open(on, &config, "runner-verify", bounds).await?;
        // Unnamed statement: correct through pgbouncer's transaction pooling too.
        let rows = session
            .query_typed(
                "SELECT op_id FROM rental WHERE op_id BETWEEN $1 AND $2",
                &[(range.start(), Type::INT8), (range.end(), Type::INT8)],
            )
            .await?;
        rows.iter()
            .map(|row| row.try_get::<_, i64>(0).context("reading op_id"))
            .collect::<Result<BTreeSet<i64>>>()
    };
    tokio::time::timeout(bound, query)
        .await
        .with_context(|| format!("no answer within {bound:?}"))?
}

/// Reads the ledger at `path`, asks the node at `conninfo` (named `on`) which of the
/// run's ids it holds, and reports.
pub async fn verify(
    path: &Path,
    conninfo: &str,
    on: &str,
    bound: Duration,
) -> Result<VerifyReport> {
    let ledger = Ledger::read(path)?;
    let present = fetch_present(conninfo, on, ledger.header.op_range(), bound)
        .await
        .with_context(|| format!("reading the run's op ids on {on}"))?;
    Ok(VerifyReport::new(
        &ledger,
        &present,
        &path.display().to_string(),
        on,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::load::Header;
    use crate::load::ledger::op_base;

    fn set(ids: &[i64]) -> BTreeSet<i64> {
        ids.iter().copied().collect()
    }

    fn ledger_text(run_id: u32, body: &str) -> String {
        let header = Header {
            run_id,
            target: "postgres-primary".into(),
            start: DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            extra: BTreeMap::new(),
        };
        format!("{}\n{body}", header.line())
    }

    #[test]
    fn a_constructed_ledger_reports_lost_recovered_unexpected() {
        let b = op_base(5);
        let body = format!(
            "attempt {a} 0.1\nack {a} 0.2\n\
             attempt {c} 0.3\nack {c} 0.4\n\
             attempt {d} 0.5\nfail {d} 0.6 syncrep_cancelled\n\
             attempt {e} 1.5\nack {e} 1.6\n\
             attempt {f} 2.0\nack {f} 5.0\n\
             attempt {g} 5.5\nack {g}",
            a = b + 1,
            c = b + 2,
            d = b + 3,
            e = b + 4,
            f = b + 5,
            g = b + 6,
        );
        let ledger = Ledger::parse(&ledger_text(5, &body), "t").unwrap();
        assert_eq!(ledger.notes.len(), 1, "the cut last line is noted");
        // On the promoted node: op 1 and the cancelled op 3 and a stray id; 2, 4, 5 lost.
        let present = set(&[b + 1, b + 3, b + 99]);
        let r = VerifyReport::new(&ledger, &present, "t", "postgres-async-standby");
        assert_eq!(r.check.ok, 1);
        assert_eq!(r.check.lost, [b + 2, b + 4, b + 5]);
        assert_eq!(r.check.recovered, [b + 3]);
        assert_eq!(r.check.unexpected, [b + 99]);
        assert_eq!((r.failed, r.unresolved), (1, 1));
        let first = r.first_lost.as_ref().unwrap();
        assert_eq!(
            (first.id, first.attempted),
            (b + 2, Duration::from_millis(300))
        );
        assert_eq!(r.last_lost.as_ref().unwrap().id, b + 5);
        // Acks at 0.2, 0.4, 1.6, 5.0; the ledger ends at 5.5: the gap is 1.6 → 5.0.
        assert_eq!(
            r.longest_gap,
            Gap {
                start: Duration::from_millis(1600),
                end: Duration::from_secs(5),
                closed: true
            }
        );
        let kv = r.key_values();
        for line in [
            "ok: 1\n",
            "lost: 3\n",
            "recovered: 1\n",
            "unexpected: 1\n",
            "attempted: 6\n",
            "acknowledged: 4\n",
            "longest_gap_ms: 3400.0\n",
            "longest_gap_start: 2025-01-01T00:00:01.600Z\n",
            "first_lost_attempted_s: 0.300000\n",
            "write_rate: 0.7\n",
        ] {
            assert!(kv.contains(line), "{line:?} not in\n{kv}");
        }
        assert!(Expectation::NoLoss.failure(&r).is_some());
        assert!(Expectation::Loss.failure(&r).is_none());
    }

    #[test]
    fn expectations_on_a_clean_report() {
        let b = op_base(5);
        let body = format!("attempt {} 0.1\nack {} 0.2\nend 1.0\n", b + 1, b + 1);
        let ledger = Ledger::parse(&ledger_text(5, &body), "t").unwrap();
        let r = VerifyReport::new(&ledger, &set(&[b + 1]), "t", "p");
        assert!(Expectation::NoLoss.failure(&r).is_none());
        let why = Expectation::Loss.failure(&r).unwrap();
        // Nothing acknowledged: no loss is not shown, so it is not claimed.
        let body = format!(
            "attempt {} 0.1\nfail {} 0.2 timeout\nend 1.0\n",
            b + 1,
            b + 1
        );
        let ledger = Ledger::parse(&ledger_text(5, &body), "t").unwrap();
        let none = VerifyReport::new(&ledger, &set(&[]), "t", "p");
        let why_none = Expectation::NoLoss.failure(&none).unwrap();
        assert!(why_none.contains("0 of 0"), "{why_none}");
        assert!(
            why.contains("expected acknowledged writes to be lost"),
            "{why}"
        );
        assert!(r.verdict().starts_with("every acknowledged write is on p"));
    }
}
