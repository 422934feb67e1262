//! The Patroni modes: the fault is the runner's, the failover Patroni's.
//!
//! Chapter 6's cluster (three etcd members, three Patroni nodes, HAProxy routing writes
//! to the leader by Patroni's REST health) with chapter 6's tuned timers (`ttl 10`,
//! raised by Patroni 4 to its 20 s minimum lease, `loop_wait 2`, `retry_timeout 4`). The
//! writer goes through HAProxy; the runner only injects the fault, waits for Patroni's
//! new leader and fences a paused old one.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{ActionTimes, ChaosObserver, Mode, STEP_TIMEOUT, Topology, fault, since};
use crate::chaos::Fault;
use crate::cluster::images::BaseWay;
use crate::cluster::topology::Service;
use crate::cluster::{Cluster, patroni};

/// How long Patroni may take to elect a new leader (lease 20 s + loops + promotion).
const ELECTION_TIMEOUT: Duration = Duration::from_secs(90);

/// The running leader's service.
pub async fn leader(cluster: &Cluster) -> Result<&'static str> {
    patroni::leader(&cluster.settings)
        .await
        .context("Patroni reports no running leader")
}

/// The Patroni cluster up, every member streaming, the mode's `synchronous_mode` in
/// force.
pub async fn reset(cluster: &mut Cluster, mode: Mode, build: bool) -> Result<Topology> {
    let services = patroni::services();
    fault::kill_paused(cluster, &services).await?;
    cluster.start(&services, BaseWay::Auto, build).await?;
    patroni::wait_ready(cluster, patroni::READY_TIMEOUT).await?;
    let leader = leader(cluster).await?;
    let sync = if mode.synchronous() { "true" } else { "false" };
    patronictl(
        cluster,
        leader,
        &[
            "edit-config",
            "--force",
            "--set",
            "ttl=10",
            "--set",
            "loop_wait=2",
            "--set",
            "retry_timeout=4",
            "--set",
            &format!("synchronous_mode={sync}"),
        ],
    )
    .await?;
    // Wait until Patroni applied it: a synchronous standby named, or none.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let members = patroni::members(&cluster.settings).await?;
        let has_sync = members
            .iter()
            .any(|m| m.role == "sync_standby" && m.state == "streaming");
        if has_sync == mode.synchronous() {
            break;
        }
        if Instant::now() >= deadline {
            bail!("Patroni did not apply synchronous_mode={sync} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(Topology {
        primary: leader,
        standby: None,
        entry: Service::Haproxy.name(),
    })
}

/// Injects `fault` on the leader and waits for Patroni's new leader; the times are
/// seconds after `fault_at`.
pub async fn fail_over(
    cluster: &Cluster,
    fault: Fault,
    topology: &Topology,
    fault_at: Instant,
    observer: &dyn ChaosObserver,
    run: usize,
) -> Result<ActionTimes> {
    let old = topology.primary;
    // The double fault stops a replica first: the synchronous one when there is one.
    let standby = if fault == Fault::StandbyThenPrimary {
        let members = patroni::members(&cluster.settings).await?;
        let standby = members
            .iter()
            .filter(|m| m.name != old)
            .max_by_key(|m| m.role == "sync_standby")
            .and_then(|m| patroni::NODES.iter().find(|(n, _)| *n == m.name))
            .map(|(n, _)| *n)
            .context("no replica to stop")?;
        Some(standby)
    } else {
        None
    };
    fault::inject(cluster, fault, old, standby).await?;
    observer.step(run, "Patroni elects");
    let deadline = Instant::now() + ELECTION_TIMEOUT;
    loop {
        if let Ok(new) = leader(cluster).await
            && new != old
        {
            break;
        }
        if Instant::now() >= deadline {
            bail!("no new leader within {ELECTION_TIMEOUT:?} of the fault");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let times = ActionTimes {
        promoted_s: Some(since(fault_at)),
        ..ActionTimes::default()
    };
    if fault == Fault::Pause {
        observer.step(run, "fence");
        fault::kill(cluster, old).await?;
    }
    Ok(times)
}

/// The `patronictl` call that sets the cluster-wide configuration.
async fn patronictl(cluster: &Cluster, node: &str, args: &[&str]) -> Result<String> {
    let mut cmd = vec!["patronictl"];
    cmd.extend_from_slice(args);
    let out = cluster
        .docker
        .exec_bounded(cluster.settings.project(), node, STEP_TIMEOUT, &cmd, None)
        .await
        .with_context(|| format!("patronictl {} on {node}", args.join(" ")))?;
    if out.exit_code != Some(0) {
        bail!(
            "patronictl {} on {node} failed: {}",
            args.join(" "),
            out.output.trim()
        );
    }
    Ok(out.stdout)
}
