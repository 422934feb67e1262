//! `runner serve`: the application tier k6 writes through, from the command line.
//!
//! A thin front end over [`runner::serve`]: it resolves the target and the listening
//! port from the project's settings (`APP_PORT` in `compose/.env`), prints one line
//! once the port listens, shows the app's events on stderr as `serve: ` lines (as
//! `runner load` shows its own), stops on Ctrl-C or SIGTERM and prints its summary.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use runner::cluster::settings::Settings;
use runner::cluster::topology::Service;
use runner::load::{self, LoadConfig, StatementMode};
use runner::serve::{self, ServeConfig};

use super::load::{Stderr, shutdown_signal};

/// The port the app listens on when `APP_PORT` is not set.
const DEFAULT_APP_PORT: u16 = 18080;

/// Serve `POST /rentals` over HTTP, writing through pgbouncer (for k6).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The service to write to (through its published port).
    #[arg(long, value_enum, default_value_t = Service::Pgbouncer)]
    pub target: Service,
    /// A libpq connection string to use instead of --target's (--target then only names it).
    #[arg(long)]
    pub conninfo: Option<String>,
    /// Where to listen; 127.0.0.1 and compose/.env's APP_PORT when absent.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Connections to the database at most (requests beyond them wait, within --connect-timeout).
    #[arg(long, default_value_t = 16)]
    pub pool: usize,
    /// synchronous_commit for every transaction: off, local, remote_write, on, remote_apply.
    #[arg(long, value_name = "LEVEL", value_parser = clap::builder::PossibleValuesParser::new(load::SYNCHRONOUS_COMMIT_LEVELS))]
    pub synchronous_commit: Option<String>,
    /// Bound of one commit: at it the transaction is cancelled and the answer is 504.
    #[arg(long, default_value = "5s", value_parser = load::parse_duration)]
    pub commit_timeout: Duration,
    /// Bound of a wait for a pool slot, and of one connection attempt: at it, 503.
    #[arg(long, default_value = "2s", value_parser = load::parse_duration)]
    pub connect_timeout: Duration,
    /// After Ctrl-C, how long in-flight requests may finish.
    #[arg(long, default_value = "1s", value_parser = load::parse_duration)]
    pub stop_grace: Duration,
    /// auto, prepared, or unnamed (as for `runner load`).
    #[arg(long, default_value = "auto")]
    pub statements: StatementMode,
    /// Nothing on stderr but faults of the app itself.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `runner serve`.
pub async fn run(settings: &Settings, args: ServeArgs) -> Result<ExitCode> {
    let conninfo =
        settings.command_conninfo("target", args.target.name(), args.conninfo.as_deref())?;
    let listen = match args.listen {
        Some(listen) => listen,
        None => {
            let port = match settings.vars.get("APP_PORT") {
                Some(port) => port
                    .parse()
                    .with_context(|| format!("APP_PORT={port:?} is not a port number"))?,
                None => DEFAULT_APP_PORT,
            };
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        }
    };
    let config = ServeConfig {
        database: LoadConfig {
            workers: args.pool,
            synchronous_commit: args.synchronous_commit,
            commit_timeout: Some(args.commit_timeout),
            connect_timeout: args.connect_timeout,
            statements: args.statements,
            ..LoadConfig::new(conninfo, args.target.name())
        },
        listen,
        stop_grace: args.stop_grace,
    };
    let target = args.target.name();
    let pool = args.pool;
    let observer = Arc::new(Stderr::new("serve", args.quiet));
    let summary = serve::serve(
        config,
        observer,
        |addr| {
            println!("serving POST http://{addr}/rentals -> {target} (pool of {pool} connections)")
        },
        shutdown_signal(),
    )
    .await?;
    print!("{}", summary.key_values());
    Ok(ExitCode::SUCCESS)
}
