//! Saying what a run did twice: a k6-like summary for the reader and `key: value`
//! lines (or JSON) for the book engine, which captures values by name.
//!
//! The keys and the text are part of the course: the book's recorded outputs and its
//! checks read them, so they change only with the records.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::config::LoadConfig;
use super::errors::ErrorClass;
use super::stats::{Latency, WorkerStats};

/// The outcome of a load run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    /// The run's id (op ids are `run_id << 32 | seq`).
    pub run_id: u32,
    /// The lowest op id of the run's range.
    pub op_lo: i64,
    /// The highest op id of the run's range.
    pub op_hi: i64,
    /// What it wrote to.
    pub target: String,
    /// Concurrent connections.
    pub workers: usize,
    /// The requested total rate, tx/s (`None`: unlimited).
    pub rate_limit: Option<f64>,
    /// The `synchronous_commit` the transactions set (`None`: the server's).
    pub synchronous_commit: Option<String>,
    /// `prepared` or `unnamed` (after falling back for a pgbouncer without
    /// prepared-statement support).
    pub statements: String,
    /// Where the ledger went.
    pub ledger: Option<String>,
    /// Wall-clock start.
    pub started_at: DateTime<Utc>,
    /// How long it ran, seconds.
    pub elapsed_s: f64,
    /// Transactions sent.
    pub attempted: u64,
    /// Commits that returned OK.
    pub acknowledged: u64,
    /// Failed transactions.
    pub errors: u64,
    /// Failed transactions by class token.
    pub errors_by_class: BTreeMap<String, u64>,
    /// Failed connection attempts.
    pub connect_errors: u64,
    /// Failed connection attempts by class token.
    pub connect_errors_by_class: BTreeMap<String, u64>,
    /// Transactions cancelled by the client (at the bound or at the stop).
    pub client_cancels: u64,
    /// Connections made after the first one of each worker.
    pub reconnects: u64,
    /// Acknowledged per second over the run.
    pub rate: f64,
    /// Attempted per second over the run.
    pub attempt_rate: f64,
    /// Acknowledged as a percentage of attempted (k6's "checks").
    pub checks_pct: f64,
    /// Commit latency of acknowledged transactions.
    pub latency: Latency,
}

impl LoadSummary {
    /// Builds the summary of a run of `config` from its merged counts.
    pub(super) fn new(
        config: &LoadConfig,
        run_id: u32,
        statements: &str,
        started_at: DateTime<Utc>,
        elapsed: Duration,
        totals: &WorkerStats,
    ) -> LoadSummary {
        let range = super::ledger::op_range(run_id);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let by_class = |m: &BTreeMap<ErrorClass, u64>| {
            m.iter()
                .map(|(c, n)| (c.token(), *n))
                .collect::<BTreeMap<_, _>>()
        };
        LoadSummary {
            run_id,
            op_lo: *range.start(),
            op_hi: *range.end(),
            target: config.target.clone(),
            workers: config.workers,
            rate_limit: config.rate,
            synchronous_commit: config.synchronous_commit.clone(),
            statements: statements.to_string(),
            ledger: config.ledger.as_ref().map(|p| p.display().to_string()),
            started_at,
            elapsed_s: elapsed.as_secs_f64(),
            attempted: totals.attempted,
            acknowledged: totals.acknowledged,
            errors: totals.error_count(),
            errors_by_class: by_class(&totals.errors),
            connect_errors: totals.connect_errors.values().sum(),
            connect_errors_by_class: by_class(&totals.connect_errors),
            client_cancels: totals.client_cancels,
            reconnects: totals.connections.saturating_sub(config.workers as u64),
            rate: totals.acknowledged as f64 / secs,
            attempt_rate: totals.attempted as f64 / secs,
            checks_pct: if totals.attempted == 0 {
                0.0
            } else {
                100.0 * totals.acknowledged as f64 / totals.attempted as f64
            },
            latency: Latency::of(&totals.latency),
        }
    }

    /// The k6-like summary for a reader.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let rows = |out: &mut String, rows: &[(&str, String)]| {
            for (key, value) in rows {
                let dots = ".".repeat(30usize.saturating_sub(key.len()));
                let _ = writeln!(out, "     {key}{dots}: {value}");
            }
        };
        rows(&mut out, &self.scenario_rows());
        out.push('\n');
        let mark = if self.errors == 0 { '✓' } else { '✗' };
        let _ = writeln!(out, "     {mark} commit acknowledged\n");
        rows(&mut out, &self.result_rows());
        out
    }

    /// What ran: the summary's first rows.
    fn scenario_rows(&self) -> [(&'static str, String); 2] {
        let rate = match self.rate_limit {
            Some(r) => format!("{r} tx/s"),
            None => "unlimited".into(),
        };
        let sc = self
            .synchronous_commit
            .as_deref()
            .unwrap_or("server default");
        [
            (
                "scenario",
                format!(
                    "{} workers → {}, rate {rate}, synchronous_commit {sc}, {} statements, {:.1}s",
                    self.workers, self.target, self.statements, self.elapsed_s
                ),
            ),
            (
                "run",
                format!(
                    "{} (op ids {}..={}), ledger {}",
                    self.run_id,
                    self.op_lo,
                    self.op_hi,
                    self.ledger.as_deref().unwrap_or("none")
                ),
            ),
        ]
    }

    /// What came of it: the summary's figures, k6's names where k6 has one.
    fn result_rows(&self) -> [(&'static str, String); 7] {
        let l = &self.latency;
        let failed = self.attempted - self.acknowledged;
        [
            (
                "checks",
                format!("{:.2}% ✓ {} ✗ {failed}", self.checks_pct, self.acknowledged),
            ),
            (
                "iterations",
                format!("{} {:.1}/s", self.attempted, self.attempt_rate),
            ),
            (
                "acknowledged",
                format!("{} {:.1}/s", self.acknowledged, self.rate),
            ),
            (
                "tx_duration",
                format!(
                    "avg={} min={} med={} p(90)={} p(95)={} p(99)={} max={}",
                    ms(l.avg_ms),
                    ms(l.min_ms),
                    ms(l.p50_ms),
                    ms(l.p90_ms),
                    ms(l.p95_ms),
                    ms(l.p99_ms),
                    ms(l.max_ms)
                ),
            ),
            (
                "errors",
                format!("{}{}", self.errors, classes(&self.errors_by_class)),
            ),
            (
                "connect_errors",
                format!(
                    "{}{}",
                    self.connect_errors,
                    classes(&self.connect_errors_by_class)
                ),
            ),
            (
                "reconnects",
                format!(
                    "{} (client cancels {})",
                    self.reconnects, self.client_cancels
                ),
            ),
        ]
    }

    /// Stable `key: value` lines, one figure each, for the book engine.
    pub fn key_values(&self) -> String {
        let mut out = String::new();
        let mut kv = |key: &str, value: String| {
            let _ = writeln!(out, "{key}: {value}");
        };
        kv("run_id", self.run_id.to_string());
        kv("target", self.target.clone());
        kv("workers", self.workers.to_string());
        kv(
            "synchronous_commit",
            self.synchronous_commit
                .clone()
                .unwrap_or_else(|| "default".into()),
        );
        kv("statements", self.statements.clone());
        kv("elapsed_s", format!("{:.3}", self.elapsed_s));
        kv("attempted", self.attempted.to_string());
        kv("acknowledged", self.acknowledged.to_string());
        kv("errors", self.errors.to_string());
        for (class, n) in &self.errors_by_class {
            kv(&format!("errors_{class}"), n.to_string());
        }
        kv("connect_errors", self.connect_errors.to_string());
        for (class, n) in &self.connect_errors_by_class {
            kv(&format!("connect_errors_{class}"), n.to_string());
        }
        kv("client_cancels", self.client_cancels.to_string());
        kv("reconnects", self.reconnects.to_string());
        kv("rate", format!("{:.1}", self.rate));
        kv("attempt_rate", format!("{:.1}", self.attempt_rate));
        kv("checks_pct", format!("{:.2}", self.checks_pct));
        let l = &self.latency;
        kv("avg_ms", format!("{:.3}", l.avg_ms));
        kv("min_ms", format!("{:.3}", l.min_ms));
        kv("p50_ms", format!("{:.3}", l.p50_ms));
        kv("p90_ms", format!("{:.3}", l.p90_ms));
        kv("p95_ms", format!("{:.3}", l.p95_ms));
        kv("p99_ms", format!("{:.3}", l.p99_ms));
        kv("max_ms", format!("{:.3}", l.max_ms));
        if let Some(ledger) = &self.ledger {
            kv("ledger", ledger.clone());
        }
        kv(
            "started_at",
            self.started_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        out
    }

    /// The summary as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// A millisecond figure in k6's style (`2.31ms`, `1.2s`).
fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2}s", v / 1000.0)
    } else {
        format!("{v:.2}ms")
    }
}

fn classes(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = m.iter().map(|(c, n)| format!("{c}={n}")).collect();
    format!("  ({})", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_are_stable_key_values() {
        let mut w = WorkerStats::default();
        for ms in 1..=100u64 {
            w.attempted += 1;
            w.ack(Duration::from_millis(ms));
        }
        w.attempted += 2;
        w.error(ErrorClass::ReadOnly);
        w.error(ErrorClass::Sql(
            tokio_postgres::error::SqlState::UNIQUE_VIOLATION,
        ));
        w.connections = 3;
        let mut total = WorkerStats::default();
        total.merge(&w);
        let config = LoadConfig {
            workers: 2,
            ..LoadConfig::new("host=x", "pgbouncer")
        };
        let s = LoadSummary::new(
            &config,
            9,
            "prepared",
            Utc::now(),
            Duration::from_secs(10),
            &total,
        );
        let kv = s.key_values();
        for line in [
            "attempted: 102\n",
            "acknowledged: 100\n",
            "errors: 2\n",
            "errors_read_only: 1\n",
            "errors_sqlstate_23505: 1\n",
            "rate: 10.0\n",
            "reconnects: 1\n",
            "p50_ms: 50.015\n",
            "p99_ms: 99.007\n",
            "max_ms: 100.031\n",
        ] {
            assert!(kv.contains(line), "{line:?} not in\n{kv}");
        }
        assert!(
            s.human()
                .contains("checks........................: 98.04% ✓ 100 ✗ 2"),
            "{}",
            s.human()
        );
        assert_eq!(s.to_json()["acknowledged"], 100);
    }
}
