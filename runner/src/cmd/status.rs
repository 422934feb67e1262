//! `runner status`.

use std::process::ExitCode;

use runner::cluster::Cluster;
use runner::cluster::settings::Settings;
use runner::lab::text_table::table;

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let cluster = Cluster::connect(settings).await?;
    let (nodes, cl_waiting) = cluster.status().await?;
    let rows: Vec<Vec<String>> = nodes
        .into_iter()
        .map(|n| {
            vec![
                n.service,
                n.container,
                n.role,
                n.state,
                n.sync_state,
                n.replay_lag,
                n.slot_active,
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "node",
                "container",
                "role",
                "state",
                "sync_state",
                "replay_lag",
                "slot_active"
            ],
            &rows
        )
    );
    match cl_waiting {
        Some(n) => println!("pgbouncer: cl_waiting = {n}"),
        None => println!("pgbouncer: not running"),
    }
    if let Some(patroni) = runner::cluster::patroni::status(&cluster).await? {
        print!("\n{patroni}");
    }
    Ok(ExitCode::SUCCESS)
}
