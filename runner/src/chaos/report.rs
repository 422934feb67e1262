//! What the runs showed: each run's counts and times, the distributions over the runs,
//! as text (a table and `key: value` lines a chapter captures) and as JSON (the result
//! file `runner chaos --compare` reads back).
//!
//! The distributions are exact order statistics (nearest rank): a handful to a few
//! dozen runs, where a histogram's buckets would only blur the numbers.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ActionTimes, ChaosConfig};
use crate::verify::{Expectation, VerifyReport};

/// How a run ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    /// The ledger was checked on the new primary.
    Verified {
        /// Transactions the writer sent.
        attempted: usize,
        /// Commits the writer was told succeeded.
        acknowledged: usize,
        /// Transactions that failed (some may have committed: `recovered`).
        failed: usize,
        /// Acknowledged writes missing on the new primary.
        lost: usize,
        /// Failed or unanswered writes present anyway.
        recovered: usize,
        /// Op ids of the run present that were never attempted.
        unexpected: usize,
        /// The longest time without an acknowledged write, in ms: the RTO.
        rto_ms: f64,
        /// Seconds after the fault: detected, promoted, re-routed, first write.
        detected_s: Option<f64>,
        /// The new primary accepted writes.
        promoted_s: Option<f64>,
        /// The entry point sent writes to it.
        rerouted_s: Option<f64>,
        /// The first acknowledged write after the fault.
        first_write_s: Option<f64>,
        /// The node the ledger was checked on.
        on: String,
    },
    /// The run failed before its ledger could be checked: nothing is known of its loss.
    Unverified {
        /// Why.
        reason: String,
    },
}

/// One run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    /// 1-based.
    pub run: usize,
    /// Seconds the reset before it took.
    pub reset_s: f64,
    /// Seconds from the writer's start to the verdict.
    pub run_s: f64,
    /// What it showed.
    #[serde(flatten)]
    pub outcome: RunOutcome,
}

impl RunResult {
    pub(super) fn verified(
        run: usize,
        reset_s: f64,
        run_s: f64,
        times: ActionTimes,
        report: &VerifyReport,
    ) -> RunResult {
        let check = &report.check;
        RunResult {
            run,
            reset_s,
            run_s,
            outcome: RunOutcome::Verified {
                attempted: check.attempted,
                acknowledged: check.acknowledged,
                failed: report.failed,
                lost: check.lost.len(),
                recovered: check.recovered.len(),
                unexpected: check.unexpected.len(),
                rto_ms: report.longest_gap.length().as_secs_f64() * 1000.0,
                detected_s: times.detected_s,
                promoted_s: times.promoted_s,
                rerouted_s: times.rerouted_s,
                first_write_s: times.first_write_s,
                on: report.on.clone(),
            },
        }
    }

    pub(super) fn unverified(run: usize, reset_s: f64, run_s: f64, reason: String) -> RunResult {
        RunResult {
            run,
            reset_s,
            run_s,
            outcome: RunOutcome::Unverified { reason },
        }
    }

    /// One line for the terminal.
    pub fn line(&self, runs: usize) -> String {
        let head = format!("run {}/{runs}", self.run);
        match &self.outcome {
            RunOutcome::Verified {
                acknowledged,
                lost,
                recovered,
                rto_ms,
                on,
                ..
            } => format!(
                "{head}: {lost} of {acknowledged} acknowledged writes lost on {on}, \
                 {recovered} recovered, RTO {:.2} s (run {:.1} s, reset {:.1} s)",
                rto_ms / 1000.0,
                self.run_s,
                self.reset_s
            ),
            RunOutcome::Unverified { reason } => {
                format!("{head}: UNVERIFIED (nothing is known of its loss): {reason}")
            }
        }
    }
}

/// min / median / p95 / max of a sample.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Distribution {
    /// The smallest value.
    pub min: f64,
    /// The nearest-rank median.
    pub median: f64,
    /// The nearest-rank 95th percentile.
    pub p95: f64,
    /// The largest value.
    pub max: f64,
}

impl Distribution {
    /// The distribution of `values`; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Distribution> {
        let mut sorted: Vec<f64> = values.into_iter().collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least q of the sample at or below it.
        let rank = |q: f64| {
            let n = sorted.len();
            let k = ((q * n as f64).ceil() as usize).clamp(1, n);
            sorted[k - 1]
        };
        Some(Distribution {
            min: sorted[0],
            median: rank(0.5),
            p95: rank(0.95),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// The whole experiment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChaosReport {
    /// `async`, `sync`, `patroni-async`, `patroni-sync`.
    pub mode: String,
    /// `kill`, `pause`, `standby-then-primary`.
    pub fault: String,
    /// Runs asked for.
    pub runs_asked: usize,
    /// When the first run started.
    pub started_at: DateTime<Utc>,
    /// Whether Ctrl-C ended it early.
    pub interrupted: bool,
    /// Every run, in order.
    pub runs: Vec<RunResult>,
    /// Acknowledged writes lost, over the verified runs.
    pub lost: Option<Distribution>,
    /// RTO in ms, over the verified runs.
    pub rto_ms: Option<Distribution>,
    /// Seconds per run (writer start to verdict), over all runs.
    pub run_s: Option<Distribution>,
}

impl ChaosReport {
    pub(super) fn new(
        config: &ChaosConfig,
        started_at: DateTime<Utc>,
        runs: Vec<RunResult>,
        interrupted: bool,
    ) -> ChaosReport {
        let mut report = ChaosReport {
            mode: config.mode.name().into(),
            fault: config.fault.name().into(),
            runs_asked: config.runs,
            started_at,
            interrupted,
            runs,
            lost: None,
            rto_ms: None,
            run_s: None,
        };
        report.lost = Distribution::of(report.verified().map(|(_, lost, _)| lost as f64));
        report.rto_ms = Distribution::of(report.verified().map(|(_, _, rto)| rto));
        report.run_s = Distribution::of(report.runs.iter().map(|r| r.run_s));
        report
    }

    /// (acknowledged, lost, rto_ms) of each verified run.
    fn verified(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        self.runs.iter().filter_map(|r| match r.outcome {
            RunOutcome::Verified {
                acknowledged,
                lost,
                rto_ms,
                ..
            } => Some((acknowledged, lost, rto_ms)),
            RunOutcome::Unverified { .. } => None,
        })
    }

    /// (detected, promoted, re-routed, first write) of each verified run.
    fn step_times(&self) -> impl Iterator<Item = StepTimes> + '_ {
        self.runs.iter().filter_map(|r| match r.outcome {
            RunOutcome::Verified {
                detected_s,
                promoted_s,
                rerouted_s,
                first_write_s,
                ..
            } => Some((detected_s, promoted_s, rerouted_s, first_write_s)),
            RunOutcome::Unverified { .. } => None,
        })
    }

    /// Runs that could not be checked.
    pub fn unverified(&self) -> usize {
        self.runs.len() - self.verified().count()
    }

    /// Verified runs that lost at least one acknowledged write.
    pub fn runs_with_loss(&self) -> usize {
        self.verified().filter(|(_, lost, _)| *lost > 0).count()
    }

    /// Why the experiment does not meet `expectation`, or `None` when it does. Runs
    /// that could not be verified always fail it: nothing is known of their loss.
    pub fn failure(&self, expectation: Option<Expectation>) -> Option<String> {
        let runs = self.runs.len();
        if self.unverified() > 0 {
            return Some(format!(
                "{} of {runs} runs could not be verified: nothing is known of their loss",
                self.unverified()
            ));
        }
        let with_loss = self.runs_with_loss();
        let with_unexpected = self
            .runs
            .iter()
            .filter(
                |r| matches!(r.outcome, RunOutcome::Verified { unexpected, .. } if unexpected > 0),
            )
            .count();
        match expectation {
            Some(Expectation::NoLoss) if with_loss > 0 || with_unexpected > 0 => Some(format!(
                "expected no loss, but {with_loss} of {runs} runs lost acknowledged writes \
                 and {with_unexpected} had unexpected rows"
            )),
            Some(Expectation::Loss) if with_loss == 0 => Some(format!(
                "expected acknowledged writes to be lost, but none of {runs} runs lost any"
            )),
            _ => None,
        }
    }

    /// `mode/fault`, the name of this experiment in tables.
    pub fn name(&self) -> String {
        format!("{}/{}", self.mode, self.fault)
    }

    /// The per-run table, the distributions, and `key: value` lines.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let rows: Vec<Vec<String>> = self.runs.iter().map(run_row).collect();
        out.push_str(&crate::cluster::table(
            &[
                "run",
                "acked",
                "lost",
                "recovered",
                "unexpected",
                "rto_s",
                "detected_s",
                "promoted_s",
                "rerouted_s",
                "run_s",
            ],
            &rows,
        ));
        out.push('\n');
        let dist_row = |name: &str, d: &Option<Distribution>, f: &dyn Fn(f64) -> String| match d {
            Some(d) => vec![name.into(), f(d.min), f(d.median), f(d.p95), f(d.max)],
            None => vec![name.into(), "-".into(), "-".into(), "-".into(), "-".into()],
        };
        let int = |v: f64| format!("{v:.0}");
        let secs = |v: f64| format!("{:.2}", v / 1000.0);
        let one = |v: f64| format!("{v:.1}");
        out.push_str(&crate::cluster::table(
            &[
                &format!("{} ({} runs)", self.name(), self.runs.len()),
                "min",
                "median",
                "p95",
                "max",
            ],
            &[
                dist_row("lost", &self.lost, &int),
                dist_row("rto_s", &self.rto_ms, &secs),
                dist_row("run_s", &self.run_s, &one),
            ],
        ));
        out.push('\n');
        out.push_str(&self.key_values());
        out
    }

    /// The figures a chapter captures: `runs`, `verified`, `lost_max`, `rto_s_median`, ….
    pub fn key_values(&self) -> String {
        let mut out = String::new();
        let verified = self.runs.len() - self.unverified();
        let _ = writeln!(out, "mode: {}", self.mode);
        let _ = writeln!(out, "fault: {}", self.fault);
        let _ = writeln!(out, "runs: {}", self.runs.len());
        let _ = writeln!(out, "verified: {verified}");
        let _ = writeln!(out, "unverified: {}", self.unverified());
        let _ = writeln!(out, "runs_with_loss: {}", self.runs_with_loss());
        let _ = writeln!(
            out,
            "acknowledged_total: {}",
            self.verified().map(|(a, _, _)| a).sum::<usize>()
        );
        let _ = writeln!(
            out,
            "lost_total: {}",
            self.verified().map(|(_, l, _)| l).sum::<usize>()
        );
        if let Some(d) = self.lost {
            let _ = writeln!(out, "lost_min: {:.0}", d.min);
            let _ = writeln!(out, "lost_median: {:.0}", d.median);
            let _ = writeln!(out, "lost_p95: {:.0}", d.p95);
            let _ = writeln!(out, "lost_max: {:.0}", d.max);
        }
        if let Some(d) = self.rto_ms {
            let _ = writeln!(out, "rto_s_min: {:.2}", d.min / 1000.0);
            let _ = writeln!(out, "rto_s_median: {:.2}", d.median / 1000.0);
            let _ = writeln!(out, "rto_s_p95: {:.2}", d.p95 / 1000.0);
            let _ = writeln!(out, "rto_s_max: {:.2}", d.max / 1000.0);
        }
        if let Some(d) = self.run_s {
            let _ = writeln!(out, "run_s_median: {:.1}", d.median);
            let _ = writeln!(out, "run_s_max: {:.1}", d.max);
        }
        if let Some(d) = Distribution::of(self.runs.iter().map(|r| r.reset_s)) {
            let _ = writeln!(out, "reset_s_median: {:.1}", d.median);
        }
        // The failover's steps, seconds after the fault (median over the verified runs).
        for (name, pick) in [
            (
                "detected_s",
                (|t: &StepTimes| t.0) as fn(&StepTimes) -> Option<f64>,
            ),
            ("promoted_s", |t| t.1),
            ("rerouted_s", |t| t.2),
            ("first_write_s", |t| t.3),
        ] {
            if let Some(d) = Distribution::of(self.step_times().filter_map(|t| pick(&t))) {
                let _ = writeln!(out, "{name}_median: {:.2}", d.median);
            }
        }
        if self.interrupted {
            let _ = writeln!(out, "interrupted: true");
        }
        out
    }

    /// Reads a result file written by `runner chaos --out`.
    pub fn read(path: &std::path::Path) -> Result<ChaosReport> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a runner chaos result file", path.display()))
    }
}

/// Seconds after the fault: detected, promoted, re-routed, first write.
type StepTimes = (Option<f64>, Option<f64>, Option<f64>, Option<f64>);

/// One row of the per-run table.
fn run_row(r: &RunResult) -> Vec<String> {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    match &r.outcome {
        RunOutcome::Verified {
            acknowledged,
            lost,
            recovered,
            unexpected,
            rto_ms,
            detected_s,
            promoted_s,
            rerouted_s,
            ..
        } => vec![
            r.run.to_string(),
            acknowledged.to_string(),
            lost.to_string(),
            recovered.to_string(),
            unexpected.to_string(),
            format!("{:.2}", rto_ms / 1000.0),
            opt(*detected_s),
            opt(*promoted_s),
            opt(*rerouted_s),
            format!("{:.1}", r.run_s),
        ],
        RunOutcome::Unverified { .. } => {
            let mut row = vec![r.run.to_string(), "UNVERIFIED".into()];
            row.extend(std::iter::repeat_n("-".to_string(), 7));
            row.push(format!("{:.1}", r.run_s));
            row
        }
    }
}

/// Which per-run figure `--compare` lays side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The RTO in seconds.
    RtoS,
    /// Acknowledged writes lost.
    Lost,
}

impl std::str::FromStr for Column {
    type Err = String;
    fn from_str(s: &str) -> Result<Column, String> {
        match s {
            "rto_s" => Ok(Column::RtoS),
            "lost" => Ok(Column::Lost),
            _ => Err(format!("unknown column {s:?} (known: rto_s, lost)")),
        }
    }
}

/// Several experiments side by side: one row per run number and one column per
/// experiment (chart-ready: the first column is x), then one summary row each.
pub fn compare(reports: &[ChaosReport], column: Column) -> Result<String> {
    if reports.is_empty() {
        bail!("--compare needs at least one result file");
    }
    let mut out = String::new();
    let names: Vec<String> = reports.iter().map(|r| r.name().replace('/', "-")).collect();
    let _ = writeln!(
        out,
        "run {}",
        names
            .iter()
            .map(|n| format!("{n}_{}", column_name(column)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let most = reports.iter().map(|r| r.runs.len()).max().unwrap_or(0);
    for i in 0..most {
        let cells: Vec<String> = reports
            .iter()
            .map(|r| match r.runs.get(i).map(|run| &run.outcome) {
                Some(RunOutcome::Verified { rto_ms, lost, .. }) => match column {
                    Column::RtoS => format!("{:.2}", rto_ms / 1000.0),
                    Column::Lost => lost.to_string(),
                },
                // No value: the chart skips what does not parse as a number.
                _ => "-".into(),
            })
            .collect();
        let _ = writeln!(out, "{} {}", i + 1, cells.join(" "));
    }
    Ok(out)
}

fn column_name(column: Column) -> &'static str {
    match column {
        Column::RtoS => "rto_s",
        Column::Lost => "lost",
    }
}

/// The summary table of several experiments: runs, lost (max, total), RTO (median, p95, max).
pub fn summary_table(reports: &[ChaosReport]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let f = |d: Option<Distribution>, g: fn(Distribution) -> f64, scale: f64| {
                d.map_or("-".into(), |d| format!("{:.2}", g(d) / scale))
            };
            vec![
                r.name(),
                format!("{}/{}", r.runs.len() - r.unverified(), r.runs.len()),
                r.runs_with_loss().to_string(),
                f(r.lost, |d| d.median, 1.0).replace(".00", ""),
                f(r.lost, |d| d.max, 1.0).replace(".00", ""),
                f(r.rto_ms, |d| d.median, 1000.0),
                f(r.rto_ms, |d| d.p95, 1000.0),
                f(r.rto_ms, |d| d.max, 1000.0),
            ]
        })
        .collect();
    crate::cluster::table(
        &[
            "mode/fault",
            "verified",
            "runs_with_loss",
            "lost_median",
            "lost_max",
            "rto_s_median",
            "rto_s_p95",
            "rto_s_max",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_order_statistics() {
        let d = Distribution::of([5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((d.min, d.median, d.p95, d.max), (1.0, 3.0, 5.0, 5.0));
        let twenty = Distribution::of((1..=20).map(f64::from)).unwrap();
        assert_eq!((twenty.median, twenty.p95), (10.0, 19.0));
        let one = Distribution::of([7.0]).unwrap();
        assert_eq!(
            (one.min, one.median, one.p95, one.max),
            (7.0, 7.0, 7.0, 7.0)
        );
        assert!(Distribution::of([]).is_none());
    }

    fn verified(run: usize, lost: usize, rto_ms: f64) -> RunResult {
        RunResult {
            run,
            reset_s: 9.0,
            run_s: 12.0,
            outcome: RunOutcome::Verified {
                attempted: 100,
                acknowledged: 90,
                failed: 10,
                lost,
                recovered: 1,
                unexpected: 0,
                rto_ms,
                detected_s: Some(0.1),
                promoted_s: Some(0.5),
                rerouted_s: Some(0.6),
                first_write_s: Some(2.0),
                on: "postgres-sync-standby".into(),
            },
        }
    }

    fn report(runs: Vec<RunResult>) -> ChaosReport {
        let config = ChaosConfig {
            mode: super::super::Mode::Async,
            fault: super::super::Fault::Kill,
            runs: runs.len(),
            workers: 4,
            dir: "x".into(),
        };
        ChaosReport::new(&config, Utc::now(), runs, false)
    }

    #[test]
    fn an_unverified_run_never_counts_as_zero_lost() {
        let r = report(vec![
            verified(1, 3, 2000.0),
            RunResult::unverified(2, 9.0, 4.0, "reset: no primary".into()),
            verified(3, 0, 1000.0),
        ]);
        assert_eq!(r.unverified(), 1);
        assert_eq!(r.runs_with_loss(), 1);
        let lost = r.lost.unwrap();
        assert_eq!((lost.min, lost.max), (0.0, 3.0));
        let kv = r.key_values();
        for line in [
            "runs: 3\n",
            "verified: 2\n",
            "unverified: 1\n",
            "lost_total: 3\n",
            "lost_max: 3\n",
            "rto_s_max: 2.00\n",
            "promoted_s_median: 0.50\n",
        ] {
            assert!(kv.contains(line), "{line:?} not in\n{kv}");
        }
        assert!(r.text().contains("UNVERIFIED"));
        for expectation in [None, Some(Expectation::NoLoss), Some(Expectation::Loss)] {
            let why = r
                .failure(expectation)
                .expect("an unverified run fails every expectation");
            assert!(why.contains("1 of 3 runs could not be verified"), "{why}");
        }
        assert!(r.runs[1].line(3).contains("nothing is known of its loss"));
    }

    #[test]
    fn results_round_trip_and_compare_side_by_side() {
        let a = report(vec![verified(1, 2, 1500.0), verified(2, 0, 2500.0)]);
        let json = serde_json::to_string(&a).unwrap();
        let back: ChaosReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        let mut b = report(vec![verified(1, 0, 3000.0)]);
        b.mode = "sync".into();
        let table = compare(&[a.clone(), b.clone()], Column::RtoS).unwrap();
        assert_eq!(
            table,
            "run async-kill_rto_s sync-kill_rto_s\n1 1.50 3.00\n2 2.50 -\n"
        );
        let lost = compare(&[a.clone(), b.clone()], Column::Lost).unwrap();
        assert!(lost.contains("\n1 2 0\n"), "{lost}");
        assert!(
            a.failure(Some(Expectation::NoLoss))
                .unwrap()
                .contains("1 of 2 runs lost")
        );
        assert_eq!(a.failure(Some(Expectation::Loss)), None);
        assert_eq!(b.failure(Some(Expectation::NoLoss)), None);
        assert!(b.failure(Some(Expectation::Loss)).is_some());
        assert_eq!(b.failure(None), None);
        let summary = summary_table(&[a, b]);
        assert!(summary.contains("async/kill"), "{summary}");
        assert!(compare(&[], Column::Lost).is_err());
    }
}
