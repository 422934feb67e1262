//! `runner chaos`: repeated failovers, from the command line.
//!
//! A thin front end over [`runner::chaos`]: each run's line as it ends, the table and
//! the distributions at the end, the result file for `--compare`, and the exit code a
//! chapter's check relies on (`--expect-no-loss`, `--expect-loss`). Ctrl-C ends the
//! experiment after reporting the runs done; the next `runner chaos` (or `runner down`)
//! starts from whatever the interrupted run left.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use runner::chaos::{self, ChaosConfig, ChaosObserver, ChaosReport, Fault, Mode, RunResult};
use runner::cluster::Cluster;
use runner::cluster::settings::Settings;
use runner::verify::Expectation;

use super::load::shutdown_signal;

/// Repeat a failover and report the distributions of lost writes and RTO (fault to the
/// first acknowledged write after it).
#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// async or sync (the chapter-4 cluster, failed over by hand), patroni-async or
    /// patroni-sync (chapter 6's cluster, failed over by Patroni).
    #[arg(long, required_unless_present = "compare")]
    mode: Option<Mode>,
    /// The fault of every run: kill (SIGKILL of the primary), pause (a hung primary,
    /// fenced before the promotion), standby-then-primary (the standby killed, the
    /// primary 2 s later).
    #[arg(long, default_value = "kill")]
    fault: Fault,
    /// How many runs.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    runs: u16,
    /// The writer's concurrent connections.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Where the runs' ledgers go (default: chaos-MODE-FAULT/).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The result file (default: chaos-MODE-FAULT.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit 1 unless every run was verified and none lost an acknowledged write.
    #[arg(long, conflicts_with = "expect_loss")]
    expect_no_loss: bool,
    /// Exit 1 unless every run was verified and at least one lost acknowledged writes.
    #[arg(long)]
    expect_loss: bool,
    /// Seeds the fault times (uniform in 1.5–2.5 s after the writer's first
    /// acknowledged writes): the same seed repeats them. Default: drawn from the clock,
    /// and printed (`seed:`).
    #[arg(long)]
    seed: Option<u64>,
    /// Each run's steps on stderr as they happen.
    #[arg(long, short)]
    verbose: bool,
    /// Read result files and lay them side by side (no cluster needed).
    #[arg(long, num_args = 1.., value_name = "RESULT", conflicts_with = "mode")]
    compare: Vec<PathBuf>,
    /// With --compare: the per-run figure — rto_s, write_gap_s, lost, lost_per_10k,
    /// syncrep_cancelled, rerouted_s or fault_s.
    #[arg(long, default_value = "rto_s", requires = "compare")]
    column: chaos::Column,
}

/// Prints each run as it ends (stdout) and, with `--verbose`, each step (stderr).
struct Terminal {
    runs: usize,
    verbose: bool,
}

impl ChaosObserver for Terminal {
    fn step(&self, run: usize, what: &str) {
        if self.verbose {
            let _ = writeln!(std::io::stderr(), "chaos: run {run}: {what}");
        }
    }

    fn run_done(&self, result: &RunResult) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", result.line(self.runs));
        let _ = out.flush();
    }
}

/// Runs `runner chaos`.
pub async fn run(settings: &Settings, args: ChaosArgs) -> Result<ExitCode> {
    if !args.compare.is_empty() {
        let reports = args
            .compare
            .iter()
            .map(|p| ChaosReport::read(p))
            .collect::<Result<Vec<_>>>()?;
        print!("{}", chaos::compare(&reports, args.column)?);
        println!();
        print!("{}", chaos::summary_table(&reports));
        return Ok(ExitCode::SUCCESS);
    }
    let mode = args.mode.context("--mode is required")?;
    let stem = format!("chaos-{mode}-{}", args.fault);
    let config = ChaosConfig {
        mode,
        fault: args.fault,
        runs: usize::from(args.runs),
        workers: args.workers,
        dir: args.dir.unwrap_or_else(|| PathBuf::from(&stem)),
        seed: args.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        }),
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{stem}.json")));
    let mut cluster = Cluster::connect(settings.clone()).await?;
    let observer = Terminal {
        runs: config.runs,
        verbose: args.verbose,
    };
    let report = chaos::run(&mut cluster, &config, &observer, shutdown_signal()).await?;
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!();
    print!("{}", report.text());
    println!("result: {}", out.display());
    if report.interrupted {
        eprintln!(
            "chaos: interrupted after {} of {} runs; the cluster is as the last run left it \
             (the next runner chaos resets it; runner down removes it)",
            report.runs.len(),
            config.runs
        );
        return Ok(ExitCode::from(130));
    }
    let expectation = Expectation::from_flags(args.expect_no_loss, args.expect_loss);
    match report.failure(expectation) {
        Some(why) => {
            eprintln!("chaos: {why}");
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
