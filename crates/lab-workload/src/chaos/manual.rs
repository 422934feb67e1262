//! The manual failover of chapter 4, as library calls: inject the fault, detect the
//! primary down, fence it, promote the standby, re-route pgbouncer.
//!
//! The same procedure as the chapter's shell steps, each bounded: the operator's probe
//! (a connection and `SELECT 1` within 1 s, every 100 ms), `pg_promote(wait => true)`,
//! `synchronous_standby_names` emptied on the promoted node (no standby exists yet:
//! availability now, synchronous replication again once one has rejoined), and
//! pgbouncer's `[databases]` entry pointed at it followed by a `RELOAD`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{ActionTimes, ChaosObserver, STEP_TIMEOUT, Topology, fault, since};
use crate::chaos::Fault;
use lab_cluster::Cluster;
use lab_cluster::pg;
use lab_cluster::poll::{Look, poll_until};

/// How long the probe waits for the primary's answer before it calls it down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Injects `fault` on the cluster of `topology` and fails it over by hand; returns the
/// moment the primary's fault was in force and the steps' times, seconds after it.
pub async fn fail_over(
    cluster: &Cluster,
    fault: Fault,
    topology: &Topology,
    observer: &dyn ChaosObserver,
    run: usize,
) -> Result<(Instant, ActionTimes)> {
    let primary = topology.primary;
    let standby = topology
        .standby
        .context("the manual failover needs a standby")?;
    let fault_at = fault::inject(cluster, fault, primary, Some(standby)).await?;

    observer.step(run, "detect");
    wait_down(cluster, primary).await?;
    let mut times = ActionTimes {
        detected_s: Some(since(fault_at)),
        ..ActionTimes::default()
    };
    if fault == Fault::Pause {
        // STONITH: a hung primary may wake up; it must not come back as a primary, nor
        // answer anyone while it is killed.
        observer.step(run, "fence");
        fault::fence(cluster, primary).await?;
    }
    if fault == Fault::StandbyThenPrimary {
        // The standby holds every write the primary acknowledged before it went: bring
        // it back (alone) rather than lose them.
        observer.step(run, "restart the standby");
        fault::start(cluster, standby).await?;
        wait_up(cluster, standby).await?;
    }

    observer.step(run, "promote");
    promote(cluster, standby).await?;
    times.promoted_s = Some(since(fault_at));

    observer.step(run, "re-route");
    reroute(cluster, standby).await?;
    times.rerouted_s = Some(since(fault_at));
    Ok((fault_at, times))
}

/// Whether `service` answers `SELECT 1` within [`PROBE_TIMEOUT`].
async fn answers(cluster: &Cluster, service: &str) -> bool {
    let probe = async {
        let client = pg::connect_as(&cluster.settings, service, "postgres", "runner-probe").await?;
        client.simple_query("SELECT 1").await?;
        Ok::<_, anyhow::Error>(())
    };
    matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(())))
}

/// The operator's probe: until `service` stops answering.
async fn wait_down(cluster: &Cluster, service: &str) -> Result<()> {
    poll_until(
        &format!("{service} no longer answering after the fault"),
        Instant::now() + STEP_TIMEOUT,
        Duration::from_millis(100),
        || async {
            Ok(if answers(cluster, service).await {
                Look::Pending(format!("{service} answered SELECT 1"))
            } else {
                Look::Ready(())
            })
        },
    )
    .await?;
    Ok(())
}

/// Until `service` answers again (after a restart).
async fn wait_up(cluster: &Cluster, service: &str) -> Result<()> {
    poll_until(
        &format!("{service} answering after its restart"),
        Instant::now() + STEP_TIMEOUT,
        Duration::from_millis(200),
        || async {
            Ok(if answers(cluster, service).await {
                Look::Ready(())
            } else {
                Look::Pending(format!("{service} did not answer SELECT 1"))
            })
        },
    )
    .await?;
    Ok(())
}

/// `pg_promote(wait => true)` on `service`.
async fn promote(cluster: &Cluster, service: &str) -> Result<()> {
    let client = pg::connect(&cluster.settings, service, "postgres").await?;
    let promoted = pg::bounded(
        &format!("promoting {service}"),
        STEP_TIMEOUT,
        client.query_one("SELECT pg_promote(true, 25)", &[]),
    )
    .await?;
    let done: bool = promoted.try_get(0).context("reading pg_promote's answer")?;
    if !done {
        bail!("pg_promote() on {service} did not finish within 25 s");
    }
    Ok(())
}

/// The promoted node commits without a standby, and pgbouncer sends the writes to it.
async fn reroute(cluster: &Cluster, new_primary: &str) -> Result<()> {
    let client = pg::connect(&cluster.settings, new_primary, "postgres").await?;
    pg::bounded(
        &format!("emptying synchronous_standby_names on {new_primary}"),
        STEP_TIMEOUT,
        async {
            // Two statements, not one batch: a batch is one transaction, and ALTER
            // SYSTEM refuses to run in one.
            client
                .simple_query("ALTER SYSTEM SET synchronous_standby_names = ''")
                .await?;
            client.simple_query("SELECT pg_reload_conf()").await
        },
    )
    .await?;
    point_pgbouncer(cluster, new_primary).await
}

/// Writes pgbouncer's `[databases]` include for `service` and `RELOAD`s it.
pub(super) async fn point_pgbouncer(cluster: &Cluster, service: &str) -> Result<()> {
    let line = format!("echo '* = host={service} port=5432' > /etc/pgbouncer/databases.ini");
    let out = cluster
        .docker
        .exec_bounded(
            cluster.settings.project(),
            "pgbouncer",
            STEP_TIMEOUT,
            &["sh", "-c", &line],
            None,
        )
        .await
        .context("writing pgbouncer's databases.ini")?;
    if out.exit_code != Some(0) {
        bail!(
            "writing pgbouncer's databases.ini failed: {}",
            out.output.trim()
        );
    }
    let admin = pg::connect(&cluster.settings, "pgbouncer", "pgbouncer").await?;
    pg::bounded(
        "pgbouncer's RELOAD",
        STEP_TIMEOUT,
        admin.simple_query("RELOAD"),
    )
    .await?;
    Ok(())
}
