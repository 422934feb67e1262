//! Repeated failovers: the same fault, many times, measured.
//!
//! One failover proves little. "Synchronous replication loses nothing" is a claim about
//! every failover, and "asynchronous replication loses writes" a claim about how many,
//! how often: both are distributions. [`run`] repeats one experiment `runs` times on
//! the lab cluster and reports each run and the distribution of the acknowledged
//! writes lost and of the RTO — Jepsen's method (a ledger of what the clients were
//! told, checked against what the survivor holds) applied to PostgreSQL's failover.
//!
//! # The life of a run
//!
//! 1. **reset** (`reset.rs`): a fresh cluster, configured for the mode — for the manual
//!    modes the chapter-4 cluster (primary, synchronous standby, pgbouncer with
//!    `server_login_retry = 1`), its primary turned asynchronous for `async`; for
//!    Patroni the chapter-6 cluster with every member streaming and
//!    `synchronous_mode` set. A reset works from any state the previous run, a failed
//!    run or a Ctrl-C left.
//! 2. **writer**: the course's load writer ([`crate::load`]) in this process, through
//!    pgbouncer (HAProxy for Patroni), every attempted and acknowledged op id in the
//!    run's ledger;
//! 3. **fault** (`fault.rs`), at a random moment ([`FAULT_WINDOW`] after the writer's
//!    first acknowledged writes, drawn from `--seed`): SIGKILL of the primary, a paused
//!    (hung) primary, or the synchronous standby stopped first and the primary killed
//!    two seconds later;
//! 4. **recover**: by hand for the manual modes (`manual.rs`, chapter 4's procedure as
//!    library calls: detect, fence, promote, re-route pgbouncer), by Patroni itself for
//!    the others (`automatic.rs`: wait for a new leader);
//! 5. **verify**: once writes resumed on the new primary the writer stops and the
//!    ledger is checked id by id on it ([`crate::verify`]): acknowledged, lost,
//!    recovered, unexpected; the **RTO**, the course's one definition (chapters 4 and 6
//!    measure it the same way): from the fault — the moment Docker reports the primary
//!    killed or frozen — to the first acknowledged write after it; the writer's longest
//!    time without an acknowledged write, `write_gap_s`, beside it; the commits whose
//!    SyncRep wait the writer cancelled (`syncrep_cancelled`).
//!
//! Every step is bounded (`STEP_TIMEOUT` and the waits' own bounds). A run that fails
//! before it can verify is reported as *unverified* with the reason — never as 0 lost —
//! and the next run resets the cluster.

mod automatic;
mod fault;
mod manual;
mod report;
mod reset;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::load::{self, LoadConfig, LoadObserver, Progress};
use crate::verify::{self, VerifyReport};
use lab_cluster::Cluster;
use lab_cluster::poll::{Look, poll_until};

pub use report::{
    ChaosReport, Column, Distribution, RunOutcome, RunResult, compare, summary_table,
};

/// The bound on one step of a run (a fault, a promotion, a re-routing).
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// When the fault falls: uniformly within this window after the writer first reported
/// acknowledged writes, so that it lands at any point of a transaction's life.
pub const FAULT_WINDOW: (Duration, Duration) =
    (Duration::from_millis(1500), Duration::from_millis(2500));
/// How long the writer goes on once writes resumed on the new primary.
const AFTER_RESUME: Duration = Duration::from_secs(1);

/// How the cluster replicates and who fails it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Primary + standby, asynchronous; failed over by hand (chapter 4's procedure).
    Async,
    /// Primary + synchronous standby; failed over by hand.
    Sync,
    /// Chapter 6's Patroni cluster, `synchronous_mode: false`.
    PatroniAsync,
    /// Chapter 6's Patroni cluster, `synchronous_mode: true`.
    PatroniSync,
}

impl Mode {
    /// Every mode, in the order `--help` lists them.
    pub const ALL: [Mode; 4] = [
        Mode::Async,
        Mode::Sync,
        Mode::PatroniAsync,
        Mode::PatroniSync,
    ];

    /// The mode's name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Async => "async",
            Mode::Sync => "sync",
            Mode::PatroniAsync => "patroni-async",
            Mode::PatroniSync => "patroni-sync",
        }
    }

    /// Whether commits wait for a standby.
    pub const fn synchronous(self) -> bool {
        matches!(self, Mode::Sync | Mode::PatroniSync)
    }

    /// Whether Patroni fails the cluster over (else the runner does, by hand).
    pub const fn automatic(self) -> bool {
        matches!(self, Mode::PatroniAsync | Mode::PatroniSync)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
                format!("unknown mode {s:?} (known: {})", names.join(", "))
            })
    }
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL of the primary's container: a crash.
    Kill,
    /// The primary's container paused: a hung node that still holds its sockets. It is
    /// fenced (killed) before the standby is promoted.
    Pause,
    /// The (synchronous) standby stopped, two seconds of writes, then SIGKILL of the
    /// primary: a double fault. The standby is started again and promoted.
    StandbyThenPrimary,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 3] = [Fault::Kill, Fault::Pause, Fault::StandbyThenPrimary];

    /// The fault's name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::StandbyThenPrimary => "standby-then-primary",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        Fault::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|m| m.name()).collect();
                format!("unknown fault {s:?} (known: {})", names.join(", "))
            })
    }
}

/// What to repeat.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// Replication mode and who fails over.
    pub mode: Mode,
    /// The fault injected in every run.
    pub fault: Fault,
    /// How many runs.
    pub runs: usize,
    /// The writer's concurrent connections.
    pub workers: usize,
    /// Where the runs' ledgers go (`run-01.ledger`, …); created if missing.
    pub dir: PathBuf,
    /// Seeds the fault times: the same seed draws the same delays.
    pub seed: u64,
}

/// The fault's delay of run `run` (1-based) in [`FAULT_WINDOW`], drawn from `seed`
/// (splitmix64 of seed and run: runs differ, a seed repeats).
pub fn fault_delay(seed: u64, run: usize) -> Duration {
    let mut z = seed.wrapping_add((run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
    let (lo, hi) = FAULT_WINDOW;
    lo + (hi - lo).mul_f64(unit)
}

/// What [`run`] tells its front end as it goes.
pub trait ChaosObserver: Send + Sync {
    /// A step of a run started (`reset`, `fault`, `promote`, …).
    fn step(&self, run: usize, what: &str);
    /// A run ended.
    fn run_done(&self, result: &RunResult);
}

/// Runs the experiment `config.runs` times, or until `stop` completes (Ctrl-C): the
/// runs finished by then are reported; the cluster is left for the next reset.
pub async fn run(
    cluster: &mut Cluster,
    config: &ChaosConfig,
    observer: &dyn ChaosObserver,
    stop: impl std::future::Future<Output = ()>,
) -> Result<ChaosReport> {
    std::fs::create_dir_all(&config.dir)
        .with_context(|| format!("creating {}", config.dir.display()))?;
    let started_at = chrono::Utc::now();
    let mut results = Vec::new();
    tokio::pin!(stop);
    let mut interrupted = false;
    for number in 1..=config.runs {
        tokio::select! {
            result = one_run(cluster, config, number, observer) => {
                observer.run_done(&result);
                results.push(result);
            }
            _ = &mut stop => {
                interrupted = true;
                break;
            }
        }
    }
    Ok(ChaosReport::new(config, started_at, results, interrupted))
}

/// One run, from reset to verdict; an error in any step makes it unverified.
async fn one_run(
    cluster: &mut Cluster,
    config: &ChaosConfig,
    number: usize,
    observer: &dyn ChaosObserver,
) -> RunResult {
    let started = Instant::now();
    observer.step(number, "reset");
    let reset = reset::reset(cluster, config.mode, number == 1).await;
    let reset_s = started.elapsed().as_secs_f64();
    let topology = match reset {
        Ok(topology) => topology,
        Err(err) => {
            return RunResult::unverified(number, reset_s, 0.0, format!("reset: {err:#}"));
        }
    };
    let run_started = Instant::now();
    let ledger = config.dir.join(format!("run-{number:02}.ledger"));
    let outcome = failover_under_load(cluster, config, number, &topology, &ledger, observer).await;
    let run_s = run_started.elapsed().as_secs_f64();
    let conditions = topology
        .conditions
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect();
    match outcome {
        Ok((times, measured, report)) => {
            let mut result = RunResult::verified(number, reset_s, run_s, times, measured, &report);
            result.conditions = conditions;
            result
        }
        Err(err) => RunResult::unverified(number, reset_s, run_s, format!("{err:#}")),
    }
}

/// Where the cluster stands after a reset: who is primary, who gets promoted, and
/// where the writer connects.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    /// The primary's service.
    pub primary: &'static str,
    /// The standby the manual procedure promotes (`None`: Patroni picks its own).
    pub standby: Option<&'static str>,
    /// The service the writer connects to.
    pub entry: &'static str,
    /// The settings the reset put in force and read back (name, value), reported with
    /// the run: what its numbers were measured under.
    pub conditions: Vec<(&'static str, String)>,
}

/// When each step of the failover completed, in seconds after the fault.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActionTimes {
    /// The old primary seen down: the operator's probe; for Patroni, a replica took the
    /// leader lock.
    pub detected_s: Option<f64>,
    /// The new primary accepts writes (`pg_promote` returned; for Patroni, its
    /// PostgreSQL left recovery).
    pub promoted_s: Option<f64>,
    /// The entry point (pgbouncer, HAProxy) sends writes to it.
    pub rerouted_s: Option<f64>,
}

/// What the run's ledger says about the fault.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// The fault's time on the writer's clock (seconds since its start).
    pub fault_s: f64,
    /// The delay drawn for it, after the writer's first report of acknowledged writes.
    pub fault_delay_s: f64,
    /// The RTO: seconds from the fault to the first acknowledged write after it (`None`:
    /// no write was acknowledged after it).
    pub rto_s: Option<f64>,
    /// Writes acknowledged before the fault.
    pub acked_before_fault: usize,
    /// Commits whose SyncRep wait the writer cancelled at its commit bound: committed
    /// locally, answered with a WARNING, not counted as acknowledged.
    pub syncrep_cancelled: usize,
}

impl Measured {
    /// The figures of `ledger` for a fault at `fault_s` on its clock.
    pub fn of(ledger: &load::Ledger, fault_s: f64, fault_delay_s: f64) -> Measured {
        let mut acks: Vec<f64> = ledger
            .ops
            .values()
            .filter_map(|r| r.acked_at())
            .map(|t| t.as_secs_f64())
            .collect();
        acks.sort_by(f64::total_cmp);
        let acked_before_fault = acks.iter().filter(|t| **t <= fault_s).count();
        let rto_s = acks.iter().find(|t| **t > fault_s).map(|t| t - fault_s);
        let syncrep_cancelled = ledger
            .ops
            .values()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Some(load::Outcome::Fail(_, load::ErrorClass::SyncRepCancelled))
                )
            })
            .count();
        Measured {
            fault_s,
            fault_delay_s,
            rto_s,
            acked_before_fault,
            syncrep_cancelled,
        }
    }
}

/// The writer's acknowledged transactions, from its once-a-second live line: the
/// latest line's time (since the writer's start) and count.
#[derive(Default)]
struct AckCounter {
    latest: std::sync::Mutex<(Duration, u64)>,
}

impl LoadObserver for AckCounter {
    fn progress(&self, progress: &Progress) {
        let mut latest = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *latest = (
            Duration::from_secs_f64(progress.elapsed_s),
            progress.acknowledged,
        );
    }
}

impl AckCounter {
    /// Waits until the writer reports its first acknowledged writes, for at most `bound`.
    async fn wait_first_ack(&self, bound: Duration) -> Result<()> {
        poll_until(
            "before the fault: a first acknowledged write",
            Instant::now() + bound,
            Duration::from_millis(50),
            || async {
                Ok(match self.latest() {
                    (_, 0) => Look::Pending("0 acknowledged".into()),
                    _ => Look::Ready(()),
                })
            },
        )
        .await?;
        Ok(())
    }

    fn latest(&self) -> (Duration, u64) {
        *self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until a write is acknowledged after `after` (a time on the writer's clock),
    /// for at most `bound`. A live line counts what was acknowledged up to its own
    /// time, so the baseline is the first line from after `after`, and the wait ends at
    /// the first line with more.
    async fn wait_ack_after(&self, after: Duration, bound: Duration, what: &str) -> Result<()> {
        let baseline = std::cell::Cell::new(None);
        poll_until(
            &format!("{what}: an acknowledged write"),
            Instant::now() + bound,
            Duration::from_millis(100),
            || async {
                let (at, acknowledged) = self.latest();
                if at < after {
                    return Ok(Look::Pending("no live line from after the re-route".into()));
                }
                Ok(match baseline.get() {
                    Some(base) if acknowledged > base => Look::Ready(()),
                    Some(base) => {
                        Look::Pending(format!("{acknowledged} acknowledged, as at {base}"))
                    }
                    None => {
                        baseline.set(Some(acknowledged));
                        Look::Pending(format!(
                            "{acknowledged} acknowledged at the first line after"
                        ))
                    }
                })
            },
        )
        .await?;
        Ok(())
    }
}

/// Writer on, fault, recovery, writer off, verification.
async fn failover_under_load(
    cluster: &Cluster,
    config: &ChaosConfig,
    number: usize,
    topology: &Topology,
    ledger: &Path,
    observer: &dyn ChaosObserver,
) -> Result<(ActionTimes, Measured, VerifyReport)> {
    let settings = &cluster.settings;
    let load_config = LoadConfig {
        workers: config.workers,
        ledger: Some(ledger.to_path_buf()),
        // A commit waiting for a standby that is gone is cancelled at this bound: the
        // server answers COMMIT with a WARNING (committed locally, maybe not
        // replicated), which the writer counts as syncrep_cancelled, not acknowledged.
        commit_timeout: Some(Duration::from_secs(3)),
        connect_timeout: Duration::from_secs(2),
        ..LoadConfig::new(settings.conninfo(topology.entry, "db")?, topology.entry)
    };
    let acks = Arc::new(AckCounter::default());
    // The writer's clock starts after this instant: a time on it measured from here is
    // never early.
    let writer_started = Instant::now();
    let writer = Writer::start(load_config, acks.clone());
    let delay = fault_delay(config.seed, number);

    let procedure = async {
        observer.step(number, "writer");
        acks.wait_first_ack(Duration::from_secs(15)).await?;
        tokio::time::sleep(delay).await;
        observer.step(number, &format!("fault: {}", config.fault));
        let (fault_at, times) = if config.mode.automatic() {
            automatic::fail_over(cluster, config.fault, topology, observer, number).await?
        } else {
            manual::fail_over(cluster, config.fault, topology, observer, number).await?
        };
        observer.step(number, "writes resuming");
        acks.wait_ack_after(
            writer_started.elapsed(),
            Duration::from_secs(60),
            "after the failover",
        )
        .await?;
        tokio::time::sleep(AFTER_RESUME).await;
        Ok::<_, anyhow::Error>((times, fault_at))
    };
    let outcome = procedure.await;
    let summary = writer.stop().await;
    let (times, fault_at) = outcome?;
    summary?;

    observer.step(number, "verify");
    let on = if config.mode.automatic() {
        automatic::leader(cluster).await?
    } else {
        topology.standby.context("no standby to verify on")?
    };
    let report = verify::verify(
        ledger,
        &settings.conninfo(on, "db")?,
        on,
        Duration::from_secs(30),
    )
    .await?;
    // The fault on the ledger's clock (seconds since the writer started).
    let parsed = load::Ledger::read(ledger)?;
    let start_epoch = parsed.header.start.timestamp_micros() as f64 / 1e6;
    let fault_s = fault_wall_clock(fault_at) - start_epoch;
    let measured = Measured::of(&parsed, fault_s, delay.as_secs_f64());
    if measured.acked_before_fault == 0 {
        bail!("no write was acknowledged before the fault: the run measured nothing");
    }
    Ok((times, measured, report))
}

/// The writer of one run: stopped by [`Writer::stop`], aborted when dropped (a run
/// cancelled by Ctrl-C must not leave a writer behind).
struct Writer {
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<load::LoadSummary>>>,
}

impl Writer {
    fn start(config: LoadConfig, observer: Arc<AckCounter>) -> Writer {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(load::run(config, observer, async {
            let _ = stop_rx.await;
        }));
        Writer {
            stop: Some(stop_tx),
            handle: Some(handle),
        }
    }

    /// Stops the writer (its in-flight transactions get the stop grace) and waits for
    /// its summary, for at most 15 s.
    async fn stop(mut self) -> Result<load::LoadSummary> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let handle = self
            .handle
            .as_mut()
            .context("the writer was already stopped")?;
        let joined = tokio::time::timeout(Duration::from_secs(15), handle)
            .await
            .context("the writer did not stop within 15 s")?;
        self.handle = None;
        joined
            .context("the writer's task failed")?
            .context("the writer")
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

/// The wall-clock time (seconds since the epoch) of an [`Instant`] in the past.
fn fault_wall_clock(at: Instant) -> f64 {
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    now - at.elapsed().as_secs_f64()
}

/// Seconds from `from` to now.
fn since(from: Instant) -> f64 {
    from.elapsed().as_secs_f64()
}
