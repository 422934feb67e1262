//! SQL from the runner itself (tokio-postgres), always bounded.
//!
//! The engine queries the cluster to decide things — is a node a standby, is the slot
//! active, what is pgbouncer's `cl_waiting` — over the services' published ports on
//! 127.0.0.1 with the scram password from `compose/.env`. Each connection is a
//! [`Session`] (see `session.rs`): every connect and query has a bound, so an
//! unreachable or hung node is an error naming it, never a hang.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio_postgres::Config;

use crate::session::{Bounds, Session};
use crate::settings::Settings;

/// The bound on one query issued by the runner itself (a [`Session`]'s default).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `dbname` on `service` within 5 s, as `runner`.
pub async fn connect(settings: &Settings, service: &str, dbname: &str) -> Result<Session> {
    connect_as(settings, service, dbname, "runner").await
}

/// [`connect`] with another `application_name` (what `pg_stat_activity` shows), so a
/// tool's own sessions can be told apart — and left out — from the ones it watches.
pub async fn connect_as(
    settings: &Settings,
    service: &str,
    dbname: &str,
    application_name: &str,
) -> Result<Session> {
    let config: Config = settings
        .conninfo(service, dbname)?
        .parse()
        .with_context(|| format!("the connection string of {service}"))?;
    let target = format!(
        "{service} on 127.0.0.1:{}",
        settings.port(service).unwrap_or(0)
    );
    Ok(Session::open(&target, &config, application_name, Bounds::default()).await?)
}

/// Awaits `fut` for at most `bound`, naming `what` in the error.
pub async fn bounded<T, E>(
    what: &str,
    bound: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(bound, fut).await {
        Ok(result) => result.with_context(|| what.to_string()),
        Err(_) => Err(anyhow!("{what}: no answer within {} s", bound.as_secs())),
    }
}

/// Runs a simple-protocol query and returns its rows as text cells (NULL as `None`).
/// The simple protocol also serves pgbouncer's admin console.
pub async fn rows(session: &Session, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    Ok(session
        .simple(sql)
        .await?
        .into_iter()
        .map(|row| row.into_iter().map(|(_, value)| value).collect())
        .collect())
}

/// Like [`rows`], with each row as (column name, value) pairs.
pub async fn named_rows(
    session: &Session,
    sql: &str,
) -> Result<Vec<Vec<(String, Option<String>)>>> {
    Ok(session.simple(sql).await?)
}

/// The boolean `sql` returns in its first row's first column, typed (extended
/// protocol; a column that is not `boolean` is an error), within the query bound;
/// `None` for no row or NULL.
pub async fn flag(session: &Session, sql: &str) -> Result<Option<bool>> {
    let rows = session.query(sql, &[]).await?;
    match rows.first() {
        None => Ok(None),
        Some(row) => row
            .try_get::<_, Option<bool>>(0)
            .with_context(|| format!("{sql}: not a boolean")),
    }
}

/// The first cell of the first row.
pub async fn scalar(session: &Session, sql: &str) -> Result<Option<String>> {
    Ok(rows(session, sql)
        .await?
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next().flatten()))
}
