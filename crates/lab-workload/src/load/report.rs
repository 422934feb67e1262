//! What a run tells its front end while it goes on: the library never prints.
//!
//! The front end passes a [`LoadObserver`]; the run calls it with
//!
//! - a [`Progress`] once a second (the live line: rate, counts, latency of the last
//!   second, transactions in flight), from one reporter task;
//! - an [`ErrorSeen`] the first time a kind of error (stage and class) shows up, and
//!   again after a success, so a reader sees each kind of trouble once rather than
//!   thousands of times while the primary is down;
//! - a [`Notice`] when the run changes how it works (unnamed statements) or could not
//!   stop a worker in its bound.
//!
//! Each event's `Display` is the text `runner load` prints after its `load: ` tag, so a
//! front end that shows text needs no formatting of its own, and one that does not
//! (a test, the book engine) reads the fields.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::errors::ErrorClass;
use super::stats::{Latency, WorkerStats};
use super::{Shared, lock, stopped};

/// Receives a run's events. Every method has an empty default, so an observer
/// implements only what it shows. The workers call it concurrently from their tasks:
/// an implementation should be quick and never block for long (one `write(2)`).
pub trait LoadObserver: Send + Sync {
    /// The live line, once a second from the start.
    fn progress(&self, progress: &Progress) {
        let _ = progress;
    }

    /// A kind of error, the first time it shows up (again after a success).
    fn error(&self, error: &ErrorSeen) {
        let _ = error;
    }

    /// A change in how the run works, or a fault of the run itself.
    fn notice(&self, notice: &Notice) {
        let _ = notice;
    }
}

/// The numbers of one live line: lab-core's [`LiveLine`](lab_core::live_line::LiveLine),
/// the type the book's timelines parse the recorded line with.
pub use lab_core::live_line::LiveLine as Progress;

/// Where an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Connecting (and preparing the statement).
    Connect,
    /// Running a transaction.
    Transaction,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Transaction => "transaction",
        })
    }
}

/// A kind of error seen for the first time (or the first time since a success).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorSeen {
    /// Time since the run's start.
    pub elapsed: Duration,
    /// Connecting or transacting.
    pub stage: Stage,
    /// Its class.
    pub class: ErrorClass,
    /// The error's text, with its cause.
    pub detail: String,
}

impl fmt::Display for ErrorSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>6.1}s] {} {}: {}",
            self.elapsed.as_secs_f64(),
            self.stage,
            self.class,
            self.detail
        )
    }
}

/// Something about the run itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `auto` found a pgbouncer that does not track prepared statements: the run uses
    /// unnamed statements.
    PoolerWithoutPreparedStatements,
    /// A pooler lost a prepared statement (the error's text): the run switched to
    /// unnamed statements.
    FellBackToUnnamed(String),
    /// A worker did not stop within this bound after the stop, and was aborted.
    WorkerAborted(Duration),
}

impl Notice {
    /// Whether it is a fault of the run rather than news about the target: shown even
    /// to a front end that shows nothing else (`runner load --quiet`).
    pub fn is_warning(&self) -> bool {
        matches!(self, Notice::WorkerAborted(_))
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::PoolerWithoutPreparedStatements => f.write_str(
                "pgbouncer does not track prepared statements \
                 (max_prepared_statements = 0); using unnamed statements",
            ),
            Notice::FellBackToUnnamed(error) => write!(
                f,
                "prepared statements do not survive this pooler ({error}); using unnamed \
                 statements (set max_prepared_statements in pgbouncer)"
            ),
            Notice::WorkerAborted(bound) => {
                write!(f, "a worker did not stop within {bound:?}; aborted it")
            }
        }
    }
}

/// The kinds of error already reported, forgotten at the next success.
#[derive(Default)]
pub(crate) struct FirstErrors {
    seen: Mutex<BTreeSet<(Stage, ErrorClass)>>,
    /// Whether `seen` may be non-empty.
    any: AtomicBool,
}

impl FirstErrors {
    /// Whether this kind of error is new since the last success.
    pub(crate) fn first(&self, stage: Stage, class: &ErrorClass) -> bool {
        let first = self
            .seen
            .lock()
            .map(|mut seen| seen.insert((stage, class.clone())))
            .unwrap_or(false);
        self.any.store(true, Ordering::Relaxed);
        first
    }

    /// A success: every kind of error is news again.
    pub(crate) fn clear(&self) {
        // Checked without the lock first: this runs after every acknowledged commit.
        if self.any.swap(false, Ordering::Relaxed)
            && let Ok(mut seen) = self.seen.lock()
        {
            seen.clear();
        }
    }
}

/// The live line: once a second, the workers' counts and last-second windows.
pub(super) async fn live_lines(
    shared: Arc<Shared>,
    stats: Vec<Arc<Mutex<WorkerStats>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval_at(
        shared.start + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut stop) => break,
        }
        let (acknowledged, errors, window) = take_window(&stats);
        let now = Instant::now();
        let secs = now.duration_since(last).as_secs_f64().max(1e-3);
        last = now;
        let latency = Latency::of(&window.interval);
        shared.observer.progress(&Progress {
            elapsed_s: shared.start.elapsed().as_secs_f64(),
            rate: window.interval_acknowledged as f64 / secs,
            acknowledged,
            errors,
            p50_ms: latency.p50_ms,
            p99_ms: latency.p99_ms,
            in_flight: shared.in_flight.load(Ordering::Relaxed),
        });
    }
}

/// The run's acknowledged and failed counts, and the workers' windows since the last
/// line merged (each worker's window is reset).
fn take_window(stats: &[Arc<Mutex<WorkerStats>>]) -> (u64, u64, WorkerStats) {
    let mut window = WorkerStats::default();
    let (mut acknowledged, mut errors) = (0, 0);
    for s in stats {
        let mut s = lock(s);
        acknowledged += s.acknowledged;
        errors += s.error_count();
        let _ = window.interval.add(&s.interval);
        window.interval_acknowledged += s.interval_acknowledged;
        s.interval.reset();
        s.interval_acknowledged = 0;
    }
    (acknowledged, errors, window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_display_as_the_live_lines() {
        let progress = Progress {
            elapsed_s: 2.004,
            rate: 1619.24,
            acknowledged: 2617,
            errors: 0,
            p50_ms: 2.444,
            p99_ms: 17.84,
            in_flight: 4,
        };
        assert_eq!(
            progress.to_string(),
            "[   2.0s]   1619.2 tx/s  ok=2617 errors=0 p50=2.44ms p99=17.84ms in-flight=4"
        );
        let error = ErrorSeen {
            elapsed: Duration::from_millis(30),
            stage: Stage::Connect,
            class: ErrorClass::ConnectionRefused,
            detail: "error connecting to server: Connection refused (os error 111)".into(),
        };
        assert_eq!(
            error.to_string(),
            "[   0.0s] connect connection_refused: error connecting to server: \
             Connection refused (os error 111)"
        );
        let aborted = Notice::WorkerAborted(Duration::from_secs(5));
        assert_eq!(
            aborted.to_string(),
            "a worker did not stop within 5s; aborted it"
        );
        assert!(aborted.is_warning() && !Notice::PoolerWithoutPreparedStatements.is_warning());
    }

    #[test]
    fn an_error_kind_is_news_again_after_a_success() {
        let errors = FirstErrors::default();
        let refused = ErrorClass::ConnectionRefused;
        assert!(errors.first(Stage::Connect, &refused));
        assert!(!errors.first(Stage::Connect, &refused));
        assert!(errors.first(Stage::Transaction, &refused));
        errors.clear();
        assert!(errors.first(Stage::Connect, &refused));
    }
}
