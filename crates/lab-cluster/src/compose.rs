//! The `docker compose` CLI, run for the lab's project with the lab's environment.
//!
//! Compose is the contract the reader uses (`docker compose up --build -d pgbouncer`),
//! and it has no API, so the runner calls the same CLI the reader types — with the
//! project name, base image and ports of [`Settings`] in its environment, so that a
//! chapter's `sh` steps and the runner address the same cluster.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
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
/// fails with that output when compose fails. With `echo`, each line also goes to
/// stderr as it arrives, so long builds and waits show their progress.
pub async fn run(
    settings: &Settings,
    args: &[&str],
    timeout: Duration,
    echo: bool,
) -> Result<String> {
    let shown = format!("docker compose {}", args.join(" "));
    let mut child = command(settings, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("starting `{shown}` (is the docker CLI with the compose plugin installed?)")
        })?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let collect = async {
        let mut text = String::new();
        let mut out = stdout.map(|s| BufReader::new(s).lines());
        let mut err = stderr.map(|s| BufReader::new(s).lines());
        let mut keep = |line: String| {
            if echo {
                tracing::info!("  {line}");
            }
            text.push_str(&line);
            text.push('\n');
        };
        loop {
            tokio::select! {
                line = next_line(&mut out), if out.is_some() => match line {
                    Some(line) => keep(line),
                    None => out = None,
                },
                line = next_line(&mut err), if err.is_some() => match line {
                    Some(line) => keep(line),
                    None => err = None,
                },
                else => break,
            }
        }
        let status = child.wait().await;
        (text, status)
    };
    let (text, status) = match tokio::time::timeout(timeout, collect).await {
        Ok(done) => done,
        Err(_) => bail!("`{shown}` did not finish within {} s", timeout.as_secs()),
    };
    let status = status.with_context(|| format!("running `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status}):\n{}", text.trim_end());
    }
    Ok(text)
}

async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    lines: &mut Option<tokio::io::Lines<R>>,
) -> Option<String> {
    match lines {
        Some(lines) => lines.next_line().await.ok().flatten(),
        None => None,
    }
}
