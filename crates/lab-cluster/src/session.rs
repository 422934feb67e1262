//! One PostgreSQL session, bounded: every connection the runner opens is one of these.
//!
//! A [`Session`] is a tokio-postgres client with what every caller needs around it: a
//! name for errors (`connecting to postgres-primary: …`), an `application_name` (what
//! `pg_stat_activity` shows, so a tool's own sessions can be told apart from the ones
//! it watches), a bound on connecting and one on each query, the connection driven in
//! a task that forwards the server's notices (PostgreSQL's "canceling wait for
//! synchronous replication" WARNING arrives as one), and that task stopped when the
//! session is dropped. Queries return typed rows (`query`, `query_one`) or, through
//! the simple protocol that pgbouncer's admin console also speaks, text cells.
//!
//! Its errors are a [`SessionError`] that callers can match: the writer classifies a
//! connect timeout apart from a refused connection, and both from a failed query.

use std::ops::Deref;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::error::DbError;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Row, SimpleQueryMessage};

/// The bounds of a session.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// How long opening it may take (TCP, authentication, startup).
    pub connect: Duration,
    /// How long one query may take.
    pub query: Duration,
}

impl Default for Bounds {
    /// 5 s to connect, 10 s per query: the runner's own questions to the cluster.
    fn default() -> Bounds {
        Bounds {
            connect: Duration::from_secs(5),
            query: Duration::from_secs(10),
        }
    }
}

/// Why a session could not open or a query on it failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No session within the connect bound.
    #[error("connecting to {target}: no answer within {} s", bound.as_secs_f64())]
    ConnectTimeout {
        /// What was connected to.
        target: String,
        /// The bound.
        bound: Duration,
    },
    /// The server refused, or the network failed.
    #[error("connecting to {target}: {}", describe(source))]
    Connect {
        /// What was connected to.
        target: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// A query had no answer within the query bound.
    #[error("on {target}: no answer within {} s: {sql}", bound.as_secs_f64())]
    QueryTimeout {
        /// Where the query ran.
        target: String,
        /// The query.
        sql: String,
        /// The bound.
        bound: Duration,
    },
    /// A query failed.
    #[error("on {target}: {sql}: {}", describe(source))]
    Query {
        /// Where the query ran.
        target: String,
        /// The query.
        sql: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
}

impl SessionError {
    /// The driver's error, where there is one (not for a timeout).
    pub fn driver_error(&self) -> Option<&tokio_postgres::Error> {
        match self {
            SessionError::Connect { source, .. } | SessionError::Query { source, .. } => {
                Some(source)
            }
            SessionError::ConnectTimeout { .. } | SessionError::QueryTimeout { .. } => None,
        }
    }
}

/// A driver error as one line: the server's `SEVERITY CODE: message`, or the client's
/// error with its cause (`error connecting to server: Connection refused (os error
/// 111)`).
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut text = err.to_string();
    if let Some(source) = std::error::Error::source(err) {
        let cause = source.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// An open session; its connection's task stops when it is dropped.
pub struct Session {
    client: Client,
    target: String,
    bounds: Bounds,
    notices: mpsc::UnboundedReceiver<DbError>,
    driver: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The client, for what a session does not wrap (a cancel token, `execute_typed` with
/// a prepared statement): its queries are not bounded by the session.
impl Deref for Session {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Session {
    /// Opens a session to `target` (its name in errors) with `config`, as
    /// `application_name`, within `bounds.connect`.
    pub async fn open(
        target: &str,
        config: &Config,
        application_name: &str,
        bounds: Bounds,
    ) -> Result<Session, SessionError> {
        let mut config = config.clone();
        config
            .application_name(application_name)
            .connect_timeout(bounds.connect);
        let connected = tokio::time::timeout(bounds.connect, config.connect(NoTls))
            .await
            .map_err(|_| SessionError::ConnectTimeout {
                target: target.to_string(),
                bound: bounds.connect,
            })?;
        let (client, mut connection) = connected.map_err(|source| SessionError::Connect {
            target: target.to_string(),
            source,
        })?;
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
        Ok(Session {
            client,
            target: target.to_string(),
            bounds,
            notices,
            driver,
        })
    }

    /// The client and the server's notices (in the order they came), together: a
    /// caller reads the notices of the statement it is running on the client.
    pub fn split(&mut self) -> (&Client, &mut mpsc::UnboundedReceiver<DbError>) {
        (&self.client, &mut self.notices)
    }

    /// Runs `fut`, a query `sql` on this session, within the query bound.
    async fn bounded<T>(
        &self,
        sql: &str,
        fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, SessionError> {
        match tokio::time::timeout(self.bounds.query, fut).await {
            Ok(result) => result.map_err(|source| SessionError::Query {
                target: self.target.clone(),
                sql: sql.to_string(),
                source,
            }),
            Err(_) => Err(SessionError::QueryTimeout {
                target: self.target.clone(),
                sql: sql.to_string(),
                bound: self.bounds.query,
            }),
        }
    }

    /// Typed rows (extended protocol).
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, SessionError> {
        self.bounded(sql, self.client.query(sql, params)).await
    }

    /// Typed rows, the parameters' types given: an unnamed statement (parse, bind and
    /// execute in one round trip), correct through pgbouncer's transaction pooling.
    pub async fn query_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, SessionError> {
        self.bounded(sql, self.client.query_typed(sql, params))
            .await
    }

    /// Exactly one typed row.
    pub async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, SessionError> {
        self.bounded(sql, self.client.query_one(sql, params)).await
    }

    /// A statement; the rows it changed.
    pub async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, SessionError> {
        self.bounded(sql, self.client.execute(sql, params)).await
    }

    /// Rows as (column name, text) pairs, NULL as `None`, through the simple protocol
    /// (which pgbouncer's admin console speaks, and which carries several statements).
    pub async fn simple(
        &self,
        sql: &str,
    ) -> Result<Vec<Vec<(String, Option<String>)>>, SessionError> {
        let messages = self.bounded(sql, self.client.simple_query(sql)).await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port nothing listens on: refused, named, and not a timeout.
    #[tokio::test]
    async fn a_refused_connection_names_its_target() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let config: Config = format!("host=127.0.0.1 port={port} user=x dbname=x")
            .parse()
            .unwrap();
        let err = Session::open("postgres-primary", &config, "test", Bounds::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, SessionError::Connect { .. }), "{err}");
        assert!(err.driver_error().is_some());
        let text = err.to_string();
        assert!(
            text.starts_with("connecting to postgres-primary: "),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
    }

    /// A server that accepts and never answers: the connect bound ends it.
    #[tokio::test]
    async fn a_silent_server_is_a_connect_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
        });
        let config: Config = format!("host=127.0.0.1 port={port} user=x dbname=x")
            .parse()
            .unwrap();
        let bounds = Bounds {
            connect: Duration::from_millis(300),
            query: Duration::from_secs(1),
        };
        let started = std::time::Instant::now();
        let err = Session::open("pgbouncer", &config, "test", bounds)
            .await
            .err()
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(err, SessionError::ConnectTimeout { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "connecting to pgbouncer: no answer within 0.3 s"
        );
        held.abort();
    }
}
