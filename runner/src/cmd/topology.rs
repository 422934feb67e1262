//! `runner topology`: prints the cluster's shape now ([`runner::watch::topology`]).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use runner::cluster::settings::Settings;

pub async fn run(settings: &Settings) -> Result<ExitCode> {
    let (state, notes) = runner::watch::topology::current(settings).await;
    let mut out = std::io::stdout().lock();
    out.write_all(state.to_string().as_bytes())
        .and_then(|()| out.flush())
        .context("writing the table")?;
    for note in &notes {
        eprintln!("note: {note}");
    }
    Ok(ExitCode::SUCCESS)
}
