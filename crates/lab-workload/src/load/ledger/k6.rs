//! k6's side of a run, read as a ledger: the samples `compose/k6/write.js` leaves in
//! `k6 run --out json=FILE`.
//!
//! The script makes each request's op id itself (`run_id * 2^32 + seq`, the shape of
//! `runner load`'s ids) and leaves two samples per op:
//!
//! ```text
//! {"metric":"rental_attempts","type":"Point","data":{"time":"…","value":1,"tags":{"op":"4398046511105",…}}}
//! {"metric":"rental_ops","type":"Point","data":{"time":"…","value":12,"tags":{"op":"4398046511105","outcome":"ack","class":"",…}}}
//! ```
//!
//! — the attempt *before* the request is sent (as `runner load` writes its `attempt`
//! line before sending), the outcome once k6 has the answer: `ack` for a 201, `fail`
//! with the app's error class otherwise. Every other line of the file (k6's own
//! metrics, about fifteen per request) is skipped without being parsed. An op with an
//! attempt and no outcome is one k6 never saw answered (a run interrupted mid-request).
//!
//! The ledger's times are offsets from the first attempt, its run id the ops' own.
//! Strict where a mistake would change a count — an op attempted or settled twice,
//! settled without an attempt, ops of two runs in one file — and lenient, with a note,
//! only about an unfinished last line (k6 killed mid-write).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::super::errors::ErrorClass;
use super::{Header, Ledger, OpRecord, Outcome};

/// The metric of an attempt.
pub const ATTEMPT_METRIC: &str = "rental_attempts";
/// The metric of an outcome.
pub const OUTCOME_METRIC: &str = "rental_ops";

/// Whether `text` looks like k6's JSON output rather than a runner ledger.
pub fn is_k6_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// One line of k6's JSON output, as far as it matters here.
#[derive(Deserialize)]
struct Line {
    metric: String,
    #[serde(rename = "type")]
    kind: String,
    /// A sample for a `Point`; a metric's definition for a `Metric` line.
    data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Sample {
    time: DateTime<Utc>,
    tags: Option<BTreeMap<String, String>>,
}

/// One op as read, in wall-clock times.
#[derive(Default)]
struct Seen {
    attempted: Option<DateTime<Utc>>,
    settled: Option<(DateTime<Utc>, Option<ErrorClass>)>,
}

/// Parses k6's JSON output into a ledger; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<Ledger> {
    let mut notes = Vec::new();
    let mut lines: Vec<&str> = text.split('\n').collect();
    let last = lines.pop().unwrap_or_default();
    if !last.is_empty() {
        notes.push(format!(
            "{origin}:{}: ignored a truncated last line (k6 was stopped mid-write)",
            lines.len() + 1
        ));
    }
    let mut ops: BTreeMap<i64, Seen> = BTreeMap::new();
    for (index, line) in lines.iter().enumerate() {
        // Cheap test first: ~15 of every 16 lines are k6's own metrics.
        if !(line.contains(ATTEMPT_METRIC) || line.contains(OUTCOME_METRIC)) {
            continue;
        }
        apply(&mut ops, line).with_context(|| format!("{origin}:{}", index + 1))?;
    }
    into_ledger(ops, notes, origin)
}

/// Takes one line's sample into `ops`, if it is one of the script's.
fn apply(ops: &mut BTreeMap<i64, Seen>, line: &str) -> Result<()> {
    let line: Line = serde_json::from_str(line).context("not a k6 JSON output line")?;
    let attempt = line.metric == ATTEMPT_METRIC;
    if line.kind != "Point" || !(attempt || line.metric == OUTCOME_METRIC) {
        return Ok(());
    }
    let sample: Sample = serde_json::from_value(line.data.context("a Point without data")?)
        .context("a Point whose data is not a sample")?;
    let tags = sample.tags.unwrap_or_default();
    let tag = |name: &str| {
        tags.get(name)
            .with_context(|| format!("a {} sample without its {name:?} tag", line.metric))
    };
    let op_text = tag("op")?;
    let op: i64 = op_text
        .parse()
        .ok()
        .filter(|op| *op > 0)
        .with_context(|| format!("op {op_text:?} is not a positive integer"))?;
    let seen = ops.entry(op).or_default();
    if attempt {
        if seen.attempted.replace(sample.time).is_some() {
            bail!("op {op} attempted twice");
        }
        return Ok(());
    }
    let class = match tag("outcome")?.as_str() {
        "ack" => None,
        "fail" => {
            let token = tags.get("class").map(String::as_str).unwrap_or_default();
            Some(ErrorClass::from_token(token).unwrap_or(ErrorClass::Other))
        }
        other => bail!("outcome {other:?} is neither ack nor fail"),
    };
    if seen.settled.replace((sample.time, class)).is_some() {
        bail!("op {op} settled twice");
    }
    Ok(())
}

/// The ledger of the ops read: one run, times from its first attempt.
fn into_ledger(ops: BTreeMap<i64, Seen>, notes: Vec<String>, origin: &str) -> Result<Ledger> {
    let Some((first_op, _)) = ops.first_key_value() else {
        bail!(
            "{origin}: no {ATTEMPT_METRIC} samples: was it written by \
             `k6 run --out json={origin} k6/write.js`?"
        );
    };
    let run_id = run_of(*first_op)?;
    if let Some((other, _)) = ops.iter().find(|(op, _)| run_of(**op).ok() != Some(run_id)) {
        bail!(
            "{origin}: ops of more than one run (run ids {run_id} and {}): one k6 run per file",
            other >> 32
        );
    }
    let mut start = None;
    for (op, seen) in &ops {
        let attempted = seen
            .attempted
            .ok_or_else(|| anyhow!("{origin}: op {op} settled but never attempted"))?;
        start = Some(start.map_or(attempted, |s: DateTime<Utc>| s.min(attempted)));
    }
    let start = start.unwrap_or_default();
    let since = |t: DateTime<Utc>| (t - start).to_std().unwrap_or_default();
    let mut last_event = Duration::ZERO;
    let mut records = BTreeMap::new();
    for (op, seen) in ops {
        let attempted = since(seen.attempted.unwrap_or(start));
        let outcome = seen.settled.map(|(at, class)| {
            let t = since(at);
            last_event = last_event.max(t);
            match class {
                None => Outcome::Ack(t),
                Some(class) => Outcome::Fail(t, class),
            }
        });
        last_event = last_event.max(attempted);
        records.insert(op, OpRecord { attempted, outcome });
    }
    Ok(Ledger {
        header: Header {
            run_id,
            target: "k6".into(),
            start,
            extra: BTreeMap::from([("source".to_string(), "k6_json".to_string())]),
        },
        ops: records,
        end: None,
        last_event,
        notes,
    })
}

/// The run id of an op id (`run_id * 2^32 + seq`).
fn run_of(op: i64) -> Result<u32> {
    u32::try_from(op >> 32)
        .ok()
        .filter(|run| *run > 0)
        .with_context(|| format!("op {op} is not run_id * 2^32 + seq"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: i64 = 5 << 32;

    fn attempt(op: i64, time: &str) -> String {
        format!(
            r#"{{"metric":"rental_attempts","type":"Point","data":{{"time":"{time}","value":1,"tags":{{"group":"","op":"{op}","scenario":"default"}}}}}}"#
        )
    }

    fn outcome(op: i64, time: &str, outcome: &str, class: &str) -> String {
        format!(
            r#"{{"metric":"rental_ops","type":"Point","data":{{"time":"{time}","value":12,"tags":{{"class":"{class}","op":"{op}","outcome":"{outcome}"}}}}}}"#
        )
    }

    const NOISE: &str = r#"{"metric":"http_reqs","type":"Point","data":{"time":"2026-11-28T15:55:54.59Z","value":1,"tags":{"status":"201"}}}"#;
    const DEFINITION: &str = r#"{"type":"Metric","data":{"name":"rental_ops","type":"trend","contains":"time","thresholds":[],"submetrics":null},"metric":"rental_ops"}"#;

    fn file(lines: &[String]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn attempts_and_outcomes_become_a_ledger() {
        let text = file(&[
            DEFINITION.into(),
            attempt(RUN + 1, "2026-11-28T10:00:00.000Z"),
            NOISE.into(),
            attempt(RUN + 2, "2026-11-28T10:00:00.500Z"),
            outcome(RUN + 1, "2026-11-28T10:00:00.010Z", "ack", ""),
            outcome(
                RUN + 2,
                "2026-11-28T10:00:01.500Z",
                "fail",
                "connection_refused",
            ),
            attempt(RUN + 3, "2026-11-28T10:00:02Z"),
        ]);
        assert!(is_k6_json(&text));
        let ledger = parse(&text, "k6.json").unwrap();
        assert_eq!(ledger.header.run_id, 5);
        assert_eq!(ledger.header.op_range(), super::super::op_range(5));
        assert_eq!(ledger.ops.len(), 3);
        let ms = Duration::from_millis;
        assert_eq!(ledger.ops[&(RUN + 1)].outcome, Some(Outcome::Ack(ms(10))));
        assert_eq!(
            ledger.ops[&(RUN + 2)].outcome,
            Some(Outcome::Fail(ms(1500), ErrorClass::ConnectionRefused))
        );
        assert_eq!(ledger.ops[&(RUN + 3)].attempted, ms(2000));
        assert_eq!(ledger.ops[&(RUN + 3)].outcome, None, "never answered");
        assert_eq!(ledger.acknowledged(), 1);
        assert_eq!(ledger.end_time(), ms(2000));
        assert!(ledger.notes.is_empty());
    }

    #[test]
    fn a_cut_last_line_is_a_note_and_k6s_own_classes_are_other() {
        let mut text = file(&[
            attempt(RUN + 1, "2026-11-28T10:00:00Z"),
            outcome(RUN + 1, "2026-11-28T10:00:00.010Z", "fail", "k6_1211"),
        ]);
        text.push_str(r#"{"metric":"rental_att"#);
        let ledger = parse(&text, "k6.json").unwrap();
        assert_eq!(ledger.notes.len(), 1, "{:?}", ledger.notes);
        assert!(matches!(
            ledger.ops[&(RUN + 1)].outcome,
            Some(Outcome::Fail(_, ErrorClass::Other))
        ));
    }

    #[test]
    fn inconsistent_files_are_errors() {
        let t = "2026-11-28T10:00:00Z";
        let cases = [
            (
                vec![attempt(RUN + 1, t), attempt(RUN + 1, t)],
                "attempted twice",
            ),
            (
                vec![
                    attempt(RUN + 1, t),
                    outcome(RUN + 1, t, "ack", ""),
                    outcome(RUN + 1, t, "ack", ""),
                ],
                "settled twice",
            ),
            (
                vec![outcome(RUN + 1, t, "ack", "")],
                "settled but never attempted",
            ),
            (
                vec![attempt(RUN + 1, t), attempt((6 << 32) + 1, t)],
                "more than one run",
            ),
            (vec![attempt(7, t)], "not run_id * 2^32 + seq"),
            (vec![NOISE.to_string()], "no rental_attempts samples"),
            (
                vec![attempt(RUN + 1, t), outcome(RUN + 1, t, "maybe", "")],
                "neither ack nor fail",
            ),
        ];
        for (lines, expected) in cases {
            let err = format!("{:#}", parse(&file(&lines), "k6.json").unwrap_err());
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }
}
