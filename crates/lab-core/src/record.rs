//! Recorded results: what each lab step printed when it last ran for real.
//!
//! One JSON file per chapter under `book/recorded/`, committed, so the book renders
//! offline. Formatting is stable (fixed field order, pretty-printed, trailing newline)
//! so re-recording a chapter makes a small diff. A block's record carries the digest of
//! the text it was made from: a block whose text changed has a *stale* record.
//! Files are written atomically (temporary file + rename): an interrupted run never
//! leaves a half-written record, and never loses the previous one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Block, Chapter};

/// The format of the records this code writes and reads. Raise it when a field changes
/// meaning or is removed (a new optional field needs no new format); a record of a
/// newer format is an error naming both, not a silent misreading.
pub const FORMAT: u32 = 1;

/// Records written before they carried a format are format 1.
fn format_one() -> u32 {
    1
}

/// A record's times as the engine writes them: RFC 3339, UTC, milliseconds, `Z`.
mod rfc3339_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| D::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}")))
    }
}

/// The record of one chapter run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChapterRecord {
    /// The record format it was written in ([`FORMAT`]).
    #[serde(default = "format_one")]
    pub format: u32,
    /// The chapter's path relative to `book/src`.
    pub chapter: String,
    /// When the run started; written as RFC 3339 in UTC to the millisecond
    /// (`2026-12-04T16:29:07.362Z`), read from any RFC 3339 time.
    #[serde(with = "rfc3339_millis")]
    pub recorded_at: DateTime<Utc>,
    /// `SHOW server_version` on the primary at the start of the run, when there was one.
    pub server_version: Option<String>,
    /// The whole run's duration, precondition included.
    pub duration_ms: u64,
    /// One entry per lab block, in chapter order.
    pub blocks: Vec<BlockRecord>,
}

/// The record of one step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlockRecord {
    /// The block's id.
    pub id: String,
    /// Digest of the block's info string and text when it ran.
    pub digest: String,
    /// Line of the block in the chapter when it ran.
    pub line: usize,
    /// The text as run (captured values substituted).
    pub command: String,
    /// Where it ran: `sh` or the service whose psql ran it.
    pub ran_on: String,
    /// Standard output and error, interleaved.
    pub output: String,
    /// Exit status; `null` when stopped at its bound.
    pub exit_code: Option<i64>,
    /// Whether the step hit its timeout.
    pub timed_out: bool,
    /// Whether the outcome matched the expectation (and the check held).
    pub ok: bool,
    /// Wall time of the step.
    pub duration_ms: u64,
    /// When it started (UTC, RFC 3339).
    pub started_at: String,
    /// The server version of the run.
    pub server_version: Option<String>,
    /// For checks: the outcome.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub check: Option<CheckRecord>,
    /// Values captured from the output.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub captures: BTreeMap<String, String>,
    /// For checks with wait-until and retried steps: how many attempts it took.
    #[serde(skip_serializing_if = "is_one", default = "one")]
    pub attempts: u32,
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

fn one() -> u32 {
    1
}

/// The outcome of a check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckRecord {
    /// The claim in words.
    pub claim: String,
    /// Whether it held.
    pub passed: bool,
    /// The figure behind it: the other columns of the check's row, `name = value`.
    pub figure: Vec<(String, String)>,
}

impl CheckRecord {
    /// `check held: <claim> (name = value, …)`, or `check did NOT hold: …`.
    pub fn verdict(&self) -> String {
        let held = if self.passed { "held" } else { "did NOT hold" };
        let figure: Vec<String> = self
            .figure
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        if figure.is_empty() {
            format!("check {held}: {}", self.claim)
        } else {
            format!("check {held}: {} ({})", self.claim, figure.join(", "))
        }
    }
}

/// How a block's record relates to its current text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Made from the current text.
    Fresh,
    /// Made from other text.
    Stale,
    /// No record.
    Missing,
}

impl ChapterRecord {
    /// The record of `block`, if one was made from its current text.
    pub fn fresh_for(&self, block: &Block) -> Option<&BlockRecord> {
        self.blocks
            .iter()
            .find(|r| r.id == block.id && r.digest == block.digest())
    }

    /// All captured values of the run.
    pub fn captures(&self) -> BTreeMap<String, String> {
        self.blocks
            .iter()
            .flat_map(|b| b.captures.clone())
            .collect()
    }
}

/// The freshness of each block of `chapter` against `record`.
pub fn freshness(chapter: &Chapter, record: Option<&ChapterRecord>) -> Vec<Freshness> {
    chapter
        .blocks
        .iter()
        .map(|block| match record {
            None => Freshness::Missing,
            Some(r) if r.fresh_for(block).is_some() => Freshness::Fresh,
            Some(r) if r.blocks.iter().any(|b| b.id == block.id) => Freshness::Stale,
            Some(_) => Freshness::Missing,
        })
        .collect()
}

/// The blocks of `chapter` with no record made from their current text, one line each
/// (`book/src/chapter-2.md:41 [id]: stale (…)`), `file` naming the chapter.
pub fn unrecorded(chapter: &Chapter, record: Option<&ChapterRecord>, file: &str) -> Vec<String> {
    chapter
        .blocks
        .iter()
        .zip(freshness(chapter, record))
        .filter_map(|(block, fresh)| {
            let at = format!("{} [{}]", block.location(file), block.id);
            match fresh {
                Freshness::Fresh => None,
                Freshness::Stale => Some(format!(
                    "{at}: stale (its text changed since it was recorded)"
                )),
                Freshness::Missing => Some(format!("{at}: no record")),
            }
        })
        .collect()
}

/// The records folder of a book.
pub fn dir(book: &Path) -> PathBuf {
    book.join("recorded")
}

/// The record file of a chapter.
pub fn path(book: &Path, chapter: &Chapter) -> PathBuf {
    dir(book).join(format!("{}.json", chapter.stem()))
}

/// Loads a chapter's record, `None` when there is none.
pub fn load(book: &Path, chapter: &Chapter) -> Result<Option<ChapterRecord>> {
    let path = path(book, chapter);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let record: ChapterRecord = serde_json::from_str(&text)
                .with_context(|| format!("reading {} (not a chapter record)", path.display()))?;
            if record.format > FORMAT {
                bail!(
                    "{} is a record of format {}, and this runner reads format {FORMAT} at \
                     most: update the runner (git pull), or re-record the chapter",
                    path.display(),
                    record.format
                );
            }
            Ok(Some(record))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes a chapter's record atomically.
pub fn save(book: &Path, chapter: &Chapter, record: &ChapterRecord) -> Result<PathBuf> {
    let path = path(book, chapter);
    let dir = dir(book);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut text = serde_json::to_string_pretty(record)?;
    text.push('\n');
    let tmp = dir.join(format!(".{}.json.tmp", chapter.stem()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_chapter;

    fn record_for(chapter: &Chapter) -> ChapterRecord {
        ChapterRecord {
            format: FORMAT,
            chapter: chapter.path.clone(),
            recorded_at: "2026-11-27T00:00:00Z".parse().unwrap(),
            server_version: Some("17.12".into()),
            duration_ms: 10,
            blocks: chapter
                .blocks
                .iter()
                .map(|b| BlockRecord {
                    id: b.id.clone(),
                    digest: b.digest(),
                    line: b.line,
                    command: b.body.clone(),
                    ran_on: "sh".into(),
                    output: "hi\n".into(),
                    exit_code: Some(0),
                    timed_out: false,
                    ok: true,
                    duration_ms: 3,
                    started_at: "2026-11-27T00:00:00Z".into(),
                    server_version: Some("17.12".into()),
                    check: None,
                    captures: BTreeMap::new(),
                    attempts: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn changed_text_makes_a_record_stale_and_a_new_block_missing() {
        let before = parse_chapter("c.md", "c.md", "```sh lab id=a\necho hi\n```\n").unwrap();
        let record = record_for(&before);
        assert_eq!(freshness(&before, Some(&record)), [Freshness::Fresh]);
        let after = parse_chapter(
            "c.md",
            "c.md",
            "```sh lab id=a\necho bye\n```\n\n```sh lab id=b\necho\n```\n",
        )
        .unwrap();
        assert_eq!(
            freshness(&after, Some(&record)),
            [Freshness::Stale, Freshness::Missing]
        );
        assert_eq!(
            freshness(&after, None),
            [Freshness::Missing, Freshness::Missing]
        );
    }

    #[test]
    fn save_is_stable_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let chapter = parse_chapter("c.md", "c.md", "```sh lab id=a\necho hi\n```\n").unwrap();
        let record = record_for(&chapter);
        let path = save(&dir, &chapter, &record).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        save(&dir, &chapter, &record).unwrap();
        assert_eq!(first, std::fs::read_to_string(&path).unwrap());
        assert!(first.ends_with("}\n"));
        assert_eq!(load(&dir, &chapter).unwrap().unwrap(), record);
    }

    #[test]
    fn a_record_carries_its_format_and_a_newer_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let chapter = parse_chapter("c.md", "c.md", "```sh lab\necho 1\n```\n").unwrap();
        let mut record = record_for(&chapter);
        let path = save(tmp.path(), &chapter, &record).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\n  \"format\": 1,\n  \"chapter\""),
            "{text}"
        );
        assert_eq!(load(tmp.path(), &chapter).unwrap(), Some(record.clone()));
        // Written before records carried a format: read as format 1.
        std::fs::write(&path, text.replace("  \"format\": 1,\n", "")).unwrap();
        assert_eq!(load(tmp.path(), &chapter).unwrap().unwrap().format, 1);
        record.format = FORMAT + 1;
        save(tmp.path(), &chapter, &record).unwrap();
        let err = load(tmp.path(), &chapter).unwrap_err().to_string();
        assert!(err.contains(&format!("format {}", FORMAT + 1)), "{err}");
    }

    #[test]
    fn recorded_at_is_written_to_the_millisecond_and_read_from_any_rfc3339() {
        let chapter = parse_chapter("c.md", "c.md", "```sh lab\ntrue\n```\n").unwrap();
        let mut record = record_for(&chapter);
        record.recorded_at = "2026-12-04T16:29:07+01:00".parse().unwrap();
        let text = serde_json::to_string(&record).unwrap();
        assert!(
            text.contains(r#""recorded_at":"2026-12-04T15:29:07.000Z""#),
            "{text}"
        );
        let back: ChapterRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.recorded_at, record.recorded_at);
        let bad = text.replace("2026-12-04T15:29:07.000Z", "yesterday");
        let err = serde_json::from_str::<ChapterRecord>(&bad).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#""yesterday" is not an RFC 3339 time"#),
            "{err}"
        );
    }
}
