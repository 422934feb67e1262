//! `runner net`: the bytes a service's container has received and sent.
//!
//! What crosses the network between nodes is what a replication strategy costs on the
//! wire; the kernel counts it per interface, and Docker reports it per container.
//! Chapter 8 reads the counters before and after the same workload under each strategy:
//! `rx_bytes` of the node that receives the changes.

use std::process::ExitCode;

use anyhow::Result;
use runner::cluster::docker::Docker;
use runner::cluster::settings::Settings;
use runner::cluster::topology::Service;

/// Print a service's network counters: `rx_bytes: N` and `tx_bytes: N`.
#[derive(Debug, clap::Args)]
pub struct NetArgs {
    /// The service whose container to read.
    #[arg(value_enum)]
    pub service: Service,
}

/// Runs `runner net`.
pub async fn run(settings: &Settings, args: NetArgs) -> Result<ExitCode> {
    let docker = Docker::connect().await?;
    let bytes = docker
        .network_bytes(settings.project(), args.service.name())
        .await?;
    println!("rx_bytes: {}", bytes.received);
    println!("tx_bytes: {}", bytes.sent);
    Ok(ExitCode::SUCCESS)
}
