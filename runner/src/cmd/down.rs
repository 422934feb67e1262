//! `runner down`.

use std::process::ExitCode;

use runner::cluster::Cluster;
use runner::cluster::settings::Settings;

/// Arguments of `runner down`.
#[derive(clap::Args)]
pub struct DownArgs {
    /// Also remove the data volumes (the next `up` starts from nothing).
    #[arg(long, short = 'v')]
    volumes: bool,
}

pub async fn run(settings: Settings, args: DownArgs) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::connect(settings).await?;
    cluster.down(args.volumes).await?;
    Ok(ExitCode::SUCCESS)
}
