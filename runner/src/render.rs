//! Turning records into what the reader sees.
//!
//! [`splice`] replaces each lab block of a chapter — by its byte span, never by
//! re-serialising the Markdown — with the block as the reader would type it (lab
//! attributes stripped, so highlighting works), followed by its recorded output, when
//! and against what it was recorded, and for checks the verified claim with the figure
//! behind it. `{{name}}` placeholders in the prose become the values captured in the
//! same run. Output is HTML-escaped; styles live in `theme/lab.css`.

use std::fmt::Write as _;

use anyhow::{Context, Result};

use crate::lab::{Block, Chapter, Runner, code_spans, placeholders};
use crate::record::{BlockRecord, ChapterRecord};

/// Renders `source` (the chapter's Markdown) with the records spliced in.
/// `record` must hold a fresh record for every block (checked by the caller).
pub fn splice(source: &str, chapter: &Chapter, record: &ChapterRecord) -> String {
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    if let Some(pre) = &chapter.precondition {
        edits.push((pre.span.clone(), precondition_html(pre, &chapter.stem())));
    }
    for block in &chapter.blocks {
        let rendered = match record.fresh_for(block) {
            Some(r) => block_html(block, r),
            None => format!(
                "\n<div class=\"lab-missing\">No record of this step (`runner exec {}`).</div>\n",
                chapter.stem()
            ),
        };
        edits.push((block.span.clone(), rendered));
    }
    let captures = record.captures();
    let code = code_spans(source);
    for (name, span) in placeholders(source, &code) {
        if let Some(value) = captures.get(&name) {
            edits.push((
                span,
                format!(
                    "<span class=\"lab-value\" title=\"measured in the recorded run\">{}</span>",
                    escape(value)
                ),
            ));
        }
    }
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(source.len() * 2);
    let mut at = 0;
    for (range, text) in edits {
        if range.start < at {
            continue;
        }
        out.push_str(&source[at..range.start]);
        out.push_str(&text);
        at = range.end;
    }
    out.push_str(&source[at..]);
    out
}

fn precondition_html(pre: &crate::lab::Precondition, stem: &str) -> String {
    let mut html =
        String::from("\n<div class=\"lab-precondition\">\n<p><strong>Before you start.</strong> ");
    html.push_str(&escape(pre.text.trim()));
    html.push_str("</p>\n<p class=\"lab-meta\">");
    if pre.services.is_empty() && pre.fresh {
        let _ = write!(
            html,
            "<code>runner exec {stem}</code> gets there by itself: <code>docker compose down -v</code>."
        );
    } else if pre.services.is_empty() {
        html.push_str("No cluster needed.");
    } else {
        let _ = write!(
            html,
            "<code>runner exec {stem}</code> gets there by itself: {}<code>docker compose up --build -d {}</code>.",
            if pre.fresh {
                "<code>docker compose down -v</code>, then "
            } else {
                ""
            },
            escape(&pre.services.join(" "))
        );
    }
    html.push_str("</p>\n</div>\n");
    html
}

fn block_html(block: &Block, record: &BlockRecord) -> String {
    let mut html = String::from("\n");
    if !block.hidden {
        if let Runner::Sql { service, database } = &block.runner {
            let _ = writeln!(
                html,
                "<div class=\"lab-where\">psql on <code>{service}</code>, database <code>{database}</code> \
                 — <code>docker compose exec {service} psql -U postgres -d {database}</code></div>\n"
            );
        }
        let fence = fence_for(&record.command);
        let _ = write!(html, "{fence}{}\n{}", block.lang, record.command);
        if !record.command.ends_with('\n') {
            html.push('\n');
        }
        let _ = writeln!(html, "{fence}\n");
    }
    if let Some(check) = &record.check {
        let class = if check.passed { "passed" } else { "failed" };
        let mark = if check.passed {
            "✔ verified"
        } else {
            "✘ did not hold"
        };
        let _ = write!(
            html,
            "<div class=\"lab-check {class}\"><span class=\"lab-mark\">{mark}:</span> {}",
            escape(&check.claim)
        );
        if !check.figure.is_empty() {
            let figure: Vec<String> = check
                .figure
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<code>{}</code> = <strong>{}</strong>",
                        escape(k),
                        escape(v)
                    )
                })
                .collect();
            let _ = write!(
                html,
                " <span class=\"lab-figure\">({})</span>",
                figure.join(", ")
            );
        }
        html.push_str("</div>\n");
    }
    if !block.hidden {
        let class = if record.ok {
            "lab-output"
        } else {
            "lab-output lab-unexpected"
        };
        // The output as a Markdown code block inside the styled div: a raw HTML block
        // would end at the output's first blank line.
        let output = record.output.trim_end_matches('\n');
        let fence = fence_for(output);
        let _ = write!(
            html,
            "<div class=\"{class}\">\n\n{fence}text\n{output}\n{fence}\n\n"
        );
        let _ = writeln!(
            html,
            "<div class=\"lab-meta\">{}</div>\n\n</div>\n",
            meta(block, record)
        );
        if let Some(title) = &block.chart {
            match crate::chart::parse(&record.output).and_then(|s| crate::chart::svg(title, &s)) {
                // One line: a blank line inside would end mdBook's raw HTML block.
                Ok(svg) => {
                    let _ = writeln!(
                        html,
                        "<div class=\"lab-chart\">{}</div>\n",
                        svg.replace('\n', " ")
                    );
                }
                Err(err) => {
                    let _ = writeln!(
                        html,
                        "<div class=\"lab-missing\">No chart: {}</div>\n",
                        escape(&format!("{err:#}"))
                    );
                }
            }
        }
    }
    html
}

fn meta(block: &Block, record: &BlockRecord) -> String {
    let status = match (record.timed_out, record.exit_code) {
        (true, _) => format!("stopped at its {} s bound", block.timeout.as_secs_f64()),
        (false, Some(code)) => format!("exit {code}"),
        (false, None) => "no exit status".into(),
    };
    let mut parts = vec![
        format!(
            "recorded {}",
            record.started_at.replace('T', " ").replace('Z', " UTC")
        ),
        match &record.server_version {
            Some(v) => format!("PostgreSQL {}", escape(v)),
            None => "no server".into(),
        },
        format!("{:.2} s", record.duration_ms as f64 / 1000.0),
        status,
    ];
    if block.background {
        parts.push("ran in the background".into());
    }
    if record.attempts > 1 {
        parts.push(format!("held after {} attempts", record.attempts));
    }
    if !record.ok {
        parts.push("<strong>not what the chapter expects</strong>".into());
    }
    parts.join(" · ")
}

/// A backtick fence longer than any run of backticks in `text`.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Parses psql's `--csv` output: a header and rows.
pub fn parse_csv(text: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .context("reading psql's CSV header")?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for row in reader.records() {
        rows.push(
            row.context("reading psql's CSV output")?
                .iter()
                .map(str::to_string)
                .collect(),
        );
    }
    Ok((header, rows))
}

/// Formats a result the way psql's aligned output does.
pub fn psql_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let centered: Vec<String> = header
        .iter()
        .zip(&widths)
        .map(|(h, w)| {
            let pad = w - h.chars().count();
            format!("{}{}{}", " ".repeat(pad / 2), h, " ".repeat(pad - pad / 2))
        })
        .collect();
    let _ = writeln!(out, " {} ", centered.join(" | "));
    let _ = writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    for row in rows {
        let cells: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                let numeric = !cell.is_empty() && cell.parse::<f64>().is_ok();
                if numeric {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        let _ = writeln!(out, " {}", cells.join(" | ").trim_end());
    }
    let n = rows.len();
    let _ = writeln!(out, "({n} {})", if n == 1 { "row" } else { "rows" });
    out
}

/// The value of the first `name: value` or `name=value` line of `output`.
pub fn capture_line(output: &str, name: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(name)?;
        let rest = rest.trim_start();
        let value = rest.strip_prefix(':').or_else(|| rest.strip_prefix('='))?;
        let value = value.trim();
        (!value.is_empty()).then(|| value.split_whitespace().next().unwrap_or(value).to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::parse_chapter;
    use crate::record::CheckRecord;

    fn rec(block: &Block, output: &str) -> BlockRecord {
        BlockRecord {
            id: block.id.clone(),
            digest: block.digest(),
            line: block.line,
            command: block.body.clone(),
            ran_on: "sh".into(),
            output: output.into(),
            exit_code: Some(0),
            timed_out: false,
            ok: true,
            duration_ms: 1234,
            started_at: "2026-11-27T10:00:00Z".into(),
            server_version: Some("17.12 (Debian 17.12-0+deb13u1)".into()),
            check: None,
            captures: Default::default(),
            attempts: 1,
        }
    }

    #[test]
    fn splice_replaces_blocks_in_place_and_keeps_the_prose() {
        let src = "# Title\n\nBefore.\n\n```sh lab id=a timeout=5s\necho <hi>\n```\n\nLost {{lost}} rows.\n\n\
                   ```sql check on=postgres-primary claim=\"nothing lost\" capture=lost\nSELECT lost = 0 AS ok, lost FROM t;\n```\n\nAfter.\n";
        let chapter = parse_chapter("c.md", "c.md", src).unwrap();
        let mut a = rec(&chapter.blocks[0], "<hi>\n");
        a.exit_code = Some(0);
        let mut b = rec(
            &chapter.blocks[1],
            " ok | lost\n----+-----\n t  |    0\n(1 row)\n",
        );
        b.check = Some(CheckRecord {
            claim: "nothing lost".into(),
            passed: true,
            figure: vec![("lost".into(), "0".into())],
        });
        b.captures.insert("lost".into(), "0".into());
        let record = ChapterRecord {
            chapter: "c.md".into(),
            recorded_at: "2026-11-27T10:00:00Z".into(),
            server_version: None,
            duration_ms: 1,
            blocks: vec![a, b],
        };
        let out = splice(src, &chapter, &record);
        assert!(out.starts_with("# Title\n\nBefore.\n"));
        assert!(out.contains("```sh\necho <hi>\n```"), "{out}");
        assert!(!out.contains("lab id=a"));
        assert!(out.contains("```text\n<hi>\n```"), "{out}");
        assert!(out.contains("Lost <span class=\"lab-value\""));
        assert!(out.contains(">0</span> rows."));
        assert!(out.contains("lab-check passed"));
        assert!(out.contains("<code>lost</code> = <strong>0</strong>"));
        assert!(out.contains("PostgreSQL 17.12"));
        assert!(out.contains("1.23 s"));
        assert!(out.trim_end().ends_with("After."));
    }

    #[test]
    fn psql_table_matches_psql_layout() {
        let (h, r) =
            parse_csv("application_name,sync_state\npostgres-sync-standby,sync\n").unwrap();
        assert_eq!(
            psql_table(&h, &r),
            "   application_name    | sync_state \n-----------------------+------------\n postgres-sync-standby | sync\n(1 row)\n"
        );
    }

    #[test]
    fn capture_lines() {
        let out = "summary\n  lost: 17\nacknowledged=120 rows\n";
        assert_eq!(capture_line(out, "lost").as_deref(), Some("17"));
        assert_eq!(capture_line(out, "acknowledged").as_deref(), Some("120"));
        assert_eq!(capture_line(out, "missing"), None);
    }

    #[test]
    fn fences_outgrow_backticks_in_the_text() {
        assert_eq!(fence_for("echo hi"), "```");
        assert_eq!(fence_for("```\nx\n```"), "````");
    }
}
