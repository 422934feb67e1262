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
//! Step 4 is [`Transactor::transact`](super::transaction::Transactor::transact), shared
//! with the app tier: a commit cancelled while it waited for the synchronous standby
//! has already committed locally, and is counted `syncrep_cancelled`; a cancel at the
//! client's bound that reports no such wait is a `timeout`: the outcome is unknown.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::connection::Conn;
use super::pacing::{Rng, next_backoff};
use super::report::Stage;
use super::stats::WorkerStats;
use super::transaction::{Rental, TxResult};
use super::{Shared, lock, sleep_or_stop, stopped};

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
                result = shared.transactor.connect() => result,
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
        let params = Rental::random(op, &mut rng);
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
        if result.drop_connection || c.is_closed() {
            conn = None;
        }
    }
}

/// One op: ledger `attempt`, the transaction, ledger `ack` or `fail`, the counts.
/// `None` when the ledger could not record the attempt (the run is over).
async fn attempt(
    shared: &Shared,
    conn: &mut Conn,
    params: &Rental,
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
    let grace = shared.config.stop_grace;
    let give_up = async {
        stopped(stop).await;
        sleep(grace).await;
    };
    let result = shared.transactor.transact(conn, params, give_up).await;
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
