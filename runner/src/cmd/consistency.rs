//! `runner consistency`: probe what a client of the replicated cluster reads, and count
//! the anomalies.
//!
//! Only the command line lives here; the probes, the checker, the expectations and the
//! survivor's side are the `runner::consistency` library's. Each probe mode writes a
//! reader log and then judges it with the checker ([`runner::consistency::check`]); `check` judges a log again, later — against the
//! node that survived a failover, for the phantom-then-lost count. Every mode prints up
//! to three examples of each anomaly, the counts as `key: value` lines (what the book
//! engine captures) and a verdict, and exits 1 when an `--expect` does not hold: a
//! chapter states both the violation and its fix as expectations.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use runner::cluster::settings::Settings;
use runner::cluster::topology::Service;
use runner::consistency::probe::{self, MonotonicFix, Node, RywFix};
use runner::consistency::{Expect, FinalState, History, check, expect, survivor};
use runner::load::{self, Ledger};

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
                    Some(survivor::gather(&history, &node(service)?, a.ledger.as_deref()).await?)
                }
            };
            judge(&a.common, survivor.as_ref())
        }
    }
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
    let failures = expect::failures(&common.expect, &anomalies);
    println!("verdict: {}", expect::verdict(&anomalies, &failures));
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
