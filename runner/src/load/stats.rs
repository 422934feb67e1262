//! Counting what the writer did, and saying it twice: a k6-like summary for the reader
//! and `key: value` lines (or JSON) for the book engine, which captures values by name.
//!
//! Each worker counts into its own [`WorkerStats`] behind a mutex that only the
//! once-a-second reporter ever contends for; latencies go into HdrHistograms
//! (microseconds, 3 significant digits), one for the whole run and one for the current
//! second of the live line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::errors::ErrorClass;

/// The largest latency the histograms hold exactly (longer ones saturate): one hour.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A fresh latency histogram (microseconds).
pub fn new_histogram() -> Histogram<u64> {
    // Constant bounds, valid for hdrhistogram (low >= 1, high >= 2 * low, sigfig <= 5):
    // this cannot fail at run time, whatever the input.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

/// What one worker counted.
#[derive(Debug, Clone)]
pub struct WorkerStats {
    /// Transactions sent.
    pub attempted: u64,
    /// Transactions whose commit returned OK.
    pub acknowledged: u64,
    /// Failed transactions by class.
    pub errors: BTreeMap<ErrorClass, u64>,
    /// Failed connection attempts by class.
    pub connect_errors: BTreeMap<ErrorClass, u64>,
    /// Transactions this worker cancelled at the client-side bound (or at the stop).
    pub client_cancels: u64,
    /// Connections established (the first one included).
    pub connections: u64,
    /// Latency of acknowledged transactions over the whole run (µs).
    pub latency: Histogram<u64>,
    /// Latency of acknowledged transactions since the last live line (µs).
    pub interval: Histogram<u64>,
    /// Acknowledged since the last live line.
    pub interval_acknowledged: u64,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            attempted: 0,
            acknowledged: 0,
            errors: BTreeMap::new(),
            connect_errors: BTreeMap::new(),
            client_cancels: 0,
            connections: 0,
            latency: new_histogram(),
            interval: new_histogram(),
            interval_acknowledged: 0,
        }
    }
}

impl WorkerStats {
    /// Counts an acknowledged transaction.
    pub fn ack(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.acknowledged += 1;
        self.interval_acknowledged += 1;
        self.latency.saturating_record(us);
        self.interval.saturating_record(us);
    }

    /// Counts a failed transaction.
    pub fn error(&mut self, class: ErrorClass) {
        *self.errors.entry(class).or_default() += 1;
    }

    /// Counts a failed connection attempt.
    pub fn connect_error(&mut self, class: ErrorClass) {
        *self.connect_errors.entry(class).or_default() += 1;
    }

    /// Adds another worker's counts (the run's totals are the sum of the workers').
    pub fn merge(&mut self, other: &WorkerStats) {
        self.attempted += other.attempted;
        self.acknowledged += other.acknowledged;
        for (class, n) in &other.errors {
            *self.errors.entry(class.clone()).or_default() += n;
        }
        for (class, n) in &other.connect_errors {
            *self.connect_errors.entry(class.clone()).or_default() += n;
        }
        self.client_cancels += other.client_cancels;
        self.connections += other.connections;
        // Same bounds on both sides, so `add` cannot fail; a failure would only lose
        // latency samples, never counts.
        let _ = self.latency.add(&other.latency);
        let _ = self.interval.add(&other.interval);
        self.interval_acknowledged += other.interval_acknowledged;
    }

    /// Total failed transactions.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Mean.
    pub avg_ms: f64,
    /// Minimum.
    pub min_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Latency {
    /// The figures of a histogram of microseconds (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            avg_ms: h.mean() / 1000.0,
            min_ms: ms(h.min()),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

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
    /// Builds the summary from the run's merged counts.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        run_id: u32,
        target: String,
        workers: usize,
        rate_limit: Option<f64>,
        synchronous_commit: Option<String>,
        statements: String,
        ledger: Option<String>,
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
            target,
            workers,
            rate_limit,
            synchronous_commit,
            statements,
            ledger,
            started_at,
            elapsed_s: elapsed.as_secs_f64(),
            attempted: totals.attempted,
            acknowledged: totals.acknowledged,
            errors: totals.error_count(),
            errors_by_class: by_class(&totals.errors),
            connect_errors: totals.connect_errors.values().sum(),
            connect_errors_by_class: by_class(&totals.connect_errors),
            client_cancels: totals.client_cancels,
            reconnects: totals.connections.saturating_sub(workers as u64),
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
        let row = |out: &mut String, key: &str, value: String| {
            let dots = ".".repeat(30usize.saturating_sub(key.len()));
            let _ = writeln!(out, "     {key}{dots}: {value}");
        };
        let rate = match self.rate_limit {
            Some(r) => format!("{r} tx/s"),
            None => "unlimited".into(),
        };
        let sc = self
            .synchronous_commit
            .as_deref()
            .unwrap_or("server default");
        row(
            &mut out,
            "scenario",
            format!(
                "{} workers → {}, rate {rate}, synchronous_commit {sc}, {} statements, {:.1}s",
                self.workers, self.target, self.statements, self.elapsed_s
            ),
        );
        row(
            &mut out,
            "run",
            format!(
                "{} (op ids {}..={}), ledger {}",
                self.run_id,
                self.op_lo,
                self.op_hi,
                self.ledger.as_deref().unwrap_or("none")
            ),
        );
        out.push('\n');
        let mark = if self.errors == 0 { '✓' } else { '✗' };
        let _ = writeln!(out, "     {mark} commit acknowledged\n");
        row(
            &mut out,
            "checks",
            format!(
                "{:.2}% ✓ {} ✗ {}",
                self.checks_pct,
                self.acknowledged,
                self.attempted - self.acknowledged
            ),
        );
        row(
            &mut out,
            "iterations",
            format!("{} {:.1}/s", self.attempted, self.attempt_rate),
        );
        row(
            &mut out,
            "acknowledged",
            format!("{} {:.1}/s", self.acknowledged, self.rate),
        );
        let l = &self.latency;
        row(
            &mut out,
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
        );
        row(
            &mut out,
            "errors",
            format!("{}{}", self.errors, classes(&self.errors_by_class)),
        );
        row(
            &mut out,
            "connect_errors",
            format!(
                "{}{}",
                self.connect_errors,
                classes(&self.connect_errors_by_class)
            ),
        );
        row(
            &mut out,
            "reconnects",
            format!(
                "{} (client cancels {})",
                self.reconnects, self.client_cancels
            ),
        );
        out
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
        w.error(ErrorClass::Sql("23505".into()));
        w.connections = 3;
        let mut total = WorkerStats::default();
        total.merge(&w);
        let s = LoadSummary::new(
            9,
            "pgbouncer".into(),
            2,
            None,
            None,
            "prepared".into(),
            None,
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
