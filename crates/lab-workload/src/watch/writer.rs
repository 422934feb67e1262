//! The writer's rates, read from the tail of its ledger while `runner load` runs.
//!
//! The ledger (format in [`crate::load::ledger`]) grows by whole lines, appended; each
//! refresh reads only the bytes added since the last one (at most [`MAX_READ`] at a
//! time), keeps an unfinished last line for the next read, and counts acknowledgements
//! and failures per second of the run. A file that shrank or was replaced (a new run
//! with the same path) is read again from its start. A line it cannot read is counted,
//! never fatal: the view is a gauge, `runner verify` is the judge.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use crate::load::ledger::{HEADER_PREFIX, Header};

/// How many seconds the sparkline shows.
pub const WINDOW_SECS: u64 = 60;

/// How recently a ledger must have been written to be followed without `--ledger`.
pub const FRESH: Duration = Duration::from_secs(120);

/// The most bytes read from the ledger per refresh (the rest waits for the next one).
pub const MAX_READ: u64 = 16 << 20;

/// Where the writer's ledger is.
#[derive(Debug, Clone)]
pub enum WriterSource {
    /// This file (`--ledger PATH`).
    Path(PathBuf),
    /// The newest `*.ledger` in these folders modified within the last two minutes
    /// ([`FRESH`]; the chapters write theirs in `compose/`).
    Newest(Vec<PathBuf>),
}

/// What the view shows of the writer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriterStats {
    /// The ledger's path as given or found.
    pub path: String,
    /// The run's id and target, once the header was read.
    pub run: Option<(u32, String)>,
    /// Seconds since the run's start (its header's `start`).
    pub elapsed: Option<f64>,
    /// The time of the `end` line, when the writer finished.
    pub ended: Option<f64>,
    /// Acknowledged commits per second over the last [`WINDOW_SECS`] complete seconds,
    /// oldest first.
    pub acks_per_sec: Vec<u64>,
    /// Failed transactions per second over the same seconds.
    pub errors_per_sec: Vec<u64>,
    /// Failures over the same window by class token.
    pub errors_by_class: BTreeMap<String, u64>,
    /// Acknowledged since the start.
    pub acked_total: u64,
    /// Failed since the start.
    pub failed_total: u64,
    /// Attempted with no outcome yet.
    pub in_flight: u64,
    /// Lines that were not ledger lines.
    pub bad_lines: u64,
    /// Why nothing can be shown (no file yet, not a runner ledger, …).
    pub problem: Option<String>,
}

/// Follows one ledger file.
#[derive(Debug)]
pub struct LedgerTail {
    path: PathBuf,
    identity: Option<(u64, u64)>,
    offset: u64,
    partial: Vec<u8>,
    header: Option<Header>,
    acks: BTreeMap<u64, u64>,
    fails: BTreeMap<u64, BTreeMap<String, u64>>,
    attempted: u64,
    acked: u64,
    failed: u64,
    end: Option<f64>,
    bad_lines: u64,
    problem: Option<String>,
}

impl LedgerTail {
    /// Follows `path` (which need not exist yet).
    pub fn new(path: &Path) -> LedgerTail {
        LedgerTail {
            path: path.to_path_buf(),
            identity: None,
            offset: 0,
            partial: Vec::new(),
            header: None,
            acks: BTreeMap::new(),
            fails: BTreeMap::new(),
            attempted: 0,
            acked: 0,
            failed: 0,
            end: None,
            bad_lines: 0,
            problem: None,
        }
    }

    /// The followed file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reset(&mut self) {
        *self = LedgerTail::new(&self.path.clone());
    }

    /// Reads what was appended since the last call and returns the rates as of `now`.
    pub fn poll(&mut self, now: DateTime<Utc>) -> WriterStats {
        if let Err(problem) = self.read_new() {
            self.problem = Some(problem);
        }
        self.stats(now)
    }

    fn read_new(&mut self) -> Result<(), String> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.reset();
                return Err("no such file yet".into());
            }
            Err(err) => return Err(format!("cannot open it: {err}")),
        };
        let meta = file
            .metadata()
            .map_err(|err| format!("cannot stat it: {err}"))?;
        let identity = file_identity(&meta);
        if self.identity.is_some_and(|id| id != identity) || meta.len() < self.offset {
            // Replaced or truncated: a new run.
            self.reset();
        }
        self.identity = Some(identity);
        if meta.len() == self.offset {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|err| format!("cannot seek: {err}"))?;
        let mut chunk = Vec::new();
        file.take(MAX_READ)
            .read_to_end(&mut chunk)
            .map_err(|err| format!("cannot read it: {err}"))?;
        self.offset += chunk.len() as u64;
        self.feed(&chunk);
        Ok(())
    }

    /// Takes appended bytes: complete lines are applied, an unfinished one is kept.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        let Some(last_newline) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=last_newline).collect();
        for line in complete.split(|b| *b == b'\n') {
            if !line.is_empty() {
                self.apply(&String::from_utf8_lossy(line));
            }
        }
    }

    fn apply(&mut self, line: &str) {
        if self.header.is_none() {
            match Header::parse(line) {
                Ok(header) => {
                    self.header = Some(header);
                    self.problem = None;
                }
                Err(_) if line.trim_start().starts_with('{') => {
                    self.problem = Some(
                        "k6's JSON output is not followed live: pass a `runner load` ledger".into(),
                    );
                }
                Err(err) => self.problem = Some(format!("not a runner ledger ({err:#})")),
            }
            return;
        }
        if line.starts_with(HEADER_PREFIX) {
            // A second header: the file was rewritten under us; start over with it.
            let path = self.path.clone();
            *self = LedgerTail::new(&path);
            self.apply(line);
            return;
        }
        if line.starts_with('#') {
            return;
        }
        let words: Vec<&str> = line.split(' ').collect();
        let secs = |t: &str| t.parse::<f64>().ok().filter(|t| t.is_finite() && *t >= 0.0);
        match words.as_slice() {
            ["attempt", _, t] if secs(t).is_some() => self.attempted += 1,
            ["ack", _, t] => match secs(t) {
                Some(t) => {
                    self.acked += 1;
                    *self.acks.entry(t as u64).or_default() += 1;
                }
                None => self.bad_lines += 1,
            },
            ["fail", _, t, class] => match secs(t) {
                Some(t) => {
                    self.failed += 1;
                    *self
                        .fails
                        .entry(t as u64)
                        .or_default()
                        .entry(class.to_string())
                        .or_default() += 1;
                }
                None => self.bad_lines += 1,
            },
            ["end", t] => match secs(t) {
                Some(t) => self.end = Some(t),
                None => self.bad_lines += 1,
            },
            _ => self.bad_lines += 1,
        }
        // Keep memory flat over a long run: only the window (and a margin) is shown.
        if let Some(&latest) = self.acks.keys().next_back()
            && self.acks.len() > 4 * WINDOW_SECS as usize
        {
            let keep_from = latest.saturating_sub(2 * WINDOW_SECS);
            self.acks = self.acks.split_off(&keep_from);
        }
        if let Some(&latest) = self.fails.keys().next_back()
            && self.fails.len() > 4 * WINDOW_SECS as usize
        {
            let keep_from = latest.saturating_sub(2 * WINDOW_SECS);
            self.fails = self.fails.split_off(&keep_from);
        }
    }

    /// The rates as of `now` (wall clock; the ledger's times count from its header's
    /// `start`).
    pub fn stats(&self, now: DateTime<Utc>) -> WriterStats {
        let mut stats = WriterStats {
            path: self.path.display().to_string(),
            acked_total: self.acked,
            failed_total: self.failed,
            in_flight: self
                .attempted
                .saturating_sub(self.acked)
                .saturating_sub(self.failed),
            bad_lines: self.bad_lines,
            problem: self.problem.clone(),
            ended: self.end,
            ..WriterStats::default()
        };
        let Some(header) = &self.header else {
            if stats.problem.is_none() {
                stats.problem = Some("no header yet".into());
            }
            return stats;
        };
        stats.run = Some((header.run_id, header.target.clone()));
        let elapsed = (now - header.start)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        stats.elapsed = Some(elapsed);
        // The window: the last complete seconds before now (or before the end).
        let current = match self.end {
            Some(end) => (end.ceil() as u64).min(elapsed as u64),
            None => elapsed as u64,
        };
        let first = current.saturating_sub(WINDOW_SECS);
        for second in first..current {
            stats
                .acks_per_sec
                .push(self.acks.get(&second).copied().unwrap_or(0));
            let fails = self.fails.get(&second);
            stats
                .errors_per_sec
                .push(fails.map(|f| f.values().sum()).unwrap_or(0));
            for (class, n) in fails.into_iter().flatten() {
                *stats.errors_by_class.entry(class.clone()).or_default() += n;
            }
        }
        stats
    }
}

#[cfg(unix)]
fn file_identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_identity(meta: &std::fs::Metadata) -> (u64, u64) {
    let created = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (0, created)
}

/// The newest `*.ledger` in `dirs` modified within `recent` of `now`.
pub fn newest_ledger(dirs: &[PathBuf], recent: Duration, now: SystemTime) -> Option<PathBuf> {
    let mut best: Option<(SystemTime, PathBuf)> = None;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("ledger") {
                continue;
            }
            let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            let fresh = now
                .duration_since(modified)
                .map(|age| age <= recent)
                .unwrap_or(true);
            if fresh && best.as_ref().is_none_or(|(t, _)| modified > *t) {
                best = Some((modified, path));
            }
        }
    }
    best.map(|(_, path)| path)
}

/// Follows the writer's ledger, wherever [`WriterSource`] says it is.
#[derive(Debug)]
pub struct WriterWatch {
    source: WriterSource,
    tail: Option<LedgerTail>,
}

impl WriterWatch {
    /// Follows `source`.
    pub fn new(source: WriterSource) -> WriterWatch {
        let tail = match &source {
            WriterSource::Path(path) => Some(LedgerTail::new(path)),
            WriterSource::Newest(_) => None,
        };
        WriterWatch { source, tail }
    }

    /// The writer's stats now; `None` when no ledger is given and none was written in
    /// the last two minutes.
    pub fn poll(&mut self, now: DateTime<Utc>) -> Option<WriterStats> {
        if let WriterSource::Newest(dirs) = &self.source {
            // The newest fresh one; a newer run replaces it, and one left alone for
            // [`FRESH`] (ended, or its writer killed) is no longer news.
            match newest_ledger(dirs, FRESH, SystemTime::now()) {
                Some(found) if self.tail.as_ref().is_none_or(|t| t.path() != found) => {
                    self.tail = Some(LedgerTail::new(&found));
                }
                Some(_) => {}
                None => self.tail = None,
            }
        }
        Some(self.tail.as_mut()?.poll(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::ledger::op_base;

    fn header_at(start: DateTime<Utc>) -> Header {
        Header {
            run_id: 7,
            target: "pgbouncer".into(),
            start,
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn counts_per_second_across_partial_reads() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut tail = LedgerTail::new(Path::new("x.ledger"));
        let base = op_base(7);
        let mut text = format!("{}\n", header_at(start).line());
        for i in 0..10 {
            let t = 1.0 + i as f64 * 0.1;
            text.push_str(&format!("attempt {} {t:.6}\n", base + i));
            text.push_str(&format!("ack {} {:.6}\n", base + i, t + 0.01));
        }
        text.push_str(&format!(
            "attempt {} 3.5\nfail {} 3.6 connection_refused\n",
            base + 20,
            base + 20
        ));
        text.push_str(&format!("attempt {} 3.7\n", base + 21));
        // Fed in awkward pieces: a line split across reads is applied once, whole.
        for piece in text.as_bytes().chunks(7) {
            tail.feed(piece);
        }
        let now = start + chrono::Duration::milliseconds(4_500);
        let stats = tail.stats(now);
        assert_eq!(stats.run, Some((7, "pgbouncer".into())));
        assert_eq!(stats.acked_total, 10);
        assert_eq!(stats.failed_total, 1);
        assert_eq!(stats.in_flight, 1);
        assert_eq!(stats.bad_lines, 0);
        // Seconds 0..4 complete at 4.5 s: acks at 1.01..1.91 and 2.01 (i = 9 → 1.91).
        assert_eq!(stats.acks_per_sec, vec![0, 10, 0, 0]);
        assert_eq!(stats.errors_per_sec, vec![0, 0, 0, 1]);
        assert_eq!(stats.errors_by_class["connection_refused"], 1);
    }

    #[test]
    fn bad_input_is_counted_not_fatal() {
        let mut tail = LedgerTail::new(Path::new("x.ledger"));
        tail.feed(b"hello\n");
        let stats = tail.stats(Utc::now());
        assert!(stats.problem.unwrap().contains("not a runner ledger"));
        let mut tail = LedgerTail::new(Path::new("x.ledger"));
        tail.feed(b"{\"type\":\"Point\"}\n");
        assert!(tail.stats(Utc::now()).problem.unwrap().contains("k6"));
        let mut tail = LedgerTail::new(Path::new("x.ledger"));
        let text = format!(
            "{}\nack 1 nope\nbogus\n\u{fffd}\n",
            header_at(Utc::now()).line()
        );
        tail.feed(text.as_bytes());
        tail.feed(&[0xff, 0xfe, b'\n']);
        let stats = tail.stats(Utc::now());
        assert_eq!(stats.bad_lines, 4);
        assert_eq!(stats.problem, None);
    }

    #[test]
    fn follows_a_growing_file_and_a_new_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ledger");
        let mut tail = LedgerTail::new(&path);
        assert!(
            tail.poll(Utc::now())
                .problem
                .unwrap()
                .contains("no such file")
        );
        let start = Utc::now() - chrono::Duration::seconds(3);
        let base = op_base(7);
        std::fs::write(
            &path,
            format!(
                "{}\nattempt {} 1.0\nack {} 1.1\n",
                header_at(start).line(),
                base + 1,
                base + 1
            ),
        )
        .unwrap();
        let stats = tail.poll(Utc::now());
        assert_eq!(stats.acked_total, 1);
        assert_eq!(stats.problem, None);
        // Appended.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(
            f,
            "attempt {} 1.2\nack {} 1.3\nend 2.0\n",
            base + 2,
            base + 2
        )
        .unwrap();
        let stats = tail.poll(Utc::now());
        assert_eq!(stats.acked_total, 2);
        assert_eq!(stats.ended, Some(2.0));
        // Rewritten shorter: a new run, read from the start.
        std::fs::write(&path, format!("{}\n", header_at(start).line())).unwrap();
        let stats = tail.poll(Utc::now());
        assert_eq!(stats.acked_total, 0);
        assert_eq!(stats.ended, None);
    }

    #[test]
    fn finds_the_newest_fresh_ledger() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            newest_ledger(
                &[dir.path().to_path_buf()],
                Duration::from_secs(60),
                SystemTime::now()
            ),
            None
        );
        std::fs::write(dir.path().join("a.ledger"), "").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let found = newest_ledger(
            &[dir.path().to_path_buf(), dir.path().join("missing")],
            Duration::from_secs(60),
            SystemTime::now(),
        );
        assert_eq!(found, Some(dir.path().join("a.ledger")));
        let later = SystemTime::now() + Duration::from_secs(600);
        assert_eq!(
            newest_ledger(&[dir.path().to_path_buf()], Duration::from_secs(60), later),
            None
        );
    }
}
