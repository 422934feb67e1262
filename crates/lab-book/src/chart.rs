//! Charts of sampled series (replay lag over time, lag falling during catch-up).
//!
//! A step marked `chart="…"` prints whitespace-separated columns under a header line:
//! the first column is x, each other column a series. The record keeps that text; the
//! chart is drawn from it (plotters, SVG) when the book is rendered, so the figure is
//! exactly the data the run printed.

use anyhow::Result;

use lab_core::output::{Bars, Series};
use plotters::prelude::*;

/// Draws the series as an SVG line chart titled `title`. Series in two units (a lag in
/// ms and a backlog in bytes) get an axis each: the first series' unit on the left, the
/// other on the right, so neither is flattened against the other's scale.
pub fn svg(title: &str, series: &Series) -> Result<String> {
    let plot = |e: &dyn std::fmt::Debug| anyhow::anyhow!("drawing the chart: {e:?}");
    let left_unit = series.lines.first().map_or("", |(name, _)| unit(name));
    let on_right = |name: &str| unit(name) != left_unit;
    let right_units: Vec<&str> = series
        .lines
        .iter()
        .map(|(name, _)| unit(name))
        .filter(|u| *u != left_unit)
        .collect();
    // Two units get two axes; three or more share one (no chart here has them).
    let two_axes = !right_units.is_empty() && right_units.iter().all(|u| *u == right_units[0]);
    let (x_min, x_max, left_max, left_min) = extent(series, |name| !two_axes || !on_right(name));
    let (_, _, right_max, right_min) = extent(series, |name| two_axes && on_right(name));
    // The legend sits in the upper right, about 16 px a series of a 250 px plot: with
    // many series, the data are kept below it.
    let headroom = if series.lines.len() <= 3 {
        1.05
    } else {
        let legend = (16.0 * series.lines.len() as f64 + 12.0) / 250.0;
        1.0 / (0.95 - legend)
    };
    // An x of whole numbers over a short range (run 1, 2, 3 …) gets one tick each.
    let whole_x = series
        .lines
        .iter()
        .flat_map(|(_, p)| p.iter())
        .all(|(x, _)| x.fract() == 0.0);
    let x_ticks = if whole_x && x_max - x_min <= 20.0 {
        (x_max - x_min) as usize + 1
    } else {
        10
    };
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .right_y_label_area_size(if two_axes { 56 } else { 0 })
            .build_cartesian_2d(x_min..x_max, left_min..left_max * headroom)
            .map_err(|e| plot(&e))?
            .set_secondary_coord(x_min..x_max, right_min..right_max * headroom);
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(x_ticks)
            .x_desc(series.x_label.as_str())
            .x_label_formatter(&|x| compact(*x))
            .y_label_formatter(&|y| compact(*y))
            .light_line_style(WHITE.mix(0.0));
        if two_axes {
            mesh.y_desc(left_unit);
        }
        mesh.draw().map_err(|e| plot(&e))?;
        if two_axes {
            chart
                .configure_secondary_axes()
                .y_desc(format!("{} (right axis)", right_units[0]))
                .y_label_formatter(&|y| compact(*y))
                .draw()
                .map_err(|e| plot(&e))?;
        }
        // Tableau's ten, blue, red, green and purple first: ten series, ten colours.
        let colours = [
            RGBColor(0x1f, 0x77, 0xb4),
            RGBColor(0xd6, 0x27, 0x28),
            RGBColor(0x2c, 0xa0, 0x2c),
            RGBColor(0x94, 0x67, 0xbd),
            RGBColor(0xff, 0x7f, 0x0e),
            RGBColor(0x8c, 0x56, 0x4b),
            RGBColor(0xe3, 0x77, 0xc2),
            RGBColor(0x7f, 0x7f, 0x7f),
            RGBColor(0xbc, 0xbd, 0x22),
            RGBColor(0x17, 0xbe, 0xcf),
        ];
        for (i, (name, points)) in series.lines.iter().enumerate() {
            let colour = colours[i % colours.len()];
            // Few points: each one marked, so a short or overlapping series still shows.
            let dots = points.iter().map(|&p| Circle::new(p, 3, colour.filled()));
            let line = LineSeries::new(points.iter().copied(), colour.stroke_width(2));
            let legend = move |(x, y): (i32, i32)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            };
            if two_axes && on_right(name) {
                if points.len() <= 30 {
                    chart.draw_secondary_series(dots).map_err(|e| plot(&e))?;
                }
                chart
                    .draw_secondary_series(line)
                    .map_err(|e| plot(&e))?
                    .label(format!("{name} (right axis)"))
                    .legend(legend);
            } else {
                if points.len() <= 30 {
                    chart.draw_series(dots).map_err(|e| plot(&e))?;
                }
                chart
                    .draw_series(line)
                    .map_err(|e| plot(&e))?
                    .label(name.as_str())
                    .legend(legend);
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| plot(&e))?;
        root.present().map_err(|e| plot(&e))?;
    }
    Ok(out)
}

/// The unit a series' name ends in or carries (`write_lag_ms` → `ms`, `bytes_behind` →
/// `bytes`, `rto_s` → `s`); a name without one is its own unit.
fn unit(name: &str) -> &str {
    const UNITS: [&str; 9] = ["ms", "s", "bytes", "kb", "mb", "mib", "gib", "pct", "tps"];
    name.rsplit(['_', '-'])
        .find(|part| UNITS.contains(&part.to_ascii_lowercase().as_str()))
        .unwrap_or(name)
}

/// The x range and the y range (from 0, or below when negative) of the series `keep`
/// selects, each at least 1 wide.
fn extent(series: &Series, keep: impl Fn(&str) -> bool) -> (f64, f64, f64, f64) {
    let (mut x_min, mut x_max) = (f64::MAX, f64::MIN);
    let (mut y_min, mut y_max) = (0.0_f64, f64::MIN);
    for (name, points) in &series.lines {
        for (x, y) in points {
            x_min = x_min.min(*x);
            x_max = x_max.max(*x);
            if keep(name) {
                y_min = y_min.min(*y);
                y_max = y_max.max(*y);
            }
        }
    }
    if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    if y_max <= y_min {
        y_max = y_min + 1.0;
    }
    (x_min, x_max, y_max, y_min)
}

/// Draws the bars as an SVG bar chart titled `title`: one horizontal bar per row, its
/// label and value written beside it, in the output's order from the top.
pub fn bars_svg(title: &str, bars: &Bars) -> Result<String> {
    let plot = |e: &dyn std::fmt::Debug| anyhow::anyhow!("drawing the bar chart: {e:?}");
    let n = bars.bars.len();
    let max = bars.bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1.0);
    let height = 80 + 36 * n as u32;
    let blue = RGBColor(0x1f, 0x77, 0xb4);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (720, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot(&e))?;
        // Room on the right of the longest bar for its label.
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(8)
            .build_cartesian_2d(0.0..max * 1.6, 0.0..n as f64)
            .map_err(|e| plot(&e))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc(bars.value_label.as_str())
            .x_label_formatter(&|x| compact(*x))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.07))
            .draw()
            .map_err(|e| plot(&e))?;
        for (i, (label, value)) in bars.bars.iter().enumerate() {
            let top = (n - i) as f64 - 0.15;
            let bottom = top - 0.7;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, bottom), (*value, top)],
                    blue.mix(0.8).filled(),
                )))
                .map_err(|e| plot(&e))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{label}  {}", compact(*value)),
                    (*value + max * 0.02, top - 0.2),
                    ("sans-serif", 13).into_font(),
                )))
                .map_err(|e| plot(&e))?;
        }
        root.present().map_err(|e| plot(&e))?;
    }
    Ok(out)
}

/// A short axis label: `1.5M`, `250k`, `4500`, `0.25`.
pub(crate) fn compact(value: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    let abs = value.abs();
    if abs >= 1e9 {
        format!("{}G", trim(format!("{:.1}", value / 1e9)))
    } else if abs >= 1e6 {
        format!("{}M", trim(format!("{:.1}", value / 1e6)))
    } else if abs >= 1e4 {
        format!("{}k", trim(format!("{:.1}", value / 1e3)))
    } else {
        trim(format!("{value:.2}"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_draw_every_label_and_value() {
        let bars = lab_core::output::parse_bars(
            "strategy bytes_per_tx\nphysical 820\nnote: not a row of two\nstatement 1450.5\n",
        )
        .unwrap();
        assert_eq!(bars.bars.len(), 2);
        let svg = super::bars_svg("bytes per transaction", &bars).unwrap();
        assert!(svg.contains("physical  820"), "{svg}");
        assert!(svg.contains("statement  1450.5"), "{svg}");
        assert!(lab_core::output::parse_bars("a b c\nx 1 2\n").is_err());
        assert!(lab_core::output::parse_bars("a b\nno number\n").is_err());
    }

    #[test]
    fn axis_labels_are_compact() {
        assert_eq!(super::compact(140_000_000.0), "140M");
        assert_eq!(super::compact(1_500_000.0), "1.5M");
        assert_eq!(super::compact(25_000.0), "25k");
        assert_eq!(super::compact(4500.0), "4500");
        assert_eq!(super::compact(0.25), "0.25");
        assert_eq!(super::compact(0.0), "0");
    }

    use super::*;
    use lab_core::output::{Series, parse_series};

    #[test]
    fn parses_columns_and_skips_notes() {
        let s = parse_series("t_s sync_ms async_ms\n0.0 1 120\nnote: paused\n0.5 2 -\n1.0 1 180\n")
            .unwrap();
        assert_eq!(s.x_label, "t_s");
        assert_eq!(
            s.lines[0],
            (
                "sync_ms".to_string(),
                vec![(0.0, 1.0), (0.5, 2.0), (1.0, 1.0)]
            )
        );
        assert_eq!(s.lines[1].1, vec![(0.0, 120.0), (1.0, 180.0)]);
    }

    #[test]
    fn rejects_output_without_data() {
        assert!(parse_series("t_s lag\n").is_err());
        assert!(parse_series("only\n1\n").is_err());
    }

    #[test]
    fn units_are_read_from_the_names() {
        assert_eq!(unit("write_lag_ms"), "ms");
        assert_eq!(unit("bytes_behind"), "bytes");
        assert_eq!(unit("sync-kill_rto_s"), "s");
        assert_eq!(unit("lag"), "lag");
    }

    #[test]
    fn a_second_unit_gets_the_right_axis() {
        let s = parse_series("t_s lag_ms bytes_behind\n0 1 0\n1 2 3000000\n").unwrap();
        let svg = svg("lag", &s).unwrap();
        assert!(svg.contains("bytes (right axis)"), "{svg}");
        assert!(svg.contains("bytes_behind (right axis)"), "{svg}");
        // The backlog's millions are on their own axis; the left one still reads the
        // lags (a tick at 2 ms), which a shared axis in millions would not show.
        let labels: Vec<&str> = svg
            .split("</text>")
            .filter_map(|t| t.rsplit('>').next())
            .map(str::trim)
            .collect();
        assert!(labels.iter().any(|l| l.ends_with('M')), "{labels:?}");
        assert!(labels.contains(&"2"), "{labels:?}");
        let one = parse_series("t_s write_lag_ms replay_lag_ms\n0 1 0\n1 2 3\n").unwrap();
        assert!(!svg_of(&one).contains("right axis"));
    }

    fn svg_of(s: &Series) -> String {
        svg("t", s).unwrap()
    }

    #[test]
    fn draws_an_svg_with_the_series_names() {
        let s = parse_series("t_s lag_ms\n0 0\n1 250\n2 40\n").unwrap();
        let svg = svg("replay lag", &s).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("lag_ms"));
        assert!(svg.contains("replay lag"));
    }
}
