//! Values from another chapter's record: `{{chapter-4-manual-failover:lost}}`.
//!
//! `{{name}}` names a value captured in the page's own run; a page that summarises
//! several chapters — the introduction's headline numbers — needs the values of *their*
//! runs. `{{STEM:NAME}}` is the value the step of chapter `STEM` (its file stem) captured
//! as `NAME` in that chapter's record, `{{STEM:@recorded_at}}` the date that record
//! was made and `{{STEM:@duration}}` how long its run took (what a reader should plan
//! for the chapter), so a figure on the landing page is always the one the chapter shows, with
//! the date of the run it comes from. A reference to a chapter with no record or to a
//! name its record does not hold is an error naming the file, line and reference — at
//! render time and in `runner check` — never a blank or a stale number.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use crate::html::{escape, utc_second};
use lab_core::line_column;
use lab_core::record::{self, ChapterRecord};

/// The special name that stands for the record's date.
pub const RECORDED_AT: &str = "@recorded_at";

/// The special name that stands for how long the recorded run took.
pub const DURATION: &str = "@duration";

/// A run's length as the prose says it: `48 s`, `6 min 8 s`.
fn duration_text(ms: u64) -> String {
    let s = (ms + 500) / 1000;
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// One `{{STEM:NAME}}` of the prose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The chapter's file stem (`chapter-4-manual-failover`).
    pub chapter: String,
    /// The captured name, or [`RECORDED_AT`].
    pub name: String,
    /// Its byte range in the source, braces included.
    pub span: Range<usize>,
}

/// The `{{STEM:NAME}}` references of `source`'s prose (outside code, where they are
/// literal text). A stem is lower-case letters, digits and `-`; a name, letters, digits
/// and `_` (a capture's name), or `@recorded_at` / `@duration`.
pub fn references(source: &str) -> Vec<Reference> {
    let code = lab_core::code_spans(source);
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = source[from..].find("{{").map(|i| i + from) {
        let Some(close) = source[open + 2..].find("}}").map(|i| i + open + 2) else {
            break;
        };
        let inner = &source[open + 2..close];
        let parsed = inner.split_once(':').filter(|(stem, name)| {
            !stem.is_empty()
                && stem
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && (*name == RECORDED_AT
                    || *name == DURATION
                    || (!name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')))
        });
        match parsed {
            Some((stem, name)) if !code.iter().any(|r| r.contains(&open)) => {
                found.push(Reference {
                    chapter: stem.to_string(),
                    name: name.to_string(),
                    span: open..close + 2,
                });
                from = close + 2;
            }
            _ => from = open + 2,
        }
    }
    found
}

/// Chapter records by stem, read once each from `book/recorded/`.
#[derive(Debug, Default)]
pub struct Records {
    loaded: BTreeMap<String, Result<Option<ChapterRecord>, String>>,
}

impl Records {
    /// Records with these already known (tests).
    pub fn with(records: impl IntoIterator<Item = (String, ChapterRecord)>) -> Records {
        Records {
            loaded: records
                .into_iter()
                .map(|(stem, r)| (stem, Ok(Some(r))))
                .collect(),
        }
    }

    fn get(&mut self, book: &Path, stem: &str) -> Result<Option<&ChapterRecord>, String> {
        let entry = self.loaded.entry(stem.to_string()).or_insert_with(|| {
            let path = record::dir(book).join(format!("{stem}.json"));
            match std::fs::read_to_string(&path) {
                Ok(text) => serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| format!("{} is not a chapter record: {e}", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("reading {}: {e}", path.display())),
            }
        });
        entry.as_ref().map(Option::as_ref).map_err(Clone::clone)
    }
}

/// The value of each reference of `source` as HTML, by span; or one line per reference
/// that does not resolve (`book/src/introduction.md:12:5: {{chapter-4-…:lost}}: …`).
pub fn resolve(
    book: &Path,
    records: &mut Records,
    file: &str,
    source: &str,
) -> Result<Vec<(Range<usize>, String)>, Vec<String>> {
    let mut edits = Vec::new();
    let mut errors = Vec::new();
    for reference in references(source) {
        let (line, column) = line_column(source, reference.span.start);
        let at = format!(
            "{file}:{line}:{column}: {{{{{}:{}}}}}",
            reference.chapter, reference.name
        );
        let record = match records.get(book, &reference.chapter) {
            Ok(Some(record)) => record,
            Ok(None) => {
                errors.push(format!(
                    "{at}: no record of chapter {:?} (book/recorded/{}.json; `runner exec {}`)",
                    reference.chapter, reference.chapter, reference.chapter
                ));
                continue;
            }
            Err(why) => {
                errors.push(format!("{at}: {why}"));
                continue;
            }
        };
        let value = if reference.name == RECORDED_AT {
            Some(utc_second(&record.recorded_at))
        } else if reference.name == DURATION {
            Some(duration_text(record.duration_ms))
        } else {
            record
                .captures()
                .remove(&reference.name)
                .map(|v| escape(&v))
        };
        match value {
            Some(value) => edits.push((
                reference.span.clone(),
                format!(
                    "<span class=\"lab-value\" title=\"measured in the recorded run of {}\">{value}</span>",
                    escape(&reference.chapter)
                ),
            )),
            None => errors.push(format!(
                "{at}: the record of {} captures no value named {:?} (it has: {})",
                reference.chapter,
                reference.name,
                record.captures().into_keys().collect::<Vec<_>>().join(", ")
            )),
        }
    }
    if errors.is_empty() {
        Ok(edits)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_core::record::BlockRecord;

    fn record(captures: &[(&str, &str)]) -> ChapterRecord {
        ChapterRecord {
            format: lab_core::record::FORMAT,
            chapter: "chapter-4-manual-failover.md".into(),
            recorded_at: "2026-11-28T18:17:40.912Z".parse().unwrap(),
            server_version: None,
            duration_ms: 1,
            blocks: vec![BlockRecord {
                id: "verify".into(),
                digest: "d".into(),
                line: 1,
                command: String::new(),
                ran_on: "sh".into(),
                output: String::new(),
                exit_code: Some(0),
                timed_out: false,
                ok: true,
                duration_ms: 1,
                started_at: "2026-11-28T18:17:40.912Z".into(),
                server_version: None,
                check: None,
                captures: captures
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                attempts: 1,
            }],
        }
    }

    #[test]
    fn a_run_length_reads_in_seconds_then_minutes() {
        assert_eq!(duration_text(400), "0 s");
        assert_eq!(duration_text(47_600), "48 s");
        assert_eq!(duration_text(368_000), "6 min 8 s");
        let mut records = Records::with([(
            "chapter-4-manual-failover".to_string(),
            ChapterRecord {
                duration_ms: 272_400,
                ..record(&[])
            },
        )]);
        let src = "Takes {{chapter-4-manual-failover:@duration}}.";
        let edits = resolve(Path::new("book"), &mut records, "i.md", src).unwrap();
        assert!(edits[0].1.contains(">4 min 32 s</span>"), "{:?}", edits);
    }

    #[test]
    fn references_are_found_in_the_prose_only() {
        let src = "Lost {{chapter-4-manual-failover:lost}} on {{chapter-4-manual-failover:@recorded_at}}; \
                   own {{lost}}, code `{{chapter-3:lost}}`, bad {{Chapter:x}} {{c:a-b}}.\n\n\
                   ```text\n{{chapter-3:lost}}\n```\n";
        let found = references(src);
        let names: Vec<(&str, &str)> = found
            .iter()
            .map(|r| (r.chapter.as_str(), r.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("chapter-4-manual-failover", "lost"),
                ("chapter-4-manual-failover", "@recorded_at")
            ]
        );
        assert_eq!(
            &src[found[0].span.clone()],
            "{{chapter-4-manual-failover:lost}}"
        );
    }

    #[test]
    fn references_resolve_to_the_other_records_values_and_date() {
        let mut records = Records::with([(
            "chapter-4-manual-failover".to_string(),
            record(&[("lost", "0"), ("rto_s", "2.1")]),
        )]);
        let src = "RTO {{chapter-4-manual-failover:rto_s}} s (run of {{chapter-4-manual-failover:@recorded_at}}).";
        let edits = resolve(
            Path::new("/nowhere"),
            &mut records,
            "book/src/introduction.md",
            src,
        )
        .unwrap();
        assert_eq!(edits.len(), 2);
        assert!(edits[0].1.ends_with(">2.1</span>"), "{}", edits[0].1);
        assert!(
            edits[1].1.ends_with(">2026-11-28 18:17:40 UTC</span>"),
            "{}",
            edits[1].1
        );
    }

    #[test]
    fn a_missing_capture_or_record_is_an_error_naming_file_line_and_name() {
        let tmp = tempfile::tempdir().unwrap();
        let mut records = Records::with([(
            "chapter-4-manual-failover".to_string(),
            record(&[("lost", "0")]),
        )]);
        let src =
            "Intro.\n\nLost {{chapter-4-manual-failover:lots}} and {{chapter-9-nothing:lost}}.\n";
        let errors =
            resolve(tmp.path(), &mut records, "book/src/introduction.md", src).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(
            errors[0],
            "book/src/introduction.md:3:6: {{chapter-4-manual-failover:lots}}: the record of \
             chapter-4-manual-failover captures no value named \"lots\" (it has: lost)"
        );
        assert!(
            errors[1].starts_with(
                "book/src/introduction.md:3:45: {{chapter-9-nothing:lost}}: no record of chapter"
            ),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn records_are_read_from_the_books_recorded_folder() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("recorded")).unwrap();
        std::fs::write(
            tmp.path().join("recorded/chapter-3-x.json"),
            serde_json::to_string(&record(&[("lost", "17")])).unwrap(),
        )
        .unwrap();
        std::fs::write(tmp.path().join("recorded/chapter-5-y.json"), "not json").unwrap();
        let mut records = Records::default();
        let edits = resolve(tmp.path(), &mut records, "f.md", "{{chapter-3-x:lost}}").unwrap();
        assert!(edits[0].1.ends_with(">17</span>"));
        let errors = resolve(tmp.path(), &mut records, "f.md", "{{chapter-5-y:lost}}").unwrap_err();
        assert!(
            errors[0].contains("is not a chapter record"),
            "{}",
            errors[0]
        );
    }
}
