//! The consistency checker: anomalies counted from a reader log.
//!
//! Replication makes several copies, and a client that reads a copy can see things no
//! single PostgreSQL node would show it. Like the set check of `runner verify`, this is
//! a pure function over a recorded history, so the claims the chapter makes rest on
//! logic tested without a database, on hand-made histories:
//!
//! - **stale read** (read-after-write violated): a session read a key *after* the
//!   server acknowledged that session's own write of it, and got an older version or
//!   no row;
//! - **regression** (monotonic reads violated): a session read a key and got an older
//!   version than an earlier read of the same session returned — time went backwards;
//! - **phantom-then-lost**: some read returned a version of a key that the node which
//!   survived (the one checked at the end) does not have: the data was *seen* and then
//!   vanished. When the writer's acknowledgements are known, each such key is also
//!   sorted by how its commit was answered: acknowledged, acknowledged with a WARNING
//!   (a cancelled SyncRep wait: PostgreSQL answers the commit as committed, and warns
//!   that it might not have been replicated), or not at all.
//!
//! Versions only grow for a key, and "no row" is older than any version.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::log::{Event, History, Read};

/// A read that missed its session's own acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleRead {
    /// The session.
    pub session: String,
    /// The node read.
    pub node: String,
    /// The key.
    pub key: String,
    /// The version the session had written (and seen acknowledged).
    pub written: i64,
    /// What the read returned (`None`: no row).
    pub seen: Option<i64>,
}

/// A read older than an earlier read of the same session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Regression {
    /// The session.
    pub session: String,
    /// The key.
    pub key: String,
    /// The node of the earlier, newer read.
    pub from_node: String,
    /// The newest version the session had seen.
    pub from: i64,
    /// The node of this read.
    pub to_node: String,
    /// What this read returned (`None`: no row).
    pub to: Option<i64>,
}

/// A version some read returned that the surviving node does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhantomLost {
    /// The key.
    pub key: String,
    /// The newest version any read returned.
    pub seen: i64,
    /// The node that saw it first, and the session.
    pub seen_on: String,
    /// The session that saw it first.
    pub seen_by: String,
    /// What the surviving node has (`None`: no row).
    pub survived: Option<i64>,
    /// Whether the write was acknowledged to its writer (`None`: not known).
    pub acknowledged: Option<bool>,
    /// Whether its commit was answered with the "canceling wait for synchronous
    /// replication" WARNING: committed, as far as the client was told, but not confirmed
    /// by the synchronous standby.
    pub warned: bool,
}

/// What a node holds at the end, for the phantom-then-lost check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalState {
    /// The node's name.
    pub node: String,
    /// The version of each key asked about that the node has; a key absent here has
    /// no row there.
    pub versions: BTreeMap<String, i64>,
    /// The keys whose writes were acknowledged to the writer, when a ledger says so.
    pub acknowledged: Option<BTreeSet<String>>,
    /// The keys whose commits were answered with a WARNING that the wait for
    /// synchronous replication was cancelled (the ledger's `syncrep_cancelled`).
    pub warned: BTreeSet<String>,
}

/// The anomalies of a history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Anomalies {
    /// Reads in the log.
    pub reads: usize,
    /// Acknowledged writes in the log.
    pub writes: usize,
    /// Reads that followed an acknowledged write of their own session to the same key.
    pub reads_after_own_write: usize,
    /// Of those, the reads that missed it.
    pub stale: Vec<StaleRead>,
    /// Reads that went back in time within their session.
    pub regressions: Vec<Regression>,
    /// Nodes a session refused to read on (the fix of monotonic reads at work).
    pub skipped: usize,
    /// Reads per node.
    pub reads_by_node: BTreeMap<String, usize>,
    /// Keys some read returned, checked against the surviving node (0 without one).
    pub keys_seen: usize,
    /// Seen, then gone from the surviving node; `None` when no node was checked.
    pub phantom_lost: Option<Vec<PhantomLost>>,
}

/// The keys some read returned (a version, not "no row"), each with its newest version:
/// what a phantom-then-lost check must ask the surviving node about.
pub fn keys_seen(history: &History) -> BTreeMap<String, i64> {
    let mut seen = BTreeMap::new();
    for read in history.reads() {
        if let Some(v) = read.version {
            let e = seen.entry(read.key.clone()).or_insert(v);
            *e = (*e).max(v);
        }
    }
    seen
}

/// Counts the anomalies of `history`, and the phantom-then-lost ones against `survivor`
/// when it is given.
pub fn check(history: &History, survivor: Option<&FinalState>) -> Anomalies {
    let mut out = Anomalies::default();
    // session -> key -> the newest version the session wrote and saw acknowledged.
    let mut own: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    // session -> key -> (the newest version it read, where).
    let mut newest: BTreeMap<(&str, &str), (i64, &str)> = BTreeMap::new();
    // Acknowledged writes not yet in `own`: a write counts for reads *sent* after its
    // acknowledgement, and the log is in the order lines were written, so a read sent
    // before a later-logged ack must not see it.
    let mut pending: Vec<(&str, &str, i64, std::time::Duration)> = Vec::new();
    for event in &history.events {
        match event {
            Event::Write(w) => {
                out.writes += 1;
                pending.push((&w.session, &w.key, w.version, w.acked));
            }
            Event::Skip(_) => out.skipped += 1,
            Event::Read(r) => {
                out.reads += 1;
                *out.reads_by_node.entry(r.node.clone()).or_default() += 1;
                pending.retain(|(s, k, v, acked)| {
                    if *s == r.session && *acked <= r.sent {
                        let e = own.entry((s, k)).or_insert(*v);
                        *e = (*e).max(*v);
                        false
                    } else {
                        true
                    }
                });
                stale_check(&mut out, &own, r);
                regression_check(&mut out, &mut newest, r);
            }
        }
    }
    if let Some(survivor) = survivor {
        let seen = keys_seen(history);
        out.keys_seen = seen.len();
        let mut lost = Vec::new();
        for (key, version) in seen {
            let survived = survivor.versions.get(&key).copied();
            if survived.is_some_and(|s| s >= version) {
                continue;
            }
            let first = history
                .reads()
                .find(|r| r.key == key && r.version == Some(version));
            lost.push(PhantomLost {
                acknowledged: survivor.acknowledged.as_ref().map(|a| a.contains(&key)),
                warned: survivor.warned.contains(&key),
                seen_on: first.map(|r| r.node.clone()).unwrap_or_default(),
                seen_by: first.map(|r| r.session.clone()).unwrap_or_default(),
                key,
                seen: version,
                survived,
            });
        }
        out.phantom_lost = Some(lost);
    }
    out
}

fn stale_check(out: &mut Anomalies, own: &BTreeMap<(&str, &str), i64>, r: &Read) {
    if let Some(&written) = own.get(&(r.session.as_str(), r.key.as_str())) {
        out.reads_after_own_write += 1;
        if r.version.is_none_or(|v| v < written) {
            out.stale.push(StaleRead {
                session: r.session.clone(),
                node: r.node.clone(),
                key: r.key.clone(),
                written,
                seen: r.version,
            });
        }
    }
}

fn regression_check<'a>(
    out: &mut Anomalies,
    newest: &mut BTreeMap<(&'a str, &'a str), (i64, &'a str)>,
    r: &'a Read,
) {
    let slot = (r.session.as_str(), r.key.as_str());
    match (newest.get(&slot).copied(), r.version) {
        (Some((from, from_node)), seen) if seen.is_none_or(|v| v < from) => {
            out.regressions.push(Regression {
                session: r.session.clone(),
                key: r.key.clone(),
                from_node: from_node.to_string(),
                from,
                to_node: r.node.clone(),
                to: seen,
            });
        }
        (_, Some(v)) => {
            let e = newest.entry(slot).or_insert((v, &r.node));
            if v >= e.0 {
                *e = (v, &r.node);
            }
        }
        _ => {}
    }
}

impl Anomalies {
    /// The `key: value` lines the book engine captures.
    pub fn key_values(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k}: {v}\n"));
        line("reads", self.reads.to_string());
        line("writes", self.writes.to_string());
        line(
            "reads_after_own_write",
            self.reads_after_own_write.to_string(),
        );
        line("stale_reads", self.stale.len().to_string());
        line("regressions", self.regressions.len().to_string());
        line("skipped", self.skipped.to_string());
        for (node, n) in &self.reads_by_node {
            line(
                &format!("reads_on_{}", node.replace('-', "_")),
                n.to_string(),
            );
        }
        if let Some(lost) = &self.phantom_lost {
            line("keys_seen", self.keys_seen.to_string());
            line("phantom_lost", lost.len().to_string());
            let unacked = lost
                .iter()
                .filter(|p| p.acknowledged == Some(false) && !p.warned)
                .count();
            let acked = lost.iter().filter(|p| p.acknowledged == Some(true)).count();
            let warned = lost
                .iter()
                .filter(|p| p.acknowledged == Some(false) && p.warned)
                .count();
            if lost.iter().any(|p| p.acknowledged.is_some()) {
                line("phantom_lost_acknowledged", acked.to_string());
                line("phantom_lost_acknowledged_with_warning", warned.to_string());
                line("phantom_lost_unacknowledged", unacked.to_string());
            }
        }
        out
    }

    /// Human-readable examples of each anomaly, at most `n` of each.
    pub fn examples(&self, n: usize) -> String {
        let mut out = String::new();
        let version = |v: Option<i64>| v.map_or_else(|| "no row".to_string(), |v| v.to_string());
        for s in self.stale.iter().take(n) {
            out.push_str(&format!(
                "stale read: {} wrote {} = {} (acknowledged), then read {} on {}\n",
                s.session,
                s.key,
                s.written,
                version(s.seen),
                s.node
            ));
        }
        for r in self.regressions.iter().take(n) {
            out.push_str(&format!(
                "regression: {} read {} = {} on {}, then {} on {}\n",
                r.session,
                r.key,
                r.from,
                r.from_node,
                version(r.to),
                r.to_node
            ));
        }
        for p in self.phantom_lost.iter().flatten().take(n) {
            out.push_str(&format!(
                "phantom then lost: {} read {} = {} on {}; the survivor has {}{}\n",
                p.seen_by,
                p.key,
                p.seen,
                p.seen_on,
                version(p.survived),
                match (p.acknowledged, p.warned) {
                    (Some(true), _) => " (its write was acknowledged)",
                    (Some(false), true) =>
                        " (its commit was acknowledged with a WARNING: not confirmed by the synchronous standby)",
                    (Some(false), false) => " (its write was never acknowledged)",
                    (None, _) => "",
                }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::log::{Skip, Write};
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn write(session: &str, key: &str, version: i64, sent: u64, acked: u64) -> Event {
        Event::Write(Write {
            session: session.into(),
            key: key.into(),
            version,
            sent: ms(sent),
            acked: ms(acked),
            lsn: None,
        })
    }

    fn read(session: &str, node: &str, key: &str, version: Option<i64>, sent: u64) -> Event {
        Event::Read(Read {
            session: session.into(),
            node: node.into(),
            key: key.into(),
            version,
            sent: ms(sent),
            done: ms(sent + 1),
            lsn: None,
        })
    }

    #[test]
    fn a_read_that_misses_its_own_acknowledged_write_is_stale() {
        let h = History::of(vec![
            write("s1", "a", 1, 0, 2),
            read("s1", "async", "a", None, 3),
            write("s1", "b", 1, 4, 6),
            read("s1", "async", "b", Some(1), 7),
            write("s1", "c", 2, 8, 9),
            read("s1", "async", "c", Some(1), 10),
        ]);
        let a = check(&h, None);
        assert_eq!((a.reads, a.writes, a.reads_after_own_write), (3, 3, 3));
        let stale: Vec<(&str, Option<i64>)> =
            a.stale.iter().map(|s| (s.key.as_str(), s.seen)).collect();
        assert_eq!(stale, [("a", None), ("c", Some(1))]);
        assert!(a.regressions.is_empty());
        assert!(a.phantom_lost.is_none());
    }

    #[test]
    fn only_the_session_s_own_earlier_acknowledged_writes_count() {
        let h = History::of(vec![
            // Another session's write: not this session's promise.
            write("s2", "a", 1, 0, 1),
            read("s1", "async", "a", None, 2),
            // Sent before the ack came back (concurrent): no promise either.
            read("s1", "async", "b", None, 3),
            write("s1", "b", 1, 2, 5),
            // Logged after the write, but sent before its ack: no promise yet...
            read("s1", "async", "b", None, 4),
            // ...and after it, one.
            read("s1", "async", "b", None, 6),
        ]);
        let a = check(&h, None);
        assert_eq!(a.reads_after_own_write, 1);
        let stale: Vec<(&str, Option<i64>)> =
            a.stale.iter().map(|s| (s.key.as_str(), s.seen)).collect();
        assert_eq!(stale, [("b", None)]);
    }

    #[test]
    fn a_read_older_than_an_earlier_one_of_the_session_is_a_regression() {
        let h = History::of(vec![
            read("s1", "async", "max", Some(10), 0),
            read("s1", "delayed", "max", Some(4), 2),
            read("s1", "async", "max", Some(11), 4),
            read("s1", "delayed", "max", Some(4), 6),
            read("s1", "delayed", "max", Some(11), 8),
            // Another session starts from nothing: its first read is no regression.
            read("s2", "delayed", "max", Some(4), 9),
            // A row that disappears is a regression too.
            read("s2", "async", "row", Some(1), 10),
            read("s2", "delayed", "row", None, 11),
        ]);
        let a = check(&h, None);
        let r: Vec<(i64, &str, Option<i64>, &str)> = a
            .regressions
            .iter()
            .map(|r| (r.from, r.from_node.as_str(), r.to, r.to_node.as_str()))
            .collect();
        assert_eq!(
            r,
            [
                (10, "async", Some(4), "delayed"),
                (11, "async", Some(4), "delayed"),
                (1, "async", None, "delayed"),
            ]
        );
        assert_eq!(a.reads_by_node["delayed"], 5);
        assert!(a.stale.is_empty());
    }

    #[test]
    fn a_monotonic_session_with_skips_has_no_regression() {
        let h = History::of(vec![
            read("s1", "async", "max", Some(10), 0),
            Event::Skip(Skip {
                session: "s1".into(),
                node: "delayed".into(),
                at: ms(1),
                lsn: None,
            }),
            read("s1", "async", "max", Some(10), 2),
            read("s1", "async", "max", Some(12), 3),
        ]);
        let a = check(&h, None);
        assert!(a.regressions.is_empty());
        assert_eq!(a.skipped, 1);
        assert_eq!(
            a.key_values()
                .lines()
                .find(|l| l.starts_with("regressions")),
            Some("regressions: 0")
        );
    }

    #[test]
    fn a_row_read_and_missing_on_the_survivor_is_phantom_then_lost() {
        let h = History::of(vec![
            read("reader", "primary", "7", Some(1), 0),
            read("reader", "primary", "8", Some(1), 0),
            read("reader", "primary", "9", Some(1), 0),
            read("reader", "primary", "10", None, 0),
            read("reader", "primary", "11", Some(3), 0),
        ]);
        let survivor = FinalState {
            node: "standby".into(),
            versions: BTreeMap::from([("8".into(), 1), ("11".into(), 2)]),
            acknowledged: Some(BTreeSet::from(["8".to_string(), "9".to_string()])),
            warned: BTreeSet::from(["7".to_string()]),
        };
        let a = check(&h, Some(&survivor));
        let lost: Vec<(&str, Option<i64>, Option<bool>)> = a
            .phantom_lost
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.key.as_str(), p.survived, p.acknowledged))
            .collect();
        // 10 was never seen; 8 survived; 11 survived at an older version: lost too.
        assert_eq!(
            lost,
            [
                ("11", Some(2), Some(false)),
                ("7", None, Some(false)),
                ("9", None, Some(true))
            ]
        );
        assert_eq!(a.keys_seen, 4);
        let kv = a.key_values();
        assert!(kv.contains("phantom_lost: 3\n"), "{kv}");
        assert!(kv.contains("phantom_lost_acknowledged: 1\n"), "{kv}");
        // 7's commit was answered with the SyncRep WARNING; 11's not at all.
        assert!(
            kv.contains("phantom_lost_acknowledged_with_warning: 1\n"),
            "{kv}"
        );
        assert!(kv.contains("phantom_lost_unacknowledged: 1\n"), "{kv}");
        let examples = a.examples(5);
        assert!(examples.contains("never acknowledged"), "{examples}");
        assert!(examples.contains("with a WARNING"), "{examples}");
    }

    #[test]
    fn a_clean_history_reports_nothing() {
        let h = History::of(vec![
            write("s1", "a", 1, 0, 1),
            read("s1", "sync", "a", Some(1), 2),
            read("s1", "sync", "a", Some(1), 3),
        ]);
        let survivor = FinalState {
            node: "sync".into(),
            versions: BTreeMap::from([("a".into(), 1)]),
            acknowledged: None,
            warned: BTreeSet::new(),
        };
        let a = check(&h, Some(&survivor));
        assert_eq!(a.reads_after_own_write, 2);
        assert!(a.stale.is_empty() && a.regressions.is_empty());
        assert_eq!(a.phantom_lost.as_deref(), Some(&[][..]));
        assert!(a.examples(3).is_empty());
    }
}
