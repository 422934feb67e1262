//! `runner up`.

use std::process::ExitCode;

use runner::cluster::images::BaseWay;
use runner::cluster::settings::Settings;
use runner::cluster::{Cluster, DEFAULT_SERVICES};

/// Arguments of `runner up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Also start these standbys: async, delayed (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = ["async", "delayed"])]
    with: Vec<String>,
    /// Which cluster: the streaming one of chapters 1-5, or chapter 6's Patroni cluster
    /// (etcd1..3, patroni1..3, haproxy; compose profile `patroni`).
    #[arg(long, default_value = "streaming", value_parser = ["streaming", "patroni"], conflicts_with = "with")]
    cluster: String,
    /// Where the images' Debian base comes from.
    #[arg(long, value_enum, default_value = "auto")]
    base: BaseWay,
}

pub async fn run(settings: Settings, args: UpArgs) -> anyhow::Result<ExitCode> {
    let mut services: Vec<String> = DEFAULT_SERVICES.iter().map(|s| s.to_string()).collect();
    services.extend(args.with.iter().map(|w| format!("postgres-{w}-standby")));
    if args.cluster == "patroni" {
        services = runner::cluster::patroni::services()
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    let services: Vec<&str> = services.iter().map(String::as_str).collect();
    let mut cluster = Cluster::connect(settings).await?;
    cluster.up(&services, args.base).await?;
    Ok(ExitCode::SUCCESS)
}
