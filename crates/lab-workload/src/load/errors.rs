//! What went wrong with a transaction or a connection attempt, as a small closed set of
//! classes.
//!
//! The course reads the writer's errors as evidence: "the primary is gone" (refused),
//! "the connection was cut under us" (closed), "the commit hung in SyncRep and was
//! cancelled — it has already committed locally" (syncrep_cancelled), "we reached a
//! read-only standby" (read_only), "the client gave up at its bound" (timeout). Each
//! class has a stable token, used in the ledger's `fail` lines and in the summary's
//! `errors_<class>` keys, so a chapter's check can name it.
//!
//! Classes come from SQLSTATEs and socket errors wherever those tell them apart. Two
//! read a message instead, because nothing else does: the cancelled SyncRep wait, whose
//! WARNING `SyncRepWaitForLSN` (src/backend/replication/syncrep.c) raises without an
//! error code of its own (so 01000, any warning), and pgbouncer's 08P01, which covers
//! both "cannot log in to the server" and "lost it". The lab's servers pin
//! `lc_messages = 'C'` (compose/images/node/postgresql.lab.conf, Patroni's
//! `parameters`), so those messages are the English ones matched here; pgbouncer's are
//! its own and not translated.

use std::fmt;
use std::io;

use tokio_postgres::error::{DbError, SqlState};

/// The class of a failed transaction or connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// Nobody answered: connection refused, the server is starting up or shutting down
    /// (57P03), or pgbouncer could not log in to its backend.
    ConnectionRefused,
    /// The connection broke under a transaction or a login: reset, closed, end of file,
    /// the server terminated it (57P01/57P02), or any other SQLSTATE class 08 error.
    ConnectionClosed,
    /// The connection was not established within the connect timeout.
    ConnectTimeout,
    /// The commit waited for the synchronous standby and that wait was cancelled — by
    /// this writer at its client-side bound, or by someone else. PostgreSQL reports it
    /// with a WARNING: the transaction has already committed locally.
    SyncRepCancelled,
    /// The server is a standby, or in read-only mode (SQLSTATE 25006).
    ReadOnly,
    /// The client-side bound was reached and the cancel did not report a SyncRep wait:
    /// the outcome is unknown (or the statement was cancelled before its commit).
    Timeout,
    /// Any other error the server reported, by its SQLSTATE.
    Sql(SqlState),
    /// Anything else (a protocol surprise, an unexpected row count).
    Other,
}

impl ErrorClass {
    /// The stable token of this class (`connection_refused`, `sqlstate_23505`, ...).
    pub fn token(&self) -> String {
        match self {
            ErrorClass::ConnectionRefused => "connection_refused".into(),
            ErrorClass::ConnectionClosed => "connection_closed".into(),
            ErrorClass::ConnectTimeout => "connect_timeout".into(),
            ErrorClass::SyncRepCancelled => "syncrep_cancelled".into(),
            ErrorClass::ReadOnly => "read_only".into(),
            ErrorClass::Timeout => "timeout".into(),
            ErrorClass::Sql(code) => format!("sqlstate_{}", code.code()),
            ErrorClass::Other => "other".into(),
        }
    }

    /// Parses a token written by [`ErrorClass::token`].
    pub fn from_token(token: &str) -> Option<ErrorClass> {
        Some(match token {
            "connection_refused" => ErrorClass::ConnectionRefused,
            "connection_closed" => ErrorClass::ConnectionClosed,
            "connect_timeout" => ErrorClass::ConnectTimeout,
            "syncrep_cancelled" => ErrorClass::SyncRepCancelled,
            "read_only" => ErrorClass::ReadOnly,
            "timeout" => ErrorClass::Timeout,
            "other" => ErrorClass::Other,
            _ => {
                let code = token.strip_prefix("sqlstate_")?;
                if code.len() != 5 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return None;
                }
                ErrorClass::Sql(SqlState::from_code(code))
            }
        })
    }

    /// What orders and hashes a class: its place in the list above, and its SQLSTATE.
    fn key(&self) -> (u8, &str) {
        match self {
            ErrorClass::ConnectionRefused => (0, ""),
            ErrorClass::ConnectionClosed => (1, ""),
            ErrorClass::ConnectTimeout => (2, ""),
            ErrorClass::SyncRepCancelled => (3, ""),
            ErrorClass::ReadOnly => (4, ""),
            ErrorClass::Timeout => (5, ""),
            ErrorClass::Sql(code) => (6, code.code()),
            ErrorClass::Other => (7, ""),
        }
    }
}

// By hand: tokio-postgres's `SqlState` is neither `Ord` nor `Hash`.
impl PartialOrd for ErrorClass {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ErrorClass {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl std::hash::Hash for ErrorClass {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.token())
    }
}

/// Classifies an error from tokio-postgres (a connect, a prepare or an execute).
pub fn classify(error: &tokio_postgres::Error) -> ErrorClass {
    if let Some(db) = error.as_db_error() {
        return classify_db(db);
    }
    if error.is_closed() {
        return ErrorClass::ConnectionClosed;
    }
    // Walk the cause chain for an io::Error (connect and socket failures).
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return classify_io(io);
        }
        source = cause.source();
    }
    let text = error.to_string();
    if text.contains("timeout") || text.contains("timed out") {
        ErrorClass::ConnectTimeout
    } else if text.contains("connecting") {
        ErrorClass::ConnectionRefused
    } else {
        ErrorClass::Other
    }
}

/// Classifies an io error of a socket.
pub fn classify_io(error: &io::Error) -> ErrorClass {
    match error.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::NotFound => ErrorClass::ConnectionRefused,
        io::ErrorKind::TimedOut => ErrorClass::ConnectTimeout,
        _ => ErrorClass::ConnectionClosed,
    }
}

/// Classifies an error the server (or pgbouncer) reported.
pub fn classify_db(db: &DbError) -> ErrorClass {
    let code = db.code();
    if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        ErrorClass::ReadOnly
    } else if *code == SqlState::CANNOT_CONNECT_NOW {
        ErrorClass::ConnectionRefused
    } else if *code == SqlState::ADMIN_SHUTDOWN || *code == SqlState::CRASH_SHUTDOWN {
        ErrorClass::ConnectionClosed
    } else if code.code().starts_with("08") {
        // pgbouncer reports its backend troubles as 08P01; tell "cannot reach the
        // server" apart from "lost it".
        let message = db.message();
        if message.contains("login") || message.contains("cannot connect") {
            ErrorClass::ConnectionRefused
        } else {
            ErrorClass::ConnectionClosed
        }
    } else {
        ErrorClass::Sql(code.clone())
    }
}

/// Whether a notice is PostgreSQL's report that a commit's wait for synchronous
/// replication was cancelled (the transaction has already committed locally):
///
/// ```text
/// WARNING:  canceling wait for synchronous replication due to user request
/// DETAIL:  The transaction has already committed locally, but might not have been
///          replicated to the standby.
/// ```
pub fn is_syncrep_cancel_notice(notice: &DbError) -> bool {
    notice.message().contains("synchronous replication")
        || notice
            .detail()
            .is_some_and(|d| d.contains("already committed locally"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for class in [
            ErrorClass::ConnectionRefused,
            ErrorClass::ConnectionClosed,
            ErrorClass::ConnectTimeout,
            ErrorClass::SyncRepCancelled,
            ErrorClass::ReadOnly,
            ErrorClass::Timeout,
            ErrorClass::Sql(SqlState::UNIQUE_VIOLATION),
            ErrorClass::Other,
        ] {
            assert_eq!(ErrorClass::from_token(&class.token()), Some(class));
        }
        assert_eq!(
            ErrorClass::from_token("sqlstate_57014"),
            Some(ErrorClass::Sql(SqlState::QUERY_CANCELED))
        );
        assert_eq!(ErrorClass::from_token("sqlstate_1"), None);
        assert_eq!(ErrorClass::from_token("nonsense"), None);
    }

    #[test]
    fn io_errors_split_refused_from_closed() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(classify_io(&refused), ErrorClass::ConnectionRefused);
        assert_eq!(classify_io(&reset), ErrorClass::ConnectionClosed);
        assert_eq!(classify_io(&eof), ErrorClass::ConnectionClosed);
    }
}
