//! The reader log: what a probe client wrote and what it read, where and when, on disk.
//!
//! A consistency anomaly is a relation between events — a read that came *after* its
//! session's write yet missed it, a read that returned *less* than the one before it, a
//! read of a row that a later failover removed — so the probe records events, not
//! verdicts, and [`super::check`] judges them afterwards, as `runner verify` judges a
//! ledger. The format is plain text, one event per line, like the load ledger's
//! (`load/ledger.rs`); times are seconds since the run's start (monotonic clock):
//!
//! ```text
//! # runner-reads v1 mode=read-your-writes start=2026-11-28T16:00:00.000001Z fix=none
//! write s1 5302428712241725441 1 0.001000 0.003000 0/3000060
//! read s1 postgres-async-standby 5302428712241725441 - 0.003100 0.003900 0/3000028
//! skip s1 postgres-delayed-standby 0.004000 0/2F00000
//! ```
//!
//! - `write SESSION KEY VERSION SENT ACKED LSN`: the session's write of `KEY` at
//!   `VERSION` was acknowledged (`LSN`: a WAL position at or past its commit, or `-`);
//! - `read SESSION NODE KEY VERSION SENT DONE LSN`: a read of `KEY` on `NODE` returned
//!   `VERSION`, or `-` for "no such row" (`LSN`: the node's replay position, or `-`);
//! - `skip SESSION NODE T LSN`: the session refused to read on `NODE`, which had not
//!   replayed as far as the session had already seen (the monotonic-reads fix).
//!
//! Keys, sessions and nodes are whitespace-free tokens; versions are integers that only
//! grow for a key (a row's presence is version 1). Each line is written with one
//! unbuffered `write(2)`, so a killed probe leaves at most an unfinished last line,
//! which the parser drops with a note; any other malformed line is an error naming its
//! line number.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::load::ledger::{format_secs, token};

/// The first words of a reader log's header line.
pub const HEADER_PREFIX: &str = "# runner-reads v1";

/// One event of a reader log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A write the server acknowledged.
    Write(Write),
    /// A read and what it returned.
    Read(Read),
    /// A node the session refused to read on.
    Skip(Skip),
}

/// An acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The client session that wrote.
    pub session: String,
    /// What was written (an op id, a row's name).
    pub key: String,
    /// The version written.
    pub version: i64,
    /// When it was sent.
    pub sent: Duration,
    /// When the commit returned OK.
    pub acked: Duration,
    /// A WAL position at or past its commit record, when known.
    pub lsn: Option<String>,
}

/// A read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The client session that read.
    pub session: String,
    /// The node it read on.
    pub node: String,
    /// What it read.
    pub key: String,
    /// The version it saw; `None`: no such row.
    pub version: Option<i64>,
    /// When the query was sent.
    pub sent: Duration,
    /// When its answer came.
    pub done: Duration,
    /// The node's replay position at the read, when known.
    pub lsn: Option<String>,
}

/// A node the session refused to read on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The client session.
    pub session: String,
    /// The node it did not read on.
    pub node: String,
    /// When.
    pub at: Duration,
    /// The node's replay position then, when known.
    pub lsn: Option<String>,
}

/// A parsed reader log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The header's `key=value` fields (`mode`, `start`, `fix`, ...).
    pub header: BTreeMap<String, String>,
    /// The events, in the order they were written.
    pub events: Vec<Event>,
    /// Things the reader should know (a truncated last line that was ignored).
    pub notes: Vec<String>,
}

impl History {
    /// A history of `events` with an empty header (for tests and callers in memory).
    pub fn of(events: Vec<Event>) -> History {
        History {
            header: BTreeMap::new(),
            events,
            notes: Vec::new(),
        }
    }

    /// Reads and parses the log at `path`; errors name the file and the line.
    pub fn read(path: &Path) -> Result<History> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the reader log {}", path.display()))?;
        History::parse(
            &String::from_utf8_lossy(&bytes),
            &path.display().to_string(),
        )
    }

    /// Parses log text; `origin` names it in errors (`origin:line: ...`).
    pub fn parse(text: &str, origin: &str) -> Result<History> {
        let mut lines: Vec<&str> = text.split('\n').collect();
        let mut notes = Vec::new();
        let last = lines.pop().unwrap_or_default();
        if !last.is_empty() {
            notes.push(format!(
                "{origin}:{}: ignored a truncated last line (the probe was stopped \
                 mid-write): {last:?}",
                lines.len() + 1
            ));
        }
        let Some(first) = lines.first() else {
            bail!("{origin}: the reader log is empty (no header line)");
        };
        let header = parse_header(first).with_context(|| format!("{origin}:1"))?;
        let mut events = Vec::new();
        for (index, line) in lines.iter().enumerate().skip(1) {
            if line.trim().is_empty() || line.starts_with('#') {
                if line.starts_with(HEADER_PREFIX) {
                    bail!(
                        "{origin}:{}: a second header: a log holds one run",
                        index + 1
                    );
                }
                continue;
            }
            let event =
                parse_event(line).with_context(|| format!("{origin}:{}: {line:?}", index + 1))?;
            events.push(event);
        }
        Ok(History {
            header,
            events,
            notes,
        })
    }

    /// The reads, in order.
    pub fn reads(&self) -> impl Iterator<Item = &Read> {
        self.events.iter().filter_map(|e| match e {
            Event::Read(r) => Some(r),
            _ => None,
        })
    }

    /// The acknowledged writes, in order.
    pub fn writes(&self) -> impl Iterator<Item = &Write> {
        self.events.iter().filter_map(|e| match e {
            Event::Write(w) => Some(w),
            _ => None,
        })
    }

    /// The skipped nodes, in order.
    pub fn skips(&self) -> impl Iterator<Item = &Skip> {
        self.events.iter().filter_map(|e| match e {
            Event::Skip(s) => Some(s),
            _ => None,
        })
    }
}

fn parse_header(line: &str) -> Result<BTreeMap<String, String>> {
    let rest = line
        .strip_prefix(HEADER_PREFIX)
        .filter(|rest| rest.is_empty() || rest.starts_with(' '))
        .with_context(|| {
            format!("not a reader log: expected a header line `{HEADER_PREFIX} ...`")
        })?;
    rest.split_whitespace()
        .map(|word| {
            word.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("header field {word:?} is not key=value"))
        })
        .collect()
}

fn parse_event(line: &str) -> Result<Event> {
    let words: Vec<&str> = line.split(' ').collect();
    let want = |n: usize| {
        if words.len() == n {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "a {} line has {} fields, not {n}",
                words[0],
                words.len()
            ))
        }
    };
    match words[0] {
        "write" => {
            want(7)?;
            Ok(Event::Write(Write {
                session: words[1].to_string(),
                key: words[2].to_string(),
                version: parse_version(words[3])?.context("a write's version cannot be `-`")?,
                sent: parse_secs(words[4])?,
                acked: parse_secs(words[5])?,
                lsn: optional(words[6]),
            }))
        }
        "read" => {
            want(8)?;
            Ok(Event::Read(Read {
                session: words[1].to_string(),
                node: words[2].to_string(),
                key: words[3].to_string(),
                version: parse_version(words[4])?,
                sent: parse_secs(words[5])?,
                done: parse_secs(words[6])?,
                lsn: optional(words[7]),
            }))
        }
        "skip" => {
            want(5)?;
            Ok(Event::Skip(Skip {
                session: words[1].to_string(),
                node: words[2].to_string(),
                at: parse_secs(words[3])?,
                lsn: optional(words[4]),
            }))
        }
        other => bail!("unknown event {other:?} (expected write, read or skip)"),
    }
}

fn parse_version(word: &str) -> Result<Option<i64>> {
    if word == "-" {
        return Ok(None);
    }
    word.parse()
        .map(Some)
        .with_context(|| format!("version {word:?} is neither an integer nor `-`"))
}

fn parse_secs(word: &str) -> Result<Duration> {
    word.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .with_context(|| format!("time {word:?} is not a number of seconds"))
}

fn optional(word: &str) -> Option<String> {
    (word != "-").then(|| word.to_string())
}

/// Appends events to a reader log, one unbuffered write per line.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
}

impl LogWriter {
    /// Creates (or truncates) `path` and writes the header: `start` and `fields`.
    pub fn create(path: &Path, start: DateTime<Utc>, fields: &[(&str, &str)]) -> Result<LogWriter> {
        File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut header = format!(
            "{HEADER_PREFIX} start={}",
            start.to_rfc3339_opts(SecondsFormat::Micros, true)
        );
        for (key, value) in fields {
            header.push_str(&format!(" {}={}", token(key), token(value)));
        }
        let writer = LogWriter { file };
        writer
            .line(&header)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(writer)
    }

    fn line(&self, line: &str) -> std::io::Result<()> {
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        (&self.file).write_all(buf.as_bytes())
    }

    /// Records a comment line (`# text`, one line): what the probe did and why, for a
    /// reader of the log; the checker skips it.
    pub fn note(&self, text: &str) -> Result<()> {
        let text = text.replace('\n', " ");
        self.line(&format!("# {text}"))
            .context("writing the reader log")
    }

    /// Records an event.
    pub fn event(&self, event: &Event) -> Result<()> {
        self.line(&format_event(event))
            .context("writing the reader log")
    }
}

/// An event as its log line (without the newline).
pub fn format_event(event: &Event) -> String {
    let lsn = |l: &Option<String>| l.as_deref().map(token).unwrap_or_else(|| "-".into());
    match event {
        Event::Write(w) => format!(
            "write {} {} {} {} {} {}",
            token(&w.session),
            token(&w.key),
            w.version,
            format_secs(w.sent),
            format_secs(w.acked),
            lsn(&w.lsn)
        ),
        Event::Read(r) => format!(
            "read {} {} {} {} {} {} {}",
            token(&r.session),
            token(&r.node),
            token(&r.key),
            r.version.map_or_else(|| "-".to_string(), |v| v.to_string()),
            format_secs(r.sent),
            format_secs(r.done),
            lsn(&r.lsn)
        ),
        Event::Skip(s) => format!(
            "skip {} {} {} {}",
            token(&s.session),
            token(&s.node),
            format_secs(s.at),
            lsn(&s.lsn)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_text() {
        let text = "# runner-reads v1 start=2026-01-01T00:00:00.000000Z mode=ryw\n\
                    write s1 42 1 0.001000 0.002000 0/3000060\n\
                    read s1 postgres-async-standby 42 - 0.002100 0.002500 0/3000028\n\
                    skip s1 postgres-delayed-standby 0.003000 -\n";
        let h = History::parse(text, "t").unwrap();
        assert_eq!(h.header["mode"], "ryw");
        assert_eq!(h.events.len(), 3);
        let lines: Vec<String> = h.events.iter().map(format_event).collect();
        assert_eq!(lines.join("\n") + "\n", text.split_once('\n').unwrap().1);
        assert!(h.notes.is_empty());
    }

    #[test]
    fn a_truncated_last_line_is_a_note_and_a_bad_line_an_error() {
        let h = History::parse("# runner-reads v1 start=x\nread s1 n 4", "t").unwrap();
        assert!(h.events.is_empty());
        assert!(h.notes[0].contains("t:2"), "{:?}", h.notes);
        let err = History::parse("# runner-reads v1\nread s1 n k x 0 0 -\n", "log").unwrap_err();
        assert!(format!("{err:#}").contains("log:2"), "{err:#}");
        let err = History::parse("# runner-reads v1\nflip a\n", "log").unwrap_err();
        assert!(format!("{err:#}").contains("unknown event"), "{err:#}");
        assert!(History::parse("read s1\n", "log").is_err());
        assert!(History::parse("", "log").is_err());
    }
}
