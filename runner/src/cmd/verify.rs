//! `runner verify`: the loss check of a ledger against a node, from the command line.
//!
//! It prints the set check's counts as `key: value` lines (what the book engine
//! captures), a verdict, and exits 1 when `--expect-no-loss` or `--expect-loss` does not
//! hold — the two claims the course's failover chapters make.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use runner::cluster::settings::Settings;
use runner::cluster::topology::Service;
use runner::load;
use runner::verify::{self, Expectation};

/// Check a ledger against a node: ok, lost, recovered, unexpected writes.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The ledger `runner load --ledger` wrote.
    #[arg(long)]
    pub ledger: PathBuf,
    /// The service whose rows to check (through its published port).
    #[arg(long, value_enum, default_value_t = Service::PostgresPrimary)]
    pub on: Service,
    /// A libpq connection string to use instead of --on's (--on then only names it).
    #[arg(long)]
    pub conninfo: Option<String>,
    /// Fail (exit 1) if any acknowledged write is lost or any row was never attempted.
    #[arg(long, conflicts_with = "expect_loss")]
    pub expect_no_loss: bool,
    /// Fail (exit 1) unless some acknowledged write is lost.
    #[arg(long)]
    pub expect_loss: bool,
    /// Bound of the connection and the query.
    #[arg(long, default_value = "30s", value_parser = load::parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON instead of `key: value` lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs `runner verify`.
pub async fn run(settings: &Settings, args: VerifyArgs) -> Result<ExitCode> {
    let conninfo =
        settings.command_conninfo("service", args.on.name(), args.conninfo.as_deref())?;
    let report = verify::verify(&args.ledger, &conninfo, args.on.name(), args.timeout).await?;
    for note in &report.notes {
        eprintln!("verify: note: {note}");
    }
    if args.json {
        println!("{:#}", report.to_json());
    } else {
        print!("{}", report.key_values());
        println!("verdict: {}", report.verdict());
    }
    let expectation = Expectation::from_flags(args.expect_no_loss, args.expect_loss);
    if let Some(why) = expectation.and_then(|e| e.failure(&report)) {
        eprintln!("verify: {why}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
