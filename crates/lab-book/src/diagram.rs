//! Diagrams of the cluster drawn from a step's recorded `runner topology` table.
//!
//! A step marked `topology="caption"` prints the table
//! ([`lab_core::topology_state`]); the book draws it as an inline SVG: the routers
//! (pgbouncer, HAProxy) on top with a dotted arrow to the node they send writes to, then
//! the nodes in layers — primaries (and nodes that follow nobody) first, each standby one
//! layer below its upstream — with an arrow per replication connection labelled with its
//! sync state and lag, each box saying role and timeline, a down node crossed out. The
//! picture is hand-built SVG (boxes, lines, text), white-backed like the charts so it
//! reads on the dark themes too, with no `id`s, so several can share a page.
//!
//! A table the parser does not understand is not drawn as something else: [`problems`]
//! lists it (chapter, line, block, what is wrong) and the preprocessor and `runner check`
//! fail on it.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::Result;

use crate::html::escape;
use lab_core::Chapter;
use lab_core::record::ChapterRecord;
use lab_core::topology_state::{NodeRow, TopologyState};

const MARGIN: f64 = 20.0;
const GAP_X: f64 = 44.0;
const GAP_Y: f64 = 78.0;
const TITLE_H: f64 = 36.0;
const LEGEND_H: f64 = 34.0;
/// Approximate advance of one character of the 12 px sans-serif (13 px bold: ×1.12).
const CHAR_W: f64 = 6.9;

const SYNC: &str = "#1d4ed8";
const ASYNC: &str = "#4b5563";
const ROUTE: &str = "#7c3aed";
const DOWN: &str = "#b91c1c";

/// Every `topology=` block of `chapter` whose fresh record does not parse, one line each
/// (`book/src/chapter-4.md:120 [topo-after] topology="…": line 3 (…): unknown role …`).
pub fn problems(chapter: &Chapter, record: Option<&ChapterRecord>, file: &str) -> Vec<String> {
    chapter
        .blocks
        .iter()
        .filter_map(|block| {
            let caption = block.topology.as_ref()?;
            let rec = record?.fresh_for(block)?;
            let err = TopologyState::parse(&rec.output).err()?;
            Some(format!(
                "{} [{}] topology=\"{caption}\": the recorded output is not `runner topology`'s table: {err:#}",
                block.location(file),
                block.id
            ))
        })
        .collect()
}

/// Draws the table printed in `output` as an SVG diagram captioned `caption`.
pub fn svg_from_output(caption: &str, output: &str) -> Result<String> {
    Ok(svg(caption, &TopologyState::parse(output)?))
}

/// Where a box is.
#[derive(Debug, Clone, Copy)]
struct Place {
    x: f64,
    y: f64,
}

/// The layer of each row: routers 0, a node with no upstream among the nodes 1, each
/// standby one below its upstream (a cycle, which a table should never show, stops at
/// the table's length).
fn layers(state: &TopologyState) -> Vec<usize> {
    let index: HashMap<&str, usize> = state
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_router())
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();
    state
        .rows
        .iter()
        .map(|row| {
            if row.is_router() {
                return 0;
            }
            let mut depth = 1;
            let mut at = row;
            while let Some(up) = at.upstream.as_deref().and_then(|u| index.get(u)) {
                let up = &state.rows[*up];
                if up.name == row.name || depth > state.rows.len() {
                    break;
                }
                depth += 1;
                at = up;
            }
            depth
        })
        .collect()
}

/// The lines of text inside a row's box: its name, then what it is.
fn box_lines(row: &NodeRow) -> (String, String, Option<String>) {
    let what = match (row.role.as_str(), row.timeline) {
        ("pooler", _) => "connection pooler".to_string(),
        ("proxy", _) => "proxy to the leader".to_string(),
        ("-", Some(tl)) => format!("timeline {tl}"),
        ("-", None) => "role unknown".to_string(),
        (role, Some(tl)) => format!("{} · timeline {tl}", role.replace('_', " ")),
        (role, None) => role.replace('_', " "),
    };
    let down = row.down.as_ref().map(|why| {
        let why: String = why.chars().take(30).collect();
        if why.is_empty() {
            "DOWN".to_string()
        } else {
            format!("DOWN: {why}")
        }
    });
    (row.name.clone(), what, down)
}

/// The label of a replication arrow: sync state, bytes behind, replay lag.
fn edge_label(row: &NodeRow) -> String {
    let mut parts = vec![row.sync.clone().unwrap_or_else(|| "streams".into())];
    if let Some(b) = &row.behind {
        parts.push(format!("{b} behind"));
    }
    if let Some(l) = &row.replay_lag {
        parts.push(format!("lag {l}"));
    }
    parts.join(" · ")
}

/// Draws `state` as an SVG diagram captioned `caption`.
pub fn svg(caption: &str, state: &TopologyState) -> String {
    let layer_of = layers(state);
    let n_layers = layer_of.iter().max().map_or(1, |m| m + 1);
    let has_routers = state.rows.iter().any(NodeRow::is_router);
    let first_layer = if has_routers { 0 } else { 1 };
    let any_down = state.rows.iter().any(|r| r.down.is_some());
    let box_h = if any_down { 66.0 } else { 50.0 };
    let box_w = state
        .rows
        .iter()
        .map(|r| {
            let (name, what, down) = box_lines(r);
            let text = [
                name.chars().count() as f64 * CHAR_W * 1.12,
                what.chars().count() as f64 * CHAR_W,
                down.map_or(0.0, |d| d.chars().count() as f64 * CHAR_W),
            ];
            text.into_iter().fold(0.0, f64::max) + 24.0
        })
        .chain(state.rows.iter().filter(|r| !r.is_router()).map(|r| {
            // The arrow's label sits above the box: keep boxes at least as wide.
            edge_label(r).chars().count() as f64 * CHAR_W * 0.92 + 12.0
        }))
        .fold(150.0, f64::max)
        .min(300.0);
    let per_layer: Vec<Vec<usize>> = (0..n_layers)
        .map(|l| {
            (0..state.rows.len())
                .filter(|i| layer_of[*i] == l)
                .collect()
        })
        .collect();
    let widest = per_layer.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    let width = (widest * box_w + (widest - 1.0) * GAP_X + 2.0 * MARGIN).max(520.0);
    let used_layers = (first_layer..n_layers).count() as f64;
    let height = TITLE_H + used_layers * box_h + (used_layers - 1.0) * GAP_Y + LEGEND_H + MARGIN;

    let mut places = vec![Place { x: 0.0, y: 0.0 }; state.rows.len()];
    for (l, rows) in per_layer.iter().enumerate() {
        if l < first_layer {
            continue;
        }
        let n = rows.len() as f64;
        let total = n * box_w + (n - 1.0).max(0.0) * GAP_X;
        let y = TITLE_H + (l - first_layer) as f64 * (box_h + GAP_Y);
        for (k, i) in rows.iter().enumerate() {
            places[*i] = Place {
                x: (width - total) / 2.0 + k as f64 * (box_w + GAP_X),
                y,
            };
        }
    }
    let by_name: HashMap<&str, usize> = state
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.is_router())
        .map(|(i, r)| (r.name.as_str(), i))
        .collect();

    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"{}\" \
         font-family=\"sans-serif\" font-size=\"12\">",
        escape(caption)
    );
    let _ = write!(
        out,
        "<rect width=\"{width:.0}\" height=\"{height:.0}\" fill=\"white\"/>\
         <text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" fill=\"#111827\">{}</text>",
        width / 2.0,
        escape(caption)
    );

    // Arrows first, so boxes and labels sit on top of them.
    let mut labels = String::new();
    for (i, row) in state.rows.iter().enumerate() {
        let Some(up) = row.upstream.as_deref().and_then(|u| by_name.get(u)) else {
            continue;
        };
        let (up, me) = (places[*up], places[i]);
        if row.is_router() {
            // The router sends writes down to its target.
            let (x1, y1) = (me.x + box_w / 2.0, me.y + box_h);
            let (x2, y2) = (up.x + box_w / 2.0, up.y);
            arrow(&mut out, (x1, y1), (x2, y2), ROUTE, 2.0, Some("2 4"));
            let (lx, ly) = (x1 + (x2 - x1) * 0.4, y1 + (y2 - y1) * 0.4 + 4.0);
            label(&mut labels, lx, ly, "writes", ROUTE);
        } else {
            // An arrow flows from the upstream (the sender) down to the standby.
            let (colour, width, dash) = match row.sync.as_deref() {
                Some("sync") => (SYNC, 2.6, None),
                Some("quorum" | "potential") => (SYNC, 1.6, Some("8 3")),
                _ => (ASYNC, 1.6, Some("6 4")),
            };
            let (x1, y1) = (up.x + box_w / 2.0, up.y + box_h);
            let (x2, y2) = (me.x + box_w / 2.0, me.y);
            arrow(&mut out, (x1, y1), (x2, y2), colour, width, dash);
            label(&mut labels, x2, y2 - 16.0, &edge_label(row), colour);
        }
    }
    // A router whose target is not a node of the table says so under its box.
    for (i, row) in state.rows.iter().enumerate() {
        if row.is_router() && row.down.is_none() {
            let missing = match row.upstream.as_deref() {
                None => Some("sends writes nowhere".to_string()),
                Some(u) if !by_name.contains_key(u) => Some(format!("writes → {u}")),
                _ => None,
            };
            if let Some(text) = missing {
                let p = places[i];
                label(
                    &mut labels,
                    p.x + box_w / 2.0,
                    p.y + box_h + 16.0,
                    &text,
                    ROUTE,
                );
            }
        }
    }
    for (i, row) in state.rows.iter().enumerate() {
        node_box(&mut out, places[i], box_w, box_h, row);
    }
    out.push_str(&labels);
    legend(&mut out, width, height - LEGEND_H + 8.0);
    out.push_str("</svg>");
    out
}

fn node_box(out: &mut String, p: Place, w: f64, h: f64, row: &NodeRow) {
    let (fill, stroke) = match (row.down.is_some(), row.is_router(), row.is_primary()) {
        (true, _, _) => ("#fef2f2", DOWN),
        (_, true, _) => ("#f5f3ff", ROUTE),
        (_, _, true) => ("#dbeafe", SYNC),
        _ => ("#dcfce7", "#15803d"),
    };
    let dash = if row.down.is_some() {
        " stroke-dasharray=\"6 3\""
    } else {
        ""
    };
    let _ = write!(
        out,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"6\" fill=\"{fill}\" \
         stroke=\"{stroke}\" stroke-width=\"1.6\"{dash}/>",
        p.x, p.y
    );
    if row.down.is_some() {
        let _ = write!(
            out,
            "<path d=\"M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}\" stroke=\"{DOWN}\" \
             stroke-width=\"2\" stroke-opacity=\"0.45\"/>",
            p.x + 4.0,
            p.y + 4.0,
            p.x + w - 4.0,
            p.y + h - 4.0,
            p.x + w - 4.0,
            p.y + 4.0,
            p.x + 4.0,
            p.y + h - 4.0
        );
    }
    let (name, what, down) = box_lines(row);
    let cx = p.x + w / 2.0;
    let _ = write!(
        out,
        "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\" \
         fill=\"#111827\">{}</text><text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
         fill=\"#374151\">{}</text>",
        p.y + 20.0,
        escape(&name),
        p.y + 38.0,
        escape(&what)
    );
    if let Some(down) = down {
        let _ = write!(
            out,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\" \
             fill=\"{DOWN}\">{}</text>",
            p.y + 56.0,
            escape(&down)
        );
    }
}

/// A line from `a` to `b` with a filled arrowhead at `b` (a polygon, not a marker: a
/// marker needs an `id`, which two diagrams on one page would share).
fn arrow(out: &mut String, a: (f64, f64), b: (f64, f64), colour: &str, w: f64, dash: Option<&str>) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    let head = 9.0;
    let base = (b.0 - ux * head, b.1 - uy * head);
    let (px, py) = (-uy * head * 0.5, ux * head * 0.5);
    let dash = dash.map_or(String::new(), |d| format!(" stroke-dasharray=\"{d}\""));
    let _ = write!(
        out,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" \
         stroke-width=\"{w}\"{dash}/><polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" \
         fill=\"{colour}\"/>",
        a.0,
        a.1,
        base.0,
        base.1,
        b.0,
        b.1,
        base.0 + px,
        base.1 + py,
        base.0 - px,
        base.1 - py
    );
}

/// Text centred at (`x`, `y`) on a white pill, so a line under it does not cross it.
fn label(out: &mut String, x: f64, y: f64, text: &str, colour: &str) {
    let w = text.chars().count() as f64 * CHAR_W * 0.92 + 10.0;
    let _ = write!(
        out,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"16\" rx=\"8\" fill=\"white\" \
         fill-opacity=\"0.92\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
         font-size=\"11\" fill=\"{colour}\">{}</text>",
        x - w / 2.0,
        y - 11.0,
        y + 1.0,
        escape(text)
    );
}

fn legend(out: &mut String, width: f64, y: f64) {
    let items: [(&str, &str, Option<&str>, f64); 3] = [
        ("synchronous", SYNC, None, 2.6),
        ("asynchronous", ASYNC, Some("6 4"), 1.6),
        ("writes routed to", ROUTE, Some("2 4"), 2.0),
    ];
    let mut x = (width - 520.0).max(0.0) / 2.0 + MARGIN;
    for (text, colour, dash, w) in items {
        let dash = dash.map_or(String::new(), |d| format!(" stroke-dasharray=\"{d}\""));
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" \
             stroke-width=\"{w}\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" \
             fill=\"#374151\">{text}</text>",
            x + 28.0,
            x + 34.0,
            y + 4.0
        );
        x += 40.0 + text.len() as f64 * 6.2 + 16.0;
    }
    let _ = write!(
        out,
        "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"22\" height=\"12\" rx=\"2\" fill=\"#fef2f2\" \
         stroke=\"{DOWN}\" stroke-dasharray=\"4 2\"/><path d=\"M{:.1} {:.1}L{:.1} {:.1}M{:.1} \
         {:.1}L{:.1} {:.1}\" stroke=\"{DOWN}\" stroke-opacity=\"0.6\"/><text x=\"{:.1}\" \
         y=\"{:.1}\" font-size=\"11\" fill=\"#374151\">down</text>",
        y - 6.0,
        x,
        y - 6.0,
        x + 22.0,
        y + 6.0,
        x + 22.0,
        y - 6.0,
        x,
        y + 6.0,
        x + 28.0,
        y + 4.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_core::parse_chapter;
    use lab_core::record::BlockRecord;

    const SPLIT: &str = "\
node                    role     tl  upstream               sync   behind  replay_lag  status
postgres-primary        primary  1   -                      -      -       -           up
postgres-sync-standby   primary  2   -                      -      -       -           up
postgres-async-standby  standby  2   postgres-sync-standby  async  1.5kB   0.4ms       up
postgres-delayed-standby -       -   -                      -      -       -           down: exited (137)
pgbouncer               pooler   -   postgres-sync-standby  -      -       -           up
";

    #[test]
    fn layers_put_routers_on_top_and_standbys_under_their_upstream() {
        let state = TopologyState::parse(SPLIT).unwrap();
        assert_eq!(layers(&state), [1, 1, 2, 1, 0]);
    }

    #[test]
    fn the_diagram_shows_roles_timelines_edges_and_down_nodes() {
        let svg = svg_from_output("after the failover", SPLIT).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains(">after the failover</text>"));
        assert!(svg.contains(">primary · timeline 1</text>"));
        assert!(svg.contains(">primary · timeline 2</text>"));
        assert!(
            svg.contains(">async · 1.5kB behind · lag 0.4ms</text>"),
            "{svg}"
        );
        assert!(svg.contains(">DOWN: exited (137)</text>"));
        assert!(svg.contains(">writes</text>"));
        assert!(
            !svg.contains(" id=\""),
            "no ids: several diagrams share a page"
        );
        assert!(!svg.contains('\n'));
        // Three arrows: async replication, pgbouncer's route; the down node has none.
        assert_eq!(svg.matches("<polygon").count(), 2);
    }

    #[test]
    fn a_router_pointing_at_no_node_says_so() {
        let text = SPLIT.replace(
            "pgbouncer               pooler   -   postgres-sync-standby",
            "pgbouncer               pooler   -   -                    ",
        );
        let svg = svg_from_output("x", &text).unwrap();
        assert!(svg.contains(">sends writes nowhere</text>"), "{svg}");
    }

    #[test]
    fn a_bad_recorded_table_is_a_problem_naming_file_line_and_block() {
        let src = "# C\n\n```sh lab id=topo topology=\"start\"\nrunner topology\n```\n";
        let chapter = parse_chapter("book/src/c.md", "c.md", src).unwrap();
        let block = &chapter.blocks[0];
        let rec = |output: &str| ChapterRecord {
            format: lab_core::record::FORMAT,
            chapter: "c.md".into(),
            recorded_at: "2026-11-28T10:00:00Z".parse().unwrap(),
            server_version: None,
            duration_ms: 1,
            blocks: vec![BlockRecord {
                id: block.id.clone(),
                digest: block.digest(),
                line: block.line,
                command: block.body.clone(),
                ran_on: "sh".into(),
                output: output.into(),
                exit_code: Some(0),
                timed_out: false,
                ok: true,
                duration_ms: 1,
                started_at: "2026-11-28T10:00:00Z".into(),
                server_version: None,
                check: None,
                captures: Default::default(),
                attempts: 1,
            }],
        };
        assert!(problems(&chapter, Some(&rec(SPLIT)), "book/src/c.md").is_empty());
        let bad = SPLIT.replace("standby  2", "stanby   2");
        let found = problems(&chapter, Some(&rec(&bad)), "book/src/c.md");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("book/src/c.md:3 [topo] topology=\"start\": ")
                && found[0].contains("line 4")
                && found[0].contains("unknown role \"stanby\""),
            "{}",
            found[0]
        );
    }
}
