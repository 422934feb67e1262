//! The course's one transaction — a rental and its payment — sent within its bounds.
//!
//! Two front ends send it: `runner load`'s workers (one connection each, a ledger line
//! before and after) and `runner serve`'s requests (a pool of connections behind HTTP).
//! Both need the same things done the same way, so they live here once:
//!
//! - [`Transactor`]: what every connection of a run or an app shares — the connection
//!   settings, prepared or unnamed statements (switching to unnamed when a pooler loses
//!   a prepared one), the connect and commit bounds, the `synchronous_commit` level;
//! - [`Transactor::connect`]: a bounded connect that prepares the statement;
//! - [`Transactor::transact`]: one transaction, cancelled with the protocol's cancel
//!   request at the commit bound or when the caller's `give_up` future completes, and
//!   classified — a commit whose SyncRep wait was cancelled has committed locally and
//!   says so with a WARNING, which makes it `syncrep_cancelled`, not a success.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_postgres::error::DbError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config};

use super::config::LoadConfig;
use tokio_postgres::error::SqlState;

use super::connection::{self, CANCEL_ANSWER_TIMEOUT, Conn, Statements, error_text};
use super::errors::{self, ErrorClass};
use super::pacing::Rng;
use super::report::{LoadObserver, Notice};
use super::{StatementMode, sleep_until_opt};

/// The values of one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rental {
    /// The op id, stored in `rental.op_id`: what a ledger counts.
    pub op: i64,
    /// The rented inventory item (1..=4500).
    pub inventory: i32,
    /// The customer (1..=600).
    pub customer: i32,
    /// The payment, in cents (99..=999).
    pub cents: i32,
}

impl Rental {
    /// A rental of one of the 4 500 inventory items by one of the 600 customers, paid
    /// 0.99 to 9.99.
    pub(crate) fn random(op: i64, rng: &mut Rng) -> Rental {
        Rental {
            op,
            inventory: 1 + rng.below(4500) as i32,
            customer: 1 + rng.below(600) as i32,
            cents: 99 + rng.below(901) as i32,
        }
    }
}

/// How one transaction ended.
pub(crate) struct TxResult {
    /// Acknowledged, or failed with its class and the error's text.
    pub(crate) outcome: Result<(), (ErrorClass, String)>,
    /// Whether the client sent a cancel request.
    pub(crate) client_cancelled: bool,
    /// Whether the connection is unusable now.
    pub(crate) drop_connection: bool,
}

/// Why the client cancelled a transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cancel {
    /// The commit timeout was reached.
    Bound,
    /// The caller gave up (the run stopped and its grace ran out).
    GaveUp,
}

/// What every connection of a run (or of the app tier) shares.
pub(crate) struct Transactor {
    pub(super) pg: Config,
    pub(super) statements: Statements,
    pub(super) connect_timeout: std::time::Duration,
    commit_timeout: Option<std::time::Duration>,
    synchronous_commit: Option<String>,
    observer: Arc<dyn LoadObserver>,
}

impl Transactor {
    /// The transactor of `config`, sending statements as `mode` says (already resolved
    /// from `auto`), telling `observer` when it falls back to unnamed statements.
    pub(crate) fn new(
        config: &LoadConfig,
        pg: Config,
        mode: StatementMode,
        observer: Arc<dyn LoadObserver>,
    ) -> Transactor {
        Transactor {
            pg,
            statements: Statements::new(config, mode),
            connect_timeout: config.connect_timeout,
            commit_timeout: config.commit_timeout,
            synchronous_commit: config.synchronous_commit.clone(),
            observer,
        }
    }

    /// Resolves `config`'s statement mode (asking pgbouncer in `auto`) and builds the
    /// transactor.
    pub(crate) async fn resolve(
        config: &LoadConfig,
        observer: Arc<dyn LoadObserver>,
    ) -> anyhow::Result<Transactor> {
        let pg = connection::pg_config(config)?;
        let mode = connection::resolve_statements(config, &pg, &*observer).await;
        Ok(Transactor::new(config, pg, mode, observer))
    }

    /// `prepared` or `unnamed`: how statements are sent now.
    pub(crate) fn statement_mode(&self) -> &'static str {
        self.statements.mode_name()
    }

    /// Connects within the connect timeout and prepares the statement.
    pub(crate) async fn connect(&self) -> Result<Conn, (ErrorClass, String)> {
        let fall_back = |err: &tokio_postgres::Error| self.fall_back_to_unnamed(err);
        connection::connect(&self.pg, &self.statements, self.connect_timeout, &fall_back).await
    }

    /// Switches to unnamed statements after a pooler lost a prepared one.
    pub(super) fn fall_back_to_unnamed(&self, err: &tokio_postgres::Error) {
        if self.statements.fall_back() {
            let error = error_text(err);
            self.observer.notice(&Notice::FellBackToUnnamed(error));
        }
    }

    /// Runs one transaction within its bounds: the commit timeout, and `give_up` (the
    /// caller's own limit). At either the transaction is cancelled with the protocol's
    /// cancel request, and its answer awaited for a bounded time.
    pub(crate) async fn transact(
        &self,
        conn: &mut Conn,
        p: &Rental,
        give_up: impl Future<Output = ()>,
    ) -> TxResult {
        // Notices left from before this transaction are not about it.
        let statement = conn.statement.as_ref();
        let (client, notices) = conn.session.split();
        while notices.try_recv().is_ok() {}
        let deadline = self.commit_timeout.map(|d| Instant::now() + d);
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![&p.op, &p.inventory, &p.customer, &p.cents];
        if let Some(level) = &self.synchronous_commit {
            values.push(level);
        }
        let fall_back = |err: &tokio_postgres::Error| self.fall_back_to_unnamed(err);
        let exec = connection::execute(&self.statements, client, statement, &values, &fall_back);
        tokio::pin!(exec);
        let cancel = tokio::select! {
            result = &mut exec => {
                return finish(result, notices, None, client);
            }
            _ = sleep_until_opt(deadline) => Cancel::Bound,
            _ = give_up => Cancel::GaveUp,
        };
        // The client's bound: only a cancel request ends a SyncRep wait
        // (statement_timeout does not), and the server answers a cancelled SyncRep wait
        // with a WARNING and a *successful* commit.
        connection::cancel(client).await;
        match timeout(CANCEL_ANSWER_TIMEOUT, &mut exec).await {
            Ok(result) => finish(result, notices, Some(cancel), client),
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
                ErrorClass::Sql(code)
                    if code == SqlState::QUERY_CANCELED && cancelled.is_some() =>
                {
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
