//! The probe clients: a session that writes on one node and reads on others, recording
//! every event in a reader log.
//!
//! Each probe is a real client, one connection per node, issuing one statement at a
//! time — the application whose view of the data the chapter examines. Every connect
//! and every statement is bounded ([`BOUND`] or the caller's), so a node that stops
//! answering ends the probe with an error naming it, never a hang. What the probe saw
//! is judged afterwards by [`super::check`], from the log alone.
//!
//! - [`read_your_writes`]: write a row on the primary, read it at once on a standby;
//!   optionally with `synchronous_commit = remote_apply` for the write, or waiting
//!   until the standby's `pg_last_wal_replay_lsn()` passes an LSN taken after the
//!   commit;
//! - [`monotonic`]: read `max(rental_id)` from several standbys in turn; optionally
//!   sticking to one (and moving to the next only when it fails, as a load balancer
//!   does), or refusing a node that has not replayed as far as the session has
//!   already seen;
//! - [`watch`]: read the rows of a `runner load` run as they appear on a node.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use tokio::time::{Instant, sleep};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, Row};

use super::log::{Event, LogWriter, Read, Skip, Write};
use crate::load::ledger::{op_base, random_run_id};
use lab_cluster::poll::{Look, poll_until};
use lab_cluster::session::{Bounds, Session};

/// The bound of one connect or one statement of a probe.
pub const BOUND: Duration = Duration::from_secs(5);

/// A node to talk to: its name (for the log) and its connection string.
#[derive(Debug, Clone)]
pub struct Node {
    /// The service name.
    pub name: String,
    /// A libpq-style connection string.
    pub conninfo: String,
}

/// One connection of a probe: a bounded [`Session`] and the node's name for the log.
struct Conn {
    node: String,
    session: Session,
}

impl Conn {
    async fn open(node: &Node) -> Result<Conn> {
        let config = Config::from_str(&node.conninfo)
            .with_context(|| format!("parsing the connection string of {}", node.name))?;
        let bounds = Bounds {
            connect: BOUND,
            query: BOUND,
        };
        let session = Session::open(&node.name, &config, "runner-consistency", bounds).await?;
        Ok(Conn {
            node: node.name.clone(),
            session,
        })
    }

    async fn one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        Ok(self.session.query_one(sql, params).await?)
    }

    async fn all(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        Ok(self.session.query(sql, params).await?)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        Ok(self.session.execute(sql, params).await?)
    }
}

/// The node's WAL position as text: replayed on a standby, written on a primary.
const NODE_LSN: &str = "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                        ELSE pg_current_wal_lsn() END)::text";

/// One rental with the probe's op id, with `synchronous_commit` for this transaction
/// when `$2` is not NULL (set inside the statement, read at commit).
const INSERT: &str = "INSERT INTO rental (op_id, inventory_id, customer_id) \
     SELECT $1::int8, 1 + ($1::int8 % 4500)::int4, 1 + ($1::int8 % 600)::int4 \
     WHERE $2::text IS NULL OR set_config('synchronous_commit', $2::text, true) IS NOT NULL";

/// Parses an LSN (`16/B374D848`) into its 64-bit position.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some(u64::from_str_radix(hi, 16).ok()? << 32 | u64::from_str_radix(lo, 16).ok()?)
}

/// How the read-your-writes probe makes its read see its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RywFix {
    /// Nothing: write, then read at once.
    None,
    /// The write commits with `synchronous_commit = remote_apply`.
    RemoteApply,
    /// After the commit, wait until the reader's node has replayed past an LSN taken
    /// on the primary after the commit (`pg_current_wal_lsn()`).
    WaitReplay,
}

/// What the read-your-writes probe does.
#[derive(Debug, Clone)]
pub struct RywConfig {
    /// Where it writes.
    pub write: Node,
    /// Where it reads.
    pub read: Node,
    /// How many write-then-read rounds.
    pub count: usize,
    /// The fix applied.
    pub fix: RywFix,
    /// The bound of one wait for replay.
    pub wait_bound: Duration,
    /// The reader log to write.
    pub log: PathBuf,
}

/// The cost of a probe's rounds, in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Costs {
    /// Per round: sent the write → commit acknowledged.
    pub commit_ms: Vec<f64>,
    /// Per round: acknowledged → the standby replayed past the LSN (wait-replay only).
    pub wait_ms: Vec<f64>,
    /// Per round: sent the write → the read's answer.
    pub round_ms: Vec<f64>,
}

impl Costs {
    /// `key: value` lines: the median and the 99th percentile of each series.
    pub fn key_values(&self) -> String {
        let mut out = String::new();
        for (name, series) in [
            ("commit", &self.commit_ms),
            ("wait", &self.wait_ms),
            ("round", &self.round_ms),
        ] {
            if series.is_empty() {
                continue;
            }
            out.push_str(&format!("{name}_p50_ms: {:.2}\n", percentile(series, 0.50)));
            out.push_str(&format!("{name}_p99_ms: {:.2}\n", percentile(series, 0.99)));
        }
        out
    }
}

fn percentile(series: &[f64], q: f64) -> f64 {
    let mut sorted = series.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

/// A fix's name as its flag spells it (`wait-replay`).
fn value_name(fix: impl clap::ValueEnum) -> String {
    fix.to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Writes a row on `write`, then reads it on `read`, `count` times; every event logged.
pub async fn read_your_writes(config: &RywConfig) -> Result<Costs> {
    let writer = Conn::open(&config.write).await?;
    let reader = Conn::open(&config.read).await?;
    let fix = value_name(config.fix);
    let log = LogWriter::create(
        &config.log,
        Utc::now(),
        &[
            ("mode", "read-your-writes"),
            ("write_on", &config.write.name),
            ("read_on", &config.read.name),
            ("fix", &fix),
        ],
    )?;
    let level: Option<String> =
        (config.fix == RywFix::RemoteApply).then(|| "remote_apply".to_string());
    let base = op_base(random_run_id());
    let start = Instant::now();
    let mut costs = Costs::default();
    for seq in 1..=config.count as i64 {
        let op = base | seq;
        let sent = start.elapsed();
        let inserted = writer.execute(INSERT, &[&op, &level]).await?;
        if inserted != 1 {
            bail!("the probe's insert of op {op} reported {inserted} rows, not 1");
        }
        let acked = start.elapsed();
        let mut lsn = None;
        if config.fix == RywFix::WaitReplay {
            let after: String = writer
                .one("SELECT pg_current_wal_lsn()::text", &[])
                .await?
                .get(0);
            let waited = wait_for_replay(&reader, &after, config.wait_bound).await?;
            costs.wait_ms.push(ms(waited));
            lsn = Some(after);
        }
        log.event(&Event::Write(Write {
            session: "s1".into(),
            key: op.to_string(),
            version: 1,
            sent,
            acked,
            lsn,
        }))?;
        let read_sent = start.elapsed();
        let row = reader
            .one(
                &format!("SELECT EXISTS (SELECT FROM rental WHERE op_id = $1), {NODE_LSN}"),
                &[&op],
            )
            .await?;
        let done = start.elapsed();
        let present: bool = row.get(0);
        log.event(&Event::Read(Read {
            session: "s1".into(),
            node: reader.node.clone(),
            key: op.to_string(),
            version: present.then_some(1),
            sent: read_sent,
            done,
            lsn: row.get(1),
        }))?;
        costs.commit_ms.push(ms(acked - sent));
        costs.round_ms.push(ms(done - sent));
    }
    Ok(costs)
}

/// Polls `reader` until it has replayed past `lsn`, every millisecond, within `bound`;
/// returns how long it took.
async fn wait_for_replay(reader: &Conn, lsn: &str, bound: Duration) -> Result<Duration> {
    let started = Instant::now();
    poll_until(
        &format!("{} replaying past {lsn}", reader.node),
        (started + bound).into_std(),
        Duration::from_millis(1),
        || async {
            let row = reader
                .one(
                    "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                    &[&lsn],
                )
                .await?;
            Ok(match row.get::<_, Option<bool>>(0) {
                Some(true) => Look::Ready(started.elapsed()),
                _ => Look::Pending("not replayed yet".into()),
            })
        },
    )
    .await
    .map_err(Into::into)
}

/// How the monotonic-reads probe keeps a session from going back in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MonotonicFix {
    /// Nothing: read the nodes in turn.
    None,
    /// Session stickiness: every read of the session on the first node, until it
    /// fails; then on the next.
    Sticky,
    /// Remember the highest replay LSN seen; refuse a node that is behind it.
    TrackLsn,
}

/// What the monotonic-reads probe does.
#[derive(Debug, Clone)]
pub struct MonotonicConfig {
    /// The nodes to read, in turn.
    pub nodes: Vec<Node>,
    /// How many reads.
    pub count: usize,
    /// The pause between reads.
    pub interval: Duration,
    /// The fix applied.
    pub fix: MonotonicFix,
    /// How long a read may wait for some node to catch up (track-lsn).
    pub wait_bound: Duration,
    /// The reader log to write.
    pub log: PathBuf,
}

/// The key the monotonic probe reads: the newest rental's id.
pub const MAX_RENTAL_KEY: &str = "max_rental_id";

/// Reads `max(rental_id)` `count` times from the nodes in turn; every event logged.
pub async fn monotonic(config: &MonotonicConfig) -> Result<()> {
    if config.nodes.is_empty() {
        bail!("monotonic reads need at least one node to read");
    }
    let mut conns = Vec::new();
    for node in &config.nodes {
        conns.push(Conn::open(node).await?);
    }
    let fix = value_name(config.fix);
    let nodes: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
    let nodes = nodes.join(",");
    let log = LogWriter::create(
        &config.log,
        Utc::now(),
        &[("mode", "monotonic"), ("read_on", &nodes), ("fix", &fix)],
    )?;
    let start = Instant::now();
    let mut highest: u64 = 0;
    // The node a sticky session reads on; it moves on only when that node fails.
    let mut stuck_to = 0;
    let read_sql = format!("SELECT max(rental_id), {NODE_LSN} FROM rental");
    for i in 0..config.count {
        if i > 0 {
            sleep(config.interval).await;
        }
        let turn = match config.fix {
            MonotonicFix::Sticky => stuck_to,
            _ => i % conns.len(),
        };
        let conn = if config.fix == MonotonicFix::TrackLsn {
            pick_caught_up(&conns, turn, highest, config.wait_bound, &log, start).await?
        } else {
            &conns[turn]
        };
        let sent = start.elapsed();
        let row = match conn.one(&read_sql, &[]).await {
            Ok(row) => row,
            // Stickiness as a load balancer does it: the session stays on its node
            // until the node fails, then goes to the next one — whatever it has seen.
            Err(error) if config.fix == MonotonicFix::Sticky && stuck_to + 1 < conns.len() => {
                log.event(&Event::Skip(Skip {
                    session: "s1".into(),
                    node: conn.node.clone(),
                    at: start.elapsed(),
                    lsn: None,
                }))?;
                log.note(&format!(
                    "{} failed ({error:#}); the session moves to {}",
                    conn.node,
                    conns[stuck_to + 1].node
                ))?;
                stuck_to += 1;
                let conn = &conns[stuck_to];
                let sent = start.elapsed();
                let row = conn.one(&read_sql, &[]).await?;
                let done = start.elapsed();
                record_max_read(&log, conn, &row, sent, done, &mut highest)?;
                continue;
            }
            Err(error) => return Err(error),
        };
        let done = start.elapsed();
        record_max_read(&log, conn, &row, sent, done, &mut highest)?;
    }
    Ok(())
}

/// Logs a read of `max(rental_id)` and raises `highest` to the node's LSN it returned.
fn record_max_read(
    log: &LogWriter,
    conn: &Conn,
    row: &Row,
    sent: Duration,
    done: Duration,
    highest: &mut u64,
) -> Result<()> {
    let lsn: Option<String> = row.get(1);
    if let Some(position) = lsn.as_deref().and_then(parse_lsn) {
        *highest = (*highest).max(position);
    }
    log.event(&Event::Read(Read {
        session: "s1".into(),
        node: conn.node.clone(),
        key: MAX_RENTAL_KEY.into(),
        version: row.get(0),
        sent,
        done,
        lsn,
    }))
}

/// The first node from `turn` on that has replayed at least to `highest`, logging a
/// skip for each that has not; waits for one within `bound`.
async fn pick_caught_up<'a>(
    conns: &'a [Conn],
    turn: usize,
    highest: u64,
    bound: Duration,
    log: &LogWriter,
    start: Instant,
) -> Result<&'a Conn> {
    poll_until(
        "a node replayed as far as the session has seen",
        (Instant::now() + bound).into_std(),
        Duration::from_millis(10),
        || async {
            for k in 0..conns.len() {
                let conn = &conns[(turn + k) % conns.len()];
                let lsn: Option<String> =
                    conn.one(&format!("SELECT {NODE_LSN}"), &[]).await?.get(0);
                if lsn
                    .as_deref()
                    .and_then(parse_lsn)
                    .is_some_and(|p| p >= highest)
                {
                    return Ok(Look::Ready(conn));
                }
                log.event(&Event::Skip(Skip {
                    session: "s1".into(),
                    node: conn.node.clone(),
                    at: start.elapsed(),
                    lsn,
                }))?;
            }
            Ok(Look::Pending(format!("every node behind {highest:X}")))
        },
    )
    .await
    .map_err(Into::into)
}

/// What the watcher does.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// The node to read.
    pub node: Node,
    /// The op ids to look for (a `runner load` run's range).
    pub ops: std::ops::RangeInclusive<i64>,
    /// How long to keep reading; zero: one pass.
    pub duration: Duration,
    /// The pause between passes.
    pub interval: Duration,
    /// The reader log to write.
    pub log: PathBuf,
}

/// Reads the rows of an op id range on a node, pass after pass, logging each row the
/// first time it is seen; returns how many rows it saw.
pub async fn watch(config: &WatchConfig) -> Result<usize> {
    let conn = Conn::open(&config.node).await?;
    let log = LogWriter::create(
        &config.log,
        Utc::now(),
        &[("mode", "watch"), ("read_on", &config.node.name)],
    )?;
    let start = Instant::now();
    let mut seen = BTreeSet::new();
    let (lo, hi) = (*config.ops.start(), *config.ops.end());
    loop {
        let sent = start.elapsed();
        let rows = conn
            .all(
                &format!("SELECT op_id, {NODE_LSN} FROM rental WHERE op_id BETWEEN $1 AND $2 ORDER BY op_id"),
                &[&lo, &hi],
            )
            .await?;
        let done = start.elapsed();
        for row in rows {
            let op: i64 = row.get(0);
            if seen.insert(op) {
                log.event(&Event::Read(Read {
                    session: "reader".into(),
                    node: conn.node.clone(),
                    key: op.to_string(),
                    version: Some(1),
                    sent,
                    done,
                    lsn: row.get(1),
                }))?;
            }
        }
        if start.elapsed() + config.interval > config.duration {
            return Ok(seen.len());
        }
        sleep(config.interval).await;
    }
}

/// Which of `ops` (op ids) `node` holds: the survivor's side of the phantom-then-lost
/// check.
pub async fn present_ops(node: &Node, ops: &[i64]) -> Result<BTreeSet<i64>> {
    let conn = Conn::open(node).await?;
    let ops = ops.to_vec();
    let rows = conn
        .all("SELECT op_id FROM rental WHERE op_id = ANY($1)", &[&ops])
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_parse_and_order() {
        assert_eq!(parse_lsn("0/3000060"), Some(0x0300_0060));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        assert_eq!(parse_lsn("nonsense"), None);
        assert_eq!(parse_lsn("1/zz"), None);
    }

    #[test]
    fn percentiles_of_a_series() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.5), 51.0);
        assert_eq!(percentile(&s, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
