//! A background writer as a timeline: what `runner load` acknowledged, second by second,
//! with the chapter's events marked where they happened.
//!
//! A block marked `timeline="…"` is a background `runner load`; its recorded output holds
//! the writer's live line, one per second:
//!
//! ```text
//! load: [   3.0s]   2773.1 tx/s  ok=7862 errors=4 p50=1.16ms p99=5.76ms in-flight=0
//! ```
//!
//! (other `load: [ …s]` lines describe errors and count nothing), then its `key: value`
//! summary (`acknowledged: 9701`, `p99_ms: 5.603`, …). Blocks marked `event="…"` are
//! moments of the chapter, placed on the timeline where the step *ended* (its recorded
//! start plus its duration, minus the writer's start): a label says what had happened
//! ("standby stopped", "promoted"), which is true once the step's commands returned —
//! a step that waits (`sleep 2`, then stop) or a command that takes seconds
//! (`docker compose stop`) would otherwise be marked before its effect. Everything here is pure: the render module feeds it records and gets an SVG
//! and a summary back, drawn from exactly the data the run printed.

use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, FixedOffset};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One live line of the writer (the type `runner load` prints it with).
pub use lab_core::live_line::LiveLine as Sample;

/// Parses one recorded live line (`load: ` and the writer's line); `None` for anything
/// else (error descriptions included).
pub fn parse_live_line(line: &str) -> Option<Sample> {
    line.trim().strip_prefix("load: ")?.parse().ok()
}

/// The live lines of a writer's output, in order.
pub fn samples(output: &str) -> Vec<Sample> {
    output.lines().filter_map(parse_live_line).collect()
}

/// Failed transactions per second at each sample: the growth of `errors=` over the
/// interval that ends there.
pub fn errors_per_second(samples: &[Sample]) -> Vec<(f64, f64)> {
    let mut prev = (0.0, 0);
    samples
        .iter()
        .map(|s| {
            let dt = (s.elapsed_s - prev.0).max(1e-3);
            let rate = s.errors.saturating_sub(prev.1) as f64 / dt;
            prev = (s.elapsed_s, s.errors);
            (s.elapsed_s, rate)
        })
        .collect()
}

/// A stretch of the run in which nothing was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stall {
    /// The last sample before it (0 when it starts with the run), seconds.
    pub from: f64,
    /// The last sample in it, seconds.
    pub to: f64,
}

impl Stall {
    /// Its length in seconds.
    pub fn seconds(&self) -> f64 {
        self.to - self.from
    }
}

/// The longest run of consecutive intervals with no acknowledged write (`ok=` unchanged);
/// the earliest of equally long ones.
pub fn longest_stall(samples: &[Sample]) -> Option<Stall> {
    let mut best: Option<Stall> = None;
    let mut current: Option<Stall> = None;
    let mut prev = (0.0, 0);
    for s in samples {
        if s.acknowledged == prev.1 {
            let stall = current.get_or_insert(Stall {
                from: prev.0,
                to: s.elapsed_s,
            });
            stall.to = s.elapsed_s;
            if best.is_none_or(|b| stall.seconds() > b.seconds()) {
                best = Some(*stall);
            }
        } else {
            current = None;
        }
        prev = (s.elapsed_s, s.acknowledged);
    }
    best
}

/// The figures a writer's summary states (`key: value` lines), as printed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// `acknowledged:`
    pub acknowledged: Option<String>,
    /// `errors:`
    pub errors: Option<String>,
    /// `p50_ms:`
    pub p50_ms: Option<String>,
    /// `p99_ms:`
    pub p99_ms: Option<String>,
    /// The longest stretch without an acknowledged write, from the live lines.
    pub stall: Option<Stall>,
}

impl Summary {
    /// Reads the summary lines of `output`; `samples` are its live lines.
    pub fn of(output: &str, samples: &[Sample]) -> Summary {
        Summary {
            acknowledged: summary_value(output, "acknowledged"),
            errors: summary_value(output, "errors"),
            p50_ms: summary_value(output, "p50_ms"),
            p99_ms: summary_value(output, "p99_ms"),
            stall: longest_stall(samples),
        }
    }

    /// The summary as (label, value) pairs for the page; `—` for what the writer did not
    /// print (a writer killed before its summary).
    pub fn parts(&self) -> Vec<(&'static str, String)> {
        let or_dash = |v: &Option<String>, unit: &str| {
            v.as_ref()
                .map_or_else(|| "—".to_string(), |v| format!("{v}{unit}"))
        };
        vec![
            ("acknowledged", or_dash(&self.acknowledged, "")),
            ("errors", or_dash(&self.errors, "")),
            ("p50", or_dash(&self.p50_ms, " ms")),
            ("p99", or_dash(&self.p99_ms, " ms")),
            (
                "longest without an acknowledged write",
                match self.stall {
                    Some(s) => format!(
                        "{} s (from {} s to {} s)",
                        crate::chart::compact(s.seconds()),
                        crate::chart::compact(s.from),
                        crate::chart::compact(s.to)
                    ),
                    None => "none (every second had one)".to_string(),
                },
            ),
        ]
    }
}

/// The value of the `name: value` line of the summary (the whole line is `name: value`,
/// so neither the k6-like dotted lines nor `errors_…:` breakdowns match).
fn summary_value(output: &str, name: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let (key, value) = line.trim_end().split_once(": ")?;
        (key == name && !value.trim().is_empty()).then(|| value.trim().to_string())
    })
}

/// A moment of the chapter on the writer's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The block's `event=` label.
    pub label: String,
    /// Seconds since the writer started.
    pub at: f64,
}

/// Parses a record's `started_at` (RFC 3339, with or without fractional seconds).
pub fn parse_time(text: &str) -> Result<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text.trim()).map_err(|e| anyhow!("{text:?}: {e}"))
}

/// Where an event that started at `event` falls on the timeline of a writer that started
/// at `writer` and ran `duration_s`: seconds since the writer started, or `None` when it
/// is outside the run. A record with whole seconds only (older records) is exact to a
/// second, so an event up to a second outside the run is placed at its edge.
pub fn event_offset(writer: &str, duration_s: f64, event: &str) -> Result<Option<f64>> {
    let start = parse_time(writer)?;
    let at = parse_time(event)?;
    let offset = (at - start).num_milliseconds() as f64 / 1000.0;
    let exact = writer.contains('.') && event.contains('.');
    let slack = if exact { 0.0 } else { 1.0 };
    if offset < -slack || offset > duration_s + slack {
        return Ok(None);
    }
    Ok(Some(offset.clamp(0.0, duration_s)))
}

/// Where an event step that started at `event` and ran `event_duration_s` ended, in
/// seconds since the writer (started at `writer`, ran `duration_s`) began; `None` when
/// it ended outside the run (see [`event_offset`] for the slack).
pub fn event_end_offset(
    writer: &str,
    duration_s: f64,
    event: &str,
    event_duration_s: f64,
) -> Result<Option<f64>> {
    let Some(start) = event_offset(writer, duration_s, event)? else {
        return Ok(None);
    };
    let started = (parse_time(event)? - parse_time(writer)?).num_milliseconds() as f64 / 1000.0;
    let end = started + event_duration_s;
    let slack = if writer.contains('.') && event.contains('.') {
        0.0
    } else {
        1.0
    };
    if end > duration_s + slack {
        return Ok(None);
    }
    Ok(Some(end.clamp(start, duration_s)))
}

/// A writer's run, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Its live lines.
    pub samples: Vec<Sample>,
    /// How long it ran, seconds.
    pub duration_s: f64,
    /// The chapter's events during the run, in time order.
    pub events: Vec<Event>,
    /// The summary figures.
    pub summary: Summary,
}

impl Timeline {
    /// The timeline of a writer that printed `output` and ran `duration_s`; `events` are
    /// already placed (see [`event_offset`]). Fails when the output has no live line.
    pub fn new(output: &str, duration_s: f64, mut events: Vec<Event>) -> Result<Timeline> {
        let samples = samples(output);
        if samples.is_empty() {
            bail!(
                "the writer printed no live line (`load: [   1.0s] … tx/s ok=… errors=…`); \
                 is it run with --quiet, or did it end within its first second?"
            );
        }
        events.sort_by(|a, b| a.at.total_cmp(&b.at));
        Ok(Timeline {
            summary: Summary::of(output, &samples),
            samples,
            duration_s,
            events,
        })
    }

    /// Draws it as an SVG titled `title`: acknowledged tx/s (left axis) and errors per
    /// second (right axis) against seconds since the writer started, the longest stall
    /// shaded, each event a labelled vertical line.
    pub fn svg(&self, title: &str) -> Result<String> {
        let plot = |e: &dyn std::fmt::Debug| anyhow!("drawing the timeline: {e:?}");
        let last = self.samples.last().map_or(0.0, |s| s.elapsed_s);
        let x_max = self.duration_s.max(last).max(1.0);
        let tx_max = self
            .samples
            .iter()
            .map(|s| s.rate)
            .fold(0.0, f64::max)
            .max(1.0);
        // Headroom above the highest point for the events' labels.
        let y_max = tx_max * 1.35;
        let errors = errors_per_second(&self.samples);
        let err_max = errors.iter().map(|e| e.1).fold(0.0, f64::max).max(1.0) * 1.35;
        let blue = RGBColor(0x1f, 0x77, 0xb4);
        let red = RGBColor(0xd6, 0x27, 0x28);
        let mut out = String::new();
        {
            // The legend in a strip under the plot: inside it, it hid the end of the run.
            let root = SVGBackend::with_string(&mut out, (720, 364)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| plot(&e))?;
            let (upper, strip) = root.split_vertically(336);
            let mut chart = ChartBuilder::on(&upper)
                .caption(title, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .right_y_label_area_size(48)
                .build_cartesian_2d(0.0..x_max, 0.0..y_max)
                .map_err(|e| plot(&e))?
                .set_secondary_coord(0.0..x_max, 0.0..err_max);
            chart
                .configure_mesh()
                .x_desc("seconds since the writer started")
                .y_desc("acknowledged tx/s")
                .x_label_formatter(&|x| crate::chart::compact(*x))
                .y_label_formatter(&|y| crate::chart::compact(*y))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.07))
                .draw()
                .map_err(|e| plot(&e))?;
            chart
                .configure_secondary_axes()
                .y_desc("errors/s")
                .y_label_formatter(&|y| crate::chart::compact(*y))
                .draw()
                .map_err(|e| plot(&e))?;
            if let Some(stall) = self.summary.stall {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(stall.from, 0.0), (stall.to, tx_max)],
                        red.mix(0.08).filled(),
                    )))
                    .map_err(|e| plot(&e))?;
            }
            chart
                .draw_series(LineSeries::new(
                    self.samples.iter().map(|s| (s.elapsed_s, s.rate)),
                    blue.stroke_width(2),
                ))
                .map_err(|e| plot(&e))?;
            chart
                .draw_secondary_series(LineSeries::new(errors.iter().copied(), red.stroke_width(1)))
                .map_err(|e| plot(&e))?;
            draw_events(&mut chart, &self.events, x_max, y_max)?;
            // The legend, left to right under the x axis's title.
            let text = TextStyle::from(("sans-serif", 12).into_font())
                .color(&RGBColor(0x33, 0x33, 0x33))
                .pos(Pos::new(HPos::Left, VPos::Center));
            let mut x = 72;
            let y = 12;
            let mut key = |label: &str, swatch: &dyn Fn(i32) -> Result<()>| -> Result<()> {
                swatch(x)?;
                strip
                    .draw(&Text::new(label.to_string(), (x + 22, y), text.clone()))
                    .map_err(|e| plot(&e))?;
                x += 22 + label_width(label) + 24;
                Ok(())
            };
            if self.summary.stall.is_some() {
                key("no acknowledged write", &|x| {
                    strip
                        .draw(&Rectangle::new(
                            [(x, y - 5), (x + 16, y + 5)],
                            red.mix(0.15).filled(),
                        ))
                        .map_err(|e| plot(&e))
                })?;
            }
            key("acknowledged tx/s", &|x| {
                strip
                    .draw(&PathElement::new(
                        vec![(x, y), (x + 16, y)],
                        blue.stroke_width(2),
                    ))
                    .map_err(|e| plot(&e))
            })?;
            key("errors/s (right axis)", &|x| {
                strip
                    .draw(&PathElement::new(
                        vec![(x, y), (x + 16, y)],
                        red.stroke_width(1),
                    ))
                    .map_err(|e| plot(&e))
            })?;
            root.present().map_err(|e| plot(&e))?;
        }
        Ok(out)
    }
}

/// Rows of event labels at the top of the plot (the y range's headroom holds four).
const LABEL_ROWS: usize = 4;
/// Pixels between a label and its line, and between two labels in a row.
const LABEL_GAP: i32 = 4;

/// The width of a label in the 12 px sans-serif the chart uses: an estimate (the SVG is
/// drawn without a font at hand), generous enough that estimated labels do not touch.
fn label_width(label: &str) -> i32 {
    (label.chars().count() as f64 * 6.8).ceil() as i32
}

/// Where each event's label goes: its row (0 at the top), and whether it sits left of
/// its line. Each event's line rises from the axis to its own label's row, so it
/// crosses that row and the ones below it only. A label sits right of its line, or left
/// of it near the plot's right edge, in a row where it overlaps no other label, no line
/// reaching that row crosses it, and its own line crosses no label placed lower — so a
/// label is never read as another line's. A small search over rows and sides finds such
/// a layout; where none exists (more than [`LABEL_ROWS`] events within a label's width)
/// rows are taken in turn.
fn place_labels(lines: &[i32], widths: &[i32], plot: (i32, i32)) -> Vec<(usize, bool)> {
    let options: Vec<Vec<Spot>> = lines
        .iter()
        .zip(widths)
        .map(|(&at, &width)| {
            let right = (at + LABEL_GAP, at + LABEL_GAP + width);
            let left = (at - LABEL_GAP - width, at - LABEL_GAP);
            let sides = if right.1 <= plot.1 {
                [(right, false), (left, true)]
            } else {
                [(left, true), (right, false)]
            };
            (0..LABEL_ROWS)
                .flat_map(|row| sides.map(|(span, is_left)| Spot { row, span, is_left }))
                .filter(|spot| spot.span.0 >= plot.0 && spot.span.1 <= plot.1)
                .collect()
        })
        .collect();
    // Whether label i at `mine` and label j at `theirs` can both stand.
    let compatible = |i: usize, mine: Spot, j: usize, theirs: Spot| {
        let (row, span) = (mine.row, mine.span);
        let (r, (a, b)) = (theirs.row, theirs.span);
        let apart = r != row || span.1 + LABEL_GAP <= a || b + LABEL_GAP <= span.0;
        let js_line_misses_i = r > row || lines[j] < span.0 || lines[j] > span.1;
        let is_line_misses_j = row > r || lines[i] < a || lines[i] > b;
        apart && js_line_misses_i && is_line_misses_j
    };
    let mut chosen: Vec<Spot> = Vec::with_capacity(lines.len());
    let mut next = vec![0usize; lines.len()];
    let mut budget = 20_000;
    let mut i = 0;
    while i < lines.len() && budget > 0 {
        budget -= 1;
        let found = options[i][next[i]..].iter().position(|&option| {
            chosen
                .iter()
                .enumerate()
                .all(|(j, &other)| compatible(i, option, j, other))
        });
        match found {
            Some(k) => {
                chosen.push(options[i][next[i] + k]);
                next[i] += k + 1;
                i += 1;
            }
            None if i == 0 => break,
            None => {
                next[i] = 0;
                chosen.pop();
                i -= 1;
            }
        }
    }
    if chosen.len() == lines.len() {
        return chosen.iter().map(|spot| (spot.row, spot.is_left)).collect();
    }
    // No clean layout: rows in turn, each label on its preferred side.
    lines
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(i, (&at, &width))| (i % LABEL_ROWS, at + LABEL_GAP + width > plot.1))
        .collect()
}

/// One place for a label: its row, its horizontal span in pixels, and whether it sits
/// left of its line.
#[derive(Debug, Clone, Copy)]
struct Spot {
    row: usize,
    span: (i32, i32),
    is_left: bool,
}

/// The y, in pixels below the plot's top, of a label row's top.
fn row_top(row: usize) -> i32 {
    3 + row as i32 * 14
}

/// Each event as a dashed vertical line with its label at the top, placed by
/// [`place_labels`].
fn draw_events<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    events: &[Event],
    x_max: f64,
    y_max: f64,
) -> Result<()> {
    let plot = |e: &dyn std::fmt::Debug| anyhow!("drawing the timeline's events: {e:?}");
    let grey = RGBColor(0x44, 0x44, 0x44);
    let lines: Vec<i32> = events
        .iter()
        .map(|e| chart.backend_coord(&(e.at, y_max)).0)
        .collect();
    let widths: Vec<i32> = events.iter().map(|e| label_width(&e.label)).collect();
    let area = (
        chart.backend_coord(&(0.0, y_max)).0,
        chart.backend_coord(&(x_max, y_max)).0,
    );
    let places = place_labels(&lines, &widths, area);
    let (top, bottom) = (
        chart.backend_coord(&(0.0, y_max)).1,
        chart.backend_coord(&(0.0, 0.0)).1,
    );
    let per_pixel = y_max / f64::from((bottom - top).max(1));
    for (event, (row, is_left)) in events.iter().zip(places) {
        // The line rises to its label's row, and no higher.
        let reach = y_max - f64::from(row_top(row)) * per_pixel;
        chart
            .draw_series(DashedLineSeries::new(
                [(event.at, 0.0), (event.at, reach)],
                6,
                3,
                grey.stroke_width(1),
            ))
            .map_err(|e| plot(&e))?;
        let (anchor, dx) = if is_left {
            (HPos::Right, -LABEL_GAP)
        } else {
            (HPos::Left, LABEL_GAP)
        };
        let style = TextStyle::from(("sans-serif", 12).into_font())
            .color(&grey)
            .pos(Pos::new(anchor, VPos::Top));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((event.at, y_max))
                    + Text::new(event.label.clone(), (dx, row_top(row)), style),
            ))
            .map_err(|e| plot(&e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that stalls from 3 s to 7 s, fails 4 then 2 transactions, and is stopped
    /// after 9.4 s; an error description sits among the live lines.
    const STALL: &str = "\
load: [   1.0s]   2000.0 tx/s  ok=2000 errors=0 p50=1.00ms p99=3.00ms in-flight=4
load: [   2.0s]   2100.0 tx/s  ok=4100 errors=0 p50=1.00ms p99=3.00ms in-flight=4
load: [   3.0s]   1900.0 tx/s  ok=6000 errors=4 p50=1.10ms p99=5.00ms in-flight=0
load: [   3.2s] transaction connection_closed: FATAL 08P01: server conn crashed?
load: [   4.0s]      0.0 tx/s  ok=6000 errors=6 p50=0.00ms p99=0.00ms in-flight=0
load: [   5.0s]      0.0 tx/s  ok=6000 errors=6 p50=0.00ms p99=0.00ms in-flight=0
load: [   6.0s]      0.0 tx/s  ok=6000 errors=6 p50=0.00ms p99=0.00ms in-flight=0
load: [   6.5s] connect connect_timeout: no connection within 5s
load: [   7.0s]      0.0 tx/s  ok=6000 errors=6 p50=0.00ms p99=0.00ms in-flight=0
load: [   8.0s]   1500.0 tx/s  ok=7500 errors=6 p50=0.90ms p99=7.00ms in-flight=4
load: [   9.0s]   2000.0 tx/s  ok=9500 errors=6 p50=0.90ms p99=4.00ms in-flight=4
     acknowledged..................: 9900 1053.2/s
     errors........................: 6  (connection_closed=6)

run_id: 1
attempted: 9906
acknowledged: 9900
errors: 6
errors_connection_closed: 6
p50_ms: 1.010
p90_ms: 2.000
p99_ms: 4.500
started_at: 2026-11-27T14:10:15.537Z
";

    #[test]
    fn live_lines_parse_and_error_descriptions_count_nothing() {
        let s = samples(STALL);
        assert_eq!(s.len(), 9);
        assert_eq!(
            (s[2].elapsed_s, s[2].rate, s[2].acknowledged, s[2].errors),
            (3.0, 1900.0, 6000, 4)
        );
        assert_eq!(
            parse_live_line(
                "load: [   3.0s]   2773.1 tx/s  ok=7862 errors=4 p50=1.16ms p99=5.76ms in-flight=0"
            )
            .map(|s| (s.elapsed_s, s.rate, s.acknowledged, s.errors)),
            Some((3.0, 2773.1, 7862, 4))
        );
        for other in [
            "load: [   3.0s] transaction connection_closed: FATAL 08P01: server conn crashed?",
            "load: [   9.3s] connect connect_timeout: no connection within 5s",
            "[   3.0s]   2773.1 tx/s  ok=7862 errors=4 p50=1.16ms p99=5.76ms in-flight=0",
            "     acknowledged..................: 9900 1053.2/s",
            "",
        ] {
            assert_eq!(parse_live_line(other), None, "{other:?}");
        }
    }

    #[test]
    fn errors_per_second_are_the_growth_of_the_count() {
        let e = errors_per_second(&samples(STALL));
        let rates: Vec<f64> = e.iter().map(|p| p.1).collect();
        assert_eq!(rates, [0.0, 0.0, 4.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(e[3].0, 4.0);
    }

    #[test]
    fn the_stall_in_the_middle_is_the_longest() {
        let stall = longest_stall(&samples(STALL)).unwrap();
        assert_eq!(stall, Stall { from: 3.0, to: 7.0 });
        assert_eq!(stall.seconds(), 4.0);
        // A stall from the very start counts from 0; a writer that never stalls has none.
        let line = |t: f64, rate: f64, acknowledged: u64, errors: u64| {
            let l = Sample {
                elapsed_s: t,
                rate,
                acknowledged,
                errors,
                p50_ms: 1.0,
                p99_ms: 1.0,
                in_flight: 0,
            };
            format!("load: {l}\n")
        };
        let slow_start = [
            line(1.0, 0.0, 0, 0),
            line(2.0, 0.0, 0, 1),
            line(3.0, 9.0, 9, 1),
            line(4.0, 0.0, 9, 1),
        ]
        .concat();
        assert_eq!(
            longest_stall(&samples(&slow_start)),
            Some(Stall { from: 0.0, to: 2.0 })
        );
        let steady = [line(1.0, 5.0, 5, 0), line(2.0, 5.0, 10, 0)].concat();
        assert_eq!(longest_stall(&samples(&steady)), None);
    }

    #[test]
    fn the_summary_reads_the_key_value_lines_only() {
        let summary = Summary::of(STALL, &samples(STALL));
        assert_eq!(summary.acknowledged.as_deref(), Some("9900"));
        assert_eq!(summary.errors.as_deref(), Some("6"));
        assert_eq!(summary.p50_ms.as_deref(), Some("1.010"));
        assert_eq!(summary.p99_ms.as_deref(), Some("4.500"));
        assert_eq!(
            summary.parts(),
            vec![
                ("acknowledged", "9900".to_string()),
                ("errors", "6".to_string()),
                ("p50", "1.010 ms".to_string()),
                ("p99", "4.500 ms".to_string()),
                (
                    "longest without an acknowledged write",
                    "4 s (from 3 s to 7 s)".to_string()
                ),
            ]
        );
        // Killed before its summary: what it did not print is a dash.
        let out = "load: [   1.0s] 5.0 tx/s  ok=5 errors=0\n";
        let cut = Summary::of(out, &samples(out));
        assert_eq!(cut.parts()[0], ("acknowledged", "—".to_string()));
        assert_eq!(cut.parts()[4].1, "none (every second had one)");
    }

    #[test]
    fn events_are_placed_from_start_times_and_those_outside_the_run_are_skipped() {
        let writer = "2026-11-27T14:10:15.537Z";
        let at = |event: &str| event_offset(writer, 9.4, event).unwrap();
        assert_eq!(at("2026-11-27T14:10:18.737Z"), Some(3.2));
        assert_eq!(at("2026-11-27T14:10:15.000Z"), None, "before the run");
        assert_eq!(at("2026-11-27T14:10:25.000Z"), None, "after the run");
        // Older records have whole seconds: exact to a second, placed at the run's edge.
        assert_eq!(
            event_offset("2026-11-27T14:10:15Z", 9.4, "2026-11-27T14:10:20Z").unwrap(),
            Some(5.0)
        );
        assert_eq!(at("2026-11-27T14:10:15Z"), Some(0.0));
        assert_eq!(at("2026-11-27T14:10:14Z"), None);
        assert_eq!(at("2026-11-27T14:10:25Z"), Some(9.4));
        assert!(event_offset(writer, 9.4, "yesterday").is_err());
    }

    /// Whether any placed label is crossed by a line that reaches its row, overlaps
    /// another label of its row, or leaves the plot.
    fn clashes(lines: &[i32], labels: &[&str], plot: (i32, i32)) -> Vec<String> {
        let widths: Vec<i32> = labels.iter().map(|l| label_width(l)).collect();
        let places = place_labels(lines, &widths, plot);
        let span = |i: usize| {
            let (_, is_left) = places[i];
            if is_left {
                (lines[i] - LABEL_GAP - widths[i], lines[i] - LABEL_GAP)
            } else {
                (lines[i] + LABEL_GAP, lines[i] + LABEL_GAP + widths[i])
            }
        };
        let mut clashes = Vec::new();
        for i in 0..lines.len() {
            let (a, b) = span(i);
            if a < plot.0 || b > plot.1 {
                clashes.push(format!("{} leaves the plot", labels[i]));
            }
            for j in 0..lines.len() {
                if j == i {
                    continue;
                }
                // Line j rises to row places[j].0: it crosses rows at or below it.
                if places[j].0 <= places[i].0 && (a..=b).contains(&lines[j]) {
                    clashes.push(format!("{}'s line crosses {}", labels[j], labels[i]));
                }
                let (c, d) = span(j);
                if places[j].0 == places[i].0 && j > i && b >= c && d >= a {
                    clashes.push(format!("{} overlaps {}", labels[i], labels[j]));
                }
            }
        }
        clashes
    }

    #[test]
    fn a_label_never_crosses_another_events_line() {
        // Chapter 4's four events (kill, detected, promoted, RELOAD) where its chart drew
        // them; the old layout put RELOAD's label over promoted's line.
        let ch4 = [228, 315, 382, 428];
        let labels = ["kill", "detected", "promoted", "RELOAD"];
        assert_eq!(clashes(&ch4, &labels, (68, 660)), Vec::<String>::new());
        // Chapter 2's two events 11 px apart near the right edge.
        let ch2 = [545, 556];
        let labels2 = ["synchronous_standby_names = ''", "standby started"];
        assert_eq!(clashes(&ch2, &labels2, (68, 660)), Vec::<String>::new());
        // Events at the very edges.
        let edges = [68, 660];
        assert_eq!(
            clashes(&edges, &["stopped", "started"], (68, 660)),
            Vec::<String>::new()
        );
        // The check itself fails on a layout with a crossing: every label in row 0,
        // right of its line (the old layout for close lines).
        let widths = [label_width("promoted"), label_width("RELOAD")];
        let crossing = (382 + LABEL_GAP..=382 + LABEL_GAP + widths[0]).contains(&428);
        assert!(
            crossing,
            "the fixture no longer has lines close enough to clash"
        );
    }

    #[test]
    fn an_event_is_marked_where_its_step_ended() {
        let writer = "2026-11-27T14:10:15.000Z";
        // `sleep 2; docker compose stop …`, started 0.1 s in, ran 3.2 s: marked at 3.3.
        let stop = "2026-11-27T14:10:15.100Z";
        let at = event_end_offset(writer, 6.0, stop, 3.2).unwrap().unwrap();
        assert!((at - 3.3).abs() < 1e-9, "{at}");
        // Ended after the writer did: not on its timeline.
        assert_eq!(event_end_offset(writer, 6.0, stop, 7.0).unwrap(), None);
        // Started before the writer: not on it either.
        assert_eq!(
            event_end_offset(writer, 6.0, "2026-11-27T14:10:10.000Z", 1.0).unwrap(),
            None
        );
    }

    #[test]
    fn draws_the_writer_with_its_events() {
        let events = vec![
            Event {
                label: "restart the primary".into(),
                at: 6.5,
            },
            Event {
                label: "kill <the> primary".into(),
                at: 3.2,
            },
        ];
        let t = Timeline::new(STALL, 9.4, events).unwrap();
        assert_eq!(t.events[0].label, "kill <the> primary", "in time order");
        let svg = t.svg("writer through a crash").unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("writer through a crash"));
        assert!(svg.contains("kill &lt;the&gt; primary"), "labels escaped");
        assert!(svg.contains("restart the primary"));
        assert!(svg.contains("acknowledged tx/s"));
        assert!(svg.contains("errors/s"));
        assert!(!svg.contains("\n\n"));
    }

    #[test]
    fn output_without_live_lines_is_an_error_not_a_panic() {
        let err = Timeline::new("run_id: 1\nacknowledged: 5\n", 3.0, vec![]).unwrap_err();
        assert!(format!("{err}").contains("no live line"), "{err}");
        // A writer with no acknowledged write at all still draws.
        let t = Timeline::new(
            "load: [   1.0s]      0.0 tx/s  ok=0 errors=3 p50=0.00ms p99=0.00ms in-flight=0\n",
            1.2,
            vec![],
        )
        .unwrap();
        assert!(t.svg("nothing").unwrap().starts_with("<svg"));
    }
}
