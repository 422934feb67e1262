//! A [`Snapshot`] on screen: a ratatui frame for the terminal, plain text for
//! `--once`. Both read the same rows ([`node_rows`], [`slot_rows`], [`wait_lines`],
//! [`writer_lines`]), so what a script greps is what the screen shows. Pure: no I/O, a
//! synthetic snapshot renders exactly as a live one.

use std::time::Duration;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table, Widget};

use super::{Node, Reach, Snapshot, WriterStats};

/// What the terminal loop adds to a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewState {
    /// Whether refreshing is paused (`p`).
    pub paused: bool,
    /// The refresh interval.
    pub interval: Duration,
}

/// Bytes, short: `0`, `512B`, `1.5K`, `12.0M`, `3.2G` (binary units).
pub fn bytes(value: Option<i64>) -> String {
    let Some(v) = value else {
        return "-".into();
    };
    let sign = if v < 0 { "-" } else { "" };
    let n = v.unsigned_abs() as f64;
    const K: f64 = 1024.0;
    if v == 0 {
        "0".into()
    } else if n < K {
        format!("{sign}{n}B")
    } else if n < K * K {
        format!("{sign}{:.1}K", n / K)
    } else if n < K * K * K {
        format!("{sign}{:.1}M", n / K / K)
    } else {
        format!("{sign}{:.1}G", n / K / K / K)
    }
}

/// Seconds, short: `0.4ms`, `12ms`, `1.25s`, `42.0s`, `3m05s`.
pub fn secs(value: Option<f64>) -> String {
    let Some(s) = value else {
        return "-".into();
    };
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    if s < 0.01 {
        format!("{:.1}ms", s * 1000.0)
    } else if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 10.0 {
        format!("{s:.2}s")
    } else if s < 120.0 {
        format!("{s:.1}s")
    } else {
        let whole = s as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// How a row of the node table is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A primary (or Patroni's leader).
    Primary,
    /// A standby that answers.
    Standby,
    /// A node that did not answer.
    Down,
}

/// The node table's header.
pub const NODE_HEADER: [&str; 14] = [
    "node",
    "role",
    "tl",
    "state",
    "sync",
    "sent",
    "write",
    "flush",
    "replay",
    "w_lag",
    "f_lag",
    "r_lag",
    "apply",
    "wal receiver / why down",
];

/// The node table: one row per node, with how to draw it.
pub fn node_rows(snapshot: &Snapshot) -> Vec<(RowKind, Vec<String>)> {
    snapshot.nodes.iter().map(node_row).collect()
}

fn node_row(node: &Node) -> (RowKind, Vec<String>) {
    let dash = || "-".to_string();
    let kind = match (&node.reach, node.is_primary()) {
        (Reach::Down(_), _) => RowKind::Down,
        (Reach::Up, true) => RowKind::Primary,
        (Reach::Up, false) => RowKind::Standby,
    };
    let role = match &node.reach {
        Reach::Down(_) => "DOWN".to_string(),
        Reach::Up => node.role.clone().unwrap_or_else(dash),
    };
    let rep = node.replication.as_ref();
    let state = rep
        .map(|r| r.state.clone())
        .or_else(|| node.patroni_state.clone())
        .unwrap_or_else(dash);
    let sync = rep
        .map(|r| match r.sync_priority {
            Some(p) => format!("{}/{p}", r.sync_state),
            None => r.sync_state.clone(),
        })
        .unwrap_or_else(dash);
    let apply = match (&node.replay_paused, &node.apply_delay) {
        (Some(p), Some(d)) => format!("{p}, delay {d}"),
        (Some(p), None) => p.clone(),
        (None, Some(d)) => format!("delay {d}"),
        (None, None) => dash(),
    };
    let last = match &node.reach {
        Reach::Down(why) => why.clone(),
        Reach::Up => match &node.receiver {
            Some(r) => match (&r.status, &r.upstream) {
                (Some(status), Some(from)) => format!("{status} from {from}"),
                (Some(status), None) => status.clone(),
                (None, _) => "no WAL receiver".into(),
            },
            None if node.is_primary() => dash(),
            None => rep
                .map(|r| format!("(seen by {})", r.upstream))
                .unwrap_or_else(dash),
        },
    };
    let cells = vec![
        node.name.clone(),
        role,
        node.timeline.map(|t| t.to_string()).unwrap_or_else(dash),
        state,
        sync,
        bytes(rep.and_then(|r| r.sent_bytes)),
        bytes(rep.and_then(|r| r.write_bytes)),
        bytes(rep.and_then(|r| r.flush_bytes)),
        bytes(rep.and_then(|r| r.replay_bytes)),
        secs(rep.and_then(|r| r.write_lag)),
        secs(rep.and_then(|r| r.flush_lag)),
        secs(rep.and_then(|r| r.replay_lag)),
        apply,
        last,
    ];
    (kind, cells)
}

/// The slot table's header.
pub const SLOT_HEADER: [&str; 7] = [
    "slot",
    "on",
    "type",
    "active",
    "wal_status",
    "retained",
    "safe_wal_size",
];

/// The slot table: one row per slot of every primary.
pub fn slot_rows(snapshot: &Snapshot) -> Vec<(bool, Vec<String>)> {
    snapshot
        .slots
        .iter()
        .map(|s| {
            let risky = !s.active || matches!(s.wal_status.as_deref(), Some("unreserved" | "lost"));
            (
                risky,
                vec![
                    s.name.clone(),
                    s.node.clone(),
                    s.slot_type.clone(),
                    if s.active { "yes" } else { "no" }.into(),
                    s.wal_status.clone().unwrap_or_else(|| "-".into()),
                    bytes(s.retained_bytes),
                    match s.safe_wal_size {
                        Some(_) => bytes(s.safe_wal_size),
                        None => "unlimited".into(),
                    },
                ],
            )
        })
        .collect()
}

/// Who waits: SyncRep on each primary, then pgbouncer (where it points, its pools).
/// Each line says whether it is a warning.
pub fn wait_lines(snapshot: &Snapshot) -> Vec<(bool, String)> {
    let mut lines = Vec::new();
    for w in &snapshot.sync_waits {
        let names = if w.standby_names.is_empty() {
            "synchronous_standby_names = '' (no standby waited for)".to_string()
        } else {
            format!("synchronous_standby_names = '{}'", w.standby_names)
        };
        if w.count == 0 {
            lines.push((
                false,
                format!("SyncRep on {}: none waiting; {names}", w.node),
            ));
        } else {
            lines.push((
                true,
                format!(
                    "SyncRep on {}: {} commit{} waiting, oldest {}; {names}",
                    w.node,
                    w.count,
                    if w.count == 1 { "" } else { "s" },
                    secs(w.oldest)
                ),
            ));
        }
    }
    if snapshot.sync_waits.is_empty() {
        lines.push((true, "SyncRep: no primary answers".into()));
    }
    match &snapshot.pgbouncer {
        None => lines.push((false, "pgbouncer: not started".into())),
        Some(p) => match &p.reach {
            Reach::Down(why) => lines.push((true, format!("pgbouncer: DOWN ({why})"))),
            Reach::Up => {
                // SHOW DATABASES may not list yet a database made from the `*` entry.
                let mut points: Vec<String> = p
                    .databases
                    .iter()
                    .map(|(name, host)| format!("{name} → {host}"))
                    .collect();
                for pool in &p.pools {
                    if !p.databases.iter().any(|(name, _)| *name == pool.database)
                        && !points
                            .iter()
                            .any(|x| x.starts_with(&format!("{} ", pool.database)))
                    {
                        points.push(format!(
                            "{} → its `*` entry (not listed yet)",
                            pool.database
                        ));
                    }
                }
                let points = if points.is_empty() {
                    "no database used yet".to_string()
                } else {
                    points.join(", ")
                };
                lines.push((false, format!("pgbouncer: {points}")));
                for pool in &p.pools {
                    lines.push((
                        pool.cl_waiting > 0,
                        format!(
                            "  pool {}/{}: cl_active {}  cl_waiting {}  sv_active {}  sv_idle {}  maxwait {}",
                            pool.database,
                            pool.user,
                            pool.cl_active,
                            pool.cl_waiting,
                            pool.sv_active,
                            pool.sv_idle,
                            secs(Some(pool.maxwait))
                        ),
                    ));
                }
            }
        },
    }
    lines
}

/// The writer's summary lines (the sparklines are drawn apart).
pub fn writer_lines(writer: Option<&WriterStats>) -> Vec<String> {
    let Some(w) = writer else {
        return vec![
            "no `runner load` ledger written in the last two minutes (--ledger PATH follows one)"
                .into(),
        ];
    };
    let mut lines = Vec::new();
    let run = match &w.run {
        Some((id, target)) => format!(" — run {id} → {target}"),
        None => String::new(),
    };
    let status = match (w.ended, w.elapsed) {
        (Some(end), _) => format!(", ended at {end:.1} s"),
        (None, Some(elapsed)) => format!(", running for {elapsed:.0} s"),
        _ => String::new(),
    };
    lines.push(format!("{}{run}{status}", w.path));
    if let Some(problem) = &w.problem {
        lines.push(format!("cannot follow it: {problem}"));
        return lines;
    }
    let now_acks = w.acks_per_sec.last().copied().unwrap_or(0);
    let now_errs = w.errors_per_sec.last().copied().unwrap_or(0);
    let window = w.acks_per_sec.len().max(1) as f64;
    let avg = w.acks_per_sec.iter().sum::<u64>() as f64 / window;
    let classes = if w.errors_by_class.is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            w.errors_by_class
                .iter()
                .map(|(class, n)| format!("{n} {class}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    lines.push(format!(
        "{now_acks} ack/s, {now_errs} err/s (last {} s: {avg:.0} ack/s avg, {} errors{classes}); total {} acked, {} failed, {} in flight{}",
        w.acks_per_sec.len(),
        w.errors_per_sec.iter().sum::<u64>(),
        w.acked_total,
        w.failed_total,
        w.in_flight,
        if w.bad_lines > 0 {
            format!(", {} unreadable lines", w.bad_lines)
        } else {
            String::new()
        }
    ));
    lines
}

/// The title line.
pub fn title(snapshot: Option<&Snapshot>, state: &ViewState) -> String {
    let mut t = match snapshot {
        Some(s) => format!(
            "runner watch · project {} · {} · probed in {} ms",
            s.project,
            s.at.format("%H:%M:%S UTC"),
            s.took.as_millis()
        ),
        None => "runner watch · probing…".into(),
    };
    if state.paused {
        t.push_str(" · PAUSED");
    } else {
        t.push_str(&format!(
            " · every {}",
            humantime::format_duration(state.interval)
        ));
    }
    t
}

/// A sparkline as text, one character per value (` ▁▂▃▄▅▆▇█`, scaled to the largest).
pub fn sparkline_text(values: &[u64]) -> String {
    const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            if v == 0 || max == 0 {
                LEVELS[0]
            } else {
                LEVELS[((v * 8).div_ceil(max)).clamp(1, 8) as usize]
            }
        })
        .collect()
}

/// Aligned text columns, two spaces apart, trailing blanks trimmed.
fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            let pad = widths.get(i).copied().unwrap_or(0);
            out.push_str(cell);
            for _ in cell.chars().count()..pad + 2 {
                out.push(' ');
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// The frame as plain text (`runner watch --once`).
pub fn plain(snapshot: &Snapshot) -> String {
    let state = ViewState {
        paused: false,
        interval: Duration::ZERO,
    };
    let mut title = title(Some(snapshot), &state);
    if let Some(cut) = title.find(" · every") {
        title.truncate(cut);
    }
    let mut out = format!("{title}\n\nNODES\n");
    let nodes: Vec<Vec<String>> = node_rows(snapshot).into_iter().map(|(_, r)| r).collect();
    if nodes.is_empty() {
        out.push_str("(none)\n");
    } else {
        out.push_str(&columns(&NODE_HEADER, &nodes));
    }
    out.push_str("\nSLOTS\n");
    let slots: Vec<Vec<String>> = slot_rows(snapshot).into_iter().map(|(_, r)| r).collect();
    if slots.is_empty() {
        out.push_str("(none)\n");
    } else {
        out.push_str(&columns(&SLOT_HEADER, &slots));
    }
    out.push_str("\nWAITS\n");
    for (_, line) in wait_lines(snapshot) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("\nWRITER\n");
    for line in writer_lines(snapshot.writer.as_ref()) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(w) = &snapshot.writer
        && w.problem.is_none()
        && !w.acks_per_sec.is_empty()
    {
        let top = w.acks_per_sec.iter().max().copied().unwrap_or(0);
        out.push_str(&format!(
            "ack/s |{}| max {top}\n",
            sparkline_text(&w.acks_per_sec)
        ));
        let top = w.errors_per_sec.iter().max().copied().unwrap_or(0);
        out.push_str(&format!(
            "err/s |{}| max {top}\n",
            sparkline_text(&w.errors_per_sec)
        ));
    }
    if !snapshot.notes.is_empty() {
        out.push_str("\nNOTES\n");
        for note in &snapshot.notes {
            out.push_str(note);
            out.push('\n');
        }
    }
    out
}

fn table_widths(header: &[&str], rows: &[Vec<String>]) -> Vec<Constraint> {
    header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let w = rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(1);
            Constraint::Length(w as u16)
        })
        .collect()
}

/// The rows of the acknowledgements' sparkline.
const SPARK_HEIGHT: u16 = 3;

fn boxed(title: &str) -> Block<'_> {
    Block::default().borders(Borders::ALL).title(Span::styled(
        title,
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

/// Renders the frame into `area` of `buf`.
pub fn render(snapshot: Option<&Snapshot>, state: &ViewState, area: Rect, buf: &mut Buffer) {
    let header_style = Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    let Some(snapshot) = snapshot else {
        Paragraph::new(title(None, state)).render(area, buf);
        return;
    };
    let nodes = node_rows(snapshot);
    let slots = slot_rows(snapshot);
    let waits = wait_lines(snapshot);
    let writer = writer_lines(snapshot.writer.as_ref());
    let has_spark = snapshot
        .writer
        .as_ref()
        .is_some_and(|w| w.problem.is_none() && !w.acks_per_sec.is_empty());
    let footer_lines = 1;
    let [
        title_area,
        nodes_area,
        slots_area,
        waits_area,
        writer_area,
        _,
        footer_area,
    ] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(nodes.len().max(1) as u16 + 3),
        Constraint::Length(if slots.is_empty() {
            3
        } else {
            slots.len() as u16 + 3
        }),
        Constraint::Length(waits.len() as u16 + 2),
        Constraint::Length(writer.len() as u16 + 2 + if has_spark { SPARK_HEIGHT + 1 } else { 0 }),
        Constraint::Min(0),
        Constraint::Length(footer_lines),
    ])
    .areas(area);

    Paragraph::new(Line::from(vec![Span::styled(
        title(Some(snapshot), state),
        Style::default()
            .fg(if state.paused {
                Color::Yellow
            } else {
                Color::Cyan
            })
            .add_modifier(Modifier::BOLD),
    )]))
    .render(title_area, buf);

    // Nodes.
    let node_cells: Vec<Vec<String>> = nodes.iter().map(|(_, r)| r.clone()).collect();
    let rows = nodes.iter().map(|(kind, cells)| {
        let style = match kind {
            RowKind::Primary => Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD),
            RowKind::Standby => Style::default(),
            RowKind::Down => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        };
        Row::new(cells.iter().cloned().map(Cell::from)).style(style)
    });
    Table::new(rows, table_widths(&NODE_HEADER, &node_cells))
        .header(Row::new(NODE_HEADER.iter().copied().map(Cell::from)).style(header_style))
        .column_spacing(1)
        .block(boxed(" Nodes — lag behind the primary: bytes, then time "))
        .render(nodes_area, buf);

    // Slots.
    let slot_cells: Vec<Vec<String>> = slots.iter().map(|(_, r)| r.clone()).collect();
    if slots.is_empty() {
        Paragraph::new("none (no primary answers, or it has no slot)")
            .block(boxed(" Replication slots "))
            .render(slots_area, buf);
    } else {
        let rows = slots.iter().map(|(risky, cells)| {
            let style = if *risky {
                Style::default().fg(Color::Yellow)
            } else {
                Style::default()
            };
            Row::new(cells.iter().cloned().map(Cell::from)).style(style)
        });
        Table::new(rows, table_widths(&SLOT_HEADER, &slot_cells))
            .header(Row::new(SLOT_HEADER.iter().copied().map(Cell::from)).style(header_style))
            .column_spacing(2)
            .block(boxed(" Replication slots "))
            .render(slots_area, buf);
    }

    // Who waits.
    let lines: Vec<Line> = waits
        .into_iter()
        .map(|(warn, text)| {
            if warn {
                Line::styled(
                    text,
                    Style::default()
                        .fg(Color::Yellow)
                        .add_modifier(Modifier::BOLD),
                )
            } else {
                Line::raw(text)
            }
        })
        .collect();
    Paragraph::new(lines)
        .block(boxed(" Waits: SyncRep and pgbouncer "))
        .render(waits_area, buf);

    // The writer.
    let block = boxed(" Writer (runner load's ledger) ");
    let inner = block.inner(writer_area);
    block.render(writer_area, buf);
    let text_height = writer.len() as u16;
    let [text_area, spark_area] =
        Layout::vertical([Constraint::Length(text_height), Constraint::Min(0)]).areas(inner);
    Paragraph::new(writer.into_iter().map(Line::raw).collect::<Vec<_>>()).render(text_area, buf);
    if let Some(w) = snapshot.writer.as_ref().filter(|_| has_spark) {
        let [acks_area, errs_area] =
            Layout::vertical([Constraint::Length(SPARK_HEIGHT), Constraint::Length(1)])
                .areas(spark_area);
        let label = 9u16;
        let tail = |values: &[u64], width: u16| -> Vec<u64> {
            let skip = values.len().saturating_sub(width as usize);
            values[skip..].to_vec()
        };
        let [acks_label, acks_spark] =
            Layout::horizontal([Constraint::Length(label), Constraint::Min(0)]).areas(acks_area);
        let [errs_label, errs_spark] =
            Layout::horizontal([Constraint::Length(label), Constraint::Min(0)]).areas(errs_area);
        Paragraph::new(format!(
            "ack/s\nmax {}",
            w.acks_per_sec.iter().max().copied().unwrap_or(0)
        ))
        .render(acks_label, buf);
        Sparkline::default()
            .data(tail(&w.acks_per_sec, acks_spark.width))
            .style(Style::default().fg(Color::Green))
            .render(acks_spark, buf);
        Paragraph::new("err/s").render(errs_label, buf);
        Sparkline::default()
            .data(tail(&w.errors_per_sec, errs_spark.width))
            .style(Style::default().fg(Color::Red))
            .render(errs_spark, buf);
    }

    // Footer: notes, keys.
    let mut footer = vec![Span::styled(
        "q quit · p pause",
        Style::default().add_modifier(Modifier::DIM),
    )];
    for note in &snapshot.notes {
        footer.push(Span::styled(
            format!(" · {note}"),
            Style::default().fg(Color::Yellow),
        ));
    }
    Paragraph::new(Line::from(footer)).render(footer_area, buf);
}

/// Draws the frame into a ratatui [`Frame`].
pub fn draw(frame: &mut Frame, snapshot: Option<&Snapshot>, state: &ViewState) {
    let area = frame.area();
    render(snapshot, state, area, frame.buffer_mut());
}

/// A buffer's text, one line per row, trailing blanks trimmed (for tests and logs).
pub fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Pool, Pooler, Receiver, Replication, Slot, SyncWaits};
    use super::*;
    use chrono::{DateTime, Utc};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T17:45:02Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn up(name: &str, role: &str, timeline: i64) -> Node {
        let mut node = Node::down(name, "");
        node.reach = Reach::Up;
        node.role = Some(role.into());
        node.timeline = Some(timeline);
        node
    }

    /// A streaming cluster in the middle of chapter 4: the primary killed under load,
    /// the sync standby not yet promoted, commits queued in pgbouncer.
    fn after_the_kill() -> Snapshot {
        let mut standby = up("postgres-sync-standby", "standby", 1);
        standby.receiver = Some(Receiver {
            status: None,
            upstream: None,
        });
        let mut delayed = up("postgres-delayed-standby", "standby", 1);
        delayed.apply_delay = Some("20s".into());
        delayed.replay_paused = Some("paused".into());
        delayed.receiver = Some(Receiver {
            status: Some("streaming".into()),
            upstream: Some("postgres-primary:5432".into()),
        });
        Snapshot {
            project: "lab-watch".into(),
            at: at(),
            took: Duration::from_millis(12),
            nodes: vec![
                Node::down("postgres-primary", "exited (137)"),
                standby,
                delayed,
            ],
            slots: vec![],
            sync_waits: vec![],
            pgbouncer: Some(Pooler {
                reach: Reach::Up,
                pools: vec![Pool {
                    database: "db".into(),
                    user: "postgres".into(),
                    cl_active: 0,
                    cl_waiting: 4,
                    sv_active: 0,
                    sv_idle: 0,
                    maxwait: 3.0,
                }],
                databases: vec![("db".into(), "postgres-primary:5432".into())],
            }),
            writer: Some(WriterStats {
                path: "chapter-4.ledger".into(),
                run: Some((1234, "pgbouncer".into())),
                elapsed: Some(23.4),
                ended: None,
                acks_per_sec: vec![300, 310, 320, 0, 0],
                errors_per_sec: vec![0, 0, 4, 0, 0],
                errors_by_class: [("connection_closed".to_string(), 4)].into(),
                acked_total: 7012,
                failed_total: 4,
                in_flight: 4,
                bad_lines: 0,
                problem: None,
            }),
            notes: vec![],
        }
    }

    /// The same cluster streaming, before the kill.
    fn streaming() -> Snapshot {
        let mut s = after_the_kill();
        let mut standby = up("postgres-sync-standby", "standby", 1);
        standby.receiver = Some(Receiver {
            status: Some("streaming".into()),
            upstream: Some("postgres-primary:5432".into()),
        });
        standby.replication = Some(Replication {
            upstream: "postgres-primary".into(),
            state: "streaming".into(),
            sync_state: "sync".into(),
            sync_priority: Some(1),
            sent_bytes: Some(0),
            write_bytes: Some(0),
            flush_bytes: Some(312),
            replay_bytes: Some(2 * 1024 * 1024 + 1),
            write_lag: Some(0.0004),
            flush_lag: Some(0.0012),
            replay_lag: Some(0.25),
        });
        s.nodes = vec![up("postgres-primary", "primary", 1), standby];
        s.slots = vec![Slot {
            node: "postgres-primary".into(),
            name: "postgres_sync_standby".into(),
            slot_type: "physical".into(),
            active: true,
            wal_status: Some("reserved".into()),
            retained_bytes: Some(16 * 1024 * 1024),
            safe_wal_size: None,
        }];
        s.sync_waits = vec![SyncWaits {
            node: "postgres-primary".into(),
            count: 2,
            oldest: Some(0.003),
            standby_names: "FIRST 1 (\"postgres-sync-standby\")".into(),
        }];
        s
    }

    fn render_to_text(snapshot: &Snapshot, width: u16, height: u16, paused: bool) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        let state = ViewState {
            paused,
            interval: Duration::from_secs(1),
        };
        let frame = terminal.draw(|f| draw(f, Some(snapshot), &state)).unwrap();
        buffer_text(frame.buffer)
    }

    #[test]
    fn a_streaming_cluster_renders_every_section() {
        let text = render_to_text(&streaming(), 160, 40, false);
        eprintln!("{text}");
        assert!(
            text.contains("runner watch · project lab-watch · 17:45:02 UTC"),
            "{text}"
        );
        assert!(text.contains("· every 1s"), "{text}");
        let standby = text
            .lines()
            .find(|l| l.contains("postgres-sync-standby") && l.contains("streaming"))
            .expect("the standby's row");
        for cell in [
            "standby",
            "sync/1",
            "312B",
            "2.0M",
            "0.4ms",
            "1.2ms",
            "250ms",
            "streaming from postgres-primary:5432",
        ] {
            assert!(standby.contains(cell), "{cell} in {standby:?}");
        }
        assert!(text.contains("postgres_sync_standby"), "{text}");
        assert!(
            text.contains("16.0M") && text.contains("unlimited"),
            "{text}"
        );
        assert!(
            text.contains("SyncRep on postgres-primary: 2 commits waiting, oldest 3.0ms"),
            "{text}"
        );
        assert!(
            text.contains("pgbouncer: db → postgres-primary:5432"),
            "{text}"
        );
        assert!(text.contains("cl_waiting 4"), "{text}");
        assert!(
            text.contains("chapter-4.ledger — run 1234 → pgbouncer, running for 23 s"),
            "{text}"
        );
        assert!(
            text.contains(
                "0 ack/s, 0 err/s (last 5 s: 186 ack/s avg, 4 errors (4 connection_closed))"
            ),
            "{text}"
        );
        assert!(text.contains("q quit · p pause"), "{text}");
    }

    #[test]
    fn a_killed_primary_renders_down_and_the_standby_without_receiver() {
        let mut terminal = Terminal::new(TestBackend::new(160, 40)).unwrap();
        let state = ViewState {
            paused: true,
            interval: Duration::from_secs(1),
        };
        let snapshot = after_the_kill();
        let frame = terminal.draw(|f| draw(f, Some(&snapshot), &state)).unwrap();
        let buffer = frame.buffer.clone();
        let text = buffer_text(&buffer);
        eprintln!("{text}");
        let primary_y = text
            .lines()
            .position(|l| l.contains("postgres-primary ") && l.contains("DOWN"))
            .expect("the primary's row says DOWN");
        let line = text.lines().nth(primary_y).unwrap();
        assert!(line.contains("exited (137)"), "{line}");
        // Drawn in red.
        let x = line.find("DOWN").unwrap();
        let x = line[..x].chars().count() as u16;
        assert_eq!(buffer[(x, primary_y as u16)].fg, Color::Red);
        let standby = text
            .lines()
            .find(|l| l.contains("postgres-sync-standby"))
            .unwrap();
        assert!(standby.contains("no WAL receiver"), "{standby}");
        let delayed = text
            .lines()
            .find(|l| l.contains("postgres-delayed-standby"))
            .unwrap();
        assert!(delayed.contains("paused, delay 20s"), "{delayed}");
        assert!(text.contains("SyncRep: no primary answers"), "{text}");
        assert!(text.contains("PAUSED"), "{text}");
        // The sparkline: three bars, then the failover's silence.
        assert!(text.contains("ack/s"), "{text}");
    }

    #[test]
    fn a_small_terminal_does_not_panic() {
        for (w, h) in [(1, 1), (20, 5), (80, 24), (0, 0)] {
            let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
            let state = ViewState {
                paused: false,
                interval: Duration::from_secs(1),
            };
            terminal
                .draw(|f| draw(f, Some(&streaming()), &state))
                .unwrap();
            terminal.draw(|f| draw(f, None, &state)).unwrap();
        }
    }

    #[test]
    fn plain_text_has_the_same_rows() {
        let text = plain(&after_the_kill());
        eprintln!("{text}");
        assert!(
            text.starts_with("runner watch · project lab-watch · 17:45:02 UTC · probed in 12 ms\n"),
            "{text}"
        );
        let primary = text
            .lines()
            .find(|l| l.starts_with("postgres-primary"))
            .unwrap();
        assert!(
            primary.contains("DOWN") && primary.ends_with("exited (137)"),
            "{primary}"
        );
        assert!(text.contains("\nSLOTS\n(none)\n"), "{text}");
        assert!(text.contains("ack/s |███  | max 320\n"), "{text}");
        assert!(text.contains("err/s |  █  | max 4\n"), "{text}");
        let text = plain(&streaming());
        let header = text.lines().find(|l| l.starts_with("node ")).unwrap();
        let standby = text
            .lines()
            .find(|l| l.starts_with("postgres-sync-standby"))
            .unwrap();
        // Aligned: the column `sync` starts at the same place in the header and the row.
        assert_eq!(
            header.find("sync").unwrap(),
            standby.find("sync/1").unwrap()
        );
    }

    #[test]
    fn units_read_short() {
        assert_eq!(bytes(None), "-");
        assert_eq!(bytes(Some(0)), "0");
        assert_eq!(bytes(Some(512)), "512B");
        assert_eq!(bytes(Some(1536)), "1.5K");
        assert_eq!(bytes(Some(-2048)), "-2.0K");
        assert_eq!(bytes(Some(3 << 30)), "3.0G");
        assert_eq!(secs(None), "-");
        assert_eq!(secs(Some(0.0004)), "0.4ms");
        assert_eq!(secs(Some(0.25)), "250ms");
        assert_eq!(secs(Some(1.234)), "1.23s");
        assert_eq!(secs(Some(20.0)), "20.0s");
        assert_eq!(secs(Some(185.0)), "3m05s");
        assert_eq!(secs(Some(f64::NAN)), "?");
        assert_eq!(sparkline_text(&[0, 1, 8, 4]), " ▁█▄");
        assert_eq!(sparkline_text(&[]), "");
    }
}
