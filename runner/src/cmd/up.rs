//! `runner up`.

use std::process::ExitCode;

use runner::cluster::{Cluster, DEFAULT_SERVICES};
use runner::images::BaseWay;
use runner::settings::Settings;

/// Arguments of `runner up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Also start these standbys: async, delayed (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = ["async", "delayed"])]
    with: Vec<String>,
    /// Where the images' Debian base comes from.
    #[arg(long, value_enum, default_value = "auto")]
    base: BaseWay,
}

pub async fn run(settings: Settings, args: UpArgs) -> anyhow::Result<ExitCode> {
    let mut services: Vec<String> = DEFAULT_SERVICES.iter().map(|s| s.to_string()).collect();
    services.extend(args.with.iter().map(|w| format!("postgres-{w}-standby")));
    let services: Vec<&str> = services.iter().map(String::as_str).collect();
    let mut cluster = Cluster::connect(settings).await?;
    cluster.up(&services, args.base).await?;
    Ok(ExitCode::SUCCESS)
}
