//! Chapter 6's cluster: three etcd members, three Patroni-managed PostgreSQL nodes and
//! HAProxy, under the compose profile `patroni`.
//!
//! Its services are listed, with their ports, in [`crate::topology::Service`] (of
//! [`Topology::Patroni`]); this module only knows how to tell whether the cluster is
//! ready and what Patroni thinks of it. Patroni is the authority on roles here — not
//! `pg_is_in_recovery()` on each node — so both come from its REST API's `/cluster`
//! (the view `patronictl list` prints), asked of each node in turn on its published
//! port until one answers.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::Cluster;
use crate::haproxy;
use crate::poll::{Look, pending_on_error, poll_until};
use crate::settings::Settings;
use crate::topology::{Service, Topology};

/// The compose profile the cluster's services carry.
pub const PROFILE: &str = "patroni";

/// How long `up` waits for a leader with streaming replicas after compose started them.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The Patroni nodes, with the `.env` variable of each one's REST API port.
pub const NODES: &[(&str, &str)] = &[
    (Service::Patroni1.name(), "PATRONI1_API_PORT"),
    (Service::Patroni2.name(), "PATRONI2_API_PORT"),
    (Service::Patroni3.name(), "PATRONI3_API_PORT"),
];

/// The services of the cluster, in the order of the service table.
pub fn services() -> Vec<&'static str> {
    Service::ALL
        .into_iter()
        .filter(|s| s.topology() == Topology::Patroni)
        .map(Service::name)
        .collect()
}

/// Whether any of `services` belongs to this cluster.
pub fn involves(services: &[&str]) -> bool {
    services
        .iter()
        .any(|s| Service::from_name(s).is_some_and(|s| s.topology() == Topology::Patroni))
}

/// A member's role as Patroni's `/cluster` names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Role {
    /// Holds the leader lock: the primary (`leader`).
    Leader,
    /// The leader of a standby cluster (`standby_leader`).
    StandbyLeader,
    /// A synchronous standby, eligible for failover in synchronous mode (`sync_standby`).
    SyncStandby,
    /// A quorum-commit standby (`quorum_standby`).
    QuorumStandby,
    /// Any other replica (`replica`).
    Replica,
    /// A role this code does not know, kept as Patroni wrote it.
    Other(String),
    /// No role reported.
    #[default]
    Unknown,
}

impl Role {
    /// The role Patroni's JSON names `text`.
    pub fn from_name(text: &str) -> Role {
        match text {
            "leader" => Role::Leader,
            "standby_leader" => Role::StandbyLeader,
            "sync_standby" => Role::SyncStandby,
            "quorum_standby" => Role::QuorumStandby,
            "replica" => Role::Replica,
            "" => Role::Unknown,
            other => Role::Other(other.to_string()),
        }
    }

    /// Its name as Patroni writes it (`-` when unknown).
    pub fn name(&self) -> &str {
        match self {
            Role::Leader => "leader",
            Role::StandbyLeader => "standby_leader",
            Role::SyncStandby => "sync_standby",
            Role::QuorumStandby => "quorum_standby",
            Role::Replica => "replica",
            Role::Other(name) => name,
            Role::Unknown => "-",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One member as Patroni's `/cluster` reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Member {
    /// The member's name (its compose service).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// `running`, `streaming`, `stopped`, `starting`, …
    pub state: String,
    /// The timeline PostgreSQL runs on, when Patroni knows it.
    pub timeline: Option<i64>,
    /// Bytes of WAL the replica is behind the leader (`lag`), when Patroni knows it.
    pub lag: Option<String>,
}

impl Member {
    fn from_json(value: &Value) -> Member {
        let text = |key: &str| {
            value
                .get(key)
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        };
        Member {
            name: text("name"),
            role: Role::from_name(&text("role")),
            state: text("state"),
            timeline: value.get("timeline").and_then(Value::as_i64),
            lag: value.get("lag").map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    }

    /// Whether this member holds the leader lock and its PostgreSQL runs.
    pub fn is_running_leader(&self) -> bool {
        self.role == Role::Leader && self.state == "running"
    }
}

/// Patroni's view of the cluster, from the first node whose REST API answers.
pub async fn members(settings: &Settings) -> Result<Vec<Member>> {
    let mut errors = Vec::new();
    for (node, var) in NODES {
        let port: u16 = match settings.var(var).and_then(|p| {
            p.parse()
                .with_context(|| format!("{var}={p:?} is not a port number"))
        }) {
            Ok(port) => port,
            Err(err) => {
                errors.push(format!("{node}: {err:#}"));
                continue;
            }
        };
        match get_json(port, "/cluster", Duration::from_secs(2)).await {
            Ok(json) => {
                let members = json
                    .get("members")
                    .and_then(Value::as_array)
                    .with_context(|| format!("{node}'s /cluster has no members: {json}"))?;
                return Ok(members.iter().map(Member::from_json).collect());
            }
            Err(err) => errors.push(format!("{node}: {err:#}")),
        }
    }
    bail!(
        "no Patroni REST API answered ({})",
        errors.join("; ").replace('\n', " ")
    )
}

/// The service of the running leader, as Patroni reports it; `None` when there is none
/// or no REST API answers.
pub async fn leader(settings: &Settings) -> Option<&'static str> {
    let members = members(settings).await.ok()?;
    let leader = members.iter().find(|m| m.is_running_leader())?;
    NODES
        .iter()
        .map(|(node, _)| *node)
        .find(|node| *node == leader.name)
}

/// Waits until Patroni reports a running leader and every other running node of the
/// cluster as a streaming replica.
pub async fn wait_ready(cluster: &Cluster, timeout: Duration) -> Result<()> {
    let project = cluster.settings.project().to_string();
    let waited = poll_until(
        "the Patroni cluster: a leader with streaming replicas",
        Instant::now() + timeout,
        Duration::from_millis(250),
        || async {
            pending_on_error(ready(cluster, &project).await.map(|missing| match missing {
                None => Look::Ready(()),
                Some(why) => Look::Pending(why),
            }))
        },
    )
    .await;
    let Err(err) = waited else { return Ok(()) };
    let mut msg = err.to_string();
    for (node, _) in NODES {
        if let Ok(tail) = cluster.docker.logs_tail(&project, node, 10).await {
            msg.push_str(&format!(
                "\n--- {node} last log lines:\n{}",
                tail.trim_end()
            ));
        }
    }
    bail!(msg)
}

/// `None` when ready, else what is still missing.
async fn ready(cluster: &Cluster, project: &str) -> Result<Option<String>> {
    let members = members(&cluster.settings).await?;
    if !members.iter().any(Member::is_running_leader) {
        return Ok(Some("no running leader yet".into()));
    }
    for (node, _) in NODES {
        let running = matches!(
            cluster.docker.state(project, node).await?,
            Some((state, _)) if state == "running"
        );
        if !running {
            continue;
        }
        match members.iter().find(|m| m.name == *node) {
            Some(m) if m.is_running_leader() || m.state == "streaming" => {}
            Some(m) => return Ok(Some(format!("{node} is {} ({})", m.state, m.role))),
            None => return Ok(Some(format!("{node} is not a member yet"))),
        }
    }
    Ok(None)
}

/// `runner status`'s view of this cluster — one row per member (role, state, timeline,
/// lag) and HAProxy's container — or `None` when none of its nodes runs.
pub async fn status(cluster: &Cluster) -> Result<Option<String>> {
    let project = cluster.settings.project().to_string();
    let mut containers = Vec::new();
    for service in services() {
        let state = match cluster.docker.state(&project, service).await? {
            Some((state, Some(health))) => format!("{state} ({health})"),
            Some((state, None)) => state,
            None => "absent".into(),
        };
        containers.push((service, state));
    }
    if !containers
        .iter()
        .any(|(s, state)| s.starts_with("patroni") && state.starts_with("running"))
    {
        return Ok(None);
    }
    let members = members(&cluster.settings).await.unwrap_or_default();
    let rows: Vec<Vec<String>> = NODES
        .iter()
        .map(|(node, _)| {
            let container = containers
                .iter()
                .find(|(s, _)| s == node)
                .map(|(_, c)| c.clone())
                .unwrap_or_default();
            let member = members.iter().find(|m| m.name == *node);
            let dash = || "-".to_string();
            vec![
                node.to_string(),
                container,
                member.map(|m| m.role.to_string()).unwrap_or_else(dash),
                member.map(|m| m.state.clone()).unwrap_or_else(dash),
                member
                    .and_then(|m| m.timeline)
                    .map(|t| t.to_string())
                    .unwrap_or_else(dash),
                member.and_then(|m| m.lag.clone()).unwrap_or_else(dash),
            ]
        })
        .collect();
    let mut out = "Patroni cluster (as its REST API /cluster reports it):\n".to_string();
    out.push_str(&lab_core::text_table::table(
        &[
            "member",
            "container",
            "role",
            "state",
            "timeline",
            "lag_bytes",
        ],
        &rows,
    ));
    let others: Vec<String> = containers
        .iter()
        .filter(|(s, _)| !s.starts_with("patroni"))
        .map(|(s, c)| format!("{s}: {c}"))
        .collect();
    out.push_str(&others.join(", "));
    out.push('\n');
    Ok(Some(out))
}

/// The server HAProxy sends writes to: the one its `primary` backend marks `UP` (the
/// leader by Patroni's REST health check), from its statistics page's CSV on
/// `HAPROXY_STATS_PORT`, within `timeout`; `None` when no server is up.
pub async fn haproxy_primary(settings: &Settings, timeout: Duration) -> Result<Option<String>> {
    let var = "HAPROXY_STATS_PORT";
    let port: u16 = settings
        .var(var)?
        .parse()
        .with_context(|| format!("{var} is not a port number"))?;
    let stats = get_text(port, "/;csv", timeout).await?;
    Ok(haproxy::up_servers(&stats, "primary")?.into_iter().next())
}

/// GET `path` from 127.0.0.1:`port` and parse its body as JSON, within `timeout`.
async fn get_json(port: u16, path: &str, timeout: Duration) -> Result<Value> {
    let body = get_text(port, path, timeout).await?;
    serde_json::from_str(&body).with_context(|| format!("127.0.0.1:{port}{path}: not JSON"))
}

/// GET `path` from 127.0.0.1:`port` within `timeout` (hyper, HTTP/1.1): the body of a
/// `200 OK`; any other status is an error naming it.
async fn get_text(port: u16, path: &str, timeout: Duration) -> Result<String> {
    let request = async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection is driven beside the request, and dropped with it.
        let driver = tokio::spawn(connection);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
            .body(Empty::<Bytes>::new())?;
        let answer = sender.send_request(request).await?;
        let status = answer.status();
        let body = answer.into_body().collect().await?.to_bytes();
        driver.abort();
        Ok::<_, anyhow::Error>((status, body))
    };
    let (status, body) = tokio::time::timeout(timeout, request)
        .await
        .with_context(|| format!("127.0.0.1:{port}{path}: no answer within {timeout:?}"))?
        .with_context(|| format!("GET 127.0.0.1:{port}{path}"))?;
    if status != StatusCode::OK {
        bail!("127.0.0.1:{port}{path}: {status}");
    }
    String::from_utf8(body.to_vec()).with_context(|| format!("127.0.0.1:{port}{path}: not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_by_name() {
        for role in [
            Role::Leader,
            Role::StandbyLeader,
            Role::SyncStandby,
            Role::QuorumStandby,
            Role::Replica,
            Role::Other("uninitialized".into()),
        ] {
            assert_eq!(Role::from_name(role.name()), role);
        }
        assert_eq!(Role::from_name(""), Role::Unknown);
    }

    #[test]
    fn members_parse_from_patroni_json() {
        let json: Value = serde_json::from_str(
            r#"{"members": [
                {"name": "patroni1", "role": "leader", "state": "running", "timeline": 2},
                {"name": "patroni2", "role": "replica", "state": "streaming", "timeline": 2, "lag": 0},
                {"name": "patroni3", "role": "replica", "state": "stopped", "lag": "unknown"}
            ]}"#,
        )
        .unwrap();
        let members: Vec<Member> = json["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(Member::from_json)
            .collect();
        assert!(members[0].is_running_leader());
        assert_eq!(members[1].lag.as_deref(), Some("0"));
        assert_eq!(members[2].lag.as_deref(), Some("unknown"));
        assert_eq!(members[2].timeline, None);
    }

    #[test]
    fn the_service_table_marks_the_patroni_cluster() {
        let services = services();
        for (node, _) in NODES {
            assert!(services.contains(node), "{node}");
        }
        assert!(services.contains(&"haproxy"));
        assert!(!services.contains(&"postgres-primary"));
        assert!(involves(&["haproxy"]));
        assert!(!involves(&["pgbouncer"]));
    }
}
