//! What the runs showed: each run's counts and times, the distributions over the runs,
//! as text (a table and `key: value` lines a chapter captures) and as JSON (the result
//! file `runner chaos --compare` reads back).
//!
//! The distributions are exact order statistics (nearest rank): a handful to a few
//! dozen runs, where a histogram's buckets would only blur the numbers. The 95th
//! percentile is shown only from [`P95_MIN_RUNS`] values up: below that, nearest rank
//! makes it the maximum, and calling the maximum a p95 would claim a tail that was
//! never sampled.
//!
//! The RTO is the course's one definition: from the fault to the first acknowledged
//! write after it. The writer's longest time without an acknowledged write is reported
//! beside it as `write_gap_s` — a different figure (it starts at the last write before
//! the outage, and in a double fault includes the seconds before the primary died).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ActionTimes, ChaosConfig, Measured};
use crate::verify::{Expectation, VerifyReport};

/// The fewest values a 95th percentile is shown for.
pub const P95_MIN_RUNS: usize = 20;

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
        /// `lost` per 10 000 acknowledged writes.
        lost_per_10k: f64,
        /// Failed or unanswered writes present anyway.
        recovered: usize,
        /// Op ids of the run present that were never attempted.
        unexpected: usize,
        /// Commits whose SyncRep wait the writer cancelled at its commit bound: the
        /// server answered COMMIT with a WARNING ("committed locally, but might not
        /// have been replicated"); counted as failed, never as acknowledged.
        syncrep_cancelled: usize,
        /// The fault's time on the writer's clock (seconds since its start).
        fault_s: f64,
        /// The random delay drawn for it, after the writer's first report of
        /// acknowledged writes.
        fault_delay_s: f64,
        /// The RTO: seconds from the fault to the first acknowledged write after it.
        rto_s: Option<f64>,
        /// The writer's longest time without an acknowledged write, in seconds.
        write_gap_s: f64,
        /// Seconds after the fault: the old primary seen down (Patroni: a replica took
        /// the leader lock).
        detected_s: Option<f64>,
        /// The new primary accepted writes.
        promoted_s: Option<f64>,
        /// The entry point sent writes to it.
        rerouted_s: Option<f64>,
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
    /// The settings the reset put in force and read back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conditions: BTreeMap<String, String>,
    /// What it showed.
    #[serde(flatten)]
    pub outcome: RunOutcome,
}

/// `lost` per 10 000 of `acknowledged` (0 when nothing was acknowledged).
fn per_10k(lost: usize, acknowledged: usize) -> f64 {
    if acknowledged == 0 {
        0.0
    } else {
        lost as f64 * 10_000.0 / acknowledged as f64
    }
}

impl RunResult {
    pub(super) fn verified(
        run: usize,
        reset_s: f64,
        run_s: f64,
        times: ActionTimes,
        measured: Measured,
        report: &VerifyReport,
    ) -> RunResult {
        let check = &report.check;
        RunResult {
            run,
            reset_s,
            run_s,
            conditions: BTreeMap::new(),
            outcome: RunOutcome::Verified {
                attempted: check.attempted,
                acknowledged: check.acknowledged,
                failed: report.failed,
                lost: check.lost.len(),
                lost_per_10k: per_10k(check.lost.len(), check.acknowledged),
                recovered: check.recovered.len(),
                unexpected: check.unexpected.len(),
                syncrep_cancelled: measured.syncrep_cancelled,
                fault_s: measured.fault_s,
                fault_delay_s: measured.fault_delay_s,
                rto_s: measured.rto_s,
                write_gap_s: report.longest_gap.length().as_secs_f64(),
                detected_s: times.detected_s,
                promoted_s: times.promoted_s,
                rerouted_s: times.rerouted_s,
                on: report.on.clone(),
            },
        }
    }

    pub(super) fn unverified(run: usize, reset_s: f64, run_s: f64, reason: String) -> RunResult {
        RunResult {
            run,
            reset_s,
            run_s,
            conditions: BTreeMap::new(),
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
                lost_per_10k,
                recovered,
                syncrep_cancelled,
                fault_s,
                rto_s,
                write_gap_s,
                on,
                ..
            } => format!(
                "{head}: fault at {fault_s:.2} s; {lost} of {acknowledged} acknowledged writes \
                 lost on {on} ({lost_per_10k:.2} per 10k), {recovered} recovered, \
                 {syncrep_cancelled} syncrep_cancelled; RTO {}, longest write gap \
                 {write_gap_s:.2} s (run {:.1} s, reset {:.1} s)",
                rto_s.map_or("- (no write after the fault)".to_string(), |r| format!(
                    "{r:.2} s"
                )),
                self.run_s,
                self.reset_s
            ),
            RunOutcome::Unverified { reason } => {
                format!("{head}: UNVERIFIED (nothing is known of its loss): {reason}")
            }
        }
    }
}

/// min / median / p95 / max of a sample, and its size.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Distribution {
    /// How many values.
    pub n: usize,
    /// The smallest value.
    pub min: f64,
    /// The nearest-rank median.
    pub median: f64,
    /// The nearest-rank 95th percentile, only from [`P95_MIN_RUNS`] values up (below,
    /// nearest rank gives the maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
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
        let n = sorted.len();
        // Nearest rank: the smallest value with at least q of the sample at or below it.
        let rank = |q: f64| {
            let k = ((q * n as f64).ceil() as usize).clamp(1, n);
            sorted[k - 1]
        };
        Some(Distribution {
            n,
            min: sorted[0],
            median: rank(0.5),
            p95: (n >= P95_MIN_RUNS).then(|| rank(0.95)),
            max: sorted[n - 1],
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
    /// The seed the fault times were drawn from (`--seed` repeats them).
    pub seed: u64,
    /// When the first run started.
    pub started_at: DateTime<Utc>,
    /// Whether Ctrl-C ended it early.
    pub interrupted: bool,
    /// The settings the resets put in force, read back from the cluster.
    #[serde(default)]
    pub conditions: BTreeMap<String, String>,
    /// Every run, in order.
    pub runs: Vec<RunResult>,
    /// Acknowledged writes lost, over the verified runs.
    pub lost: Option<Distribution>,
    /// Acknowledged writes lost per 10 000 acknowledged, over the verified runs.
    pub lost_per_10k: Option<Distribution>,
    /// All the verified runs' lost writes per 10 000 of all their acknowledged writes.
    pub lost_per_10k_total: Option<f64>,
    /// The RTO in seconds, over the verified runs that wrote after the fault.
    pub rto_s: Option<Distribution>,
    /// The longest write gap in seconds, over the verified runs.
    pub write_gap_s: Option<Distribution>,
    /// Seconds per run (writer start to verdict), over all runs.
    pub run_s: Option<Distribution>,
}

/// The per-run figures a report's distributions and columns are made of.
struct Figures {
    acknowledged: usize,
    lost: usize,
    lost_per_10k: f64,
    syncrep_cancelled: usize,
    fault_s: f64,
    rto_s: Option<f64>,
    write_gap_s: f64,
    detected_s: Option<f64>,
    promoted_s: Option<f64>,
    rerouted_s: Option<f64>,
}

impl RunResult {
    fn figures(&self) -> Option<Figures> {
        match self.outcome {
            RunOutcome::Verified {
                acknowledged,
                lost,
                lost_per_10k,
                syncrep_cancelled,
                fault_s,
                rto_s,
                write_gap_s,
                detected_s,
                promoted_s,
                rerouted_s,
                ..
            } => Some(Figures {
                acknowledged,
                lost,
                lost_per_10k,
                syncrep_cancelled,
                fault_s,
                rto_s,
                write_gap_s,
                detected_s,
                promoted_s,
                rerouted_s,
            }),
            RunOutcome::Unverified { .. } => None,
        }
    }
}

impl ChaosReport {
    pub(super) fn new(
        config: &ChaosConfig,
        started_at: DateTime<Utc>,
        runs: Vec<RunResult>,
        interrupted: bool,
    ) -> ChaosReport {
        let conditions = runs
            .iter()
            .find(|r| !r.conditions.is_empty())
            .map(|r| r.conditions.clone())
            .unwrap_or_default();
        let mut report = ChaosReport {
            mode: config.mode.name().into(),
            fault: config.fault.name().into(),
            runs_asked: config.runs,
            seed: config.seed,
            started_at,
            interrupted,
            conditions,
            runs,
            lost: None,
            lost_per_10k: None,
            lost_per_10k_total: None,
            rto_s: None,
            write_gap_s: None,
            run_s: None,
        };
        report.lost = Distribution::of(report.verified().map(|f| f.lost as f64));
        report.lost_per_10k = Distribution::of(report.verified().map(|f| f.lost_per_10k));
        let acknowledged: usize = report.verified().map(|f| f.acknowledged).sum();
        let lost: usize = report.verified().map(|f| f.lost).sum();
        report.lost_per_10k_total =
            (report.verified().count() > 0).then(|| per_10k(lost, acknowledged));
        report.rto_s = Distribution::of(report.verified().filter_map(|f| f.rto_s));
        report.write_gap_s = Distribution::of(report.verified().map(|f| f.write_gap_s));
        report.run_s = Distribution::of(report.runs.iter().map(|r| r.run_s));
        report
    }

    /// The figures of each verified run.
    fn verified(&self) -> impl Iterator<Item = Figures> + '_ {
        self.runs.iter().filter_map(RunResult::figures)
    }

    /// Runs that could not be checked.
    pub fn unverified(&self) -> usize {
        self.runs.len() - self.verified().count()
    }

    /// Verified runs that lost at least one acknowledged write.
    pub fn runs_with_loss(&self) -> usize {
        self.verified().filter(|f| f.lost > 0).count()
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
        out.push_str(&lab_core::text_table::table(&RUN_COLUMNS, &rows));
        out.push('\n');
        // A p95 column only when some distribution has one (20 runs up): below that the
        // nearest-rank p95 is the maximum, and a column of dashes only says so at length.
        let distributions = [
            ("lost", &self.lost),
            ("lost_per_10k", &self.lost_per_10k),
            ("rto_s", &self.rto_s),
            ("write_gap_s", &self.write_gap_s),
            ("run_s", &self.run_s),
        ];
        let with_p95 = distributions
            .iter()
            .any(|(_, d)| d.as_ref().is_some_and(|d| d.p95.is_some()));
        let int = |v: f64| format!("{v:.0}");
        let two = |v: f64| format!("{v:.2}");
        let one = |v: f64| format!("{v:.1}");
        let rows: Vec<Vec<String>> = distributions
            .iter()
            .map(|(name, d)| {
                let f: &dyn Fn(f64) -> String = match *name {
                    "lost" => &int,
                    "run_s" => &one,
                    _ => &two,
                };
                let mut row = vec![name.to_string()];
                match d {
                    Some(d) => {
                        row.extend([d.n.to_string(), f(d.min), f(d.median)]);
                        if with_p95 {
                            row.push(d.p95.map_or("-".into(), f));
                        }
                        row.push(f(d.max));
                    }
                    None => {
                        row.push("0".into());
                        row.extend(std::iter::repeat_n(
                            "-".to_string(),
                            3 + usize::from(with_p95),
                        ));
                    }
                }
                row
            })
            .collect();
        let title = format!("{} ({} runs)", self.name(), self.runs.len());
        let mut header = vec![title.as_str(), "n", "min", "median"];
        if with_p95 {
            header.push("p95");
        }
        header.push("max");
        out.push_str(&lab_core::text_table::table(&header, &rows));
        if !with_p95 {
            let _ = writeln!(
                out,
                "no p95 column: it is shown from {P95_MIN_RUNS} runs up (with fewer, the nearest-rank p95 is the maximum)."
            );
        }
        // A note, not a key: no `name:` at its start, so a chapter's sed that prefixes the
        // keys (`s/^([a-z_0-9]+):/sync_\1:/`) leaves it alone.
        let _ = writeln!(
            out,
            "rto_s is fault -> first acknowledged write after it, write_gap_s the writer's \
             longest time without an acknowledged write."
        );
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
        let _ = writeln!(out, "seed: {}", self.seed);
        for (name, value) in &self.conditions {
            let _ = writeln!(out, "{name}: {value}");
        }
        let _ = writeln!(out, "runs: {}", self.runs.len());
        let _ = writeln!(out, "verified: {verified}");
        let _ = writeln!(out, "unverified: {}", self.unverified());
        let _ = writeln!(out, "runs_with_loss: {}", self.runs_with_loss());
        let _ = writeln!(
            out,
            "acknowledged_total: {}",
            self.verified().map(|f| f.acknowledged).sum::<usize>()
        );
        let _ = writeln!(
            out,
            "lost_total: {}",
            self.verified().map(|f| f.lost).sum::<usize>()
        );
        if let Some(total) = self.lost_per_10k_total {
            let _ = writeln!(out, "lost_per_10k_total: {total:.2}");
        }
        let mut dist = |name: &str, d: &Option<Distribution>, digits: usize| {
            if let Some(d) = d {
                let _ = writeln!(out, "{name}_min: {:.digits$}", d.min);
                let _ = writeln!(out, "{name}_median: {:.digits$}", d.median);
                if let Some(p95) = d.p95 {
                    let _ = writeln!(out, "{name}_p95: {p95:.digits$}");
                }
                let _ = writeln!(out, "{name}_max: {:.digits$}", d.max);
            }
        };
        dist("lost", &self.lost, 0);
        dist("lost_per_10k", &self.lost_per_10k, 2);
        dist("rto_s", &self.rto_s, 2);
        dist("write_gap_s", &self.write_gap_s, 2);
        let _ = writeln!(
            out,
            "rto_runs: {}",
            self.verified().filter(|f| f.rto_s.is_some()).count()
        );
        let _ = writeln!(
            out,
            "syncrep_cancelled_total: {}",
            self.verified().map(|f| f.syncrep_cancelled).sum::<usize>()
        );
        let _ = writeln!(
            out,
            "syncrep_cancelled_max: {}",
            self.verified()
                .map(|f| f.syncrep_cancelled)
                .max()
                .unwrap_or(0)
        );
        if let Some(d) = Distribution::of(self.verified().map(|f| f.fault_s)) {
            let _ = writeln!(out, "fault_s_min: {:.2}", d.min);
            let _ = writeln!(out, "fault_s_max: {:.2}", d.max);
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
                (|f: &Figures| f.detected_s) as fn(&Figures) -> Option<f64>,
            ),
            ("promoted_s", |f| f.promoted_s),
            ("rerouted_s", |f| f.rerouted_s),
        ] {
            if let Some(d) = Distribution::of(self.verified().filter_map(|f| pick(&f))) {
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
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a runner chaos result file of this version (an older one: \
                 run the experiment again)",
                path.display()
            )
        })
    }
}

/// The per-run table's columns.
const RUN_COLUMNS: [&str; 14] = [
    "run",
    "fault_s",
    "acked",
    "lost",
    "lost_per_10k",
    "recovered",
    "unexpected",
    "syncrep_cancelled",
    "rto_s",
    "write_gap_s",
    "detected_s",
    "promoted_s",
    "rerouted_s",
    "run_s",
];

/// One row of the per-run table.
fn run_row(r: &RunResult) -> Vec<String> {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    match &r.outcome {
        RunOutcome::Verified {
            acknowledged,
            lost,
            lost_per_10k,
            recovered,
            unexpected,
            syncrep_cancelled,
            fault_s,
            rto_s,
            write_gap_s,
            detected_s,
            promoted_s,
            rerouted_s,
            ..
        } => vec![
            r.run.to_string(),
            format!("{fault_s:.2}"),
            acknowledged.to_string(),
            lost.to_string(),
            format!("{lost_per_10k:.2}"),
            recovered.to_string(),
            unexpected.to_string(),
            syncrep_cancelled.to_string(),
            opt(*rto_s),
            format!("{write_gap_s:.2}"),
            opt(*detected_s),
            opt(*promoted_s),
            opt(*rerouted_s),
            format!("{:.1}", r.run_s),
        ],
        RunOutcome::Unverified { .. } => {
            let mut row = vec![r.run.to_string(), "UNVERIFIED".into()];
            row.extend(std::iter::repeat_n("-".to_string(), RUN_COLUMNS.len() - 3));
            row.push(format!("{:.1}", r.run_s));
            row
        }
    }
}

/// Which per-run figure `--compare` lays side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The RTO in seconds: fault to first acknowledged write.
    RtoS,
    /// The writer's longest time without an acknowledged write, in seconds.
    WriteGapS,
    /// Acknowledged writes lost.
    Lost,
    /// Acknowledged writes lost per 10 000 acknowledged.
    LostPer10k,
    /// Commits whose SyncRep wait the writer cancelled.
    SyncrepCancelled,
    /// Seconds from the fault to the entry point's re-routing.
    ReroutedS,
    /// The fault's time on the writer's clock.
    FaultS,
}

impl Column {
    /// Every column, by its name on the command line.
    pub const ALL: [(&'static str, Column); 7] = [
        ("rto_s", Column::RtoS),
        ("write_gap_s", Column::WriteGapS),
        ("lost", Column::Lost),
        ("lost_per_10k", Column::LostPer10k),
        ("syncrep_cancelled", Column::SyncrepCancelled),
        ("rerouted_s", Column::ReroutedS),
        ("fault_s", Column::FaultS),
    ];

    fn name(self) -> &'static str {
        Column::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(n, _)| n)
    }

    /// The column's value in a run (`None`: none, or the run was not verified).
    fn cell(self, run: &RunResult) -> Option<String> {
        let f = run.figures()?;
        let two = |v: f64| format!("{v:.2}");
        match self {
            Column::RtoS => f.rto_s.map(two),
            Column::WriteGapS => Some(two(f.write_gap_s)),
            Column::Lost => Some(f.lost.to_string()),
            Column::LostPer10k => Some(two(f.lost_per_10k)),
            Column::SyncrepCancelled => Some(f.syncrep_cancelled.to_string()),
            Column::ReroutedS => f.rerouted_s.map(two),
            Column::FaultS => Some(two(f.fault_s)),
        }
    }
}

impl std::str::FromStr for Column {
    type Err = String;
    fn from_str(s: &str) -> Result<Column, String> {
        Column::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                let names: Vec<&str> = Column::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown column {s:?} (known: {})", names.join(", "))
            })
    }
}

/// Several experiments side by side: one row per run number and one column per
/// experiment (chart-ready: the first column is x).
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
            .map(|n| format!("{n}_{}", column.name()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let most = reports.iter().map(|r| r.runs.len()).max().unwrap_or(0);
    for i in 0..most {
        let cells: Vec<String> = reports
            .iter()
            // No value: the chart skips what does not parse as a number.
            .map(|r| {
                r.runs
                    .get(i)
                    .and_then(|run| column.cell(run))
                    .unwrap_or("-".into())
            })
            .collect();
        let _ = writeln!(out, "{} {}", i + 1, cells.join(" "));
    }
    Ok(out)
}

/// The summary table of several experiments: runs, loss (runs with loss, max, per 10k
/// acknowledged), RTO (median, max) and the longest write gap (median).
pub fn summary_table(reports: &[ChaosReport]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let f = |d: Option<Distribution>, g: fn(Distribution) -> f64, digits: usize| {
                d.map_or("-".into(), |d| format!("{:.digits$}", g(d)))
            };
            vec![
                r.name(),
                format!("{}/{}", r.runs.len() - r.unverified(), r.runs.len()),
                r.runs_with_loss().to_string(),
                f(r.lost, |d| d.max, 0),
                r.lost_per_10k_total
                    .map_or("-".into(), |v| format!("{v:.2}")),
                f(r.rto_s, |d| d.median, 2),
                f(r.rto_s, |d| d.max, 2),
                f(r.write_gap_s, |d| d.median, 2),
            ]
        })
        .collect();
    lab_core::text_table::table(
        &[
            "mode/fault",
            "verified",
            "runs_with_loss",
            "lost_max",
            "lost_per_10k_total",
            "rto_s_median",
            "rto_s_max",
            "write_gap_s_median",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn nearest_rank_order_statistics_and_p95_only_from_twenty_values() {
        let d = Distribution::of([5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((d.n, d.min, d.median, d.max), (5, 1.0, 3.0, 5.0));
        assert_eq!(d.p95, None, "five values have no p95 of their own");
        let nineteen = Distribution::of((1..=19).map(f64::from)).unwrap();
        assert_eq!(nineteen.p95, None);
        let twenty = Distribution::of((1..=20).map(f64::from)).unwrap();
        assert_eq!((twenty.median, twenty.p95), (10.0, Some(19.0)));
        let one = Distribution::of([7.0]).unwrap();
        assert_eq!(
            (one.min, one.median, one.p95, one.max),
            (7.0, 7.0, None, 7.0)
        );
        assert!(Distribution::of([]).is_none());
    }

    fn verified(run: usize, lost: usize, rto_s: f64) -> RunResult {
        RunResult {
            run,
            reset_s: 9.0,
            run_s: 12.0,
            conditions: BTreeMap::new(),
            outcome: RunOutcome::Verified {
                attempted: 2100,
                acknowledged: 2000,
                failed: 100,
                lost,
                lost_per_10k: per_10k(lost, 2000),
                recovered: 1,
                unexpected: 0,
                syncrep_cancelled: run,
                fault_s: 3.5,
                fault_delay_s: 2.0,
                rto_s: Some(rto_s),
                write_gap_s: rto_s + 0.25,
                detected_s: Some(0.1),
                promoted_s: Some(0.5),
                rerouted_s: Some(0.6),
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
            seed: 42,
        };
        ChaosReport::new(&config, Utc::now(), runs, false)
    }

    #[test]
    fn an_unverified_run_never_counts_as_zero_lost() {
        let r = report(vec![
            verified(1, 3, 2.0),
            RunResult::unverified(2, 9.0, 4.0, "reset: no primary".into()),
            verified(3, 0, 1.0),
        ]);
        assert_eq!(r.unverified(), 1);
        assert_eq!(r.runs_with_loss(), 1);
        let lost = r.lost.unwrap();
        assert_eq!((lost.min, lost.max), (0.0, 3.0));
        let kv = r.key_values();
        for line in [
            "seed: 42\n",
            "runs: 3\n",
            "verified: 2\n",
            "unverified: 1\n",
            "lost_total: 3\n",
            "lost_max: 3\n",
            // 3 lost of 4000 acknowledged: 7.5 per 10 000; the worst run 15.
            "lost_per_10k_total: 7.50\n",
            "lost_per_10k_max: 15.00\n",
            "rto_s_max: 2.00\n",
            "write_gap_s_max: 2.25\n",
            "syncrep_cancelled_total: 4\n",
            "syncrep_cancelled_max: 3\n",
            "promoted_s_median: 0.50\n",
        ] {
            assert!(kv.contains(line), "{line:?} not in\n{kv}");
        }
        assert!(!kv.contains("p95"), "no p95 from 2 runs:\n{kv}");
        let text = r.text();
        assert!(text.contains("UNVERIFIED"));
        let header = text
            .lines()
            .find(|l| l.contains("median"))
            .expect("the distributions' header");
        assert!(
            !header.contains("p95"),
            "no p95 column from 3 runs:\n{text}"
        );
        for expectation in [None, Some(Expectation::NoLoss), Some(Expectation::Loss)] {
            let why = r
                .failure(expectation)
                .expect("an unverified run fails every expectation");
            assert!(why.contains("1 of 3 runs could not be verified"), "{why}");
        }
        assert!(r.runs[1].line(3).contains("nothing is known of its loss"));
    }

    #[test]
    fn twenty_runs_show_a_p95_in_the_table_and_the_key_values() {
        let r = report((1..=20).map(|i| verified(i, 0, i as f64)).collect());
        let kv = r.key_values();
        assert!(kv.contains("rto_s_p95: 19.00\n"), "{kv}");
        let text = r.text();
        let row = text
            .lines()
            .find(|l| l.starts_with("rto_s "))
            .expect("an rto_s row");
        assert!(row.contains("19.00"), "{row}");
        assert!(
            text.lines()
                .any(|l| l.contains("median") && l.contains("p95")),
            "{text}"
        );
    }

    #[test]
    fn results_round_trip_and_compare_side_by_side() {
        let a = report(vec![verified(1, 2, 1.5), verified(2, 0, 2.5)]);
        let json = serde_json::to_string(&a).unwrap();
        let back: ChaosReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        let mut b = report(vec![verified(1, 0, 3.0)]);
        b.mode = "sync".into();
        let table = compare(&[a.clone(), b.clone()], Column::RtoS).unwrap();
        assert_eq!(
            table,
            "run async-kill_rto_s sync-kill_rto_s\n1 1.50 3.00\n2 2.50 -\n"
        );
        let lost = compare(&[a.clone(), b.clone()], Column::Lost).unwrap();
        assert!(lost.contains("\n1 2 0\n"), "{lost}");
        let per_10k = compare(std::slice::from_ref(&a), Column::LostPer10k).unwrap();
        assert!(per_10k.contains("\n1 10.00\n"), "{per_10k}");
        let gap = compare(std::slice::from_ref(&a), Column::WriteGapS).unwrap();
        assert!(
            gap.starts_with("run async-kill_write_gap_s\n1 1.75\n"),
            "{gap}"
        );
        assert_eq!("rerouted_s".parse::<Column>(), Ok(Column::ReroutedS));
        assert!("rto_ms".parse::<Column>().is_err());
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

    #[test]
    fn the_fault_delay_is_drawn_in_its_window_and_repeats_with_its_seed() {
        let (lo, hi) = super::super::FAULT_WINDOW;
        let delays: Vec<Duration> = (1..=200)
            .map(|run| super::super::fault_delay(7, run))
            .collect();
        assert!(delays.iter().all(|d| *d >= lo && *d <= hi));
        // Spread over the window, not stuck at one point.
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(*min < lo + Duration::from_millis(100) && *max > hi - Duration::from_millis(100));
        assert_eq!(super::super::fault_delay(7, 3), delays[2]);
        assert_ne!(super::super::fault_delay(8, 3), delays[2]);
    }
}
