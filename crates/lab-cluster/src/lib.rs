//! Bringing the lab cluster up and down, waiting for it, and reporting its state.
//!
//! `up` builds what is missing, starts the services through compose, then waits —
//! bounded — until every standby that is up streams from the primary, as the primary's
//! `pg_stat_replication` says. `status` reads the same views a reader would query.

pub use lab_core::{settings, topology, topology_state};

pub mod compose;
pub mod docker;
pub mod haproxy;
pub mod images;
pub mod patroni;
pub mod pg;
pub mod poll;
pub mod session;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::docker::Docker;
use crate::settings::Settings;
use crate::topology::Service;
use images::{BaseWay, Suite};
use poll::{Look, PollError, pending_on_error, poll_until};

/// The streaming cluster's PostgreSQL services, primary first.
pub const POSTGRES_SERVICES: &[&str] = &[
    Service::PostgresPrimary.name(),
    Service::PostgresSyncStandby.name(),
    Service::PostgresAsyncStandby.name(),
    Service::PostgresDelayedStandby.name(),
];

/// The services `up` starts when none are named: the agenda's first step.
pub const DEFAULT_SERVICES: &[&str] = &[
    Service::DEFAULT_UP[0].name(),
    Service::DEFAULT_UP[1].name(),
    Service::DEFAULT_UP[2].name(),
];

/// How long to wait for standbys to stream after compose reports them started.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(90);

/// A handle on the lab cluster: settings plus a Docker connection.
#[derive(Clone)]
pub struct Cluster {
    /// The project's settings (with `BASE_IMAGE`, and `BASE_IMAGE_BOOKWORM` where needed,
    /// resolved once [`Cluster::prepare_images`] ran).
    pub settings: Settings,
    /// The Docker connection.
    pub docker: Docker,
    /// The Debian releases whose base was resolved in this process.
    pub bases_resolved: Vec<Suite>,
}

/// One row of `runner status`.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    /// The compose service.
    pub service: String,
    /// The container's state and health, e.g. `running (healthy)`.
    pub container: String,
    /// `primary`, `standby`, or `-` when unreachable.
    pub role: String,
    /// `pg_stat_replication.state` on the primary for this standby.
    pub state: String,
    /// `pg_stat_replication.sync_state`.
    pub sync_state: String,
    /// `pg_stat_replication.replay_lag`.
    pub replay_lag: String,
    /// Whether the standby's slot is active.
    pub slot_active: String,
}

impl Cluster {
    /// Connects to Docker for the project described by `settings`.
    pub async fn connect(settings: Settings) -> Result<Cluster> {
        let docker = Docker::connect().await?;
        Ok(Cluster {
            settings,
            docker,
            bases_resolved: Vec::new(),
        })
    }

    /// Resolves the base images the Dockerfile builds from for `suites` (making them if
    /// needed) and puts them in the environment of every later compose call and `sh`
    /// step (`BASE_IMAGE`, `BASE_IMAGE_BOOKWORM`). A base named in the environment is
    /// taken as it is.
    pub async fn prepare_images(&mut self, way: BaseWay, suites: &[Suite]) -> Result<()> {
        for &suite in suites {
            if way == BaseWay::Auto
                && (std::env::var_os(suite.variable()).is_some()
                    || self.bases_resolved.contains(&suite))
            {
                continue;
            }
            let base = images::ensure_base(&self.settings, &self.docker, way, suite).await?;
            self.settings.vars.insert(suite.variable().into(), base);
            self.bases_resolved.push(suite);
        }
        Ok(())
    }

    /// The running/health state of each named service.
    async fn all_healthy(&self, services: &[&str]) -> Result<bool> {
        for service in services {
            match self.docker.state(self.settings.project(), service).await? {
                Some((state, health))
                    if state == "running"
                        && health.as_deref().unwrap_or("healthy") == "healthy" => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Starts `services` (and what they depend on), building images as needed, and
    /// waits until every running standby streams. A no-op that says so when they
    /// already run and are healthy.
    pub async fn up(&mut self, services: &[&str], way: BaseWay) -> Result<()> {
        self.start(services, way, true).await
    }

    /// [`Cluster::up`], building the images first only with `build` (a caller that
    /// restarts the same cluster many times, like `runner chaos`, builds once).
    pub async fn start(&mut self, services: &[&str], way: BaseWay, build: bool) -> Result<()> {
        for service in services {
            if Service::from_name(service).is_none() {
                bail!("unknown service {service:?} (known: {})", Service::names());
            }
        }
        if self.all_healthy(services).await? {
            tracing::info!(
                "cluster {}: already up ({})",
                self.settings.project(),
                services.join(", ")
            );
            return Ok(());
        }
        let mut suites = vec![Suite::Trixie];
        if services
            .iter()
            .any(|s| Service::from_name(s).is_some_and(|s| s.suite() == Suite::Bookworm))
        {
            suites.push(Suite::Bookworm);
        }
        self.prepare_images(way, &suites).await?;
        let started = Instant::now();
        let mut args = vec!["up", "-d", "--wait", "--wait-timeout", "120"];
        if build {
            args.push("--build");
        }
        args.extend(services.iter().copied());
        tracing::info!(
            "cluster {}: starting {}",
            self.settings.project(),
            services.join(", ")
        );
        if let Err(err) = compose::run(&self.settings, &args, Duration::from_secs(900), false).await
        {
            return Err(self.explain_up_failure(err).await);
        }
        if patroni::involves(services) {
            patroni::wait_ready(self, patroni::READY_TIMEOUT).await?;
        } else {
            self.wait_streaming(STREAM_TIMEOUT).await?;
        }
        tracing::info!(
            "cluster {}: up in {:.1} s",
            self.settings.project(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Turns compose's failure into what the reader needs: the port taken and by
    /// which service, the failing build step, or the node's last log lines.
    async fn explain_up_failure(&self, err: anyhow::Error) -> anyhow::Error {
        let text = format!("{err:#}");
        for service in Service::ALL {
            let var = service.port_var();
            if let Ok(port) = self.settings.var(var) {
                let needle = format!("127.0.0.1:{port}");
                if text.contains(&needle)
                    && (text.contains("already allocated")
                        || text.contains("address already in use"))
                {
                    return anyhow::anyhow!(
                        "port {port} on 127.0.0.1 (service {service}, {var} in compose/.env) is already in use; \
                         stop what holds it or set {var} to a free port"
                    );
                }
            }
        }
        if text.contains("failed to solve")
            || text.contains("did not complete successfully")
            || text.contains("failed to build")
        {
            return err.context("building the images failed: the failing step is shown above");
        }
        let mut logs = String::new();
        for service in Service::ALL.map(Service::name) {
            if let Ok(Some((state, health))) =
                self.docker.state(self.settings.project(), service).await
                && (state != "running" || health.as_deref() == Some("unhealthy"))
            {
                let tail = self
                    .docker
                    .logs_tail(self.settings.project(), service, 15)
                    .await
                    .unwrap_or_default();
                logs.push_str(&format!(
                    "\n--- {service} ({state}) last log lines:\n{}",
                    tail.trim_end()
                ));
            }
        }
        if logs.is_empty() {
            err
        } else {
            err.context(format!("a node did not come up:{logs}"))
        }
    }

    /// The PostgreSQL services whose containers are running.
    pub async fn running_postgres(&self) -> Result<Vec<&'static str>> {
        let mut running = Vec::new();
        for service in POSTGRES_SERVICES {
            if let Some((state, _)) = self.docker.state(self.settings.project(), service).await?
                && state == "running"
            {
                running.push(*service);
            }
        }
        Ok(running)
    }

    /// The running service that is a primary (not in recovery), if any.
    pub async fn find_primary(&self) -> Result<Option<&'static str>> {
        let running = self.running_postgres().await?;
        if running.is_empty() {
            // Chapter 6's cluster, if it runs: Patroni's leader.
            return Ok(patroni::leader(&self.settings).await);
        }
        for service in running {
            if let Ok(client) = pg::connect(&self.settings, service, "postgres").await
                && pg::scalar(&client, "SELECT pg_is_in_recovery()")
                    .await?
                    .as_deref()
                    == Some("f")
            {
                return Ok(Some(service));
            }
        }
        Ok(None)
    }

    /// Waits until every running standby streams from the primary; on a timeout, the
    /// error carries the last log lines of the standbys still missing.
    pub async fn wait_streaming(&self, timeout: Duration) -> Result<()> {
        let waited = poll_until(
            "every running standby streaming",
            Instant::now() + timeout,
            Duration::from_millis(250),
            || async {
                pending_on_error(self.streaming_gaps().await.map(|missing| {
                    if missing.is_empty() {
                        Look::Ready(())
                    } else {
                        Look::Pending(format!("not streaming yet: {}", missing.join(", ")))
                    }
                }))
            },
        )
        .await;
        let Err(err) = waited else { return Ok(()) };
        let mut msg = err.to_string();
        if let PollError::TimedOut { last, .. } = &err {
            for service in POSTGRES_SERVICES {
                if last.contains(service) {
                    let tail = self
                        .docker
                        .logs_tail(self.settings.project(), service, 15)
                        .await?;
                    msg.push_str(&format!(
                        "\n--- {service} last log lines:\n{}",
                        tail.trim_end()
                    ));
                }
            }
        }
        bail!(msg)
    }

    /// The running standbys that the primary does not list as streaming.
    async fn streaming_gaps(&self) -> Result<Vec<&'static str>> {
        let running = self.running_postgres().await?;
        let primary = self.find_primary().await?.context("no running primary")?;
        let client = pg::connect(&self.settings, primary, "postgres").await?;
        let streaming: Vec<String> = pg::rows(
            &client,
            "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
        )
        .await?
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect();
        Ok(running
            .into_iter()
            .filter(|s| *s != primary && !streaming.iter().any(|n| n == s))
            .collect())
    }

    /// Stops and removes the project's containers (and its volumes with `volumes`).
    pub async fn down(&self, volumes: bool) -> Result<()> {
        // With their profiles named, `down` removes chapter 6's cluster and the
        // standalone nodes too.
        let mut args = vec![
            "--profile",
            patroni::PROFILE,
            "--profile",
            topology::STANDALONE_PROFILE,
            "down",
            "--remove-orphans",
            "-t",
            "10",
        ];
        if volumes {
            args.push("-v");
        }
        compose::run(&self.settings, &args, Duration::from_secs(180), false).await?;
        tracing::info!(
            "cluster {}: down{}",
            self.settings.project(),
            if volumes { " (volumes removed)" } else { "" }
        );
        Ok(())
    }

    /// One row per node, plus pgbouncer's `cl_waiting` when it runs.
    pub async fn status(&self) -> Result<(Vec<NodeStatus>, Option<i64>)> {
        let (replication, slots) = self.primary_views().await?;
        let cell =
            |row: &Vec<Option<String>>, i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let mut nodes = Vec::new();
        for service in POSTGRES_SERVICES {
            let mut node = self.node_status(service).await?;
            if let Some(row) = replication.iter().find(|r| cell(r, 0) == *service) {
                node.state = cell(row, 1);
                node.sync_state = cell(row, 2);
                node.replay_lag = if cell(row, 3).is_empty() {
                    "0".into()
                } else {
                    cell(row, 3)
                };
            }
            let slot = service.replace('-', "_");
            if let Some(row) = slots.iter().find(|r| cell(r, 0) == slot) {
                node.slot_active = if cell(row, 1) == "true" { "yes" } else { "no" }.into();
            }
            nodes.push(node);
        }
        Ok((nodes, self.cl_waiting().await?))
    }

    /// The primary's `pg_stat_replication` and `pg_replication_slots` rows (none when
    /// no primary runs).
    async fn primary_views(&self) -> Result<(Vec<Vec<Option<String>>>, Vec<Vec<Option<String>>>)> {
        let Some(primary) = self.find_primary().await? else {
            return Ok((Vec::new(), Vec::new()));
        };
        let client = pg::connect(&self.settings, primary, "postgres").await?;
        let replication = pg::rows(
            &client,
            "SELECT application_name, state, sync_state, coalesce(replay_lag::text, '') \
             FROM pg_stat_replication",
        )
        .await?;
        let slots = pg::rows(
            &client,
            "SELECT slot_name, active::text FROM pg_replication_slots",
        )
        .await?;
        Ok((replication, slots))
    }

    /// A node's container state and, when it runs, its role.
    async fn node_status(&self, service: &str) -> Result<NodeStatus> {
        let mut node = NodeStatus {
            service: service.to_string(),
            container: "absent".into(),
            role: "-".into(),
            state: "-".into(),
            sync_state: "-".into(),
            replay_lag: "-".into(),
            slot_active: "-".into(),
        };
        let Some((state, health)) = self.docker.state(self.settings.project(), service).await?
        else {
            return Ok(node);
        };
        node.container = match health {
            Some(h) => format!("{state} ({h})"),
            None => state.clone(),
        };
        if state == "running" {
            node.role = match pg::connect(&self.settings, service, "postgres").await {
                Ok(c) => match pg::scalar(&c, "SELECT pg_is_in_recovery()")
                    .await?
                    .as_deref()
                {
                    Some("t") => "standby".into(),
                    _ => "primary".into(),
                },
                Err(_) => "unreachable".into(),
            };
        }
        Ok(node)
    }

    /// pgbouncer's clients waiting for a server, summed over its pools; `None` when it
    /// does not run.
    async fn cl_waiting(&self) -> Result<Option<i64>> {
        let pgbouncer = Service::Pgbouncer.name();
        let Some((state, _)) = self
            .docker
            .state(self.settings.project(), pgbouncer)
            .await?
        else {
            return Ok(None);
        };
        if state != "running" {
            return Ok(None);
        }
        let Ok(client) = pg::connect(&self.settings, pgbouncer, "pgbouncer").await else {
            return Ok(None);
        };
        let pools = pg::named_rows(&client, "SHOW POOLS").await?;
        Ok(Some(
            pools
                .iter()
                .filter_map(|row| row.iter().find(|(k, _)| k == "cl_waiting"))
                .filter_map(|(_, v)| v.as_deref().and_then(|v| v.parse::<i64>().ok()))
                .sum(),
        ))
    }
}
