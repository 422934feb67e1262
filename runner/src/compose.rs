//! The `docker compose` CLI, run for the lab's project with the lab's environment.
//!
//! Compose is the contract the reader uses (`docker compose up --build -d pgbouncer`),
//! and it has no API, so the runner calls the same CLI the reader types — with the
//! project name, base image and ports of [`Settings`] in its environment, so that a
//! chapter's `sh` steps and the runner address the same cluster.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use crate::settings::Settings;

/// The environment every `docker compose` call and every `sh` step gets.
pub fn environment(settings: &Settings) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = settings
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.push((
        "COMPOSE_PROJECT_NAME".into(),
        settings.project().to_string(),
    ));
    // Plain progress: no cursor tricks in captured output.
    env.push(("COMPOSE_PROGRESS".into(), "plain".into()));
    env.push(("COMPOSE_ANSI".into(), "never".into()));
    env
}

/// A `docker compose` command for the lab's project, run in `compose/`.
pub fn command(settings: &Settings, args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.arg("compose")
        .args(args)
        .current_dir(settings.compose_dir())
        .envs(environment(settings))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs `docker compose ARGS`, bounded by `timeout`, and returns its combined output;
/// fails with that output when compose fails. With `echo`, the output also goes to
/// stderr as it arrives (long builds show progress).
pub async fn run(
    settings: &Settings,
    args: &[&str],
    timeout: Duration,
    echo: bool,
) -> Result<String> {
    let shown = format!("docker compose {}", args.join(" "));
    let mut cmd = command(settings, args);
    let child = if echo {
        cmd.stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()
    }
    .with_context(|| {
        format!("starting `{shown}` (is the docker CLI with the compose plugin installed?)")
    })?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(output) => output.with_context(|| format!("running `{shown}`"))?,
        Err(_) => bail!("`{shown}` did not finish within {} s", timeout.as_secs()),
    };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("`{shown}` failed ({}):\n{}", output.status, text.trim_end());
    }
    Ok(text)
}
