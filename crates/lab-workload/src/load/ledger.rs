//! The ledger: what the writer attempted and what the server acknowledged, on disk.
//!
//! A loss can only be counted against a record made *before* the loss: the writer notes
//! every op id as attempted before it sends the transaction, and as acknowledged once
//! the commit returned OK (or as failed, with its class). Each line goes to the file in
//! one unbuffered `write(2)` on an `O_APPEND` descriptor, so what was written is in the
//! page cache and survives the writer being SIGKILLed; workers share the descriptor
//! without a lock because appends of one small buffer do not interleave.
//!
//! The format is plain text, one event per line (times are seconds since the run's
//! start, from a monotonic clock):
//!
//! ```text
//! # runner-ledger v1 run_id=1234567 target=pgbouncer start=2025-11-27T13:00:00.123456Z op_lo=5302428712241725440 op_hi=5302428716536692735
//! attempt 5302428712241725441 0.001234
//! ack 5302428712241725441 0.003456
//! fail 5302428712241725442 0.503456 timeout
//! end 10.001234
//! ```
//!
//! Op ids are `run_id << 32 | seq` with a random 31-bit run id and `seq` from 1, so the
//! ids of a run are unique across runs and a verifier can ask the database for exactly
//! the run's range. Lines starting with `#` other than the header are comments. A last
//! line without its newline is what a writer killed mid-write leaves: the parser drops
//! it with a note; any other malformed line is an error naming its line number.
//!
//! This file is the format and the writing side; [`read`] parses a ledger back, and
//! [`k6`] reads k6's JSON output (`compose/k6/write.js`'s samples) as a ledger, so a k6
//! run is checked for lost writes the same way.

pub mod k6;
mod read;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};

use super::errors::ErrorClass;

pub use read::{Ledger, OpRecord, Outcome};

/// The first words of a ledger's header line.
pub const HEADER_PREFIX: &str = "# runner-ledger v1";

/// The first op id of a run.
pub fn op_base(run_id: u32) -> i64 {
    i64::from(run_id) << 32
}

/// The op ids a run may use: `run_id << 32 | seq`, `seq` in `1..=u32::MAX`.
pub fn op_range(run_id: u32) -> RangeInclusive<i64> {
    let base = op_base(run_id);
    base..=base | i64::from(u32::MAX)
}

/// A fresh random run id in `1..2^31`, so op ids (`run_id << 32 | seq`) stay positive
/// in a `bigint`. The randomness is std's per-process hash keys mixed with the clock
/// and the pid: no dependency, and two runs colliding is a 1 in 2^31 chance.
pub fn random_run_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    let id = (hasher.finish() & 0x7fff_ffff) as u32;
    id.max(1)
}

/// Formats a time since the start as seconds with microseconds (`12.000345`).
pub fn format_secs(t: Duration) -> String {
    format!("{}.{:06}", t.as_secs(), t.subsec_micros())
}

/// The header of a ledger: which run, against what, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The run's random id; its op ids are `run_id << 32 | seq`.
    pub run_id: u32,
    /// What the writer wrote to (a service name, or a label for a conninfo).
    pub target: String,
    /// Wall-clock time of the run's start (the zero of the ledger's times).
    pub start: DateTime<Utc>,
    /// Every other `key=value` of the header line (workers, rate, ...), for the reader.
    pub extra: BTreeMap<String, String>,
}

impl Header {
    /// The op ids this run may use.
    pub fn op_range(&self) -> RangeInclusive<i64> {
        op_range(self.run_id)
    }

    /// The header line, without its newline.
    pub fn line(&self) -> String {
        let range = self.op_range();
        let mut line = format!(
            "{HEADER_PREFIX} run_id={} target={} start={} op_lo={} op_hi={}",
            self.run_id,
            token(&self.target),
            self.start.to_rfc3339_opts(SecondsFormat::Micros, true),
            range.start(),
            range.end(),
        );
        for (key, value) in &self.extra {
            line.push_str(&format!(" {}={}", token(key), token(value)));
        }
        line
    }

    /// Parses a header line.
    pub fn parse(line: &str) -> Result<Header> {
        let rest = line
            .strip_prefix(HEADER_PREFIX)
            .filter(|rest| rest.is_empty() || rest.starts_with(' '))
            .with_context(|| {
                format!("not a runner ledger: expected a header line `{HEADER_PREFIX} ...`")
            })?;
        let mut fields = BTreeMap::new();
        for word in rest.split_whitespace() {
            let (key, value) = word
                .split_once('=')
                .with_context(|| format!("header field {word:?} is not key=value"))?;
            fields.insert(key.to_string(), value.to_string());
        }
        let mut take = |key: &str| {
            fields
                .remove(key)
                .with_context(|| format!("the header has no {key}="))
        };
        let run_id_text = take("run_id")?;
        let run_id: u32 = run_id_text
            .parse()
            .ok()
            .filter(|id| *id > 0 && *id < 1 << 31)
            .with_context(|| format!("run_id={run_id_text} is not in 1..2^31"))?;
        let target = take("target")?;
        let start_text = take("start")?;
        let start = DateTime::parse_from_rfc3339(&start_text)
            .with_context(|| format!("start={start_text} is not an RFC 3339 time"))?
            .with_timezone(&Utc);
        // The range is derived from the run id; drop the copies written for the reader.
        fields.remove("op_lo");
        fields.remove("op_hi");
        Ok(Header {
            run_id,
            target,
            start,
            extra: fields,
        })
    }

    /// The wall-clock time of an offset from the start.
    pub fn at(&self, t: Duration) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(t).unwrap_or(chrono::Duration::MAX)
    }
}

/// A value as one token: whitespace and `=` replaced, never empty (ledger headers,
/// reader logs).
pub(crate) fn token(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '=' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if cleaned.is_empty() {
        "-".into()
    } else {
        cleaned
    }
}

/// Appends ledger events to a file, one unbuffered write per line.
#[derive(Debug)]
pub struct LedgerWriter {
    file: File,
}

impl LedgerWriter {
    /// Creates (or truncates) `path` and writes the header.
    pub fn create(path: &Path, header: &Header) -> Result<LedgerWriter> {
        // Truncate first, then reopen in append mode: every later write is an O_APPEND
        // write, which the kernel never interleaves with another one.
        File::create(path).with_context(|| format!("creating the ledger {}", path.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening the ledger {}", path.display()))?;
        let writer = LedgerWriter { file };
        writer
            .write_line(&header.line())
            .with_context(|| format!("writing the ledger {}", path.display()))?;
        Ok(writer)
    }

    fn write_line(&self, line: &str) -> io::Result<()> {
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        (&self.file).write_all(buf.as_bytes())
    }

    /// Notes that `op` is about to be sent.
    pub fn attempt(&self, op: i64, t: Duration) -> io::Result<()> {
        self.write_line(&format!("attempt {op} {}", format_secs(t)))
    }

    /// Notes that the commit of `op` returned OK.
    pub fn ack(&self, op: i64, t: Duration) -> io::Result<()> {
        self.write_line(&format!("ack {op} {}", format_secs(t)))
    }

    /// Notes that `op` failed, with its class.
    pub fn fail(&self, op: i64, t: Duration, class: &ErrorClass) -> io::Result<()> {
        self.write_line(&format!("fail {op} {} {}", format_secs(t), class.token()))
    }

    /// Notes the end of the run (absent when the writer was killed).
    pub fn end(&self, t: Duration) -> io::Result<()> {
        self.write_line(&format!("end {}", format_secs(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header for the tests of the ledger and of its reading.
    pub(super) fn header() -> Header {
        Header {
            run_id: 7,
            target: "pgbouncer".into(),
            start: DateTime::parse_from_rfc3339("2025-01-02T03:04:05.000006Z")
                .unwrap()
                .with_timezone(&Utc),
            extra: BTreeMap::from([("workers".to_string(), "4".to_string())]),
        }
    }

    #[test]
    fn op_ids_are_scoped_to_the_run() {
        assert_eq!(op_range(1), (1 << 32)..=((1 << 32) | 0xffff_ffff));
        let id = random_run_id();
        assert!(id > 0 && id < 1 << 31);
        assert!(*op_range(0x7fff_ffff).end() > 0, "op ids stay positive");
    }

    #[test]
    fn header_round_trips() {
        let h = header();
        let line = h.line();
        assert!(line.starts_with("# runner-ledger v1 run_id=7 target=pgbouncer start=2025-01-02T03:04:05.000006Z op_lo=30064771072 "), "{line}");
        assert_eq!(Header::parse(&line).unwrap(), h);
    }
}
