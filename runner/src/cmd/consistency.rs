//! `runner consistency`: probe what a client of the replicated cluster reads, and count
//! the anomalies.
//!
//! Each probe mode writes a reader log and then judges it with the checker
//! ([`runner::consistency::check`]); `check` judges a log again, later — against the
//! node that survived a failover, for the phantom-then-lost count. Every mode prints up
//! to three examples of each anomaly, the counts as `key: value` lines (what the book
//! engine captures) and a verdict, and exits 1 when an `--expect` does not hold: a
//! chapter states both the violation and its fix as expectations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use runner::cluster::settings::Settings;
use runner::cluster::topology::Service;
use runner::consistency::probe::{self, MonotonicFix, Node, RywFix};
use runner::consistency::{Anomalies, FinalState, History, check, keys_seen};
use runner::load::{self, ErrorClass, Ledger, Outcome};

/// Probe read-after-write, monotonic reads and vanished reads; count the anomalies.
#[derive(Debug, clap::Args)]
pub struct ConsistencyArgs {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Write a row on one node and read it at once on another, N times (read-after-write).
    ReadYourWrites(RywArgs),
    /// Read max(rental_id) from several nodes in turn (monotonic reads).
    Monotonic(MonotonicArgs),
    /// Read a `runner load` run's rows on a node as they appear, logging each one seen.
    Watch(WatchArgs),
    /// Judge a reader log again, optionally against the node that survived.
    Check(CheckArgs),
}

/// What a chapter expects of the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Expect {
    /// Some read missed its session's own acknowledged write.
    Stale,
    /// No read did.
    NoStale,
    /// Some read went back in time.
    Regression,
    /// None did.
    NoRegression,
    /// Some row that was read is gone from the survivor.
    PhantomLost,
    /// None is.
    NoPhantomLost,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The reader log to write (or, for `check`, to read).
    #[arg(long)]
    log: PathBuf,
    /// What must hold (repeatable); exit 1 otherwise.
    #[arg(long, value_enum)]
    expect: Vec<Expect>,
}

#[derive(Debug, clap::Args)]
struct RywArgs {
    /// Where the session writes.
    #[arg(long, value_enum, default_value_t = Service::PostgresPrimary)]
    write_on: Service,
    /// Where it reads its writes back.
    #[arg(long, value_enum, default_value_t = Service::PostgresAsyncStandby)]
    read_on: Service,
    /// Write-then-read rounds.
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// none, remote-apply (synchronous_commit for the write) or wait-replay (wait for
    /// the reader's pg_last_wal_replay_lsn() to pass the commit).
    #[arg(long, value_enum, default_value_t = RywFix::None)]
    fix: RywFix,
    /// The bound of one wait for replay.
    #[arg(long, default_value = "5s", value_parser = load::parse_duration)]
    wait_bound: Duration,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct MonotonicArgs {
    /// The nodes to read in turn (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', required = true)]
    read_on: Vec<Service>,
    /// How many reads.
    #[arg(long, default_value_t = 40)]
    count: usize,
    /// The pause between reads.
    #[arg(long, default_value = "100ms", value_parser = load::parse_duration)]
    interval: Duration,
    /// none, sticky (every read on the first node, on the next when it fails) or
    /// track-lsn (refuse a node behind the highest replay LSN the session has seen).
    #[arg(long, value_enum, default_value_t = MonotonicFix::None)]
    fix: MonotonicFix,
    /// How long one read may wait for a node to catch up (track-lsn).
    #[arg(long, default_value = "5s", value_parser = load::parse_duration)]
    wait_bound: Duration,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct WatchArgs {
    /// The node to read.
    #[arg(long, value_enum, default_value_t = Service::PostgresPrimary)]
    on: Service,
    /// The `runner load` ledger whose op ids to look for.
    #[arg(long)]
    ledger: PathBuf,
    /// How long to keep reading (one pass without it).
    #[arg(long, value_parser = load::parse_duration)]
    duration: Option<Duration>,
    /// The pause between passes.
    #[arg(long, default_value = "200ms", value_parser = load::parse_duration)]
    interval: Duration,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The node that survived: rows some read returned must be on it (phantom-then-lost).
    #[arg(long, value_enum)]
    on: Option<Service>,
    /// A `runner load` ledger: which of the vanished rows had been acknowledged, with or
    /// without the SyncRep WARNING.
    #[arg(long, requires = "on")]
    ledger: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

/// Runs `runner consistency`.
pub async fn run(settings: &Settings, args: ConsistencyArgs) -> Result<ExitCode> {
    let node = |service: Service| -> Result<Node> {
        Ok(Node {
            name: service.name().to_string(),
            conninfo: settings.command_conninfo("service", service.name(), None)?,
        })
    };
    match args.mode {
        Mode::ReadYourWrites(a) => {
            let config = probe::RywConfig {
                write: node(a.write_on)?,
                read: node(a.read_on)?,
                count: a.count,
                fix: a.fix,
                wait_bound: a.wait_bound,
                log: a.common.log.clone(),
            };
            let costs = probe::read_your_writes(&config).await?;
            print!("{}", costs.key_values());
            judge(&a.common, None)
        }
        Mode::Monotonic(a) => {
            let config = probe::MonotonicConfig {
                nodes: a.read_on.iter().map(|s| node(*s)).collect::<Result<_>>()?,
                count: a.count,
                interval: a.interval,
                fix: a.fix,
                wait_bound: a.wait_bound,
                log: a.common.log.clone(),
            };
            probe::monotonic(&config).await?;
            judge(&a.common, None)
        }
        Mode::Watch(a) => {
            let ledger = Ledger::read(&a.ledger)?;
            let config = probe::WatchConfig {
                node: node(a.on)?,
                ops: ledger.header.op_range(),
                duration: a.duration.unwrap_or_default(),
                interval: a.interval,
                log: a.common.log.clone(),
            };
            let seen = probe::watch(&config).await?;
            println!("rows_seen: {seen}");
            judge(&a.common, None)
        }
        Mode::Check(a) => {
            let survivor = match a.on {
                None => None,
                Some(service) => {
                    let history = History::read(&a.common.log)?;
                    Some(survivor(&history, &node(service)?, a.ledger.as_deref()).await?)
                }
            };
            judge(&a.common, survivor.as_ref())
        }
    }
}

/// What the surviving node holds of the rows the log's reads returned (keys are op ids).
async fn survivor(
    history: &History,
    node: &Node,
    ledger: Option<&std::path::Path>,
) -> Result<FinalState> {
    let mut ops = Vec::new();
    for key in keys_seen(history).keys() {
        ops.push(key.parse::<i64>().with_context(|| {
            format!("key {key:?} of the log is not an op id: only rows can be checked on a node")
        })?);
    }
    let present = probe::present_ops(node, &ops).await?;
    let (acknowledged, warned) = match ledger {
        None => (None, BTreeSet::new()),
        Some(path) => {
            let ledger = Ledger::read(path)?;
            let acked: BTreeSet<String> = ledger
                .ops
                .iter()
                .filter(|(_, r)| r.acked_at().is_some())
                .map(|(id, _)| id.to_string())
                .collect();
            // A cancelled SyncRep wait: the server answered the commit with a WARNING
            // that it committed locally but might not have been replicated.
            let warned: BTreeSet<String> = ledger
                .ops
                .iter()
                .filter(|(_, r)| {
                    matches!(
                        &r.outcome,
                        Some(Outcome::Fail(_, ErrorClass::SyncRepCancelled))
                    )
                })
                .map(|(id, _)| id.to_string())
                .collect();
            (Some(acked), warned)
        }
    };
    Ok(FinalState {
        node: node.name.clone(),
        versions: present
            .iter()
            .map(|op| (op.to_string(), 1))
            .collect::<BTreeMap<_, _>>(),
        acknowledged,
        warned,
    })
}

/// Reads the log, counts its anomalies, prints them and checks the expectations.
fn judge(common: &Common, survivor: Option<&FinalState>) -> Result<ExitCode> {
    let history = History::read(&common.log)?;
    for note in &history.notes {
        eprintln!("consistency: note: {note}");
    }
    let anomalies = check(&history, survivor);
    print!("{}", anomalies.examples(3));
    print!("{}", anomalies.key_values());
    let failures: Vec<String> = common
        .expect
        .iter()
        .filter_map(|e| failure(*e, &anomalies))
        .collect();
    println!(
        "verdict: {}",
        if failures.is_empty() {
            verdict(&anomalies)
        } else {
            failures.join("; ")
        }
    );
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn verdict(a: &Anomalies) -> String {
    let lost = a.phantom_lost.as_ref().map_or(0, Vec::len);
    if a.stale.is_empty() && a.regressions.is_empty() && lost == 0 {
        "no anomaly".into()
    } else {
        format!(
            "{} stale read(s), {} regression(s), {} row(s) read then lost",
            a.stale.len(),
            a.regressions.len(),
            lost
        )
    }
}

/// Why `expect` does not hold, if it does not.
fn failure(expect: Expect, a: &Anomalies) -> Option<String> {
    let lost = a.phantom_lost.as_ref().map(Vec::len);
    let holds = match expect {
        Expect::Stale => !a.stale.is_empty(),
        Expect::NoStale => a.stale.is_empty() && a.reads_after_own_write > 0,
        Expect::Regression => !a.regressions.is_empty(),
        Expect::NoRegression => a.regressions.is_empty() && a.reads > 1,
        Expect::PhantomLost => lost.is_some_and(|n| n > 0),
        Expect::NoPhantomLost => lost == Some(0) && a.keys_seen > 0,
    };
    (!holds).then(|| {
        let what = match expect {
            Expect::Stale => "expected stale reads, found none",
            Expect::NoStale => "expected no stale read (after at least one own write)",
            Expect::Regression => "expected a read to go back in time, none did",
            Expect::NoRegression => "expected no regression (over at least two reads)",
            Expect::PhantomLost => "expected a row read and then lost (checked with --on)",
            Expect::NoPhantomLost => "expected every row read to survive (checked with --on)",
        };
        format!("FAILED: {what}")
    })
}
