//! Before every run: the cluster as the mode needs it, from whatever state the last
//! run (or a failed run, or a Ctrl-C) left.
//!
//! The manual modes start from a fresh chapter-4 cluster — removed with its volumes and
//! made again — because a failover swaps the roles the service names describe and
//! leaves a dead old primary behind. pgbouncer gets `server_login_retry = 1` (chapter 4
//! shows the default 15 s is pgbouncer's wait, not the failover's); `async` empties the
//! primary's `synchronous_standby_names`. The Patroni modes keep their cluster: the old
//! leader is started again and rejoins by itself (pg_rewind), the chapter-6 tuned
//! timers are set, `synchronous_mode` is set for the mode and waited for.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{Mode, STEP_TIMEOUT, Topology, automatic, fault};
use lab_cluster::images::BaseWay;
use lab_cluster::poll::{Look, poll_until};
use lab_cluster::topology::Service;
use lab_cluster::{Cluster, DEFAULT_SERVICES, pg};

/// Brings the cluster to the mode's starting state and says where everything is.
///
/// The images are built (when needed) before the first run only: `build`.
pub async fn reset(cluster: &mut Cluster, mode: Mode, build: bool) -> Result<Topology> {
    if mode.automatic() {
        return automatic::reset(cluster, mode, build).await;
    }
    fault::kill_paused(cluster, DEFAULT_SERVICES).await?;
    cluster.down(true).await?;
    cluster
        .start(DEFAULT_SERVICES, BaseWay::Auto, build)
        .await?;
    let primary = Service::PostgresPrimary.name();
    let standby = Service::PostgresSyncStandby.name();
    let entry = Service::Pgbouncer.name();

    let out = cluster
        .docker
        .exec_bounded(
            cluster.settings.project(),
            entry,
            STEP_TIMEOUT,
            &[
                "sh",
                "-c",
                "echo 'server_login_retry = 1' >> /etc/pgbouncer/pgbouncer.ini",
            ],
            None,
        )
        .await?;
    if out.exit_code != Some(0) {
        bail!(
            "setting pgbouncer's server_login_retry: {}",
            out.output.trim()
        );
    }
    let admin = pg::connect(&cluster.settings, entry, "pgbouncer").await?;
    pg::bounded(
        "pgbouncer's RELOAD",
        STEP_TIMEOUT,
        admin.simple_query("RELOAD"),
    )
    .await?;

    let client = pg::connect(&cluster.settings, primary, "postgres").await?;
    if !mode.synchronous() {
        pg::bounded("turning the primary asynchronous", STEP_TIMEOUT, async {
            // Two statements: ALTER SYSTEM refuses to run in a batch's transaction.
            client
                .simple_query("ALTER SYSTEM SET synchronous_standby_names = ''")
                .await?;
            client.simple_query("SELECT pg_reload_conf()").await
        })
        .await?;
    }
    // Wait until the standby's sync_state is what the mode says (a reload is
    // asynchronous: the walsender picks it up on its next cycle).
    let want = if mode.synchronous() { "sync" } else { "async" };
    poll_until(
        &format!("{standby} {want} on the primary after the reset"),
        Instant::now() + STEP_TIMEOUT,
        Duration::from_millis(100),
        || async {
            let state = pg::scalar(
                &client,
                &format!(
                    "SELECT sync_state FROM pg_stat_replication \
                     WHERE application_name = '{standby}' AND state = 'streaming'"
                ),
            )
            .await?;
            Ok(match state.as_deref() {
                Some(state) if state == want => Look::Ready(()),
                state => Look::Pending(format!("{standby}: {}", state.unwrap_or("not streaming"))),
            })
        },
    )
    .await?;
    Ok(Topology {
        primary,
        standby: Some(standby),
        entry,
        conditions: vec![("pgbouncer_server_login_retry", "1".into())],
    })
}
