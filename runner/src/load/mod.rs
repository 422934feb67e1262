//! The write load: the course's stand-in for k6, built for counting losses.
//!
//! Every chapter that claims "no acknowledged write was lost" or "these N were lost"
//! needs a writer that knows exactly which writes the server acknowledged, keeps
//! writing while the cluster fails under it, and never waits unboundedly. k6 gives
//! rates; it does not keep a ledger. This module does both:
//!
//! - `workers` connections, each running one transaction at a time: one rental and its
//!   payment inserted by a single statement in autocommit (one transaction, one round
//!   trip), tagged with a unique op id (`run_id << 32 | seq`, see [`ledger`]);
//! - the op id is written to the ledger as attempted *before* the statement is sent,
//!   and as acknowledged (or failed, with an [`ErrorClass`]) once the commit returned;
//! - connection loss is survived: errors are counted and classified, and the worker
//!   reconnects with a bounded backoff (100 ms doubling to 1 s);
//! - every wait is bounded: connects by the connect timeout, each transaction by the
//!   optional client-side commit timeout (a commit hung in SyncRep is cancelled with
//!   the protocol's cancel request — `statement_timeout` cannot end that wait — and
//!   PostgreSQL's "already committed locally" WARNING classifies it as
//!   `syncrep_cancelled`), and the in-flight transactions at the end of the run by a
//!   grace period after which they are cancelled the same way;
//! - `synchronous_commit` is set per transaction with `set_config(..., true)` inside
//!   the insert statement itself (it is read at commit time), so it holds through
//!   pgbouncer's transaction pooling, where a session `SET` lands on whichever server
//!   connection is next and `options=-c ...` is dropped (`ignore_startup_parameters`);
//! - statements are prepared once per connection (what `pgbench -M prepared` does).
//!   Through a pgbouncer in transaction mode that is only correct when pgbouncer
//!   tracks prepared statements (`max_prepared_statements > 0`; the lab's pgbouncer
//!   1.24 has its default, 200); otherwise a named statement may run on a server
//!   connection where it does not exist — or where another client's statement has the
//!   same name. So in the default `auto` mode the writer asks pgbouncer's admin
//!   console (`SHOW CONFIG`), and uses unnamed statements (parse + bind + execute in
//!   one round trip) when pgbouncer does not track them. Should a pooler still answer
//!   "prepared statement does not exist", the writer switches to unnamed statements
//!   and resends the same op (its bind failed, so nothing ran).
//!
//! A live line per second goes to stderr; the [`LoadSummary`] is both a k6-like text
//! and `key: value` lines (or JSON) for the book engine.

/// Writes one line to stderr in a single `write(2)`, so concurrent lines from the
/// workers and the live line never interleave mid-line.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().write_all(line.as_bytes());
    }};
}

pub mod errors;
pub mod ledger;
pub mod stats;

use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_postgres::error::{DbError, SqlState};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, SimpleQueryMessage, Statement};

pub use errors::ErrorClass;
pub use ledger::{Header, Ledger, LedgerWriter, Outcome};
pub use stats::{Latency, LoadSummary, WorkerStats};

/// The `synchronous_commit` levels PostgreSQL accepts.
pub const SYNCHRONOUS_COMMIT_LEVELS: &[&str] =
    &["off", "local", "remote_write", "on", "remote_apply"];

/// The transaction: one rental and its payment, one statement, one round trip.
const INSERT: &str = "WITH r AS (INSERT INTO rental (op_id, inventory_id, customer_id) \
     VALUES ($1, $2, $3) RETURNING rental_id, customer_id) \
     INSERT INTO payment (rental_id, customer_id, amount) \
     SELECT rental_id, customer_id, $4::int4 * 0.01 FROM r";

/// The same with `synchronous_commit` set for this transaction only (`SET LOCAL`
/// semantics): the level is read when the transaction commits, after the statement.
const INSERT_WITH_SYNCHRONOUS_COMMIT: &str = "WITH r AS (INSERT INTO rental (op_id, inventory_id, customer_id) \
     VALUES ($1, $2, $3) RETURNING rental_id, customer_id) \
     INSERT INTO payment (rental_id, customer_id, amount) \
     SELECT rental_id, customer_id, $4::int4 * 0.01 FROM r \
     WHERE set_config('synchronous_commit', $5, true) IS NOT NULL";

/// How long a cancel request may take to be delivered.
const CANCEL_SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for the server's answer to a cancelled transaction before giving
/// the connection up.
const CANCEL_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Backoff after a failed connect or a failed transaction: 100 ms doubling to 1 s.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// A rate-limited writer that fell this far behind (an outage) restarts its schedule
/// from now instead of bursting the backlog.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(1);

/// How statements are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatementMode {
    /// Prepared, unless the target is a pgbouncer that does not track prepared
    /// statements (asked on its admin console).
    #[default]
    Auto,
    /// Prepared once per connection; executed with bind + execute.
    Prepared,
    /// Unnamed statements: parse + bind + execute in one round trip, every time.
    Unnamed,
}

impl FromStr for StatementMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(StatementMode::Auto),
            "prepared" => Ok(StatementMode::Prepared),
            "unnamed" => Ok(StatementMode::Unnamed),
            _ => Err(format!("{s:?}: expected auto, prepared or unnamed")),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// libpq-style connection string of the target.
    pub conninfo: String,
    /// A name for the target (a service name), for the ledger and the summary.
    pub target: String,
    /// Concurrent connections, each running one transaction at a time.
    pub workers: usize,
    /// Total transactions per second over all workers; `None` for as fast as possible.
    pub rate: Option<f64>,
    /// How long to run; `None` until the stop future completes.
    pub duration: Option<Duration>,
    /// Where to write the ledger (created or truncated).
    pub ledger: Option<PathBuf>,
    /// `synchronous_commit` for every transaction (one of
    /// [`SYNCHRONOUS_COMMIT_LEVELS`]); `None` keeps the server's.
    pub synchronous_commit: Option<String>,
    /// The client-side bound of one transaction; at it the transaction is cancelled.
    pub commit_timeout: Option<Duration>,
    /// The bound of one connection attempt.
    pub connect_timeout: Duration,
    /// How long in-flight transactions may finish after the stop before they are
    /// cancelled.
    pub stop_grace: Duration,
    /// How statements are sent.
    pub statements: StatementMode,
    /// Print a live line per second on stderr, and each kind of error the first time
    /// it shows up (again after a success).
    pub progress: bool,
    /// The run id to use (random when `None`; tests may fix it).
    pub run_id: Option<u32>,
}

impl LoadConfig {
    /// A configuration with the defaults of `runner load`: 4 workers, unlimited rate,
    /// no duration, no ledger, 5 s connect timeout, 1 s stop grace, live line on.
    pub fn new(conninfo: impl Into<String>, target: impl Into<String>) -> LoadConfig {
        LoadConfig {
            conninfo: conninfo.into(),
            target: target.into(),
            workers: 4,
            rate: None,
            duration: None,
            ledger: None,
            synchronous_commit: None,
            commit_timeout: None,
            connect_timeout: Duration::from_secs(5),
            stop_grace: Duration::from_secs(1),
            statements: StatementMode::Auto,
            progress: true,
            run_id: None,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.workers == 0 {
            bail!("--workers must be at least 1");
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            bail!("--rate must be a positive number of transactions per second");
        }
        if let Some(level) = &self.synchronous_commit
            && !SYNCHRONOUS_COMMIT_LEVELS.contains(&level.as_str())
        {
            bail!(
                "synchronous_commit {level:?} is not one of {}",
                SYNCHRONOUS_COMMIT_LEVELS.join(", ")
            );
        }
        if self.run_id.is_some_and(|id| id == 0 || id >= 1 << 31) {
            bail!("run id must be in 1..2^31");
        }
        Ok(())
    }
}

/// Durations are written as in lab blocks: `500ms`, `10s`, `2m`, `1m30s`, bare seconds.
pub use crate::lab::parse_duration;

/// Parses a rate: a positive number of tx/s, or `unlimited` (also `0`).
pub fn parse_rate(text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    if text == "unlimited" || text == "max" {
        return Ok(None);
    }
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a rate (a number of tx/s, or unlimited)"))?;
    if !rate.is_finite() || rate < 0.0 {
        return Err(format!(
            "{text:?} is not a rate (a number of tx/s, or unlimited)"
        ));
    }
    Ok((rate > 0.0).then_some(rate))
}

/// Runs the load until `config.duration` elapses, `stop` completes, or the ledger
/// cannot be written (an error: the run's record would be incomplete).
///
/// Non-fatal errors — refused connections, broken connections, read-only standbys,
/// SyncRep cancels, timeouts — are counted and the run goes on.
pub async fn run(config: LoadConfig, stop: impl Future<Output = ()>) -> Result<LoadSummary> {
    config.validate()?;
    let mut pg = Config::from_str(&config.conninfo).context("parsing the connection string")?;
    if pg
        .get_application_name()
        .is_none_or(|name| name == "runner")
    {
        pg.application_name("runner-load");
    }
    pg.connect_timeout(config.connect_timeout)
        // A dead peer is noticed in seconds, not hours; a live server waiting in SyncRep
        // still answers keepalives, so a real SyncRep wait is not cut by this.
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(1))
        .keepalives_retries(3);

    let statements = resolve_statements(&config, &pg).await;
    let run_id = config.run_id.unwrap_or_else(ledger::random_run_id);
    let started_at = Utc::now();
    let start = Instant::now();

    let ledger_writer = match &config.ledger {
        Some(path) => {
            let mut extra = std::collections::BTreeMap::new();
            extra.insert("workers".to_string(), config.workers.to_string());
            extra.insert(
                "rate".to_string(),
                config.rate.map_or("unlimited".into(), |r| r.to_string()),
            );
            extra.insert(
                "synchronous_commit".to_string(),
                config
                    .synchronous_commit
                    .clone()
                    .unwrap_or_else(|| "default".into()),
            );
            let header = Header {
                run_id,
                target: config.target.clone(),
                start: started_at,
                extra,
            };
            Some(LedgerWriter::create(path, &header)?)
        }
        None => None,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        pg,
        start,
        base: ledger::op_base(run_id),
        seq: AtomicU64::new(0),
        ledger: ledger_writer,
        pacer: config.rate.map(|rate| Pacer {
            start,
            rate,
            next: AtomicU64::new(0),
        }),
        in_flight: AtomicI64::new(0),
        unnamed: AtomicBool::new(statements == StatementMode::Unnamed),
        fatal: Mutex::new(None),
        fatal_notify: Notify::new(),
        reported: Mutex::new(std::collections::BTreeSet::new()),
        any_reported: AtomicBool::new(false),
        config: config.clone(),
    });

    let stats: Vec<Arc<Mutex<WorkerStats>>> = (0..config.workers)
        .map(|_| Arc::new(Mutex::new(WorkerStats::default())))
        .collect();
    let mut workers: Vec<JoinHandle<()>> = stats
        .iter()
        .enumerate()
        .map(|(index, s)| tokio::spawn(worker(shared.clone(), index, s.clone(), stop_rx.clone())))
        .collect();
    let reporter = config
        .progress
        .then(|| tokio::spawn(reporter(shared.clone(), stats.clone(), stop_rx.clone())));

    let deadline = config.duration.map(|d| start + d);
    tokio::select! {
        _ = stop => {}
        _ = sleep_until_opt(deadline) => {}
        _ = shared.fatal_notify.notified() => {}
    }
    let stopped_at = start.elapsed();
    let _ = stop_tx.send(true);

    // Workers stop between transactions at once; one in a transaction gets the grace,
    // then a cancel and a bounded wait for its answer. A worker in a connect attempt
    // stops at once too. Nothing should outlast this bound; abort whatever does.
    let bound =
        config.stop_grace + CANCEL_SEND_TIMEOUT + CANCEL_ANSWER_TIMEOUT + Duration::from_secs(1);
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
            say!("load: a worker did not stop within {bound:?}; aborted it");
        }
    }
    if let Some(reporter) = reporter {
        reporter.abort();
        // Wait for it to be gone, so no live line lands in the middle of the summary.
        let _ = reporter.await;
    }
    if let Some(ledger) = &shared.ledger
        && let Err(err) = ledger.end(start.elapsed())
    {
        shared.set_fatal(format!("writing the ledger's end line: {err}"));
    }

    let mut totals = WorkerStats::default();
    for s in &stats {
        totals.merge(&lock(s));
    }
    let statements = if shared.unnamed.load(Ordering::Relaxed) {
        "unnamed"
    } else {
        "prepared"
    };
    let summary = LoadSummary::new(
        run_id,
        config.target.clone(),
        config.workers,
        config.rate,
        config.synchronous_commit.clone(),
        statements.into(),
        config.ledger.as_ref().map(|p| p.display().to_string()),
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

/// What the workers share.
struct Shared {
    config: LoadConfig,
    pg: Config,
    start: Instant,
    base: i64,
    seq: AtomicU64,
    ledger: Option<LedgerWriter>,
    pacer: Option<Pacer>,
    in_flight: AtomicI64,
    /// Set once the writer uses unnamed statements (chosen, or fallen back to).
    unnamed: AtomicBool,
    fatal: Mutex<Option<String>>,
    fatal_notify: Notify,
    /// Error classes already described on stderr (cleared by a success).
    reported: Mutex<std::collections::BTreeSet<String>>,
    /// Whether `reported` may be non-empty.
    any_reported: AtomicBool,
}

impl Shared {
    fn set_fatal(&self, message: String) {
        if let Ok(mut fatal) = self.fatal.lock()
            && fatal.is_none()
        {
            *fatal = Some(message);
        }
        self.fatal_notify.notify_one();
    }

    /// Describes an error on stderr the first time its class shows up (again after a
    /// success), so a reader sees each kind of trouble once, not thousands of times.
    fn report(&self, what: &str, class: &ErrorClass, detail: &str) {
        if !self.config.progress {
            return;
        }
        let key = format!("{what} {class}");
        let first = self
            .reported
            .lock()
            .map(|mut r| r.insert(key))
            .unwrap_or(false);
        self.any_reported.store(true, Ordering::Relaxed);
        if first {
            say!(
                "load: [{:>6.1}s] {what} {class}: {detail}",
                self.start.elapsed().as_secs_f64()
            );
        }
    }

    fn recovered(&self) {
        // Checked without the lock first: this runs after every acknowledged commit.
        if self.any_reported.swap(false, Ordering::Relaxed)
            && let Ok(mut reported) = self.reported.lock()
        {
            reported.clear();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked while holding its stats would poison them; the counts are
    // still the best record there is.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The rate limiter: slot `k` of the whole run is due at `start + k / rate`.
struct Pacer {
    start: Instant,
    rate: f64,
    next: AtomicU64,
}

impl Pacer {
    fn next_due(&self) -> Instant {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let due = self.start + Duration::from_secs_f64(k as f64 / self.rate);
        let now = Instant::now();
        if now > due + CATCH_UP_LIMIT {
            let now_slot = (now.duration_since(self.start).as_secs_f64() * self.rate) as u64;
            self.next.fetch_max(now_slot + 1, Ordering::Relaxed);
            return now;
        }
        due
    }
}

/// A small xorshift generator for the rows' random columns.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One connection with its notice channel.
struct Conn {
    client: Client,
    notices: mpsc::UnboundedReceiver<DbError>,
    statement: Option<Statement>,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Connects, drives the connection in a task that forwards notices (the SyncRep
/// cancel WARNING arrives as one), and prepares the statement when asked to.
async fn connect(shared: &Shared) -> Result<Conn, (ErrorClass, String)> {
    let attempt = async {
        let (client, mut connection) = shared.pg.connect(NoTls).await?;
        let (tx, notices) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notice(notice))) => {
                        let _ = tx.send(notice);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
        });
        let mut conn = Conn {
            client,
            notices,
            statement: None,
            driver,
        };
        if !shared.unnamed.load(Ordering::Relaxed) {
            match conn
                .client
                .prepare_typed(sql(shared), &param_types(shared))
                .await
            {
                Ok(statement) => conn.statement = Some(statement),
                Err(err) if lacks_prepared_support(&err) => shared.fall_back_to_unnamed(&err),
                Err(err) => return Err(err),
            }
        }
        Ok::<Conn, tokio_postgres::Error>(conn)
    };
    match timeout(
        shared.config.connect_timeout + Duration::from_secs(1),
        attempt,
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err((errors::classify(&err), error_text(&err))),
        Err(_) => Err((
            ErrorClass::ConnectTimeout,
            format!("no connection within {:?}", shared.config.connect_timeout),
        )),
    }
}

impl Shared {
    fn fall_back_to_unnamed(&self, err: &tokio_postgres::Error) {
        if !self.unnamed.swap(true, Ordering::Relaxed) && self.config.progress {
            say!(
                "load: prepared statements do not survive this pooler ({}); using unnamed \
                 statements (set max_prepared_statements in pgbouncer)",
                error_text(err)
            );
        }
    }
}

fn sql(shared: &Shared) -> &'static str {
    if shared.config.synchronous_commit.is_some() {
        INSERT_WITH_SYNCHRONOUS_COMMIT
    } else {
        INSERT
    }
}

fn param_types(shared: &Shared) -> Vec<Type> {
    let mut types = vec![Type::INT8, Type::INT4, Type::INT4, Type::INT4];
    if shared.config.synchronous_commit.is_some() {
        types.push(Type::TEXT);
    }
    types
}

/// Errors a pooler without prepared-statement tracking produces: the statement is not
/// on this server connection, or another client's statement of that name is.
fn lacks_prepared_support(err: &tokio_postgres::Error) -> bool {
    err.code().is_some_and(|code| {
        *code == SqlState::INVALID_SQL_STATEMENT_NAME || *code == SqlState::DUPLICATE_PSTATEMENT
    })
}

/// The error's text with its cause chain (`error connecting to server: Connection
/// refused (os error 111)`).
fn error_text(err: &tokio_postgres::Error) -> String {
    let mut text = err.to_string();
    if let Some(db) = err.as_db_error() {
        text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    } else if let Some(source) = std::error::Error::source(err) {
        let cause = source.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

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

/// Sleeps `delay` unless the run stops first; true when it stopped.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, until: Instant) -> bool {
    tokio::select! {
        _ = sleep_until(until) => *stop.borrow(),
        _ = stopped(stop) => true,
    }
}

/// One worker: connect, then transactions until the stop, reconnecting as needed.
async fn worker(
    shared: Arc<Shared>,
    index: usize,
    stats: Arc<Mutex<WorkerStats>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = Rng::new(shared.base as u64 ^ (index as u64 + 1).wrapping_mul(0x2545_F491));
    let mut conn: Option<Conn> = None;
    let mut backoff: Option<Duration> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        if let Some(delay) = backoff
            && sleep_or_stop(&mut stop, Instant::now() + delay).await
        {
            break;
        }
        let Some(c) = conn.as_mut() else {
            let attempt = tokio::select! {
                result = connect(&shared) => result,
                _ = stopped(&mut stop) => break,
            };
            match attempt {
                Ok(c) => {
                    conn = Some(c);
                    backoff = None;
                    lock(&stats).connections += 1;
                }
                Err((class, detail)) => {
                    shared.report("connect", &class, &detail);
                    lock(&stats).connect_error(class);
                    backoff = Some(next_backoff(backoff));
                }
            }
            continue;
        };
        if let Some(pacer) = &shared.pacer
            && sleep_or_stop(&mut stop, pacer.next_due()).await
        {
            break;
        }
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if seq > u64::from(u32::MAX) {
            shared.set_fatal("the run used all 2^32 op ids of its range".into());
            break;
        }
        let op = shared.base | seq as i64;
        let params = Params {
            op,
            inventory: 1 + rng.below(4500) as i32,
            customer: 1 + rng.below(600) as i32,
            cents: 99 + rng.below(901) as i32,
        };
        if let Some(ledger) = &shared.ledger
            && let Err(err) = ledger.attempt(op, shared.start.elapsed())
        {
            shared.set_fatal(format!("writing the ledger: {err}"));
            break;
        }
        lock(&stats).attempted += 1;
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let result = transact(&shared, c, &params, &mut stop).await;
        let latency = sent.elapsed();
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        let now = shared.start.elapsed();
        let written = match &result.outcome {
            Ok(()) => shared.ledger.as_ref().map(|l| l.ack(op, now)),
            Err((class, _)) => shared.ledger.as_ref().map(|l| l.fail(op, now, class)),
        };
        if let Some(Err(err)) = written {
            shared.set_fatal(format!("writing the ledger: {err}"));
        }
        {
            let mut s = lock(&stats);
            if result.client_cancelled {
                s.client_cancels += 1;
            }
            match &result.outcome {
                Ok(()) => s.ack(latency),
                Err((class, _)) => s.error(class.clone()),
            }
        }
        match result.outcome {
            Ok(()) => {
                backoff = None;
                shared.recovered();
            }
            Err((class, detail)) => {
                shared.report("transaction", &class, &detail);
                backoff = Some(next_backoff(backoff));
            }
        }
        if result.drop_connection || c.client.is_closed() {
            conn = None;
        }
    }
}

fn next_backoff(current: Option<Duration>) -> Duration {
    current.map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX))
}

/// The values of one transaction.
struct Params {
    op: i64,
    inventory: i32,
    customer: i32,
    cents: i32,
}

/// How one transaction ended.
struct TxResult {
    outcome: Result<(), (ErrorClass, String)>,
    client_cancelled: bool,
    drop_connection: bool,
}

/// Why the client cancelled a transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cancel {
    /// The commit timeout was reached.
    Bound,
    /// The run stopped and the grace period ran out.
    Stop,
}

/// Runs one transaction within its bounds.
async fn transact(
    shared: &Shared,
    conn: &mut Conn,
    p: &Params,
    stop: &mut watch::Receiver<bool>,
) -> TxResult {
    // Notices left from before this transaction are not about it.
    while conn.notices.try_recv().is_ok() {}
    let deadline = shared.config.commit_timeout.map(|d| Instant::now() + d);
    let grace = shared.config.stop_grace;
    let client = &conn.client;
    let statement = conn.statement.clone();
    let level = shared.config.synchronous_commit.clone();
    let exec = async {
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![&p.op, &p.inventory, &p.customer, &p.cents];
        if let Some(level) = &level {
            values.push(level);
        }
        if let Some(statement) = &statement
            && !shared.unnamed.load(Ordering::Relaxed)
        {
            match client.execute(statement, &values).await {
                Err(err) if lacks_prepared_support(&err) => {
                    // The bind failed, so nothing ran: the same op can be sent again.
                    shared.fall_back_to_unnamed(&err);
                }
                other => return other,
            }
        }
        let types = param_types(shared);
        let typed: Vec<(&(dyn ToSql + Sync), Type)> = values.iter().copied().zip(types).collect();
        client.execute_typed(sql(shared), &typed).await
    };
    tokio::pin!(exec);
    let cancel = tokio::select! {
        result = &mut exec => {
            return finish(result, &mut conn.notices, None, client);
        }
        _ = sleep_until_opt(deadline) => Cancel::Bound,
        _ = async { stopped(stop).await; sleep(grace).await } => Cancel::Stop,
    };
    // The client's bound: only a cancel request ends a SyncRep wait (statement_timeout
    // does not), and the server answers a cancelled SyncRep wait with a WARNING and a
    // *successful* commit.
    let token = client.cancel_token();
    let _ = timeout(CANCEL_SEND_TIMEOUT, token.cancel_query(NoTls)).await;
    match timeout(CANCEL_ANSWER_TIMEOUT, &mut exec).await {
        Ok(result) => finish(result, &mut conn.notices, Some(cancel), client),
        Err(_) => TxResult {
            outcome: Err((
                ErrorClass::Timeout,
                format!(
                    "no answer {:?} after cancelling at the {}; connection dropped",
                    CANCEL_ANSWER_TIMEOUT,
                    if cancel == Cancel::Bound {
                        "commit timeout"
                    } else {
                        "stop"
                    }
                ),
            )),
            client_cancelled: true,
            drop_connection: true,
        },
    }
}

/// Classifies a transaction's result, with the notices that came with it.
fn finish(
    result: Result<u64, tokio_postgres::Error>,
    notices: &mut mpsc::UnboundedReceiver<DbError>,
    cancelled: Option<Cancel>,
    client: &Client,
) -> TxResult {
    // The connection task forwards a notice before the response that follows it, so
    // a SyncRep WARNING of this commit is already in the channel.
    let mut syncrep = None;
    while let Ok(notice) = notices.try_recv() {
        if errors::is_syncrep_cancel_notice(&notice) {
            syncrep = Some(format!("{}: {}", notice.severity(), notice.message()));
        }
    }
    let outcome = match (result, syncrep) {
        (_, Some(warning)) => Err((ErrorClass::SyncRepCancelled, warning)),
        (Ok(1), None) => Ok(()),
        (Ok(n), None) => Err((
            ErrorClass::Other,
            format!("the insert reported {n} rows, not 1"),
        )),
        (Err(err), None) => {
            let class = match errors::classify(&err) {
                ErrorClass::Sql(code) if code == "57014" && cancelled.is_some() => {
                    ErrorClass::Timeout
                }
                class => class,
            };
            Err((class, error_text(&err)))
        }
    };
    TxResult {
        outcome,
        client_cancelled: cancelled.is_some(),
        drop_connection: client.is_closed(),
    }
}

/// Picks prepared or unnamed statements for `auto`, asking pgbouncer's admin console
/// whether it tracks prepared statements.
async fn resolve_statements(config: &LoadConfig, pg: &Config) -> StatementMode {
    match config.statements {
        StatementMode::Prepared | StatementMode::Unnamed => config.statements,
        StatementMode::Auto => match probe_pgbouncer(pg, config.connect_timeout).await {
            Probe::PgBouncer { max_prepared: 0 } => {
                if config.progress {
                    say!(
                        "load: pgbouncer does not track prepared statements \
                         (max_prepared_statements = 0); using unnamed statements"
                    );
                }
                StatementMode::Unnamed
            }
            Probe::PgBouncer { .. } | Probe::PostgreSql => StatementMode::Prepared,
            // Unreachable now; it may come back. Unnamed statements are correct on
            // anything, so take them when the target is known to be a pooler.
            Probe::Unknown if config.target == "pgbouncer" => StatementMode::Unnamed,
            Probe::Unknown => StatementMode::Prepared,
        },
    }
}

enum Probe {
    PgBouncer { max_prepared: u64 },
    PostgreSql,
    Unknown,
}

async fn probe_pgbouncer(pg: &Config, bound: Duration) -> Probe {
    let mut admin = pg.clone();
    admin.dbname("pgbouncer");
    let attempt = async {
        let (client, connection) = admin.connect(NoTls).await?;
        let driver = tokio::spawn(connection);
        let rows = client.simple_query("SHOW CONFIG").await;
        driver.abort();
        rows
    };
    match timeout(bound + Duration::from_secs(1), attempt).await {
        Ok(Ok(messages)) => {
            let max_prepared = messages.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(row)
                    if row.get("key") == Some("max_prepared_statements") =>
                {
                    row.get("value").and_then(|v| v.parse().ok())
                }
                _ => None,
            });
            match max_prepared {
                Some(max_prepared) => Probe::PgBouncer { max_prepared },
                None => Probe::PostgreSql,
            }
        }
        // PostgreSQL itself: no database "pgbouncer" (or some other server error).
        Ok(Err(err)) if err.as_db_error().is_some() => Probe::PostgreSql,
        _ => Probe::Unknown,
    }
}

/// The live line, once a second on stderr.
async fn reporter(
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
        let mut window = WorkerStats::default();
        let (mut ok, mut errors) = (0, 0);
        for s in &stats {
            let mut s = lock(s);
            ok += s.acknowledged;
            errors += s.error_count();
            let _ = window.interval.add(&s.interval);
            window.interval_acknowledged += s.interval_acknowledged;
            s.interval.reset();
            s.interval_acknowledged = 0;
        }
        let now = Instant::now();
        let secs = now.duration_since(last).as_secs_f64().max(1e-3);
        last = now;
        let latency = Latency::of(&window.interval);
        say!(
            "load: [{:>6.1}s] {:>8.1} tx/s  ok={ok} errors={errors} p50={:.2}ms p99={:.2}ms in-flight={}",
            shared.start.elapsed().as_secs_f64(),
            window.interval_acknowledged as f64 / secs,
            latency.p50_ms,
            latency.p99_ms,
            shared.in_flight.load(Ordering::Relaxed),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "s", "10x", "-1s", "ten", "5 s", "1m30"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("unlimited"), Ok(None));
        assert_eq!(parse_rate("0"), Ok(None));
        assert_eq!(parse_rate("250"), Ok(Some(250.0)));
        assert!(parse_rate("-3").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn config_is_validated() {
        let mut c = LoadConfig::new("host=x", "t");
        assert!(c.validate().is_ok());
        c.synchronous_commit = Some("remote_apply".into());
        assert!(c.validate().is_ok());
        c.synchronous_commit = Some("sometimes".into());
        assert!(c.validate().is_err());
        c.synchronous_commit = None;
        c.workers = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn backoff_doubles_to_a_bound() {
        let mut b = None;
        let mut seen = vec![];
        for _ in 0..6 {
            let d = next_backoff(b);
            seen.push(d.as_millis());
            b = Some(d);
        }
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn pacer_spaces_slots_and_skips_a_backlog() {
        let start = Instant::now();
        let p = Pacer {
            start,
            rate: 100.0,
            next: AtomicU64::new(0),
        };
        assert_eq!(p.next_due(), start);
        assert_eq!(p.next_due(), start + Duration::from_millis(10));
        let p = Pacer {
            start: start - Duration::from_secs(10),
            rate: 100.0,
            next: AtomicU64::new(0),
        };
        let due = p.next_due();
        assert!(due >= start, "a 10 s backlog is not burst");
        assert!(p.next.load(Ordering::Relaxed) >= 1000);
    }

    #[test]
    fn rng_stays_in_range() {
        let mut r = Rng::new(42);
        for _ in 0..10_000 {
            let v = r.below(600);
            assert!(v < 600);
        }
    }
}
