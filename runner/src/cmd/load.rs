//! `runner load`: the write load, from the command line.
//!
//! A thin front end over [`runner::load`]: it turns a service name into a connection
//! string through the project's settings, stops the run on Ctrl-C or SIGTERM (so a
//! chapter's `background` step, or a reader, can end it and still get the summary),
//! shows the run's events on stderr as `load: ` lines (the live line once a second,
//! each new kind of error, notices; with `--quiet` only a fault of the writer itself),
//! and prints the summary: the k6-like text followed by `key: value` lines, or JSON.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use runner::cluster::settings::Settings;
use runner::cluster::topology::Service;
use runner::load::{self, ErrorSeen, LoadConfig, LoadObserver, Notice, Progress, StatementMode};

/// Write rentals and payments with a ledger of every acknowledged op id.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The service to write to (through its published port): pgbouncer, or a
    /// PostgreSQL service such as postgres-primary.
    #[arg(long, value_enum, default_value_t = Service::Pgbouncer)]
    pub target: Service,
    /// A libpq connection string to use instead of --target's (--target then only names it).
    #[arg(long)]
    pub conninfo: Option<String>,
    /// Concurrent connections, each running one transaction at a time.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Total transactions per second over all workers, or `unlimited`.
    #[arg(long, default_value = "unlimited", value_parser = parse_rate)]
    pub rate: Rate,
    /// How long to run (`10s`, `2m`, `1m30s`); without it, until Ctrl-C or SIGTERM.
    #[arg(long, value_parser = load::parse_duration)]
    pub duration: Option<Duration>,
    /// Write the ledger (every op id attempted, acknowledged or failed) to this file.
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// synchronous_commit for every transaction: off, local, remote_write, on,
    /// remote_apply. Set inside each transaction, so it holds through pgbouncer.
    #[arg(long, value_name = "LEVEL", value_parser = clap::builder::PossibleValuesParser::new(load::SYNCHRONOUS_COMMIT_LEVELS))]
    pub synchronous_commit: Option<String>,
    /// Client-side bound of one transaction: at it the client cancels the transaction
    /// (a commit waiting for a standby has then already committed locally: counted as
    /// syncrep_cancelled; otherwise as timeout). statement_timeout cannot end a SyncRep wait.
    #[arg(long, visible_alias = "statement-timeout", value_name = "D", value_parser = load::parse_duration)]
    pub commit_timeout: Option<Duration>,
    /// Bound of one connection attempt.
    #[arg(long, default_value = "5s", value_parser = load::parse_duration)]
    pub connect_timeout: Duration,
    /// At the end, how long in-flight transactions may finish before they are cancelled.
    #[arg(long, default_value = "1s", value_parser = load::parse_duration)]
    pub stop_grace: Duration,
    /// auto (prepared, or unnamed through a pgbouncer without max_prepared_statements),
    /// prepared, or unnamed.
    #[arg(long, default_value = "auto")]
    pub statements: StatementMode,
    /// Nothing on stderr: no live line, no error descriptions (the summary still says it all).
    #[arg(long, short)]
    pub quiet: bool,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A rate limit: tx/s, or `None` for unlimited (a newtype, as clap reads a bare
/// `Option` field as "the flag may be absent").
#[derive(Debug, Clone, Copy)]
pub struct Rate(pub Option<f64>);

fn parse_rate(text: &str) -> Result<Rate, String> {
    load::parse_rate(text).map(Rate)
}

/// Runs `runner load`.
pub async fn run(settings: &Settings, args: LoadArgs) -> Result<ExitCode> {
    let conninfo =
        settings.command_conninfo("target", args.target.name(), args.conninfo.as_deref())?;
    let config = LoadConfig {
        workers: args.workers,
        rate: args.rate.0,
        duration: args.duration,
        ledger: args.ledger,
        synchronous_commit: args.synchronous_commit,
        commit_timeout: args.commit_timeout,
        connect_timeout: args.connect_timeout,
        stop_grace: args.stop_grace,
        statements: args.statements,
        ..LoadConfig::new(conninfo, args.target.name())
    };
    let observer = Arc::new(Stderr::new("load", args.quiet));
    let summary = load::run(config, observer, shutdown_signal()).await?;
    if args.json {
        println!("{:#}", summary.to_json());
    } else {
        println!("{}", summary.human());
        print!("{}", summary.key_values());
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows the run's events on stderr, each as one `<prefix>: ` line (`load: `, `serve: `).
pub(super) struct Stderr {
    prefix: &'static str,
    /// Only faults of the writer itself (`--quiet`).
    quiet: bool,
}

impl Stderr {
    pub(super) fn new(prefix: &'static str, quiet: bool) -> Stderr {
        Stderr { prefix, quiet }
    }

    /// Writes one line to stderr in a single `write(2)`, so the workers' lines and the
    /// live line never interleave mid-line.
    fn say(&self, event: &dyn std::fmt::Display) {
        let line = format!("{}: {event}\n", self.prefix);
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

impl LoadObserver for Stderr {
    fn progress(&self, progress: &Progress) {
        if !self.quiet {
            self.say(progress);
        }
    }

    fn error(&self, error: &ErrorSeen) {
        if !self.quiet {
            self.say(error);
        }
    }

    fn notice(&self, notice: &Notice) {
        if !self.quiet || notice.is_warning() {
            self.say(notice);
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub(super) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
