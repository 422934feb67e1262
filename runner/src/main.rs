//! `runner`: the command line of the PostgreSQL Replication Deep Dive.
//!
//! Fatal errors print as one line with their cause chain (as ripgrep does) and exit 2;
//! a run whose steps or checks did not hold exits 1.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Runs the course's cluster, its chapters' steps, its load writer and its book build.
#[derive(Parser)]
#[command(name = "runner", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the images if needed, start the cluster and wait until every standby streams.
    Up(cmd::up::UpArgs),
    /// Print the Debian base image the lab's images build from, making it when missing
    /// (`export BASE_IMAGE=$(runner base)` before `docker compose up --build`).
    Base(cmd::base::BaseArgs),
    /// Stop and remove the cluster's containers (and volumes with --volumes).
    Down(cmd::down::DownArgs),
    /// One row per node: role, state, sync_state, replay lag, slot; pgbouncer's cl_waiting.
    Status,
    /// Run a chapter's steps against the cluster, streaming them, and re-record them.
    Exec(cmd::exec::ExecArgs),
    /// Offline: does every lab block have a record made from its current text, and did every check hold?
    Check,
    /// Render the book to book/book/ (offline from the records, or --live).
    Book(cmd::book::BookArgs),
    /// Write rentals and payments, recording every attempted and acknowledged id in a ledger.
    Load(cmd::load::LoadArgs),
    /// Print the bytes a service's container has received and sent (rx_bytes, tx_bytes).
    Net(cmd::net::NetArgs),
    /// Serve POST /rentals over HTTP, writing through pgbouncer: the application tier k6 drives.
    Serve(cmd::serve::ServeArgs),
    /// Check a ledger against a node: acknowledged writes present, lost, recovered, unexpected.
    Verify(cmd::verify::VerifyArgs),
    /// Probe what readers see (read-your-writes, monotonic reads, vanished reads) and count the anomalies.
    Consistency(cmd::consistency::ConsistencyArgs),
    /// Repeat a failover (--mode async|sync|patroni-async|patroni-sync, --runs N): lost writes and RTO as distributions.
    Chaos(cmd::chaos::ChaosArgs),
    /// Watch replication live: roles, timelines, lag, slots, SyncRep waits, pgbouncer, the writer (q quits, p pauses).
    Watch(cmd::watch::WatchArgs),
    /// One table of the cluster's shape now: each node's role, timeline, upstream, sync state and lag, where pgbouncer/HAProxy send writes, down nodes.
    Topology,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cmd::console::init_logging();
    let result = match cli.command {
        Command::Check => cmd::check::run(),
        Command::Book(args) => cmd::book::run(args),
        command => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(run_async(command)),
            Err(err) => Err(anyhow::Error::new(err).context("starting the async runtime")),
        },
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("runner: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run_async(command: Command) -> anyhow::Result<ExitCode> {
    let settings = runner::cluster::settings::Settings::discover()?;
    match command {
        Command::Up(args) => cmd::up::run(settings, args).await,
        Command::Base(args) => cmd::base::run(settings, args).await,
        Command::Down(args) => cmd::down::run(settings, args).await,
        Command::Status => cmd::status::run(settings).await,
        Command::Exec(args) => cmd::exec::run(settings, args).await,
        Command::Load(args) => cmd::load::run(&settings, args).await,
        Command::Net(args) => cmd::net::run(&settings, args).await,
        Command::Serve(args) => cmd::serve::run(&settings, args).await,
        Command::Verify(args) => cmd::verify::run(&settings, args).await,
        Command::Consistency(args) => cmd::consistency::run(&settings, args).await,
        Command::Watch(args) => cmd::watch::run(&settings, args).await,
        Command::Topology => cmd::topology::run(&settings).await,
        Command::Chaos(args) => cmd::chaos::run(&settings, args).await,
        Command::Check | Command::Book(_) => unreachable!("handled without a runtime"),
    }
}
