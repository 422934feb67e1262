//! One worker: a connection running one transaction at a time until the stop.
//!
//! The worker's loop is the writer's promise in code:
//!
//! 1. connect (bounded), or wait out the backoff after a failure;
//! 2. wait for the pacer's slot, when the run has a rate;
//! 3. take the next op id and write it to the ledger as attempted — *before* sending,
//!    so a loss can only be counted against a record made before it;
//! 4. run the transaction within its bounds: the commit timeout, and after the stop
//!    the stop grace; at either the transaction is cancelled with the protocol's
//!    cancel request, and its answer awaited for a bounded time;
//! 5. write the op as acknowledged, or failed with its [`ErrorClass`], and count it;
//! 6. after a failure back off, and drop the connection when it broke.
//!
//! A commit cancelled while it waited for the synchronous standby has already
//! committed locally: PostgreSQL says so with a WARNING, which [`finish`] turns into
//! `syncrep_cancelled`. A cancel at the client's bound that reports no such wait is a
//! `timeout`: the outcome is unknown.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, timeout};
use tokio_postgres::Client;
use tokio_postgres::error::DbError;
use tokio_postgres::types::ToSql;

use super::connection::{self, CANCEL_ANSWER_TIMEOUT, Conn, error_text};
use super::errors::{self, ErrorClass};
use super::pacing::{Rng, next_backoff};
use super::report::Stage;
use super::stats::WorkerStats;
use super::{Shared, lock, sleep_or_stop, sleep_until_opt, stopped};

/// The values of one transaction.
struct Params {
    op: i64,
    inventory: i32,
    customer: i32,
    cents: i32,
}

impl Params {
    /// A rental of one of the 4 500 inventory items by one of the 600 customers, paid
    /// 0.99 to 9.99.
    fn random(op: i64, rng: &mut Rng) -> Params {
        Params {
            op,
            inventory: 1 + rng.below(4500) as i32,
            customer: 1 + rng.below(600) as i32,
            cents: 99 + rng.below(901) as i32,
        }
    }
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

/// One worker: connect, then transactions until the stop, reconnecting as needed.
pub(super) async fn worker(
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
                result = connection::connect(&shared) => result,
                _ = stopped(&mut stop) => break,
            };
            backoff = match attempt {
                Ok(c) => {
                    conn = Some(c);
                    lock(&stats).connections += 1;
                    None
                }
                Err((class, detail)) => {
                    shared.report(Stage::Connect, &class, &detail);
                    lock(&stats).connect_error(class);
                    Some(next_backoff(backoff))
                }
            };
            continue;
        };
        if let Some(pacer) = &shared.pacer
            && sleep_or_stop(&mut stop, pacer.next_due()).await
        {
            break;
        }
        let Some(op) = shared.next_op() else { break };
        let params = Params::random(op, &mut rng);
        let Some(result) = attempt(&shared, c, &params, &stats, &mut stop).await else {
            break;
        };
        backoff = match result.outcome {
            Ok(()) => {
                shared.recovered();
                None
            }
            Err((class, detail)) => {
                shared.report(Stage::Transaction, &class, &detail);
                Some(next_backoff(backoff))
            }
        };
        if result.drop_connection || c.client.is_closed() {
            conn = None;
        }
    }
}

/// One op: ledger `attempt`, the transaction, ledger `ack` or `fail`, the counts.
/// `None` when the ledger could not record the attempt (the run is over).
async fn attempt(
    shared: &Shared,
    conn: &mut Conn,
    params: &Params,
    stats: &Mutex<WorkerStats>,
    stop: &mut watch::Receiver<bool>,
) -> Option<TxResult> {
    let op = params.op;
    if let Some(ledger) = &shared.ledger
        && let Err(err) = ledger.attempt(op, shared.start.elapsed())
    {
        shared.set_fatal(format!("writing the ledger: {err}"));
        return None;
    }
    lock(stats).attempted += 1;
    shared.in_flight.fetch_add(1, Ordering::Relaxed);
    let sent = Instant::now();
    let result = transact(shared, conn, params, stop).await;
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
    let mut s = lock(stats);
    if result.client_cancelled {
        s.client_cancels += 1;
    }
    match &result.outcome {
        Ok(()) => s.ack(latency),
        Err((class, _)) => s.error(class.clone()),
    }
    drop(s);
    Some(result)
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
    let mut values: Vec<&(dyn ToSql + Sync)> = vec![&p.op, &p.inventory, &p.customer, &p.cents];
    if let Some(level) = &shared.config.synchronous_commit {
        values.push(level);
    }
    let exec = connection::execute(shared, client, conn.statement.as_ref(), &values);
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
    connection::cancel(client).await;
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
