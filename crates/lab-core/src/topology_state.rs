//! The cluster's shape at one moment, as `runner topology` prints it and the book draws
//! it: one row per node (role, timeline, upstream, sync state, lag, up or down) and one
//! per router (pgbouncer, HAProxy) with the node it sends writes to.
//!
//! The text is the interface: a reader typing a chapter sees this table in the terminal,
//! the record keeps it, and the book's diagram (`book::diagram`) is drawn from the
//! recorded text by [`TopologyState::parse`] — so the picture on the page is exactly
//! what the run printed, and a table the parser does not understand is an error at build
//! time rather than a silently wrong picture. Nothing here talks to the cluster.

use anyhow::{Result, bail};

/// The columns of the table, in order. `status` is last because it may hold spaces
/// (`down: exited (137)`).
pub const COLUMNS: [&str; 8] = [
    "node",
    "role",
    "tl",
    "upstream",
    "sync",
    "behind",
    "replay_lag",
    "status",
];

/// The roles a row can have: PostgreSQL's own view (`primary`, `standby`), Patroni's
/// (`leader`, `sync_standby`, `quorum_standby`, `replica`, `standby_leader`), a router (`pooler` for
/// pgbouncer, `proxy` for HAProxy), or `-` when a down node's role is unknown.
pub const ROLES: [&str; 10] = [
    "primary",
    "standby",
    "leader",
    "sync_standby",
    "quorum_standby",
    "replica",
    "standby_leader",
    "pooler",
    "proxy",
    "-",
];

/// `pg_stat_replication.sync_state`'s values, or `-` for a node no primary lists.
pub const SYNC_STATES: [&str; 5] = ["sync", "async", "potential", "quorum", "-"];

/// One row: a PostgreSQL node or a router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// The compose service.
    pub name: String,
    /// One of [`ROLES`].
    pub role: String,
    /// The timeline it runs on, when it answered.
    pub timeline: Option<u32>,
    /// For a standby: the node whose `pg_stat_replication` lists it (or its WAL
    /// receiver's sender); for a router: the node it sends writes to.
    pub upstream: Option<String>,
    /// For a standby its upstream lists: `sync`, `async`, `potential`, `quorum`.
    pub sync: Option<String>,
    /// WAL the standby has not replayed yet, as text (`0B`, `12kB`, `3.1MB`).
    pub behind: Option<String>,
    /// `replay_lag` as text (`0.4ms`, `1.20s`); none once an idle standby caught up.
    pub replay_lag: Option<String>,
    /// `None` when it answered; else why not (`exited (137)`, `no answer within 2 s`).
    pub down: Option<String>,
}

impl NodeRow {
    /// Whether it is a primary (PostgreSQL's or Patroni's word for it).
    pub fn is_primary(&self) -> bool {
        matches!(self.role.as_str(), "primary" | "leader" | "standby_leader")
    }

    /// Whether it routes clients (pgbouncer, HAProxy) rather than stores data.
    pub fn is_router(&self) -> bool {
        matches!(self.role.as_str(), "pooler" | "proxy")
    }
}

/// The whole table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopologyState {
    /// Nodes then routers, in the order printed.
    pub rows: Vec<NodeRow>,
}

fn dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".to_string())
}

/// `1536` → `1.5kB`: WAL bytes, short and without spaces (the table splits on them).
pub fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    match n {
        n if n < 1024.0 => format!("{n:.0}B"),
        n if n < 1024.0 * 1024.0 => format!("{:.1}kB", n / 1024.0),
        n if n < 1024.0 * 1024.0 * 1024.0 => format!("{:.1}MB", n / 1024.0 / 1024.0),
        n => format!("{:.1}GB", n / 1024.0 / 1024.0 / 1024.0),
    }
}

/// `0.0004` → `0.4ms`, `1.2` → `1.20s`: a lag in seconds, short and without spaces.
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.1}ms", s * 1000.0)
    } else {
        format!("{s:.2}s")
    }
}

/// The table as `runner topology` prints it: aligned columns under a header.
impl std::fmt::Display for TopologyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.role.clone(),
                    r.timeline.map_or("-".into(), |t| t.to_string()),
                    dash(&r.upstream),
                    dash(&r.sync),
                    dash(&r.behind),
                    dash(&r.replay_lag),
                    match &r.down {
                        None => "up".into(),
                        Some(why) => format!("down: {why}"),
                    },
                ]
            })
            .collect();
        f.write_str(&crate::text_table::table(&COLUMNS, &cells))
    }
}

/// [`TopologyState::parse`]: the printed table read back.
impl std::str::FromStr for TopologyState {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<TopologyState> {
        TopologyState::parse(text)
    }
}

impl TopologyState {
    /// Reads the table back from a step's output. Blank lines are skipped; the first
    /// other line must be the header, and every line after it a row. A line that is
    /// not a row — too few columns, an unknown role or sync state, a timeline that is
    /// not a number, a status other than `up` or `down: …` — is an error naming its
    /// line, so a changed printer cannot draw a wrong picture.
    pub fn parse(text: &str) -> Result<TopologyState> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            bail!("the output is empty: expected the table `runner topology` prints");
        };
        let header: Vec<&str> = header.split_whitespace().collect();
        if header != COLUMNS {
            bail!(
                "line 1 is not the table's header: expected {:?}, found {header:?}",
                COLUMNS.join(" ")
            );
        }
        let mut rows = Vec::new();
        for (i, line) in lines {
            let n = i + 1;
            let row = parse_row(line).map_err(|e| anyhow::anyhow!("line {n} ({line:?}): {e}"))?;
            if rows.iter().any(|r: &NodeRow| r.name == row.name) {
                bail!("line {n}: node {:?} appears twice", row.name);
            }
            rows.push(row);
        }
        if rows.is_empty() {
            bail!("the table has a header but no node");
        }
        Ok(TopologyState { rows })
    }
}

fn parse_row(line: &str) -> Result<NodeRow> {
    let mut rest = line.trim();
    let mut fields = Vec::with_capacity(7);
    for column in &COLUMNS[..7] {
        let Some((field, after)) = rest.split_once(char::is_whitespace) else {
            bail!("it has no {column} column and status after it");
        };
        fields.push(field);
        rest = after.trim_start();
    }
    let status = rest.trim();
    let opt = |s: &str| (s != "-").then(|| s.to_string());
    let name = fields[0];
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("{name:?} is not a node name");
    }
    let role = fields[1];
    if !ROLES.contains(&role) {
        bail!("unknown role {role:?} (known: {})", ROLES.join(", "));
    }
    let timeline = match fields[2] {
        "-" => None,
        tl => Some(
            tl.parse::<u32>()
                .map_err(|_| anyhow::anyhow!("timeline {tl:?} is not a number"))?,
        ),
    };
    let sync = fields[4];
    if !SYNC_STATES.contains(&sync) {
        bail!(
            "unknown sync state {sync:?} (known: {})",
            SYNC_STATES.join(", ")
        );
    }
    for (what, value) in [("behind", fields[5]), ("replay_lag", fields[6])] {
        if value != "-" && !value.starts_with(|c: char| c.is_ascii_digit()) {
            bail!("{what} {value:?} is not an amount");
        }
    }
    let down = match status {
        "up" => None,
        s => match s.strip_prefix("down:") {
            Some(why) => Some(why.trim().to_string()),
            None if s == "down" => Some(String::new()),
            None => bail!("status {s:?} is neither `up` nor `down: why`"),
        },
    };
    Ok(NodeRow {
        name: name.to_string(),
        role: role.to_string(),
        timeline,
        upstream: opt(fields[3]),
        sync: opt(sync),
        behind: opt(fields[5]),
        replay_lag: opt(fields[6]),
        down,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, role: &str) -> NodeRow {
        NodeRow {
            name: name.into(),
            role: role.into(),
            timeline: Some(1),
            upstream: None,
            sync: None,
            behind: None,
            replay_lag: None,
            down: None,
        }
    }

    fn failover() -> TopologyState {
        let mut standby = row("postgres-sync-standby", "primary");
        standby.timeline = Some(2);
        let mut old = row("postgres-primary", "-");
        old.timeline = None;
        old.down = Some("exited (137)".into());
        let mut async_standby = row("postgres-async-standby", "standby");
        async_standby.upstream = Some("postgres-sync-standby".into());
        async_standby.sync = Some("async".into());
        async_standby.behind = Some(bytes(1536));
        async_standby.replay_lag = Some(seconds(0.0004));
        let mut pooler = row("pgbouncer", "pooler");
        pooler.timeline = None;
        pooler.upstream = Some("postgres-sync-standby".into());
        TopologyState {
            rows: vec![old, standby, async_standby, pooler],
        }
    }

    #[test]
    fn the_printed_table_reads_back_as_it_was() {
        let state = failover();
        let text = state.to_string();
        assert_eq!(
            text.lines().next().unwrap(),
            "node                    role     tl  upstream               sync   behind  replay_lag  status"
        );
        assert!(
            text.contains(
                "postgres-primary        -        -   -                      -      -       -           down: exited (137)\n"
            ),
            "{text}"
        );
        assert!(text.contains("1.5kB   0.4ms       up"), "{text}");
        assert_eq!(TopologyState::parse(&text).unwrap(), state);
    }

    #[test]
    fn amounts_are_short_and_spaceless() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(1023), "1023B");
        assert_eq!(bytes(3 * 1024 * 1024 + 100_000), "3.1MB");
        assert_eq!(seconds(0.00041), "0.4ms");
        assert_eq!(seconds(2.5), "2.50s");
    }

    #[test]
    fn a_line_the_parser_does_not_know_is_an_error_naming_it() {
        let good = failover().to_string();
        let err = TopologyState::parse(&good.replace("pooler", "poolr")).unwrap_err();
        assert!(
            err.to_string().starts_with("line 5 (\"pgbouncer ")
                && err.to_string().contains("unknown role \"poolr\""),
            "{err}"
        );
        let err = TopologyState::parse(&format!("{good}just a note\n")).unwrap_err();
        assert!(err.to_string().contains("line 6"), "{err}");
        let err = TopologyState::parse(&good.replace(" up\n", " fine\n")).unwrap_err();
        assert!(err.to_string().contains("neither `up`"), "{err}");
        let err = TopologyState::parse(&good.replacen("tl", "timeline", 1)).unwrap_err();
        assert!(err.to_string().contains("not the table's header"), "{err}");
        let err = TopologyState::parse(&good.replace("async", "asink")).unwrap_err();
        assert!(err.to_string().contains("unknown sync state"), "{err}");
        assert!(TopologyState::parse("\n\n").is_err());
        assert!(TopologyState::parse(COLUMNS.join(" ").as_str()).is_err());
    }

    #[test]
    fn roles_tell_primaries_and_routers() {
        assert!(row("a", "leader").is_primary());
        assert!(!row("a", "replica").is_primary());
        assert!(row("h", "proxy").is_router());
    }
}
