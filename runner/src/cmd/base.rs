//! `runner base`: the Debian base the images build from, made when missing.
//!
//! Prints the image reference on standard output (progress goes to stderr), so a reader
//! types `export BASE_IMAGE=$(runner base)` before `docker compose up --build`: on a
//! machine that reaches Docker Hub it prints `debian:trixie-slim`; on one with no
//! registry it builds a base with debootstrap and prints its tag. The compose file then
//! builds as typed on both kinds of machine.

use std::process::ExitCode;

use runner::cluster::docker::Docker;
use runner::cluster::images::{self, BaseWay, Suite};
use runner::cluster::settings::Settings;

/// Arguments of `runner base`.
#[derive(clap::Args)]
pub struct BaseArgs {
    /// Where the base comes from.
    #[arg(long, value_enum, default_value = "auto")]
    base: BaseWay,
    /// The Debian release: trixie (every image) or bookworm (chapter 7's PostgreSQL 15,
    /// `export BASE_IMAGE_BOOKWORM=$(runner base --suite bookworm)`).
    #[arg(long, value_enum, default_value = "trixie")]
    suite: Suite,
}

pub async fn run(settings: Settings, args: BaseArgs) -> anyhow::Result<ExitCode> {
    let engine = Docker::connect().await?;
    let image = images::ensure_base(&settings, &engine, args.base, args.suite).await?;
    println!("{image}");
    Ok(ExitCode::SUCCESS)
}
