//! SQL from the runner itself (tokio-postgres), always bounded.
//!
//! The engine queries the cluster to decide things — is a node a standby, is the slot
//! active, what is pgbouncer's `cl_waiting` — over the services' published ports on
//! 127.0.0.1 with the scram password from `compose/.env`. Every connect and query has
//! a timeout, so an unreachable or hung node is an error, never a hang.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::cluster::settings::Settings;

/// The bound on one query issued by the runner itself.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `dbname` on `service` within 5 s.
pub async fn connect(settings: &Settings, service: &str, dbname: &str) -> Result<Client> {
    connect_as(settings, service, dbname, "runner").await
}

/// [`connect`] with another `application_name` (what `pg_stat_activity` shows), so a
/// tool's own sessions can be told apart — and left out — from the ones it watches.
pub async fn connect_as(
    settings: &Settings,
    service: &str,
    dbname: &str,
    application_name: &str,
) -> Result<Client> {
    let conninfo = format!(
        "{} application_name={application_name}",
        settings.conninfo(service, dbname)?
    );
    let connect = tokio_postgres::connect(&conninfo, NoTls);
    let (client, connection) = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| anyhow!("connecting to {service}: no answer within 5 s"))?
        .with_context(|| {
            format!(
                "connecting to {service} on 127.0.0.1:{}",
                settings.port(service).unwrap_or(0)
            )
        })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
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
pub async fn rows(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    let messages = bounded(sql, QUERY_TIMEOUT, client.simple_query(sql)).await?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// Like [`rows`], with each row as (column name, value) pairs.
pub async fn named_rows(client: &Client, sql: &str) -> Result<Vec<Vec<(String, Option<String>)>>> {
    let messages = bounded(sql, QUERY_TIMEOUT, client.simple_query(sql)).await?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                row.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), row.get(i).map(str::to_string)))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// The boolean `sql` returns in its first row's first column, typed (extended
/// protocol; a column that is not `boolean` is an error), within the query bound;
/// `None` for no row or NULL.
pub async fn flag(client: &Client, sql: &str) -> Result<Option<bool>> {
    let rows = bounded(sql, QUERY_TIMEOUT, client.query(sql, &[])).await?;
    match rows.first() {
        None => Ok(None),
        Some(row) => row
            .try_get::<_, Option<bool>>(0)
            .with_context(|| format!("{sql}: not a boolean")),
    }
}

/// The first cell of the first row.
pub async fn scalar(client: &Client, sql: &str) -> Result<Option<String>> {
    Ok(rows(client, sql)
        .await?
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next().flatten()))
}
