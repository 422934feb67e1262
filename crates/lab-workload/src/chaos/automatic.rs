//! The Patroni modes: the fault is the runner's, the failover Patroni's.
//!
//! Chapter 6's cluster (three etcd members, three Patroni nodes, HAProxy routing writes
//! to the leader by Patroni's REST health) in exactly the state chapter 6's "The same
//! crash, with tuned timers" measures: Patroni's `ttl 10` (raised by Patroni 4 to its
//! 20 s minimum lease), `loop_wait 2`, `retry_timeout 4`, and HAProxy's checks `inter 1s
//! fall 2 rise 1` (the chapter's `sed` on `/etc/haproxy/haproxy.cfg`, reloaded with
//! SIGUSR2). Both are read back after every reset and reported. The writer goes
//! through HAProxy; the runner only injects the fault and times Patroni's failover as
//! chapter 6 does: the leader lock taken by a replica, its PostgreSQL promoted, HAProxy
//! sending writes to it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bollard::query_parameters::KillContainerOptions;

use super::{ActionTimes, ChaosObserver, Mode, STEP_TIMEOUT, Topology, fault, since};
use crate::chaos::Fault;
use lab_cluster::images::BaseWay;
use lab_cluster::patroni::Role;
use lab_cluster::poll::{Look, pending_on_error, poll_until};
use lab_cluster::topology::Service;
use lab_cluster::{Cluster, haproxy, patroni, pg};

/// How long a member's reinitialization (a new base backup from the leader) may take.
const REINIT_TIMEOUT: Duration = Duration::from_secs(180);

/// How long Patroni may take to elect a new leader (lease 20 s + loops + promotion).
const ELECTION_TIMEOUT: Duration = Duration::from_secs(90);

/// HAProxy's health checks as the image ships them, and as chapter 6 tunes them.
const HAPROXY_DEFAULT_CHECKS: &str = "inter 3s fall 3 rise 2";
/// See [`HAPROXY_DEFAULT_CHECKS`].
pub const HAPROXY_TUNED_CHECKS: &str = "inter 1s fall 2 rise 1";
/// HAProxy's configuration file in its container.
const HAPROXY_CFG: &str = "/etc/haproxy/haproxy.cfg";

/// Chapter 6's tuned Patroni timers, as `patronictl edit-config --set` takes them.
const TUNED_TIMERS: [(&str, &str); 3] = [("ttl", "10"), ("loop_wait", "2"), ("retry_timeout", "4")];

/// The running leader's service.
pub async fn leader(cluster: &Cluster) -> Result<&'static str> {
    patroni::leader(&cluster.settings)
        .await
        .context("Patroni reports no running leader")
}

/// The Patroni cluster up, every member streaming, chapter 6's tuned timers and HAProxy
/// checks in force (read back into the topology's conditions), the mode's
/// `synchronous_mode` set.
pub async fn reset(cluster: &mut Cluster, mode: Mode, build: bool) -> Result<Topology> {
    let services = patroni::services();
    fault::kill_paused(cluster, &services).await?;
    if let Err(err) = cluster.start(&services, BaseWay::Auto, build).await {
        // A killed old leader usually rejoins by itself (pg_rewind); when the WAL it
        // needs is already gone from the new leader it cannot, and stays a replica that
        // does not stream. The operator's answer: reinitialize it from the leader.
        let members = patroni::members(&cluster.settings).await.map_err(|_| err)?;
        let stuck: Vec<&str> = members
            .iter()
            .filter(|m| m.role != Role::Leader && m.state != "streaming")
            .filter_map(|m| patroni::NODES.iter().find(|(n, _)| *n == m.name))
            .map(|(n, _)| *n)
            .collect();
        let leader = leader(cluster).await?;
        if stuck.is_empty() {
            bail!("the Patroni cluster is not ready, and no member is left to reinitialize");
        }
        for member in stuck {
            tracing::info!("chaos: {member} cannot rejoin by itself: patronictl reinit");
            patronictl(
                cluster,
                leader,
                &["reinit", "lab", member, "--force", "--wait"],
            )
            .await?;
        }
    }
    patroni::wait_ready(cluster, patroni::READY_TIMEOUT).await?;
    let leader = leader(cluster).await?;
    let sync = if mode.synchronous() { "true" } else { "false" };
    let mut args = vec!["edit-config".to_string(), "--force".to_string()];
    for (key, value) in TUNED_TIMERS {
        args.extend(["--set".to_string(), format!("{key}={value}")]);
    }
    args.extend(["--set".to_string(), format!("synchronous_mode={sync}")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    patronictl(cluster, leader, &args).await?;
    // Wait until Patroni applied it: a synchronous standby named, or none.
    poll_until(
        &format!("Patroni applying synchronous_mode={sync}"),
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(250),
        || async {
            let members = patroni::members(&cluster.settings).await?;
            let has_sync = members
                .iter()
                .any(|m| m.role == Role::SyncStandby && m.state == "streaming");
            Ok(if has_sync == mode.synchronous() {
                Look::Ready(())
            } else {
                Look::Pending(format!("a streaming sync standby: {has_sync}"))
            })
        },
    )
    .await?;
    let mut conditions = timers_in_force(cluster, leader).await?;
    conditions.extend(tune_haproxy(cluster, leader).await?);
    Ok(Topology {
        primary: leader,
        standby: None,
        entry: Service::Haproxy.name(),
        conditions,
    })
}

/// Patroni's timers as `patronictl show-config` prints them, each required to be
/// chapter 6's tuned value.
async fn timers_in_force(cluster: &Cluster, leader: &str) -> Result<Vec<(&'static str, String)>> {
    let config = patronictl(cluster, leader, &["show-config"]).await?;
    let mut found = Vec::new();
    for (key, want) in TUNED_TIMERS {
        let value = config
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("patronictl show-config has no {key}:\n{config}"))?;
        if value != want {
            bail!("Patroni's {key} is {value}, not chapter 6's {want}");
        }
        let name = match key {
            "ttl" => "patroni_ttl",
            "loop_wait" => "patroni_loop_wait",
            _ => "patroni_retry_timeout",
        };
        found.push((name, value));
    }
    Ok(found)
}

/// Chapter 6's HAProxy edit: its checks `inter 1s fall 2 rise 1`, reloaded with SIGUSR2
/// when the file changed, then waited for until the `primary` backend has one server
/// up, the leader. Returns the checks the file holds, as `haproxy_inter`,
/// `haproxy_fall` and `haproxy_rise` (one word each, as a chapter captures them).
async fn tune_haproxy(cluster: &Cluster, leader: &str) -> Result<Vec<(&'static str, String)>> {
    let haproxy = Service::Haproxy.name();
    let script = format!(
        "if grep -q '{HAPROXY_DEFAULT_CHECKS}' {HAPROXY_CFG}; then \
           sed -i 's/{HAPROXY_DEFAULT_CHECKS}/{HAPROXY_TUNED_CHECKS}/' {HAPROXY_CFG} && echo changed; fi; \
         grep -o 'inter [^ ]* fall [^ ]* rise [^ ]*' {HAPROXY_CFG} | sort -u"
    );
    let out = exec(cluster, haproxy, &["sh", "-c", &script]).await?;
    if out.lines().next() == Some("changed") {
        fault::bounded(
            "reloading HAProxy (SIGUSR2)".into(),
            cluster.docker.client().kill_container(
                &fault::container_id(cluster, haproxy).await?,
                Some(KillContainerOptions {
                    signal: "SIGUSR2".into(),
                }),
            ),
        )
        .await?;
    }
    // Every server line's checks, distinct: exactly the tuned ones, or the edit failed.
    let checks: Vec<&str> = out.lines().filter(|l| l.starts_with("inter ")).collect();
    if checks != [HAPROXY_TUNED_CHECKS] {
        bail!("{HAPROXY_CFG} has checks {checks:?}, not only '{HAPROXY_TUNED_CHECKS}'");
    }
    let words: Vec<&str> = HAPROXY_TUNED_CHECKS.split(' ').collect();
    let found = vec![
        ("haproxy_inter", words[1].to_string()),
        ("haproxy_fall", words[3].to_string()),
        ("haproxy_rise", words[5].to_string()),
    ];
    poll_until(
        &format!("HAProxy's primary backend with only {leader} up, after its reload"),
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let stat = exec(
                cluster,
                haproxy,
                &[
                    "sh",
                    "-c",
                    "echo 'show stat' | socat stdio /run/haproxy/admin.sock",
                ],
            )
            .await?;
            let up = haproxy::up_servers(&stat, "primary")?;
            Ok(if up == [leader] {
                Look::Ready(())
            } else {
                Look::Pending(format!("up: {up:?}"))
            })
        },
    )
    .await?;
    Ok(found)
}

/// Injects `fault` on the leader and times Patroni's failover as chapter 6 does; returns
/// the moment the fault was in force and the times after it: `detected_s` a replica
/// holds the leader lock, `promoted_s` its PostgreSQL left recovery, `rerouted_s`
/// HAProxy's `primary` backend sends writes to it.
pub async fn fail_over(
    cluster: &Cluster,
    fault: Fault,
    topology: &Topology,
    observer: &dyn ChaosObserver,
    run: usize,
) -> Result<(Instant, ActionTimes)> {
    let old = topology.primary;
    // The double fault stops a replica first: the synchronous one when there is one.
    let standby = if fault == Fault::StandbyThenPrimary {
        let members = patroni::members(&cluster.settings).await?;
        let standby = members
            .iter()
            .filter(|m| m.name != old)
            .max_by_key(|m| m.role == Role::SyncStandby)
            .and_then(|m| patroni::NODES.iter().find(|(n, _)| *n == m.name))
            .map(|(n, _)| *n)
            .context("no replica to stop")?;
        Some(standby)
    } else {
        None
    };
    let fault_at = fault::inject(cluster, fault, old, standby).await?;
    // Every wait below ends by the same deadline: the election's bound from the fault.
    let deadline = fault_at + ELECTION_TIMEOUT;
    let every = Duration::from_millis(100);
    observer.step(run, "Patroni: leader lock");
    let new = poll_until(
        "a replica taking the leader lock",
        deadline,
        every,
        || async {
            let members = patroni::members(&cluster.settings).await;
            let leader = members.as_ref().ok().and_then(|members| {
                let m = members
                    .iter()
                    .find(|m| m.role == Role::Leader && m.name != old)?;
                patroni::NODES.iter().find(|(n, _)| *n == m.name)
            });
            Ok(match (leader, members) {
                (Some((node, _)), _) => Look::Ready(*node),
                (None, Ok(_)) => Look::Pending("no other member holds the lock".into()),
                (None, Err(err)) => Look::Pending(format!("{err:#}")),
            })
        },
    )
    .await?;
    let mut times = ActionTimes {
        detected_s: Some(since(fault_at)),
        ..ActionTimes::default()
    };
    if fault == Fault::Pause {
        observer.step(run, "fence");
        fault::fence(cluster, old).await?;
    }
    observer.step(run, "Patroni: promotion");
    // One connection, kept: a loaded machine can take longer than the poll's interval
    // to open one, and the question is only when recovery ends.
    let client = tokio::sync::Mutex::new(None);
    poll_until("the new leader's promotion", deadline, every, || async {
        let mut client = client.lock().await;
        if client.is_none() {
            match pg::connect(&cluster.settings, new, "postgres").await {
                Ok(c) => *client = Some(c),
                Err(err) => return Ok(Look::Pending(format!("{err:#}"))),
            }
        }
        let Some(c) = client.as_ref() else {
            return Ok(Look::Pending("no connection".into()));
        };
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            pg::flag(c, "SELECT NOT pg_is_in_recovery()"),
        )
        .await;
        Ok(match answer {
            Ok(Ok(Some(true))) => Look::Ready(()),
            Ok(Ok(_)) => Look::Pending(format!("{new} still in recovery")),
            Ok(Err(err)) => {
                *client = None;
                Look::Pending(format!("{err:#}"))
            }
            Err(_) => {
                *client = None;
                Look::Pending(format!("{new}: no answer within 2 s"))
            }
        })
    })
    .await?;
    times.promoted_s = Some(since(fault_at));
    observer.step(run, "HAProxy");
    poll_until(
        "HAProxy sending writes to the new leader",
        deadline,
        every,
        || async {
            pending_on_error(
                patroni::haproxy_primary(&cluster.settings, Duration::from_secs(1))
                    .await
                    .map(|up| match up {
                        Some(up) if up == new => Look::Ready(()),
                        other => Look::Pending(format!("HAProxy's primary: {other:?}")),
                    }),
            )
        },
    )
    .await?;
    times.rerouted_s = Some(since(fault_at));
    Ok((fault_at, times))
}

/// Runs `cmd` in `service`'s container within [`STEP_TIMEOUT`]; its standard output,
/// or an error with what it printed.
async fn exec(cluster: &Cluster, service: &str, cmd: &[&str]) -> Result<String> {
    let out = cluster
        .docker
        .exec_bounded(cluster.settings.project(), service, STEP_TIMEOUT, cmd, None)
        .await
        .with_context(|| format!("{} in {service}", cmd.join(" ")))?;
    if out.exit_code != Some(0) {
        bail!(
            "{} in {service} failed: {}",
            cmd.join(" "),
            out.output.trim()
        );
    }
    Ok(out.stdout)
}

/// A `patronictl` call on `node`, within [`STEP_TIMEOUT`] (a `reinit`, within
/// [`REINIT_TIMEOUT`]).
async fn patronictl(cluster: &Cluster, node: &str, args: &[&str]) -> Result<String> {
    let mut cmd = vec!["patronictl"];
    cmd.extend_from_slice(args);
    let bound = if args.first() == Some(&"reinit") {
        REINIT_TIMEOUT
    } else {
        STEP_TIMEOUT
    };
    let out = cluster
        .docker
        .exec_bounded(cluster.settings.project(), node, bound, &cmd, None)
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
