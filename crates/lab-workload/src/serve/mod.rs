//! The application tier: HTTP in front of pgbouncer, so that k6 can write.
//!
//! The agenda's traffic comes from k6. k6 speaks HTTP — its SQL extension needs a Go
//! toolchain this course cannot assume — and that is how real traffic reaches a
//! database anyway: through an application. `runner serve` is that application, as
//! small as it can be while staying honest:
//!
//! - `POST /rentals` with `{"op_id": N}` runs the course's one transaction (a rental
//!   and its payment, [`crate::load::transaction`]) with that op id, through a pool of
//!   connections to pgbouncer, and answers `201 {"op_id": N}` once it committed. The op
//!   id comes from the client, so what the *client* saw acknowledged can be checked
//!   against a node (`runner verify` reads k6's JSON output as a ledger);
//! - failures get the status a client can act on, and the error's class in the body
//!   (`http.rs`): 503 while there is no primary to write to (refused, cut, read-only),
//!   504 when the commit hit its bound (`syncrep_cancelled` when it had committed
//!   locally and was waiting for the standby), 500 for anything else;
//! - every wait is bounded: a request waits at most the connect timeout for a pool
//!   slot and a connection (`pool.rs`), and the commit timeout for its transaction —
//!   after which it is cancelled with the protocol's cancel request, as `runner load`
//!   does; a broken connection is dropped and the next request connects again;
//! - what happens goes to a [`LoadObserver`], as `runner load`'s events do: the live
//!   line once a second, each new kind of error, notices; the [`ServeSummary`] at the
//!   stop (Ctrl-C): requests, statuses, the server-side latency of acknowledged
//!   commits — so the cost of the HTTP tier can be read off k6's figures beside it.

mod http;
mod pool;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::time::Instant;

use crate::load::report::FirstErrors;
use crate::load::stats::{Latency, WorkerStats};
use crate::load::transaction::Transactor;
use crate::load::{ErrorClass, ErrorSeen, LoadConfig, LoadObserver, Progress, Stage};
use pool::Pool;

/// What to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The database side, as `runner load` takes it: the target, `workers` as the pool
    /// size, the connect and commit bounds, `synchronous_commit`, the statement mode.
    pub database: LoadConfig,
    /// Where to listen (127.0.0.1 and the lab's `APP_PORT` by default).
    pub listen: SocketAddr,
    /// How long in-flight requests may finish after the stop.
    pub stop_grace: Duration,
}

/// What `runner serve` did, for its last lines.
#[derive(Debug, Clone, Serialize)]
pub struct ServeSummary {
    /// How long it served, seconds.
    pub elapsed_s: f64,
    /// `POST /rentals` requests answered.
    pub requests: u64,
    /// Requests answered 201: committed.
    pub acknowledged: u64,
    /// Requests answered otherwise, by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Failed requests by error class.
    pub errors_by_class: BTreeMap<String, u64>,
    /// Connections opened to the database.
    pub connections: u64,
    /// Commit latency of acknowledged requests, measured in the app (without HTTP).
    pub latency: Latency,
}

impl ServeSummary {
    /// Stable `key: value` lines: `errors` counts every answer but a 201.
    pub fn key_values(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "served_s: {:.1}", self.elapsed_s);
        let _ = writeln!(out, "requests: {}", self.requests);
        let _ = writeln!(out, "acknowledged: {}", self.acknowledged);
        let _ = writeln!(out, "errors: {}", self.by_status.values().sum::<u64>());
        for (status, n) in &self.by_status {
            let _ = writeln!(out, "status_{status}: {n}");
        }
        for (class, n) in &self.errors_by_class {
            let _ = writeln!(out, "errors_{class}: {n}");
        }
        let _ = writeln!(out, "connections: {}", self.connections);
        // The commit as the app timed it: k6's http_req_duration minus this is HTTP's.
        let _ = writeln!(out, "p50_ms: {:.2}", self.latency.p50_ms);
        let _ = writeln!(out, "p99_ms: {:.2}", self.latency.p99_ms);
        out
    }
}

/// What every request shares.
struct App {
    transactor: Transactor,
    pool: Pool,
    commit_bound: Duration,
    start: Instant,
    stats: std::sync::Mutex<AppStats>,
    in_flight: AtomicI64,
    first_errors: FirstErrors,
    observer: Arc<dyn LoadObserver>,
}

/// The counts: the load writer's, plus the statuses answered.
#[derive(Default)]
struct AppStats {
    db: WorkerStats,
    by_status: BTreeMap<u16, u64>,
}

impl App {
    /// Counts an answered request, and tells the observer about a new kind of error.
    fn count(&self, status: u16, result: &Result<Duration, (Stage, ErrorClass, String)>) {
        match result {
            Ok(_) => self.first_errors.clear(),
            Err((stage, class, detail)) => {
                if self.first_errors.first(*stage, class) {
                    self.observer.error(&ErrorSeen {
                        elapsed: self.start.elapsed(),
                        stage: *stage,
                        class: class.clone(),
                        detail: detail.clone(),
                    });
                }
            }
        }
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.db.attempted += 1;
        *stats.by_status.entry(status).or_default() += 1;
        match result {
            Ok(latency) => stats.db.ack(*latency),
            Err((Stage::Connect, class, _)) => stats.db.connect_error(class.clone()),
            Err((Stage::Transaction, class, _)) => stats.db.error(class.clone()),
        }
    }

    /// Counts a new database connection.
    fn connected(&self) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.db.connections += 1;
    }
}

/// Serves until `stop` completes, then lets in-flight requests finish (within the stop
/// grace and their own bounds) and returns the summary. `ready` is called with the
/// bound address once the port listens.
pub async fn serve(
    config: ServeConfig,
    observer: Arc<dyn LoadObserver>,
    ready: impl FnOnce(SocketAddr),
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<ServeSummary> {
    let mut database = config.database;
    // The app always bounds a commit: an HTTP client must get an answer.
    let commit_bound = *database
        .commit_timeout
        .get_or_insert(Duration::from_secs(5));
    if database.workers == 0 {
        anyhow::bail!("the pool needs at least one connection");
    }
    // Listen first, so a client started right after the app does not find the port
    // closed while the app asks pgbouncer how to send statements.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let transactor = Transactor::resolve(&database, observer.clone()).await?;
    let app = Arc::new(App {
        transactor,
        pool: Pool::new(database.workers, database.connect_timeout),
        commit_bound,
        start: Instant::now(),
        stats: Default::default(),
        in_flight: AtomicI64::new(0),
        first_errors: FirstErrors::default(),
        observer,
    });
    ready(listener.local_addr().unwrap_or(config.listen));

    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, http::router(app.clone())).with_graceful_shutdown(async {
        stop.await;
        let _ = stopping_tx.send(());
    });
    let live = tokio::spawn(live_lines(app.clone()));
    let server = tokio::spawn(async move { server.await });
    // Once stopping, in-flight requests get the grace plus their own bounds, no more.
    let _ = stopping_rx.await;
    let bound = config.stop_grace + app.commit_bound + app.pool.connect_bound();
    let served = tokio::time::timeout(bound, server).await;
    live.abort();
    let elapsed = app.start.elapsed();
    match served {
        Ok(Ok(result)) => result.context("serving HTTP")?,
        Ok(Err(join)) => return Err(anyhow::Error::new(join).context("the HTTP server task")),
        // Requests still open past every bound: their answers are lost, the counts are not.
        Err(_) => {}
    }
    let stats = app.stats.lock().unwrap_or_else(|e| e.into_inner());
    Ok(ServeSummary {
        elapsed_s: elapsed.as_secs_f64(),
        requests: stats.db.attempted,
        acknowledged: stats.db.acknowledged,
        by_status: stats
            .by_status
            .iter()
            .filter(|(status, _)| **status != 201)
            .map(|(s, n)| (*s, *n))
            .collect(),
        errors_by_class: stats.db.errors.iter().chain(&stats.db.connect_errors).fold(
            BTreeMap::new(),
            |mut m, (class, n)| {
                *m.entry(class.token()).or_default() += n;
                m
            },
        ),
        connections: stats.db.connections,
        latency: Latency::of(&stats.db.latency),
    })
}

/// The live line, once a second: requests acknowledged per second, errors, the
/// server-side commit latency of the last second, requests in flight. An idle app (no
/// request answered or in flight during the second) prints nothing.
async fn live_lines(app: Arc<App>) {
    let mut last_counts = (0, 0);
    let mut tick =
        tokio::time::interval_at(app.start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = Instant::now();
    loop {
        tick.tick().await;
        let (acknowledged, errors, window, in_window) = {
            let mut stats = app.stats.lock().unwrap_or_else(|e| e.into_inner());
            let window = stats.db.interval.clone();
            let in_window = stats.db.interval_acknowledged;
            stats.db.interval.reset();
            stats.db.interval_acknowledged = 0;
            let errors = stats.db.error_count() + stats.db.connect_errors.values().sum::<u64>();
            (stats.db.acknowledged, errors, window, in_window)
        };
        let now = Instant::now();
        let secs = now.duration_since(last).as_secs_f64().max(1e-3);
        last = now;
        let in_flight = app.in_flight.load(Ordering::Relaxed);
        if (acknowledged, errors) == last_counts && in_flight == 0 {
            continue;
        }
        last_counts = (acknowledged, errors);
        let latency = Latency::of(&window);
        app.observer.progress(&Progress {
            elapsed_s: app.start.elapsed().as_secs_f64(),
            rate: in_window as f64 / secs,
            acknowledged,
            errors,
            p50_ms: latency.p50_ms,
            p99_ms: latency.p99_ms,
            in_flight,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_every_answer_but_a_201_as_an_error() {
        let summary = ServeSummary {
            elapsed_s: 12.34,
            requests: 10,
            acknowledged: 7,
            by_status: BTreeMap::from([(503, 2), (504, 1)]),
            errors_by_class: BTreeMap::from([
                ("connection_refused".to_string(), 2),
                ("timeout".to_string(), 1),
            ]),
            connections: 3,
            latency: Latency {
                p50_ms: 1.5,
                p99_ms: 9.25,
                ..Latency::default()
            },
        };
        assert_eq!(
            summary.key_values(),
            "served_s: 12.3\nrequests: 10\nacknowledged: 7\nerrors: 3\nstatus_503: 2\n\
             status_504: 1\nerrors_connection_refused: 2\nerrors_timeout: 1\nconnections: 3\n\
             p50_ms: 1.50\np99_ms: 9.25\n"
        );
    }
}
