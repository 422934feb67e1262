//! One worker's connection to the target: connecting, sending the statement, and
//! cancelling it.
//!
//! - Every connection is bounded (the connect timeout) and keeps TCP keepalives short,
//!   so a dead peer is noticed in seconds; a live server waiting in SyncRep still
//!   answers keepalives, so a real SyncRep wait is not cut by them.
//! - A task drives each connection and forwards its notices: PostgreSQL's "canceling
//!   wait for synchronous replication" WARNING arrives as one, just before the commit's
//!   answer, and is what classifies a cancelled commit as `syncrep_cancelled`.
//! - Statements are prepared once per connection (what `pgbench -M prepared` does).
//!   Through a pgbouncer in transaction mode that is only correct when pgbouncer tracks
//!   prepared statements (`max_prepared_statements > 0`; the lab's pgbouncer 1.24 has
//!   its default, 200); otherwise a named statement may run on a server connection
//!   where it does not exist — or where another client's statement has the same name.
//!   So `auto` asks pgbouncer's admin console (`SHOW CONFIG`) first, and uses unnamed
//!   statements (parse + bind + execute in one round trip) when it does not track
//!   them. Should a pooler still answer "prepared statement does not exist", the run
//!   switches to unnamed statements and resends the same op (its bind failed, so
//!   nothing ran).
//! - A cancel is the protocol's cancel request on its own connection:
//!   `statement_timeout` cannot end a commit's SyncRep wait, a cancel request can.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::timeout;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::config::{LoadConfig, StatementMode};
use super::errors::{self, ErrorClass};
use super::report::{LoadObserver, Notice};
use lab_cluster::session::{Bounds, Session, SessionError, describe};

/// How long a cancel request may take to be delivered.
pub(super) const CANCEL_SEND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for the server's answer to a cancelled transaction before giving
/// the connection up.
pub(super) const CANCEL_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// The connection settings of every worker: the conninfo, with the writer's
/// application name (unless one was given), the connect timeout and short keepalives.
pub(super) fn pg_config(config: &LoadConfig) -> Result<Config> {
    let mut pg = Config::from_str(&config.conninfo).context("parsing the connection string")?;
    if pg
        .get_application_name()
        .is_none_or(|name| name == "runner")
    {
        pg.application_name("runner-load");
    }
    pg.connect_timeout(config.connect_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(1))
        .keepalives_retries(3);
    Ok(pg)
}

/// The run's statement: its text, its parameter types, and whether it is sent unnamed
/// (chosen, or fallen back to; never back to prepared).
pub(super) struct Statements {
    sql: &'static str,
    types: Vec<Type>,
    unnamed: AtomicBool,
}

impl Statements {
    pub(super) fn new(config: &LoadConfig, mode: StatementMode) -> Statements {
        Statements {
            sql: config.sql(),
            types: config.param_types(),
            unnamed: AtomicBool::new(mode == StatementMode::Unnamed),
        }
    }

    pub(super) fn unnamed(&self) -> bool {
        self.unnamed.load(Ordering::Relaxed)
    }

    /// Switches to unnamed statements; true for the call that switched.
    pub(super) fn fall_back(&self) -> bool {
        !self.unnamed.swap(true, Ordering::Relaxed)
    }

    /// `prepared` or `unnamed`, for the summary.
    pub(super) fn mode_name(&self) -> &'static str {
        if self.unnamed() {
            "unnamed"
        } else {
            "prepared"
        }
    }
}

/// One worker's session (its notices forwarded) and its prepared statement.
pub(crate) struct Conn {
    pub(super) session: Session,
    pub(super) statement: Option<Statement>,
}

impl Conn {
    /// Whether the connection is gone (the server or the network closed it).
    pub(crate) fn is_closed(&self) -> bool {
        self.session.is_closed()
    }
}

/// What a pooler's loss of a prepared statement calls: the run falls back to unnamed
/// statements (and says so once).
pub(super) type FallBack<'a> = &'a (dyn Fn(&tokio_postgres::Error) + Sync);

/// Connects to `pg` within `bound`, drives the connection in a task that forwards
/// notices, and prepares the statement unless the run sends it unnamed.
pub(super) async fn connect(
    pg: &Config,
    statements: &Statements,
    bound: Duration,
    fall_back: FallBack<'_>,
) -> Result<Conn, (ErrorClass, String)> {
    // The connect and the prepare, each within `bound` (the writer's statements are
    // bounded by the run, not by the session).
    let bounds = Bounds {
        connect: bound,
        query: bound,
    };
    let application_name = pg.get_application_name().unwrap_or("runner-load");
    let session = Session::open("the target", pg, application_name, bounds)
        .await
        .map_err(|err| match &err {
            SessionError::ConnectTimeout { bound, .. } => (
                ErrorClass::ConnectTimeout,
                format!("no connection within {bound:?}"),
            ),
            _ => match err.driver_error() {
                Some(driver) => (errors::classify(driver), describe(driver)),
                None => (ErrorClass::Other, err.to_string()),
            },
        })?;
    let mut conn = Conn {
        session,
        statement: None,
    };
    if !statements.unnamed() {
        let prepare = conn
            .session
            .prepare_typed(statements.sql, &statements.types);
        match timeout(bound, prepare).await {
            Ok(Ok(statement)) => conn.statement = Some(statement),
            Ok(Err(err)) if lacks_prepared_support(&err) => fall_back(&err),
            Ok(Err(err)) => return Err((errors::classify(&err), describe(&err))),
            Err(_) => {
                return Err((
                    ErrorClass::ConnectTimeout,
                    format!("no statement prepared within {bound:?}"),
                ));
            }
        }
    }
    Ok(conn)
}

/// Sends the statement with `values`: bind + execute of the prepared one, or, once the
/// run sends unnamed statements, parse + bind + execute in one round trip.
pub(super) async fn execute(
    statements: &Statements,
    client: &Client,
    statement: Option<&Statement>,
    values: &[&(dyn ToSql + Sync)],
    fall_back: FallBack<'_>,
) -> Result<u64, tokio_postgres::Error> {
    if let Some(statement) = statement
        && !statements.unnamed()
    {
        match client.execute(statement, values).await {
            Err(err) if lacks_prepared_support(&err) => {
                // The bind failed, so nothing ran: the same op can be sent again.
                fall_back(&err);
            }
            other => return other,
        }
    }
    let typed: Vec<(&(dyn ToSql + Sync), Type)> = values
        .iter()
        .copied()
        .zip(statements.types.iter().cloned())
        .collect();
    client.execute_typed(statements.sql, &typed).await
}

/// Sends the protocol's cancel request for what `client` is running, within its bound.
pub(super) async fn cancel(client: &Client) {
    let token = client.cancel_token();
    let _ = timeout(CANCEL_SEND_TIMEOUT, token.cancel_query(NoTls)).await;
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
pub(super) fn error_text(err: &tokio_postgres::Error) -> String {
    describe(err)
}

/// Picks prepared or unnamed statements for `auto`, asking pgbouncer's admin console
/// whether it tracks prepared statements.
pub(super) async fn resolve_statements(
    config: &LoadConfig,
    pg: &Config,
    observer: &dyn LoadObserver,
) -> StatementMode {
    match config.statements {
        StatementMode::Prepared | StatementMode::Unnamed => config.statements,
        StatementMode::Auto => match probe_pgbouncer(pg, config.connect_timeout).await {
            Probe::PgBouncer { max_prepared: 0 } => {
                observer.notice(&Notice::PoolerWithoutPreparedStatements);
                StatementMode::Unnamed
            }
            Probe::PgBouncer { .. } | Probe::PostgreSql => StatementMode::Prepared,
            // Unreachable now; it may come back. Unnamed statements are correct on
            // anything, so take them when the target is known to be a pooler.
            Probe::Unknown if config.target == lab_core::topology::Service::Pgbouncer.name() => {
                StatementMode::Unnamed
            }
            Probe::Unknown => StatementMode::Prepared,
        },
    }
}

/// What answered on the target's port.
enum Probe {
    PgBouncer { max_prepared: u64 },
    PostgreSql,
    Unknown,
}

async fn probe_pgbouncer(pg: &Config, bound: Duration) -> Probe {
    let mut admin = pg.clone();
    admin.dbname("pgbouncer");
    let bounds = Bounds {
        connect: bound,
        query: bound,
    };
    let attempt = async {
        let session =
            Session::open("pgbouncer's admin console", &admin, "runner-load", bounds).await?;
        session.simple("SHOW CONFIG").await
    };
    let attempt: Result<_, SessionError> = attempt.await;
    match attempt {
        Ok(rows) => {
            let cell = |row: &[(String, Option<String>)], name: &str| {
                row.iter()
                    .find(|(column, _)| column == name)
                    .and_then(|(_, value)| value.clone())
            };
            let max_prepared = rows.iter().find_map(|row| {
                (cell(row, "key").as_deref() == Some("max_prepared_statements"))
                    .then(|| cell(row, "value").and_then(|v| v.parse().ok()))
                    .flatten()
            });
            match max_prepared {
                Some(max_prepared) => Probe::PgBouncer { max_prepared },
                None => Probe::PostgreSql,
            }
        }
        // PostgreSQL itself: no database "pgbouncer" (or some other server error).
        Err(err) if err.driver_error().and_then(|e| e.as_db_error()).is_some() => Probe::PostgreSql,
        Err(_) => Probe::Unknown,
    }
}
