//! placeholder until the helper lands it
#[derive(clap::Args)]
pub struct VerifyArgs {}
pub async fn run(
    _s: &runner::settings::Settings,
    _a: VerifyArgs,
) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not yet")
}
