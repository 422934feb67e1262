//! placeholder until the helper lands it
#[derive(clap::Args)]
pub struct LoadArgs {}
pub async fn run(
    _s: &runner::settings::Settings,
    _a: LoadArgs,
) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not yet")
}
