//! The cluster's shape now, as a table a reader can read in the terminal and the book
//! can draw (a `topology="…"` step): what `runner topology` prints.
//!
//! It takes one frame of `runner watch`'s probe (every node asked at once, the whole
//! frame bounded: a node that does not answer is down, with why), adds where the routers
//! send writes — pgbouncer's live `SHOW DATABASES`, or its `databases.ini` when no client
//! has used a database yet; HAProxy's `primary` backend as its statistics page marks it —
//! and prints [`TopologyState`]'s table. The table, not this code, is what the book
//! reads, so the mapping from a snapshot to rows is kept pure and tested here.

use std::time::Duration;

use crate::watch::{Node, Prober, Reach, Snapshot};
use lab_cluster::docker::Docker;
use lab_cluster::patroni;
use lab_cluster::settings::Settings;
use lab_cluster::topology::{Service, Topology};
use lab_cluster::topology_state::{NodeRow, ROLES, TopologyState, bytes, seconds};

/// The bound on the probe's frame (Docker's list, then every node at once). Generous: a
/// one-off frame logs in to every node (SCRAM), which an unoptimised build on a loaded
/// machine does slowly; a hung node still costs no more than this.
const PROBE_BOUND: Duration = Duration::from_secs(10);
/// The bound on each router question (HAProxy's statistics, pgbouncer's file).
const ROUTER_BOUND: Duration = Duration::from_secs(2);

/// The cluster's topology now, and the probe's notes (a node it could not ask, and why).
pub async fn current(settings: &Settings) -> (TopologyState, Vec<String>) {
    let mut prober = Prober::new(settings.clone(), PROBE_BOUND, None).await;
    let snapshot = prober.probe().await;
    let mut state = nodes(&snapshot);
    if let Some(pooler) = &snapshot.pgbouncer {
        let target = match pooler.reach {
            Reach::Up => match pooler_target(&pooler.databases) {
                Some(target) => Some(target),
                None => databases_ini_target(settings).await,
            },
            Reach::Down(_) => None,
        };
        state.rows.push(router(
            Service::Pgbouncer.name(),
            "pooler",
            target,
            match &pooler.reach {
                Reach::Up => None,
                Reach::Down(why) => Some(why.clone()),
            },
        ));
    }
    if snapshot
        .nodes
        .iter()
        .any(|n| Service::from_name(&n.name).is_some_and(|s| s.topology() == Topology::Patroni))
    {
        let (target, down) = match patroni::haproxy_primary(settings, ROUTER_BOUND).await {
            Ok(target) => (target, None),
            Err(err) => (None, Some(format!("{err:#}").replace('\n', " "))),
        };
        state
            .rows
            .push(router(Service::Haproxy.name(), "proxy", target, down));
    }
    (state, snapshot.notes.clone())
}

fn router(name: &str, role: &str, upstream: Option<String>, down: Option<String>) -> NodeRow {
    NodeRow {
        name: name.to_string(),
        role: role.to_string(),
        timeline: None,
        upstream,
        sync: None,
        behind: None,
        replay_lag: None,
        down,
    }
}

/// The host pgbouncer's `db` database points at (any database, when `db` has not been
/// used yet), from `SHOW DATABASES`' `host:port`.
fn pooler_target(databases: &[(String, String)]) -> Option<String> {
    databases
        .iter()
        .find(|(name, _)| name == "db")
        .or_else(|| databases.first())
        .map(|(_, at)| {
            at.rsplit_once(':')
                .map_or(at.as_str(), |(h, _)| h)
                .to_string()
        })
        .filter(|host| !host.is_empty())
}

/// The host of the `host=` in pgbouncer's `databases.ini` (what a RELOAD would use).
async fn databases_ini_target(settings: &Settings) -> Option<String> {
    let docker = tokio::time::timeout(ROUTER_BOUND, Docker::connect())
        .await
        .ok()?
        .ok()?;
    let cmd = [
        "cat".to_string(),
        "/etc/pgbouncer/databases.ini".to_string(),
    ];
    let out = docker
        .exec(
            settings.project(),
            Service::Pgbouncer.name(),
            &cmd,
            None,
            ROUTER_BOUND,
        )
        .await
        .ok()?;
    ini_host(&out.stdout)
}

fn ini_host(ini: &str) -> Option<String> {
    ini.split_whitespace()
        .find_map(|word| word.strip_prefix("host="))
        .map(str::to_string)
}

/// The snapshot's PostgreSQL nodes as rows: the compose services only (a walsender
/// whose `application_name` names no service — a `pg_basebackup` — is not a node), one
/// row each. A primary can list one standby twice for a moment (a new walsender while
/// the old one is still going away): the node's row takes the `streaming` one.
fn nodes(snapshot: &Snapshot) -> TopologyState {
    let mut merged: Vec<Node> = Vec::new();
    for node in snapshot
        .nodes
        .iter()
        .filter(|n| Service::from_name(&n.name).is_some())
    {
        match merged.iter_mut().find(|m| m.name == node.name) {
            None => merged.push(node.clone()),
            Some(first) => {
                let streaming = |n: &Node| {
                    n.replication
                        .as_ref()
                        .is_some_and(|r| r.state == "streaming")
                };
                if node.replication.is_some() && !streaming(first) {
                    first.replication = node.replication.clone();
                }
            }
        }
    }
    let names: Vec<&str> = merged.iter().map(|n| n.name.as_str()).collect();
    let rows = merged.iter().map(|n| node_row(n, &names)).collect();
    TopologyState { rows }
}

fn node_row(node: &Node, names: &[&str]) -> NodeRow {
    let up = node.reach.is_up();
    // Patroni's role when it has one the table knows; else PostgreSQL's own.
    let role = match node.role.as_deref() {
        Some(role) if ROLES.contains(&role) => role.to_string(),
        Some(_) if node.is_primary() => "primary".into(),
        Some(_) if up => "standby".into(),
        _ => "-".into(),
    };
    let replication = node.replication.as_ref();
    // Its upstream: the primary that lists it, else the host its WAL receiver streams
    // from when that is a node of the table.
    let upstream = replication.map(|r| r.upstream.clone()).or_else(|| {
        let from = node.receiver.as_ref()?.upstream.as_deref()?;
        let host = from.rsplit_once(':').map_or(from, |(h, _)| h);
        names.contains(&host).then(|| host.to_string())
    });
    NodeRow {
        name: node.name.clone(),
        role,
        timeline: node.timeline.and_then(|t| u32::try_from(t).ok()),
        upstream,
        sync: replication
            .map(|r| r.sync_state.clone())
            .filter(|s| !s.is_empty()),
        behind: replication.and_then(|r| r.replay_bytes).map(bytes),
        replay_lag: replication.and_then(|r| r.replay_lag).map(seconds),
        down: match &node.reach {
            Reach::Up => None,
            Reach::Down(why) => Some(why.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::{Receiver, Replication};

    fn node(name: &str, role: Option<&str>, timeline: Option<i64>) -> Node {
        let mut n = Node::down(name, "");
        n.reach = Reach::Up;
        n.role = role.map(str::to_string);
        n.timeline = timeline;
        n
    }

    #[test]
    fn a_snapshot_becomes_rows_with_upstreams_lags_and_down_nodes() {
        let old = Node::down("postgres-primary", "exited (137)");
        let new = node("postgres-sync-standby", Some("primary"), Some(2));
        let mut standby = node("postgres-async-standby", Some("standby"), Some(2));
        standby.replication = Some(Replication {
            upstream: "postgres-sync-standby".into(),
            state: "streaming".into(),
            sync_state: "async".into(),
            replay_bytes: Some(2048),
            replay_lag: Some(0.0012),
            ..Replication::default()
        });
        // No primary lists it, but its WAL receiver names a node.
        let mut delayed = node("postgres-delayed-standby", Some("standby"), Some(1));
        delayed.receiver = Some(Receiver {
            status: Some("streaming".into()),
            upstream: Some("postgres-primary:5432".into()),
        });
        let mut backup = node("pg_basebackup", None, None);
        backup.replication = Some(Replication::default());
        // A second walsender for the same standby, the one that streams.
        let mut again = node("postgres-async-standby", None, None);
        again.replication = Some(Replication {
            upstream: "postgres-sync-standby".into(),
            state: "streaming".into(),
            sync_state: "async".into(),
            replay_bytes: Some(2048),
            replay_lag: Some(0.0012),
            ..Replication::default()
        });
        standby.replication.as_mut().unwrap().state = "stopping".into();
        standby.replication.as_mut().unwrap().replay_bytes = None;
        let snapshot = Snapshot {
            project: "p".into(),
            at: chrono::Utc::now(),
            took: Duration::ZERO,
            nodes: vec![old, new, standby, delayed, backup, again],
            slots: vec![],
            sync_waits: vec![],
            pgbouncer: None,
            writer: None,
            notes: vec![],
        };
        let rows = nodes(&snapshot).rows;
        assert_eq!(rows.len(), 4, "the pg_basebackup walsender is no node");
        assert_eq!(rows[0].role, "-");
        assert_eq!(rows[0].down.as_deref(), Some("exited (137)"));
        assert_eq!(rows[1].timeline, Some(2));
        assert_eq!(rows[2].upstream.as_deref(), Some("postgres-sync-standby"));
        assert_eq!(rows[2].sync.as_deref(), Some("async"));
        assert_eq!(rows[2].behind.as_deref(), Some("2.0kB"));
        assert_eq!(rows[2].replay_lag.as_deref(), Some("1.2ms"));
        assert_eq!(rows[3].upstream.as_deref(), Some("postgres-primary"));
        assert_eq!(rows[3].sync, None);
        let text = TopologyState { rows }.to_string();
        assert_eq!(TopologyState::parse(&text).unwrap().rows.len(), 4);
    }

    #[test]
    fn router_targets() {
        let dbs = vec![
            ("postgres".to_string(), "postgres-primary:5432".to_string()),
            ("db".to_string(), "postgres-sync-standby:5432".to_string()),
        ];
        assert_eq!(
            pooler_target(&dbs).as_deref(),
            Some("postgres-sync-standby")
        );
        assert_eq!(pooler_target(&[]), None);
        assert_eq!(
            ini_host("* = host=postgres-primary port=5432\n").as_deref(),
            Some("postgres-primary")
        );
        assert_eq!(ini_host(""), None);
    }
}
