//! The faults, as Docker does them to a service's container (bollard), each bounded.
//!
//! A crash is SIGKILL — no shutdown, no last WAL shipped (a `docker stop` would send
//! SIGINT, PostgreSQL's fast shutdown, which ships all WAL to the standbys and hides the
//! loss). A hung node is a paused container: its processes are frozen, its sockets stay
//! open, clients and standbys wait on it until their own timeouts.
//!
//! A hung node is fenced ([`fence`]) by cutting it off its networks before it is killed:
//! Docker delivers a kill to a paused container by resuming it (moby's
//! `daemon/kill.go`: "above kill signal will be sent once resume is finished"), and in
//! that instant the frozen primary runs — it was seen acknowledging writes a second
//! after it hung. Off the network, nothing it does then reaches anyone.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bollard::models::{EndpointSettings, NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptions, StartContainerOptions,
};

use super::Fault;
use lab_cluster::Cluster;

/// The double fault's interval between the standby's loss and the primary's.
const STANDBY_FIRST_BY: Duration = Duration::from_secs(2);

/// The bound on one Docker call.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(20);

/// The id of `service`'s container, running or not.
pub(super) async fn container_id(cluster: &Cluster, service: &str) -> Result<String> {
    cluster
        .docker
        .container(cluster.settings.project(), service)
        .await?
        .and_then(|c| c.id)
        .with_context(|| format!("service {service} has no container"))
}

/// Awaits a Docker call for at most [`DOCKER_TIMEOUT`].
pub(super) async fn bounded<T>(
    what: String,
    call: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T> {
    tokio::time::timeout(DOCKER_TIMEOUT, call)
        .await
        .with_context(|| format!("{what}: no answer from Docker within {DOCKER_TIMEOUT:?}"))?
        .with_context(|| what)
}

/// Injects `fault` on `primary`; the double fault kills `standby` first (it must be
/// named then). Returns the moment the primary's fault was in force — Docker answered
/// that it was killed or frozen: the fault's time, from which the RTO and the
/// failover's steps are counted.
pub async fn inject(
    cluster: &Cluster,
    fault: Fault,
    primary: &str,
    standby: Option<&str>,
) -> Result<Instant> {
    match fault {
        Fault::Kill => kill(cluster, primary).await?,
        Fault::Pause => pause(cluster, primary).await?,
        Fault::StandbyThenPrimary => {
            let standby = standby.context("the double fault needs a standby to stop")?;
            // Counted from the first kill's request, not its answer: Docker's answer can
            // come a second late on a loaded machine, and the interval between the two
            // deaths is what the experiment is about.
            let first = Instant::now();
            kill(cluster, standby).await?;
            tokio::time::sleep_until((first + STANDBY_FIRST_BY).into()).await;
            kill(cluster, primary).await?
        }
    }
    Ok(Instant::now())
}

/// Fences a hung `service` (STONITH): off every network first, then SIGKILL, then back
/// on its networks (stopped, with its aliases) so that it can be started again later.
/// Killed while still connected, a paused container is resumed to take the signal and
/// could answer its clients for that instant (see the module's comment).
pub async fn fence(cluster: &Cluster, service: &str) -> Result<()> {
    let id = container_id(cluster, service).await?;
    let client = cluster.docker.client();
    let inspected = bounded(
        format!("inspecting {service}"),
        client.inspect_container(&id, None::<InspectContainerOptions>),
    )
    .await?;
    let networks = inspected
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default();
    for name in networks.keys() {
        bounded(
            format!("disconnecting {service} from {name}"),
            client.disconnect_network(
                name,
                NetworkDisconnectRequest {
                    container: Some(id.clone()),
                    force: Some(true),
                },
            ),
        )
        .await?;
    }
    kill(cluster, service).await?;
    for (name, endpoint) in &networks {
        bounded(
            format!("reconnecting {service} to {name}"),
            client.connect_network(
                name,
                NetworkConnectRequest {
                    container: Some(id.clone()),
                    endpoint_config: Some(EndpointSettings {
                        aliases: endpoint.aliases.clone(),
                        ..EndpointSettings::default()
                    }),
                },
            ),
        )
        .await?;
    }
    Ok(())
}

/// SIGKILL to `service`'s container (paused or not).
pub async fn kill(cluster: &Cluster, service: &str) -> Result<()> {
    let id = container_id(cluster, service).await?;
    let client = cluster.docker.client();
    bounded(
        format!("killing {service}"),
        client.kill_container(&id, None::<KillContainerOptions>),
    )
    .await
}

/// Freezes `service`'s container.
pub async fn pause(cluster: &Cluster, service: &str) -> Result<()> {
    let id = container_id(cluster, service).await?;
    bounded(
        format!("pausing {service}"),
        cluster.docker.client().pause_container(&id),
    )
    .await
}

/// Starts `service`'s stopped container again, as it was (`docker start`: nothing it
/// depends on is started with it).
pub async fn start(cluster: &Cluster, service: &str) -> Result<()> {
    let id = container_id(cluster, service).await?;
    bounded(
        format!("starting {service}"),
        cluster
            .docker
            .client()
            .start_container(&id, None::<StartContainerOptions>),
    )
    .await
}

/// Kills every container of `services` that is paused: a hung node left by an
/// interrupted run is fenced before the cluster is made again.
pub async fn kill_paused(cluster: &Cluster, services: &[&str]) -> Result<()> {
    for service in services {
        if let Some((state, _)) = cluster
            .docker
            .state(cluster.settings.project(), service)
            .await?
            && state == "paused"
        {
            kill(cluster, service).await?;
        }
    }
    Ok(())
}
