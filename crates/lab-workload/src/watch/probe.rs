//! Collecting a [`Snapshot`]: which containers run, what each node says, what the
//! primaries see of their standbys, pgbouncer's pools and the writer's ledger.
//!
//! One frame is bounded as a whole: Docker's container list gets a third of the bound,
//! then every node, pgbouncer and Patroni's REST API are asked at once until the
//! frame's deadline. A node that has not answered by then is *down* for this frame
//! (with why), its connection dropped, and asked again next frame — a hung node never
//! holds the screen. Connections are kept between frames (one per node, application
//! name `runner-watch`), so a refresh costs a handful of queries, not logins.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bollard::query_parameters::ListContainersOptions;
use chrono::Utc;
use futures_util::future::join_all;
use lab_cluster::session::Session;

use super::writer::{WriterSource, WriterWatch};
use super::{Node, Pool, Pooler, Reach, Receiver, Replication, Slot, Snapshot, SyncWaits};
use lab_cluster::docker::Docker;
use lab_cluster::patroni::{self, Member, Role};
use lab_cluster::pg;
use lab_cluster::settings::Settings;
use lab_cluster::topology::{Service, Topology};

/// The application name of the watch's connections (so a reader can tell them apart in
/// `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "runner-watch";

/// The services that are PostgreSQL nodes, in the service table's order.
pub fn node_services() -> Vec<Service> {
    Service::ALL
        .into_iter()
        .filter(|s| {
            !matches!(
                s,
                Service::Pgbouncer
                    | Service::Etcd1
                    | Service::Etcd2
                    | Service::Etcd3
                    | Service::Haproxy
                    | Service::Pgpool
            )
        })
        .collect()
}

/// One node's query: role, timeline, replay pause, apply delay, WAL receiver. The
/// primary-only and standby-only functions sit behind `CASE` on `pg_is_in_recovery()`
/// (volatile calls are not folded ahead of the test).
const NODE_SQL: &str = "SELECT pg_is_in_recovery() AS standby, \
  CASE WHEN pg_is_in_recovery() \
       THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), \
                     (SELECT timeline_id FROM pg_control_checkpoint())) \
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int \
  END AS timeline, \
  CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS paused, \
  current_setting('recovery_min_apply_delay') AS apply_delay, \
  (SELECT status FROM pg_stat_wal_receiver) AS receiver, \
  (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver) AS receiver_from";

const REPLICATION_SQL: &str = "SELECT application_name, state, sync_state, sync_priority, \
  pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)::bigint AS sent, \
  pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::bigint AS write, \
  pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint AS flush, \
  pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay, \
  extract(epoch FROM write_lag) AS write_lag, extract(epoch FROM flush_lag) AS flush_lag, \
  extract(epoch FROM replay_lag) AS replay_lag \
  FROM pg_stat_replication ORDER BY application_name";

const SLOTS_SQL: &str = "SELECT slot_name, slot_type, active, wal_status, \
  pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained, safe_wal_size \
  FROM pg_replication_slots ORDER BY slot_name";

const SYNCREP_SQL: &str = "SELECT count(*) AS waiting, \
  extract(epoch FROM max(clock_timestamp() - query_start)) AS oldest, \
  current_setting('synchronous_standby_names') AS names \
  FROM pg_stat_activity WHERE wait_event = 'SyncRep'";

type Row = Vec<(String, Option<String>)>;

fn cell<'a>(row: &'a Row, name: &str) -> Option<&'a str> {
    row.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.as_deref())
}

fn text(row: &Row, name: &str) -> String {
    cell(row, name).unwrap_or_default().to_string()
}

fn int(row: &Row, name: &str) -> Option<i64> {
    cell(row, name).and_then(|v| v.parse().ok())
}

/// A boolean column as the simple query protocol sends it: text, `t` or `f`.
fn boolean(row: &Row, name: &str) -> Option<bool> {
    match cell(row, name)? {
        "t" => Some(true),
        "f" => Some(false),
        _ => None,
    }
}

fn float(row: &Row, name: &str) -> Option<f64> {
    cell(row, name).and_then(|v| v.parse().ok())
}

/// What one primary-or-standby probe found.
#[derive(Default)]
struct NodeFindings {
    standby: bool,
    timeline: Option<i64>,
    paused: Option<String>,
    apply_delay: Option<String>,
    receiver: Option<Receiver>,
    replication: Vec<(String, Replication)>,
    slots: Vec<Slot>,
    sync_waits: Option<SyncWaits>,
}

async fn connect(settings: &Settings, service: &str, dbname: &str) -> Result<Session> {
    pg::connect_as(settings, service, dbname, APPLICATION_NAME).await
}

async fn node_queries(client: &Session, service: &str) -> Result<NodeFindings> {
    let rows = pg::named_rows(client, NODE_SQL).await?;
    let row = rows.first().context("the node query returned no row")?;
    let standby = boolean(row, "standby").unwrap_or(false);
    let mut found = NodeFindings {
        standby,
        timeline: int(row, "timeline"),
        paused: cell(row, "paused")
            .filter(|p| *p != "not paused")
            .map(str::to_string),
        apply_delay: cell(row, "apply_delay")
            .filter(|d| *d != "0" && standby)
            .map(str::to_string),
        receiver: standby.then(|| Receiver {
            status: cell(row, "receiver").map(str::to_string),
            upstream: cell(row, "receiver_from").map(str::to_string),
        }),
        ..NodeFindings::default()
    };
    if standby {
        return Ok(found);
    }
    for row in pg::named_rows(client, REPLICATION_SQL).await? {
        found.replication.push((
            text(&row, "application_name"),
            Replication {
                upstream: service.to_string(),
                state: text(&row, "state"),
                sync_state: text(&row, "sync_state"),
                sync_priority: int(&row, "sync_priority"),
                sent_bytes: int(&row, "sent"),
                write_bytes: int(&row, "write"),
                flush_bytes: int(&row, "flush"),
                replay_bytes: int(&row, "replay"),
                write_lag: float(&row, "write_lag"),
                flush_lag: float(&row, "flush_lag"),
                replay_lag: float(&row, "replay_lag"),
            },
        ));
    }
    for row in pg::named_rows(client, SLOTS_SQL).await? {
        found.slots.push(Slot {
            node: service.to_string(),
            name: text(&row, "slot_name"),
            slot_type: text(&row, "slot_type"),
            active: boolean(&row, "active").unwrap_or(false),
            wal_status: cell(&row, "wal_status").map(str::to_string),
            retained_bytes: int(&row, "retained"),
            safe_wal_size: int(&row, "safe_wal_size"),
        });
    }
    let rows = pg::named_rows(client, SYNCREP_SQL).await?;
    if let Some(row) = rows.first() {
        found.sync_waits = Some(SyncWaits {
            node: service.to_string(),
            count: int(row, "waiting").unwrap_or(0),
            oldest: float(row, "oldest"),
            standby_names: text(row, "names"),
        });
    }
    Ok(found)
}

async fn pooler_queries(client: &Session) -> Result<(Vec<Pool>, Vec<(String, String)>)> {
    let pools = pg::named_rows(client, "SHOW POOLS")
        .await?
        .iter()
        .filter(|row| cell(row, "database") != Some("pgbouncer"))
        .map(|row| Pool {
            database: text(row, "database"),
            user: text(row, "user"),
            cl_active: int(row, "cl_active").unwrap_or(0),
            cl_waiting: int(row, "cl_waiting").unwrap_or(0),
            sv_active: int(row, "sv_active").unwrap_or(0),
            sv_idle: int(row, "sv_idle").unwrap_or(0),
            maxwait: float(row, "maxwait").unwrap_or(0.0)
                + float(row, "maxwait_us").unwrap_or(0.0) / 1e6,
        })
        .collect();
    let databases = pg::named_rows(client, "SHOW DATABASES")
        .await?
        .iter()
        .filter(|row| cell(row, "name") != Some("pgbouncer"))
        .map(|row| {
            (
                text(row, "name"),
                format!("{}:{}", text(row, "host"), text(row, "port")),
            )
        })
        .collect();
    Ok((pools, databases))
}

/// Runs `$work` on the kept connection of `$slot`, connecting when there is none; a
/// kept connection that fails is replaced once, within the same frame.
macro_rules! with_session {
    ($slot:expr, $connect:expr, $work:expr) => {{
        let slot: &mut Option<Session> = $slot;
        let kept = slot.as_ref().is_some_and(|c| !c.is_closed());
        if !kept {
            *slot = Some($connect.await?);
        }
        let client = slot.as_ref().expect("connected above");
        match $work(client).await {
            Ok(found) => Ok(found),
            Err(_) if kept => {
                *slot = None;
                let client = slot.insert($connect.await?);
                let result = $work(client).await;
                if result.is_err() {
                    *slot = None;
                }
                result
            }
            Err(err) => {
                *slot = None;
                Err(err)
            }
        }
    }};
}

async fn probe_node(
    settings: &Settings,
    service: Service,
    slot: &mut Option<Session>,
) -> Result<NodeFindings> {
    let name = service.name();
    with_session!(slot, connect(settings, name, "postgres"), |c| node_queries(
        c, name
    ))
}

async fn probe_pooler(
    settings: &Settings,
    slot: &mut Option<Session>,
) -> Result<(Vec<Pool>, Vec<(String, String)>)> {
    with_session!(
        slot,
        connect(settings, Service::Pgbouncer.name(), "pgbouncer"),
        pooler_queries
    )
}

/// A container as Docker lists it.
#[derive(Debug, Clone)]
struct Container {
    running: bool,
    /// `running`, `exited (137)`, `paused`, …
    state: String,
}

/// `Exited (137) 5 seconds ago` → `exited (137)`.
fn short_state(state: &str, status: &str) -> String {
    if state == "exited"
        && let Some(end) = status.find(')')
    {
        return status[..=end].to_lowercase();
    }
    state.to_string()
}

/// The error's innermost cause, on one line: what a reader needs in a cell.
fn why(err: &anyhow::Error) -> String {
    let root = err.root_cause().to_string();
    let text = if root.trim().is_empty() {
        format!("{err:#}")
    } else {
        root
    };
    text.replace('\n', " ")
}

/// The nodes in the service table's order — Patroni's role and state on its members,
/// each standby's row of its primary's `pg_stat_replication` attached to it (a row that
/// names no node becomes a node of its own) — with the primaries' slots and waits.
fn assemble(
    node_results: Vec<(Service, Result<NodeFindings, String>)>,
    members: &[Member],
) -> (Vec<Node>, Vec<Slot>, Vec<SyncWaits>) {
    let mut nodes = Vec::new();
    let mut replication: Vec<(String, Replication)> = Vec::new();
    let mut slots = Vec::new();
    let mut sync_waits = Vec::new();
    for (service, result) in node_results {
        let mut node = match result {
            Ok(found) => {
                replication.extend(found.replication);
                slots.extend(found.slots);
                sync_waits.extend(found.sync_waits);
                Node {
                    name: service.name().to_string(),
                    reach: Reach::Up,
                    role: Some(if found.standby { "standby" } else { "primary" }.into()),
                    timeline: found.timeline,
                    patroni_state: None,
                    replication: None,
                    receiver: found.receiver,
                    replay_paused: found.paused,
                    apply_delay: found.apply_delay,
                }
            }
            Err(why) => Node::down(service.name(), why),
        };
        if let Some(member) = members.iter().find(|m| m.name == node.name) {
            if member.role != Role::Unknown {
                node.role = Some(member.role.to_string());
            }
            if !member.state.is_empty() {
                node.patroni_state = Some(member.state.clone());
            }
            node.timeline = node.timeline.or(member.timeline);
        }
        nodes.push(node);
    }
    for (application_name, row) in replication {
        match nodes.iter_mut().find(|n| n.name == application_name) {
            Some(node) if node.replication.is_none() => node.replication = Some(row),
            _ => {
                let mut node = Node::down(&application_name, "");
                node.reach = Reach::Up;
                node.replication = Some(row);
                nodes.push(node);
            }
        }
    }
    (nodes, slots, sync_waits)
}

/// Collects snapshots of one project's cluster, keeping its connections between frames.
pub struct Prober {
    settings: Settings,
    docker: Option<Docker>,
    docker_problem: Option<String>,
    bound: Duration,
    sessions: BTreeMap<Service, Option<Session>>,
    pooler: Option<Session>,
    writer: Option<WriterWatch>,
}

impl Prober {
    /// A prober for the project of `settings`, each frame bounded by `bound`; the
    /// writer's ledger from `writer`. Docker is asked for (within 3 s); without it the
    /// streaming cluster's nodes are probed on their ports all the same.
    pub async fn new(settings: Settings, bound: Duration, writer: Option<WriterSource>) -> Prober {
        let (docker, docker_problem) =
            match tokio::time::timeout(Duration::from_secs(3), Docker::connect()).await {
                Ok(Ok(docker)) => (Some(docker), None),
                Ok(Err(err)) => (None, Some(format!("{err:#}"))),
                Err(_) => (None, Some("Docker did not answer within 3 s".to_string())),
            };
        Prober {
            settings,
            docker,
            docker_problem,
            bound,
            sessions: BTreeMap::new(),
            pooler: None,
            writer: writer.map(WriterWatch::new),
        }
    }

    /// The folders where `runner load` ledgers are looked for when none is named: the
    /// current directory and `compose/` (where the chapters run).
    pub fn default_ledger_dirs(settings: &Settings) -> Vec<PathBuf> {
        let mut dirs = vec![settings.compose_dir()];
        if let Ok(cwd) = std::env::current_dir()
            && !dirs.contains(&cwd)
        {
            dirs.push(cwd);
        }
        dirs
    }

    /// The project's containers by service, or why they are unknown.
    async fn containers(&self, bound: Duration) -> Result<BTreeMap<String, Container>> {
        let docker = self
            .docker
            .as_ref()
            .ok_or_else(|| anyhow!("{}", self.docker_problem.clone().unwrap_or_default()))?;
        let filters = std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!(
                "com.docker.compose.project={}",
                self.settings.project()
            )],
        )]);
        let list = docker.client().list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }));
        let list = tokio::time::timeout(bound, list)
            .await
            .map_err(|_| anyhow!("Docker did not list the containers within {bound:?}"))?
            .context("listing the project's containers")?;
        let mut found: BTreeMap<String, (bool, Container)> = BTreeMap::new();
        for summary in list {
            let labels = summary.labels.clone().unwrap_or_default();
            let Some(service) = labels.get("com.docker.compose.service") else {
                continue;
            };
            let oneoff = labels
                .get("com.docker.compose.oneoff")
                .is_some_and(|v| v == "True");
            let state = summary
                .state
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            let container = Container {
                running: state == "running",
                state: short_state(&state, summary.status.as_deref().unwrap_or_default()),
            };
            // The service's own container first, then a running one-off (`compose run`).
            let better = match found.get(service) {
                None => true,
                Some((was_oneoff, was)) => {
                    (*was_oneoff && !oneoff)
                        || (*was_oneoff == oneoff && !was.running && container.running)
                }
            };
            if better {
                found.insert(service.clone(), (oneoff, container));
            }
        }
        Ok(found.into_iter().map(|(k, (_, c))| (k, c)).collect())
    }

    /// One frame.
    pub async fn probe(&mut self) -> Snapshot {
        let started = Instant::now();
        let at = Utc::now();
        let deadline = tokio::time::Instant::now() + self.bound;
        let mut notes = Vec::new();

        // Which services have containers (and which run).
        let containers = match self.containers(self.bound / 3).await {
            Ok(containers) => Some(containers),
            Err(err) => {
                notes.push(format!("docker: {}", why(&err)));
                None
            }
        };
        let candidates: Vec<Service> = match &containers {
            Some(containers) => node_services()
                .into_iter()
                .filter(|s| containers.contains_key(s.name()))
                .collect(),
            None => Service::STREAMING_POSTGRES.to_vec(),
        };
        let pgbouncer = match &containers {
            Some(containers) => containers.get(Service::Pgbouncer.name()).cloned(),
            None => Some(Container {
                running: true,
                state: "unknown".into(),
            }),
        };
        let patroni_runs = candidates.iter().any(|s| s.topology() == Topology::Patroni);
        self.sessions.retain(|s, _| candidates.contains(s));

        // Every node, pgbouncer and Patroni's API at once, until the deadline.
        let bound_text = format!("{} ms", self.bound.as_millis());
        let settings = &self.settings;
        for service in &candidates {
            self.sessions.entry(*service).or_default();
        }
        let node_probes = join_all(self.sessions.iter_mut().map(|(service, slot)| {
            let container = containers
                .as_ref()
                .and_then(|c| c.get(service.name()))
                .cloned();
            let bound_text = bound_text.clone();
            async move {
                if let Some(container) = &container
                    && !container.running
                {
                    *slot = None;
                    return (*service, Err(container.state.clone()));
                }
                match tokio::time::timeout_at(deadline, probe_node(settings, *service, slot)).await
                {
                    Ok(Ok(found)) => (*service, Ok(found)),
                    Ok(Err(err)) => (*service, Err(format!("no answer: {}", why(&err)))),
                    Err(_) => {
                        *slot = None;
                        (*service, Err(format!("no answer within {bound_text}")))
                    }
                }
            }
        }));
        let pooler_slot = &mut self.pooler;
        let pooler_probe = async {
            let container = pgbouncer.as_ref()?;
            if !container.running {
                *pooler_slot = None;
                return Some(Err(container.state.clone()));
            }
            Some(
                match tokio::time::timeout_at(deadline, probe_pooler(settings, pooler_slot)).await {
                    Ok(Ok(found)) => Ok(found),
                    Ok(Err(err)) => Err(format!("no answer: {}", why(&err))),
                    Err(_) => {
                        *pooler_slot = None;
                        Err(format!("no answer within {bound_text}"))
                    }
                },
            )
        };
        let patroni_probe = async {
            if !patroni_runs {
                return None;
            }
            Some(
                match tokio::time::timeout_at(deadline, patroni::members(settings)).await {
                    Ok(result) => result,
                    Err(_) => Err(anyhow!("Patroni's REST API: no answer within {bound_text}")),
                },
            )
        };
        let (node_results, pooler_result, patroni_result) =
            tokio::join!(node_probes, pooler_probe, patroni_probe);

        let members: Vec<Member> = match patroni_result {
            Some(Ok(members)) => members,
            Some(Err(err)) => {
                notes.push(format!("patroni: {}", why(&err)));
                Vec::new()
            }
            None => Vec::new(),
        };

        let (nodes, slots, sync_waits) = assemble(node_results, &members);

        let pgbouncer = pooler_result.map(|result| match result {
            Ok((pools, databases)) => Pooler {
                reach: Reach::Up,
                pools,
                databases,
            },
            Err(why) => Pooler {
                reach: Reach::Down(why),
                pools: Vec::new(),
                databases: Vec::new(),
            },
        });
        if containers.as_ref().is_some_and(|c| c.is_empty()) {
            notes.push(format!(
                "project {} has no containers: `runner up` starts the cluster",
                self.settings.project()
            ));
        }
        let writer = self.writer.as_mut().and_then(|w| w.poll(Utc::now()));
        Snapshot {
            project: self.settings.project().to_string(),
            at,
            took: started.elapsed(),
            nodes,
            slots,
            sync_waits,
            pgbouncer,
            writer,
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_services_are_the_postgres_nodes() {
        let services = node_services();
        assert_eq!(services[0], Service::PostgresPrimary);
        assert!(services.contains(&Service::Patroni2));
        assert!(services.contains(&Service::Postgres15));
        for not_a_node in [
            Service::Pgbouncer,
            Service::Etcd1,
            Service::Haproxy,
            Service::Pgpool,
        ] {
            assert!(!services.contains(&not_a_node), "{not_a_node}");
        }
    }

    #[test]
    fn container_states_read_short() {
        assert_eq!(
            short_state("exited", "Exited (137) 5 seconds ago"),
            "exited (137)"
        );
        assert_eq!(short_state("paused", "Up 3 minutes (Paused)"), "paused");
        assert_eq!(short_state("exited", ""), "exited");
    }

    #[test]
    fn patroni_roles_and_replication_rows_land_on_their_nodes() {
        let leader = NodeFindings {
            standby: false,
            timeline: Some(3),
            replication: vec![
                (
                    "patroni2".into(),
                    Replication {
                        upstream: "patroni1".into(),
                        state: "streaming".into(),
                        sync_state: "sync".into(),
                        ..Replication::default()
                    },
                ),
                (
                    "pg_basebackup".into(),
                    Replication {
                        upstream: "patroni1".into(),
                        state: "backup".into(),
                        ..Replication::default()
                    },
                ),
            ],
            sync_waits: Some(SyncWaits {
                node: "patroni1".into(),
                count: 1,
                ..SyncWaits::default()
            }),
            ..NodeFindings::default()
        };
        let replica = NodeFindings {
            standby: true,
            timeline: Some(3),
            ..NodeFindings::default()
        };
        let members = vec![
            Member {
                name: "patroni1".into(),
                role: Role::Leader,
                state: "running".into(),
                timeline: Some(3),
                lag: None,
            },
            Member {
                name: "patroni2".into(),
                role: Role::SyncStandby,
                state: "streaming".into(),
                timeline: Some(3),
                lag: Some("0".into()),
            },
            Member {
                name: "patroni3".into(),
                role: Role::Replica,
                state: "stopped".into(),
                timeline: None,
                lag: None,
            },
        ];
        let (nodes, slots, waits) = assemble(
            vec![
                (Service::Patroni1, Ok(leader)),
                (Service::Patroni2, Ok(replica)),
                (
                    Service::Patroni3,
                    Err("no answer: Connection refused".into()),
                ),
            ],
            &members,
        );
        assert!(slots.is_empty());
        assert_eq!(waits.len(), 1);
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["patroni1", "patroni2", "patroni3", "pg_basebackup"]);
        assert!(nodes[0].is_primary());
        assert_eq!(nodes[0].role.as_deref(), Some("leader"));
        assert_eq!(nodes[1].role.as_deref(), Some("sync_standby"));
        assert_eq!(nodes[1].replication.as_ref().unwrap().sync_state, "sync");
        assert_eq!(
            nodes[2].reach,
            Reach::Down("no answer: Connection refused".into())
        );
        assert_eq!(nodes[2].patroni_state.as_deref(), Some("stopped"));
        assert_eq!(nodes[3].replication.as_ref().unwrap().state, "backup");
    }

    #[tokio::test]
    async fn a_node_that_is_not_there_is_down_within_the_bound() {
        // Ports where nothing listens, no Docker: every node is down, fast, with why.
        let mut settings =
            Settings::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
                .unwrap();
        for (i, service) in Service::ALL.iter().enumerate() {
            settings
                .vars
                .insert(service.port_var().into(), (1 + i).to_string());
        }
        let mut prober = Prober {
            settings,
            docker: None,
            docker_problem: Some("no Docker in this test".into()),
            bound: Duration::from_millis(800),
            sessions: BTreeMap::new(),
            pooler: None,
            writer: None,
        };
        let started = Instant::now();
        let snapshot = prober.probe().await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(snapshot.nodes.len(), 4);
        for node in &snapshot.nodes {
            assert!(!node.reach.is_up(), "{node:?}");
        }
        assert!(snapshot.notes.iter().any(|n| n.contains("no Docker")));
        let pooler = snapshot.pgbouncer.unwrap();
        assert!(!pooler.reach.is_up());
    }
}
