//! Docker, through its API (bollard): finding the lab's containers, running commands
//! in them with a bound, reading their logs and network counters.
//!
//! Compose has no API, so bringing services up and down goes through the
//! `docker compose` CLI ([`crate::compose`]); everything the engine observes or does to
//! a running container goes through here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker as Bollard;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, LogsOptions, StatsOptions,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// A connection to the Docker Engine.
#[derive(Clone)]
pub struct Docker {
    docker: Bollard,
}

/// What a command run in a container produced.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Standard output and standard error, interleaved as they arrived.
    pub output: String,
    /// Standard output alone.
    pub stdout: String,
    /// The exit code; `None` when the command was stopped at its bound.
    pub exit_code: Option<i64>,
    /// Whether the bound was reached.
    pub timed_out: bool,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Where the client looks for the daemon, for error messages.
pub fn socket_description() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

impl Docker {
    /// Connects to the local daemon (honouring `DOCKER_HOST`), agrees on an API version
    /// and pings it, all within a few seconds. The error is one line naming the socket.
    pub async fn connect() -> Result<Docker> {
        let socket = socket_description();
        let connect = async {
            let docker = Bollard::connect_with_local_defaults()?;
            let docker = docker.negotiate_version().await?;
            docker.ping().await?;
            Ok::<_, bollard::errors::Error>(docker)
        };
        match tokio::time::timeout(Duration::from_secs(10), connect).await {
            Ok(Ok(docker)) => Ok(Docker { docker }),
            Ok(Err(err)) => Err(anyhow!("cannot reach Docker at {socket}: {err}")),
            Err(_) => Err(anyhow!(
                "cannot reach Docker at {socket}: no answer within 10 s"
            )),
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &Bollard {
        &self.docker
    }

    /// The container of `service` in compose project `project`, running or not.
    pub async fn container(
        &self,
        project: &str,
        service: &str,
    ) -> Result<Option<ContainerSummary>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("com.docker.compose.project={project}"),
                format!("com.docker.compose.service={service}"),
            ],
        )]);
        let mut found = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .with_context(|| format!("listing the containers of {service}"))?;
        // `docker compose run` adds one-off containers; prefer the service's own.
        found.sort_by_key(|c| {
            let oneoff = c
                .labels
                .as_ref()
                .and_then(|l| l.get("com.docker.compose.oneoff"))
                .is_some_and(|v| v == "True");
            let running = c.state.as_ref().map(|s| s.to_string()) == Some("running".into());
            (oneoff, !running)
        });
        Ok(found.into_iter().next())
    }

    /// The running container of `service`, or an error saying it is not running.
    pub async fn running_container(&self, project: &str, service: &str) -> Result<String> {
        let container = self.container(project, service).await?.with_context(|| {
            format!("service {service} has no container (is the cluster up? `runner up`)")
        })?;
        let state = container
            .state
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        if state != "running" {
            bail!("service {service} is not running (its container is {state})");
        }
        container.id.context("container without an id")
    }

    /// The bytes a service's running container has received and sent on all its networks
    /// since it started — the kernel's counters of its interfaces, read through the
    /// Docker API (`one_shot`: no second sample to wait for). Bounded by 10 s.
    pub async fn network_bytes(&self, project: &str, service: &str) -> Result<NetworkBytes> {
        let id = self.running_container(project, service).await?;
        let mut stats = self.docker.stats(
            &id,
            Some(StatsOptions {
                stream: false,
                one_shot: true,
            }),
        );
        let sample = tokio::time::timeout(Duration::from_secs(10), stats.next())
            .await
            .with_context(|| format!("no statistics of {service} within 10 s"))?
            .with_context(|| format!("no statistics of {service}"))?
            .with_context(|| format!("reading the statistics of {service}"))?;
        let networks = sample
            .networks
            .with_context(|| format!("{service} reports no network statistics"))?;
        Ok(networks
            .values()
            .fold(NetworkBytes::default(), |total, n| NetworkBytes {
                received: total.received + n.rx_bytes.unwrap_or(0),
                sent: total.sent + n.tx_bytes.unwrap_or(0),
            }))
    }

    /// The state and health of a service's container: `("running", Some("healthy"))`.
    pub async fn state(
        &self,
        project: &str,
        service: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let Some(container) = self.container(project, service).await? else {
            return Ok(None);
        };
        let id = container.id.unwrap_or_default();
        let inspect = self
            .docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .with_context(|| format!("inspecting the container of {service}"))?;
        let state = inspect.state.unwrap_or_default();
        let status = state.status.map(|s| s.to_string()).unwrap_or_default();
        let health = state.health.and_then(|h| h.status).map(|h| h.to_string());
        Ok(Some((status, health)))
    }

    /// Runs `cmd` in the running container of `service`, feeding `stdin` when given,
    /// and stops waiting after `timeout`. Commands that must not outlive their bound
    /// inside the container go through [`Engine::exec_bounded`].
    pub async fn exec(
        &self,
        project: &str,
        service: &str,
        cmd: &[String],
        stdin: Option<&str>,
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let id = self.running_container(project, service).await?;
        let exec = self
            .docker
            .create_exec(
                &id,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(stdin.is_some()),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("starting `{}` in {service}", cmd.join(" ")))?;
        let started = Instant::now();
        let mut out = ExecOutput::default();
        let run = async {
            match self.docker.start_exec(&exec.id, None).await? {
                StartExecResults::Attached {
                    mut output,
                    mut input,
                } => {
                    if let Some(text) = stdin {
                        input.write_all(text.as_bytes()).await?;
                        input.flush().await?;
                        input.shutdown().await?;
                    }
                    drop(input);
                    while let Some(chunk) = output.next().await {
                        use bollard::container::LogOutput;
                        match chunk? {
                            LogOutput::StdOut { message } => {
                                let text = String::from_utf8_lossy(&message);
                                out.stdout.push_str(&text);
                                out.output.push_str(&text);
                            }
                            LogOutput::StdErr { message } | LogOutput::Console { message } => {
                                out.output.push_str(&String::from_utf8_lossy(&message));
                            }
                            LogOutput::StdIn { .. } => {}
                        }
                    }
                }
                StartExecResults::Detached => {}
            }
            Ok::<_, anyhow::Error>(())
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => {
                result.with_context(|| format!("running `{}` in {service}", cmd.join(" ")))?;
                let inspect = self.docker.inspect_exec(&exec.id).await?;
                out.exit_code = inspect.exit_code;
            }
            Err(_) => out.timed_out = true,
        }
        out.elapsed = started.elapsed();
        Ok(out)
    }

    /// Runs `cmd` in `service` so that it cannot outlive `bound` inside the container:
    /// SIGINT at the bound (psql then cancels its query, as a reader's Ctrl-C would),
    /// SIGKILL 3 s later. A command stopped so is reported as timed out, with no exit
    /// status (`timeout`'s own 124/137 never reach the caller).
    pub async fn exec_bounded(
        &self,
        project: &str,
        service: &str,
        bound: Duration,
        cmd: &[&str],
        stdin: Option<&str>,
    ) -> Result<ExecOutput> {
        let wrapped = wrap_in_timeout(bound, cmd);
        let mut out = self
            .exec(
                project,
                service,
                &wrapped,
                stdin,
                bound + Duration::from_secs(8),
            )
            .await?;
        if matches!(out.exit_code, Some(124) | Some(137)) {
            out.timed_out = true;
        }
        if out.timed_out {
            out.exit_code = None;
        }
        Ok(out)
    }

    /// The last `lines` lines of a service's log.
    pub async fn logs_tail(&self, project: &str, service: &str, lines: usize) -> Result<String> {
        let Some(container) = self.container(project, service).await? else {
            return Ok(String::new());
        };
        let id = container.id.unwrap_or_default();
        let mut stream = self.docker.logs(
            &id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                tail: lines.to_string(),
                ..Default::default()
            }),
        );
        let mut text = String::new();
        let collect = async {
            while let Some(Ok(chunk)) = stream.next().await {
                text.push_str(&chunk.to_string());
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), collect).await;
        Ok(text)
    }

    /// Whether an image with this reference exists locally.
    pub async fn image_exists(&self, reference: &str) -> Result<bool> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(err) => Err(err).with_context(|| format!("inspecting image {reference}")),
        }
    }
}

/// `timeout -k 3 -s INT SECS CMD…`: SIGINT at the bound, SIGKILL 3 s later.
fn wrap_in_timeout(timeout: Duration, cmd: &[&str]) -> Vec<String> {
    let secs = format!("{:.1}", timeout.as_secs_f64().max(0.1));
    let mut wrapped: Vec<String> = ["timeout", "-k", "3", "-s", "INT", secs.as_str()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    wrapped.extend(cmd.iter().map(|s| s.to_string()));
    wrapped
}

/// A container's network counters, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkBytes {
    /// Received (`rx_bytes`).
    pub received: u64,
    /// Sent (`tx_bytes`).
    pub sent: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_wraps_with_timeout_int_then_kill() {
        let cmd = wrap_in_timeout(Duration::from_millis(2500), &["psql", "-X"]);
        assert_eq!(
            cmd,
            ["timeout", "-k", "3", "-s", "INT", "2.5", "psql", "-X"]
        );
    }
}
