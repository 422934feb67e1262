//! What a run is asked to do: the [`LoadConfig`], how its flags' values parse, and the
//! one transaction it repeats.
//!
//! The transaction is a single statement (one rental and its payment, one round trip in
//! autocommit), so what the ledger calls one op is one commit on the server. When a
//! `synchronous_commit` level is asked for, it is set *inside* that statement with
//! `set_config(..., true)`: the level is read at commit time, and a session `SET` would
//! not survive pgbouncer's transaction pooling (nor would `options=-c ...`, which
//! pgbouncer drops as an `ignore_startup_parameters`).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio_postgres::types::Type;

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
    /// The run id to use (random when `None`; tests may fix it).
    pub run_id: Option<u32>,
}

impl LoadConfig {
    /// A configuration with the defaults of `runner load`: 4 workers, unlimited rate,
    /// no duration, no ledger, 5 s connect timeout, 1 s stop grace.
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
            run_id: None,
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
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

    /// The transaction's SQL text.
    pub(super) fn sql(&self) -> &'static str {
        if self.synchronous_commit.is_some() {
            INSERT_WITH_SYNCHRONOUS_COMMIT
        } else {
            INSERT
        }
    }

    /// The types of its parameters: op id, inventory, customer, cents, and the
    /// `synchronous_commit` level when there is one.
    pub(super) fn param_types(&self) -> Vec<Type> {
        let mut types = vec![Type::INT8, Type::INT4, Type::INT4, Type::INT4];
        if self.synchronous_commit.is_some() {
            types.push(Type::TEXT);
        }
        types
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use lab_core::parse_duration;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        // humantime's syntax (lab/attrs.rs) allows a space before the unit.
        assert_eq!(parse_duration("5 s"), Ok(Duration::from_secs(5)));
        for bad in ["", "s", "10x", "-1s", "ten", "1m30"] {
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
    fn the_level_is_a_parameter_only_when_set() {
        let mut c = LoadConfig::new("host=x", "t");
        assert_eq!((c.param_types().len(), c.sql()), (4, INSERT));
        c.synchronous_commit = Some("local".into());
        assert_eq!(c.param_types().len(), 5);
        assert!(
            c.sql()
                .contains("set_config('synchronous_commit', $5, true)")
        );
    }
}
