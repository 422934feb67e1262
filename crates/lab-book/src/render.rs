//! Turning records into what the reader sees.
//!
//! [`splice`] replaces each lab block of a chapter — by its byte span, never by
//! re-serialising the Markdown — with the block as the reader types it
//! ([`lab_core::typed`]: a background step's `&` and `writer=$!`, a stop's `kill -INT`,
//! the psql command a SQL block is typed into, and what to do beyond typing), followed by
//! its recorded output, when and against what it was recorded, and for checks the
//! verified claim with the figure behind it. A background step's output is shown where
//! it ends — at the step that stops or awaits it, or at the chapter's end — and a
//! `timeline=` writer's as a chart of its run with the chapter's `event=`s marked
//! ([`crate::timeline`]). `{{name}}` placeholders in the prose become the values captured
//! in the same run. Output is HTML-escaped; styles live in `theme/head.hbs`.

use std::fmt::Write as _;

use crate::html::{escape, recorded_at};
use crate::timeline::{self, Event, Timeline};
use lab_core::record::{BlockRecord, ChapterRecord};
use lab_core::{Block, Chapter, Runner, code_spans, placeholders, typed};

/// Renders `source` (the chapter's Markdown) with the records spliced in.
/// `record` must hold a fresh record for every block (checked by the caller).
pub fn splice(source: &str, chapter: &Chapter, record: &ChapterRecord) -> String {
    splice_with(source, chapter, record, Vec::new())
}

/// [`splice`], with more replacements of spans of `source` (other chapters' values,
/// [`crate::xref`]) made in the same pass.
pub fn splice_with(
    source: &str,
    chapter: &Chapter,
    record: &ChapterRecord,
    extra: Vec<(std::ops::Range<usize>, String)>,
) -> String {
    let mut edits: Vec<(std::ops::Range<usize>, String)> = extra;
    if let Some(pre) = &chapter.precondition {
        edits.push((pre.span.clone(), precondition_html(pre, &chapter.stem())));
    }
    let ends = background_ends(chapter);
    for block in &chapter.blocks {
        let mut rendered = match record.fresh_for(block) {
            Some(r) => block_html(block, r),
            None => format!(
                "\n<div class=\"lab-missing\">No record of this step (`runner exec {}`).</div>\n",
                chapter.stem()
            ),
        };
        for (bg, end) in &ends {
            if *end == End::At(block.index) {
                rendered.push_str(&ended_html(chapter, record, &chapter.blocks[*bg], *end));
            }
        }
        edits.push((block.span.clone(), rendered));
    }
    let mut tail = String::new();
    for (bg, end) in &ends {
        if *end == End::ChapterEnd {
            tail.push_str(&ended_html(chapter, record, &chapter.blocks[*bg], *end));
        }
    }
    if !tail.is_empty() {
        if !source.ends_with('\n') {
            tail.insert(0, '\n');
        }
        edits.push((source.len()..source.len(), tail));
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
    apply(source, edits)
}

/// `source` with each span replaced by its text; a span that overlaps an earlier one is
/// left out.
pub fn apply(source: &str, mut edits: Vec<(std::ops::Range<usize>, String)>) -> String {
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

/// Where a background step's output is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// After the output of the block (by index) that stops or awaits it.
    At(usize),
    /// After the chapter's last block: nothing stops it.
    ChapterEnd,
}

/// Each background step (by index) and where it ends: the first later block that stops or
/// awaits it, in the order that block names them (stops, then awaits).
fn background_ends(chapter: &Chapter) -> Vec<(usize, End)> {
    let mut ends: Vec<(usize, End, usize)> = chapter
        .blocks
        .iter()
        .filter(|b| b.background)
        .map(|bg| {
            chapter.blocks[bg.index + 1..]
                .iter()
                .find_map(|later| {
                    later
                        .stops
                        .iter()
                        .chain(&later.awaits)
                        .position(|id| *id == bg.id)
                        .map(|order| (bg.index, End::At(later.index), order))
                })
                .unwrap_or((bg.index, End::ChapterEnd, 0))
        })
        .collect();
    ends.sort_by_key(|(bg, _, order)| (*order, *bg));
    ends.into_iter().map(|(bg, end, _)| (bg, end)).collect()
}

/// A background step's output, where it ended: a line saying which step it is and how it
/// ended, then its output and metadata (a `timeline=` writer as a timeline).
fn ended_html(chapter: &Chapter, record: &ChapterRecord, bg: &Block, end: End) -> String {
    // A hidden step stays hidden; a missing record is reported where the step starts.
    let Some(rec) = record.fresh_for(bg).filter(|_| !bg.hidden) else {
        return String::new();
    };
    let how = match end {
        End::At(i) if chapter.blocks[i].stops.contains(&bg.id) => "was stopped here",
        End::At(_) => "ended here",
        End::ChapterEnd => "ended after the chapter's last step",
    };
    let mut html = format!(
        "\n<div class=\"lab-ended\">The background step <code>{}</code> (started above) {how}. \
         What it printed:</div>\n",
        escape(&bg.id)
    );
    match &bg.timeline {
        Some(title) => html.push_str(&timeline_html(chapter, record, bg, rec, title)),
        None => html.push_str(&output_html(bg, rec)),
    }
    html
}

/// A writer's run as a chart, its summary, and its full output collapsed; or, when the
/// output has no live line, a note saying so and the output as usual.
fn timeline_html(
    chapter: &Chapter,
    record: &ChapterRecord,
    bg: &Block,
    rec: &BlockRecord,
    title: &str,
) -> String {
    let duration_s = rec.duration_ms as f64 / 1000.0;
    let events: Vec<Event> = chapter
        .blocks
        .iter()
        .filter_map(|b| {
            let label = b.event.as_ref()?;
            let at = record.fresh_for(b)?;
            let at = timeline::event_end_offset(
                &rec.started_at,
                duration_s,
                &at.started_at,
                at.duration_ms as f64 / 1000.0,
            )
            .ok()??;
            Some(Event {
                label: label.clone(),
                at,
            })
        })
        .collect();
    let drawn = Timeline::new(&rec.output, duration_s, events)
        .and_then(|t| Ok((t.svg(title)?, t.summary.parts())));
    let (svg, parts) = match drawn {
        Ok(drawn) => drawn,
        Err(err) => {
            let mut html = format!(
                "<div class=\"lab-missing\">No timeline: {}</div>\n",
                escape(&format!("{err:#}"))
            );
            html.push_str(&output_html(bg, rec));
            return html;
        }
    };
    let class = if rec.ok {
        "lab-output lab-timeline"
    } else {
        "lab-output lab-timeline lab-unexpected"
    };
    let summary: Vec<String> = parts
        .iter()
        .map(|(label, value)| format!("{label} <strong>{}</strong>", escape(value)))
        .collect();
    let output = rec.output.trim_end_matches('\n');
    let fence = fence_for(output);
    // One line of SVG: a blank line inside would end mdBook's raw HTML block. The full
    // output is a Markdown code block inside <details>, hence the blank lines around it.
    format!(
        "<div class=\"{class}\">\n<div class=\"lab-chart\">{}</div>\n\
         <div class=\"lab-timeline-summary\">{}</div>\n\
         <details><summary>full output of the writer</summary>\n\n\
         {fence}text\n{output}\n{fence}\n\n</details>\n\
         <div class=\"lab-meta\">{}</div>\n\n</div>\n",
        svg.replace('\n', " "),
        summary.join(" · "),
        meta(bg, rec)
    )
}

fn precondition_html(pre: &lab_core::Precondition, stem: &str) -> String {
    // The text is Markdown (inline code, links): it is left between blank lines, where
    // mdBook renders it as a paragraph inside the box's HTML.
    let mut html = String::from("\n<div class=\"lab-precondition\">\n\n**Before you start.** ");
    html.push_str(pre.text.trim());
    html.push_str("\n\n<p class=\"lab-meta\">");
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
        let typed = typed(block);
        if let (Runner::Sql { service, database }, Some(psql)) = (&block.runner, &typed.psql) {
            let _ = writeln!(
                html,
                "<div class=\"lab-where\">psql on <code>{service}</code>, database <code>{database}</code> \
                 — <code>{}</code></div>\n",
                escape(psql)
            );
        }
        let fence = fence_for(&typed.text);
        let _ = write!(html, "{fence}{}\n{}", block.lang, typed.text);
        if !typed.text.ends_with('\n') {
            html.push('\n');
        }
        let _ = writeln!(html, "{fence}\n");
        if let Some(instruction) = &typed.instruction {
            let _ = writeln!(
                html,
                "<div class=\"lab-instruction\">{}</div>\n",
                escape(instruction)
            );
        }
        if block.background {
            html.push_str(
                "<div class=\"lab-instruction lab-background\">Runs in the background; \
                 its output is shown where it ends, below.</div>\n\n",
            );
        }
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
    // A background step's output is shown where it ends (see `ended_html`).
    if !block.hidden && !block.background {
        html.push_str(&output_html(block, record));
    }
    html
}

/// The recorded output in its styled box with the metadata, then the chart if any.
fn output_html(block: &Block, record: &BlockRecord) -> String {
    let mut html = String::new();
    let class = if record.ok {
        "lab-output"
    } else {
        "lab-output lab-unexpected"
    };
    // The output as a Markdown code block inside the styled div: a raw HTML block
    // would end at the output's first blank line.
    let output = record.output.trim_end_matches('\n');
    let _ = write!(html, "<div class=\"{class}\">\n\n");
    // A step that printed nothing (`sleep 2`) shows its meta line only.
    if !output.trim().is_empty() {
        let fence = fence_for(output);
        let _ = write!(html, "{fence}text\n{output}\n{fence}\n\n");
    }
    let _ = writeln!(
        html,
        "<div class=\"lab-meta\">{}</div>\n\n</div>\n",
        meta(block, record)
    );
    if let Some(title) = &block.bars {
        let svg = lab_core::output::parse_bars(&record.output)
            .and_then(|b| crate::chart::bars_svg(title, &b));
        chart_html(&mut html, svg);
    }
    if let Some(title) = &block.chart {
        let svg = lab_core::output::parse_series(&record.output)
            .and_then(|s| crate::chart::svg(title, &s));
        chart_html(&mut html, svg);
    }
    if let Some(caption) = &block.topology {
        // A table that does not parse fails the build first (`diagram::problems`).
        match crate::diagram::svg_from_output(caption, &record.output) {
            Ok(svg) => {
                let _ = writeln!(
                    html,
                    "<div class=\"lab-chart lab-topology\">{}</div>\n",
                    svg.replace('\n', " ")
                );
            }
            Err(err) => {
                let _ = writeln!(
                    html,
                    "<div class=\"lab-missing\">No diagram: {}</div>\n",
                    escape(&format!("{err:#}"))
                );
            }
        }
    }
    html
}

/// A drawn chart in its box, on one line (a blank line inside would end mdBook's raw
/// HTML block), or why it could not be drawn.
fn chart_html(html: &mut String, svg: anyhow::Result<String>) {
    match svg {
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

fn meta(block: &Block, record: &BlockRecord) -> String {
    let status = match (record.timed_out, record.exit_code) {
        (true, _) => format!("stopped at its {} s bound", block.timeout.as_secs_f64()),
        (false, Some(code)) => format!("exit {code}"),
        (false, None) => "no exit status".into(),
    };
    let mut parts = vec![
        format!("recorded {}", recorded_at(&record.started_at)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use lab_core::parse_chapter;
    use lab_core::record::CheckRecord;

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
            format: lab_core::record::FORMAT,
            chapter: "c.md".into(),
            recorded_at: "2026-11-27T10:00:00Z".parse().unwrap(),
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

    fn record_of(chapter: &Chapter, blocks: Vec<BlockRecord>) -> ChapterRecord {
        ChapterRecord {
            format: lab_core::record::FORMAT,
            chapter: chapter.path.clone(),
            recorded_at: "2026-11-27T10:00:00Z".parse().unwrap(),
            server_version: None,
            duration_ms: 1,
            blocks,
        }
    }

    /// A writer that stalls from 2 s to 4 s and fails 3 transactions.
    const WRITER: &str = "\
load: [   1.0s]   2000.0 tx/s  ok=2000 errors=0 p50=1.00ms p99=3.00ms in-flight=4
load: [   2.0s]   1000.0 tx/s  ok=3000 errors=3 p50=1.00ms p99=3.00ms in-flight=0
load: [   2.1s] transaction connection_closed: FATAL 08P01: server conn crashed?
load: [   3.0s]      0.0 tx/s  ok=3000 errors=3 p50=0.00ms p99=0.00ms in-flight=0
load: [   4.0s]      0.0 tx/s  ok=3000 errors=3 p50=0.00ms p99=0.00ms in-flight=0
load: [   5.0s]   2000.0 tx/s  ok=5000 errors=3 p50=1.00ms p99=3.00ms in-flight=4

acknowledged: 5100
errors: 3
p50_ms: 1.010
p99_ms: 3.300
";

    #[test]
    fn typed_form_is_shown_not_the_recorded_command() {
        let src = "```sql lab on=postgres-sync-standby vars=lsn timeout=3s expect-timeout\nSELECT :'lsn';\n```\n\n\
                   ```sql check claim=\"caught up\" wait-until timeout=20s\nSELECT true;\n```\n";
        let chapter = parse_chapter("c.md", "c.md", src).unwrap();
        let mut a = rec(&chapter.blocks[0], "");
        a.command = "SELECT '0/3000060';\n".into();
        let b = rec(&chapter.blocks[1], " bool\n------\n t\n(1 row)\n");
        let out = splice(src, &chapter, &record_of(&chapter, vec![a, b]));
        assert!(
            out.contains(
                "— <code>docker compose exec postgres-sync-standby psql -U postgres -d db \
                 -v lsn=&quot;$lsn&quot;</code></div>"
            ),
            "{out}"
        );
        assert!(out.contains("```sql\nSELECT :'lsn';\n```\n\n<div class=\"lab-instruction\">It does not return: press Ctrl-C after 3 s.</div>"), "{out}");
        assert!(
            !out.contains("0/3000060"),
            "the recorded command is not shown"
        );
        assert!(out.contains(
            "<div class=\"lab-instruction\">Repeat it until it holds (the book waits up to 20 s).</div>"
        ));
    }

    #[test]
    fn a_background_writer_is_shown_where_it_is_stopped_as_a_timeline() {
        let src = "# Failover\n\n```sh lab id=writer background timeline=\"writes through a failover\"\n\
                   runner load --duration 30s\n```\n\n\
                   ```sh lab event=\"kill the primary\"\ndocker compose kill postgres-primary\n```\n\n\
                   ```sh lab event=\"too late\"\necho later\n```\n\n\
                   ```sh lab stop=writer\necho stopped\n```\n\nAfter.\n";
        let chapter = parse_chapter("c.md", "c.md", src).unwrap();
        let mut writer = rec(&chapter.blocks[0], WRITER);
        writer.started_at = "2026-11-27T10:00:00.250Z".into();
        writer.duration_ms = 5400;
        let mut kill = rec(&chapter.blocks[1], "");
        kill.started_at = "2026-11-27T10:00:02.350Z".into();
        let mut late = rec(&chapter.blocks[2], "later\n");
        late.started_at = "2026-11-27T10:00:09.000Z".into();
        let stop = rec(&chapter.blocks[3], "stopped\n");
        let out = splice(
            src,
            &chapter,
            &record_of(&chapter, vec![writer, kill, late, stop]),
        );
        // At the background block: its typed text and the note, no output.
        let at_start = out
            .find("runner load --duration 30s &\nwriter=$!\n```")
            .unwrap();
        let note = out
            .find("Runs in the background; its output is shown where it ends, below.")
            .unwrap();
        let stop_text = out
            .find("```sh\nkill -INT $writer; wait $writer\necho stopped\n```")
            .unwrap();
        let stop_output = out.find("```text\nstopped\n```").unwrap();
        let ended = out
            .find("The background step <code>writer</code> (started above) was stopped here.")
            .unwrap();
        let chart = out.find("<div class=\"lab-chart\"><svg").unwrap();
        assert!(at_start < note && note < stop_text && stop_text < stop_output);
        assert!(stop_output < ended && ended < chart, "{out}");
        // The chart: one line, the event during the run marked, the one after it not.
        let chart_line = out[chart..].lines().next().unwrap();
        assert!(chart_line.contains("writes through a failover"));
        assert!(chart_line.contains("kill the primary"));
        assert!(!out.contains("too late</text>"));
        assert!(out.contains(
            "<div class=\"lab-timeline-summary\">acknowledged <strong>5100</strong> · errors <strong>3</strong> · \
             p50 <strong>1.010 ms</strong> · p99 <strong>3.300 ms</strong> · \
             longest without an acknowledged write <strong>2 s (from 2 s to 4 s)</strong></div>"
        ), "{out}");
        // The full output collapsed, as a fenced block that renders inside <details>.
        assert!(out.contains(
            "<details><summary>full output of the writer</summary>\n\n```text\nload: [   1.0s]"
        ));
        assert!(out.contains("p99_ms: 3.300\n```\n\n</details>\n<div class=\"lab-meta\">recorded 2026-11-27 10:00:00 UTC"));
        assert_eq!(
            out.matches("load: [   1.0s]").count(),
            1,
            "the output is shown once"
        );
        assert!(out.trim_end().ends_with("After."));
    }

    #[test]
    fn awaited_and_unstopped_background_steps_end_where_they_end() {
        let src = "```sh lab id=a background\nsleep 1\n```\n\n```sh lab id=b background\nsleep 2\n```\n\n\
                   ```sh lab await=a\necho next\n```\n\nThe end.";
        let chapter = parse_chapter("c.md", "c.md", src).unwrap();
        let blocks = vec![
            rec(&chapter.blocks[0], "a's output\n"),
            rec(&chapter.blocks[1], "b's output\n"),
            rec(&chapter.blocks[2], "next\n"),
        ];
        let out = splice(src, &chapter, &record_of(&chapter, blocks));
        assert!(out.contains("```sh\nsleep 2 &\nb=$!\n```"), "{out}");
        let next = out.find("```text\nnext\n```").unwrap();
        let a = out
            .find("<code>a</code> (started above) ended here.")
            .unwrap();
        let a_output = out.find("```text\na's output\n```").unwrap();
        let end = out.find("The end.").unwrap();
        let b = out
            .find("<code>b</code> (started above) ended after the chapter's last step.")
            .unwrap();
        let b_output = out.find("```text\nb's output\n```").unwrap();
        assert!(
            next < a && a < a_output && a_output < end && end < b && b < b_output,
            "{out}"
        );
        assert!(out.contains("ran in the background"));
    }

    #[test]
    fn a_timeline_without_live_lines_says_so() {
        let src = "```sh lab id=w background timeline=\"quiet\"\nrunner load --quiet\n```\n\n```sh lab await=w\ntrue\n```\n";
        let chapter = parse_chapter("c.md", "c.md", src).unwrap();
        let blocks = vec![
            rec(&chapter.blocks[0], "acknowledged: 10\n"),
            rec(&chapter.blocks[1], ""),
        ];
        let out = splice(src, &chapter, &record_of(&chapter, blocks));
        assert!(
            out.contains("<div class=\"lab-missing\">No timeline: the writer printed no live line"),
            "{out}"
        );
        assert!(
            out.contains("```text\nacknowledged: 10\n```"),
            "the output is shown as usual"
        );
        assert!(!out.contains("<svg"));
    }

    #[test]
    fn a_step_that_printed_nothing_shows_its_meta_only() {
        let src = "```sh lab\nsleep 2\n```\n";
        let chapter = parse_chapter("c.md", "c.md", src).unwrap();
        let blocks = vec![rec(&chapter.blocks[0], "")];
        let out = splice(src, &chapter, &record_of(&chapter, blocks));
        assert!(!out.contains("```text"), "{out}");
        assert!(out.contains("<div class=\"lab-meta\">recorded"), "{out}");
    }

    #[test]
    fn a_topology_step_is_drawn_under_its_output() {
        let src = "```sh lab topology=\"at the start\"\nrunner topology\n```\n";
        let chapter = parse_chapter("c.md", "c.md", src).unwrap();
        let table = "node              role     tl  upstream          sync  behind  replay_lag  status\n\
                     postgres-primary  primary  1   -                 -     -       -           up\n\
                     pgbouncer         pooler   -   postgres-primary  -     -       -           up\n";
        let out = splice(
            src,
            &chapter,
            &record_of(&chapter, vec![rec(&chapter.blocks[0], table)]),
        );
        let text = out.find("```text\nnode ").unwrap();
        let svg = out
            .find("<div class=\"lab-chart lab-topology\"><svg")
            .unwrap();
        assert!(text < svg, "{out}");
        assert!(out[svg..].lines().next().unwrap().ends_with("</svg></div>"));
        let bad = splice(
            src,
            &chapter,
            &record_of(&chapter, vec![rec(&chapter.blocks[0], "oops\n")]),
        );
        assert!(
            bad.contains("No diagram: line 1 is not the table&#39;s header"),
            "{bad}"
        );
    }

    #[test]
    fn extra_edits_are_made_with_the_records() {
        let src = "A {{ch-2:x}} and {{v}}.\n\n```sh lab capture=v\necho v: 1\n```\n";
        let chapter = parse_chapter("c.md", "c.md", src).unwrap();
        let mut r = rec(&chapter.blocks[0], "v: 1\n");
        r.captures.insert("v".into(), "1".into());
        let span = src.find("{{ch-2").unwrap()..src.find("}} and").unwrap() + 2;
        let out = splice_with(
            src,
            &chapter,
            &record_of(&chapter, vec![r]),
            vec![(span, "TWO".into())],
        );
        assert!(
            out.starts_with("A TWO and <span class=\"lab-value\""),
            "{out}"
        );
    }

    #[test]
    fn fences_outgrow_backticks_in_the_text() {
        assert_eq!(fence_for("echo hi"), "```");
        assert_eq!(fence_for("```\nx\n```"), "````");
    }
}
