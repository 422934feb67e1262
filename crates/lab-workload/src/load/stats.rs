//! Counting what the writer did.
//!
//! Each worker counts into its own [`WorkerStats`] behind a mutex that only the
//! once-a-second reporter ever contends for; latencies go into HdrHistograms
//! (microseconds, 3 significant digits), one for the whole run and one for the current
//! second of the live line.

use std::collections::BTreeMap;
use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_counts_are_the_sum_of_the_workers() {
        let mut a = WorkerStats {
            attempted: 3,
            ..WorkerStats::default()
        };
        a.ack(Duration::from_millis(2));
        a.ack(Duration::from_millis(4));
        a.error(ErrorClass::ReadOnly);
        let mut b = WorkerStats {
            attempted: 1,
            ..WorkerStats::default()
        };
        b.connect_error(ErrorClass::ConnectionRefused);
        b.error(ErrorClass::ReadOnly);
        let mut total = WorkerStats::default();
        total.merge(&a);
        total.merge(&b);
        assert_eq!((total.attempted, total.acknowledged), (4, 2));
        assert_eq!(total.errors[&ErrorClass::ReadOnly], 2);
        assert_eq!(total.error_count(), 2);
        assert_eq!(total.connect_errors[&ErrorClass::ConnectionRefused], 1);
        assert_eq!(total.latency.len(), 2);
        assert_eq!(
            Latency::of(&WorkerStats::default().latency),
            Latency::default()
        );
    }
}
