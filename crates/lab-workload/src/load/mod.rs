//! The write load: the course's stand-in for k6, built for counting losses.
//!
//! Every chapter that claims "no acknowledged write was lost" or "these N were lost"
//! needs a writer that knows exactly which writes the server acknowledged, keeps
//! writing while the cluster fails under it, and never waits unboundedly. k6 gives
//! rates; it does not keep a ledger. This module does both.
//!
//! # How the pieces fit
//!
//! [`run`] is the whole life of a run, top to bottom; each step is one file:
//!
//! 1. `config.rs`: the [`LoadConfig`] is validated, and names the one transaction the
//!    run repeats (a rental and its payment in one statement, `synchronous_commit` set
//!    inside it when asked for, so it holds through pgbouncer);
//! 2. `connection.rs`: in `auto` mode, pgbouncer's admin console is asked whether
//!    prepared statements survive it; the choice is shared by every worker;
//! 3. `ledger.rs`: the ledger file is created with its header; op ids are
//!    `run_id << 32 | seq`, unique across runs (`ledger/read.rs` parses it back, for
//!    `verify`);
//! 4. `worker.rs`: `workers` tasks each connect and run one transaction at a time —
//!    ledger `attempt`, transaction within its bounds, ledger `ack` or `fail` with an
//!    [`ErrorClass`] (`errors.rs`) — waiting as `pacing.rs` says (the rate's shared
//!    schedule, the 100 ms → 1 s backoff) and counting into their own `stats.rs`;
//! 5. `report.rs`: a reporter task turns the counts into a [`Progress`] once a second,
//!    and it and each new kind of error and each notice go to the front end's
//!    [`LoadObserver`] — the library never prints;
//! 6. the stop (duration, the caller's future, or a ledger that cannot be written):
//!    workers between transactions stop at once, one in a transaction gets the stop
//!    grace and is then cancelled; the ledger gets its `end` line and the workers'
//!    counts become the [`LoadSummary`] (`summary.rs`).
//!
//! Every wait is bounded: connects by the connect timeout, each transaction by the
//! optional client-side commit timeout (a commit hung in SyncRep is cancelled with the
//! protocol's cancel request — `statement_timeout` cannot end that wait — and
//! PostgreSQL's "already committed locally" WARNING classifies it as
//! `syncrep_cancelled`), and the in-flight transactions at the end of the run by the
//! stop grace, after which they are cancelled the same way. Non-fatal errors —
//! refused or broken connections, read-only standbys, SyncRep cancels, timeouts — are
//! counted and the run goes on.

mod config;
pub(crate) mod connection;
mod errors;
pub(crate) mod ledger;
pub(crate) mod pacing;
pub(crate) mod report;
pub(crate) mod stats;
mod summary;
pub(crate) mod transaction;
mod worker;

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};

pub use config::{LoadConfig, SYNCHRONOUS_COMMIT_LEVELS, StatementMode, parse_rate};
pub use errors::ErrorClass;
pub use ledger::{Header, Ledger, OpRecord, Outcome};
pub use report::{ErrorSeen, LoadObserver, Notice, Progress, Stage};
pub use stats::Latency;
pub use summary::LoadSummary;

/// Durations are written as in lab blocks: `500ms`, `10s`, `2m`, `1m30s`, bare seconds.
pub use lab_core::parse_duration;

use connection::{CANCEL_ANSWER_TIMEOUT, CANCEL_SEND_TIMEOUT};
use ledger::LedgerWriter;
use pacing::Pacer;
use report::FirstErrors;
use stats::WorkerStats;
use transaction::Transactor;

/// Runs the load until `config.duration` elapses, `stop` completes, or the ledger
/// cannot be written (an error: the run's record would be incomplete). What happens
/// meanwhile — the live line, each new kind of error, notices — goes to `observer`.
///
/// Non-fatal errors — refused connections, broken connections, read-only standbys,
/// SyncRep cancels, timeouts — are counted and the run goes on.
pub async fn run(
    config: LoadConfig,
    observer: Arc<dyn LoadObserver>,
    stop: impl Future<Output = ()>,
) -> Result<LoadSummary> {
    config.validate()?;
    let transactor = Transactor::resolve(&config, observer.clone()).await?;
    let run_id = config.run_id.unwrap_or_else(ledger::random_run_id);
    let started_at = Utc::now();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        ledger: create_ledger(&config, run_id, started_at)?,
        transactor,
        pacer: config.rate.map(|rate| Pacer::new(start, rate)),
        start,
        base: ledger::op_base(run_id),
        seq: AtomicU64::new(0),
        in_flight: AtomicI64::new(0),
        fatal: Mutex::new(None),
        fatal_notify: Notify::new(),
        first_errors: FirstErrors::default(),
        observer,
        config,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let (workers, stats) = spawn_workers(&shared, &stop_rx);
    let reporter = tokio::spawn(report::live_lines(shared.clone(), stats.clone(), stop_rx));

    let deadline = shared.config.duration.map(|d| start + d);
    tokio::select! {
        _ = stop => {}
        _ = sleep_until_opt(deadline) => {}
        _ = shared.fatal_notify.notified() => {}
    }
    let stopped_at = start.elapsed();
    let _ = stop_tx.send(true);
    join_workers(&shared, workers).await;
    reporter.abort();
    // Wait for it to be gone, so no live line lands in the middle of the summary.
    let _ = reporter.await;
    if let Some(ledger) = &shared.ledger
        && let Err(err) = ledger.end(start.elapsed())
    {
        shared.set_fatal(format!("writing the ledger's end line: {err}"));
    }

    let mut totals = WorkerStats::default();
    for s in &stats {
        totals.merge(&lock(s));
    }
    let summary = LoadSummary::new(
        &shared.config,
        run_id,
        shared.transactor.statement_mode(),
        started_at,
        stopped_at,
        &totals,
    );
    let fatal = shared.fatal.lock().ok().and_then(|mut f| f.take());
    if let Some(fatal) = fatal {
        bail!("{fatal}");
    }
    Ok(summary)
}

/// Creates the ledger, when the run keeps one, with the run's header.
fn create_ledger(
    config: &LoadConfig,
    run_id: u32,
    started_at: DateTime<Utc>,
) -> Result<Option<LedgerWriter>> {
    let Some(path) = &config.ledger else {
        return Ok(None);
    };
    let rate = config.rate.map_or("unlimited".into(), |r| r.to_string());
    let level = config.synchronous_commit.as_deref().unwrap_or("default");
    let header = Header {
        run_id,
        target: config.target.clone(),
        start: started_at,
        extra: [
            ("workers", config.workers.to_string()),
            ("rate", rate),
            ("synchronous_commit", level.to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect(),
    };
    Ok(Some(LedgerWriter::create(path, &header)?))
}

/// Starts the workers, each with its own counts.
fn spawn_workers(
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
) -> (Vec<JoinHandle<()>>, Vec<Arc<Mutex<WorkerStats>>>) {
    let stats: Vec<Arc<Mutex<WorkerStats>>> = (0..shared.config.workers)
        .map(|_| Arc::new(Mutex::new(WorkerStats::default())))
        .collect();
    let workers = stats
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let worker = worker::worker(shared.clone(), index, s.clone(), stop.clone());
            tokio::spawn(worker)
        })
        .collect();
    (workers, stats)
}

/// Waits for the stopped workers. Workers stop between transactions at once; one in a
/// transaction gets the grace, then a cancel and a bounded wait for its answer. A
/// worker in a connect attempt stops at once too. Nothing should outlast this bound;
/// whatever does is aborted.
async fn join_workers(shared: &Shared, mut workers: Vec<JoinHandle<()>>) {
    let bound = shared.config.stop_grace
        + CANCEL_SEND_TIMEOUT
        + CANCEL_ANSWER_TIMEOUT
        + Duration::from_secs(1);
    let join_deadline = Instant::now() + bound;
    for handle in &mut workers {
        if timeout(
            join_deadline.saturating_duration_since(Instant::now()),
            &mut *handle,
        )
        .await
        .is_err()
        {
            handle.abort();
            shared.observer.notice(&Notice::WorkerAborted(bound));
        }
    }
}

/// What the workers share: the run's settings, its clock, op ids, ledger and pacer,
/// and what they tell each other (the statement mode, a fatal error) and the observer.
struct Shared {
    config: LoadConfig,
    start: Instant,
    /// The run's first op id (`run_id << 32`).
    base: i64,
    /// The last op sequence number taken.
    seq: AtomicU64,
    ledger: Option<LedgerWriter>,
    pacer: Option<Pacer>,
    in_flight: AtomicI64,
    transactor: Transactor,
    fatal: Mutex<Option<String>>,
    fatal_notify: Notify,
    first_errors: FirstErrors,
    observer: Arc<dyn LoadObserver>,
}

impl Shared {
    /// Ends the run with an error (the first one set wins).
    fn set_fatal(&self, message: String) {
        if let Ok(mut fatal) = self.fatal.lock()
            && fatal.is_none()
        {
            *fatal = Some(message);
        }
        self.fatal_notify.notify_one();
    }

    /// The next op id; `None` (and the run ends) once the run's 2^32 ids are used.
    fn next_op(&self) -> Option<i64> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if seq > u64::from(u32::MAX) {
            self.set_fatal("the run used all 2^32 op ids of its range".into());
            return None;
        }
        Some(self.base | seq as i64)
    }

    /// Tells the observer about an error the first time its kind shows up (again after
    /// a success).
    fn report(&self, stage: Stage, class: &ErrorClass, detail: &str) {
        if self.first_errors.first(stage, class) {
            self.observer.error(&ErrorSeen {
                elapsed: self.start.elapsed(),
                stage,
                class: class.clone(),
                detail: detail.to_string(),
            });
        }
    }

    /// A success: every kind of error is news again.
    fn recovered(&self) {
        self.first_errors.clear();
    }
}

/// Locks a worker's counts. A worker that panicked while holding them would poison
/// them; the counts are still the best record there is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Completes once the run is stopping (or the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Sleeps until `until` unless the run stops first; true when it stopped.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, until: Instant) -> bool {
    tokio::select! {
        _ = sleep_until(until) => *stop.borrow(),
        _ = stopped(stop) => true,
    }
}
