//! What a step printed, read as data: psql's results as a [`Table`], `name: value`
//! lines as captured values, and columns under a header as a chart's [`Series`].
//!
//! The engine reads output to judge a step (a check's first column, its captures, a
//! chart's data) and the book draws from the same parsed forms, so both live here, below
//! either of them: the engine never reaches into the view to understand what it ran.

use anyhow::{Context, Result, bail};
use std::fmt::Write as _;

/// A query result: column names and rows of text, as psql prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each a cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses psql's `--csv` output.
    pub fn from_csv(text: &str) -> Result<Table> {
        let (header, rows) = parse_csv(text)?;
        Ok(Table { header, rows })
    }

    /// The value of `column` in the first row.
    pub fn first(&self, column: &str) -> Option<&str> {
        let i = self.header.iter().position(|h| h == column)?;
        self.rows.first()?.get(i).map(String::as_str)
    }

    /// Whether the first column of the first row is true (`t`/`true`): a check holds.
    pub fn holds(&self) -> bool {
        self.rows
            .first()
            .and_then(|r| r.first())
            .is_some_and(|v| v == "t" || v == "true")
    }

    /// The other columns of the first row, `(name, value)`: the figure behind a check.
    pub fn figure(&self) -> Vec<(String, String)> {
        self.header
            .iter()
            .zip(self.rows.first().into_iter().flatten())
            .skip(1)
            .map(|(h, v)| (h.clone(), v.clone()))
            .collect()
    }

    /// The result as psql's aligned output prints it.
    pub fn aligned(&self) -> String {
        psql_table(&self.header, &self.rows)
    }
}

/// Parses psql's `--csv` output: a header and rows.
fn parse_csv(text: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
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
fn psql_table(header: &[String], rows: &[Vec<String>]) -> String {
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

/// A parsed series table: x label, series names, and points per series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The x column's name.
    pub x_label: String,
    /// One (name, points) per series; empty cells (`-`, `\N`, empty) are gaps.
    pub lines: Vec<(String, Vec<(f64, f64)>)>,
}

/// Parses the step's output: a header line, then rows of numbers.
/// Lines that do not have the header's number of columns are skipped (notes, blanks).
pub fn parse_series(output: &str) -> Result<Series> {
    let mut lines = output.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .context("a chart needs a header line")?
        .split_whitespace()
        .collect();
    if header.len() < 2 {
        bail!("a chart needs an x column and at least one series, found {header:?}");
    }
    let mut series: Vec<(String, Vec<(f64, f64)>)> = header[1..]
        .iter()
        .map(|h| (h.to_string(), Vec::new()))
        .collect();
    for line in lines {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() != header.len() {
            continue;
        }
        let Ok(x) = cells[0].parse::<f64>() else {
            continue;
        };
        for (i, cell) in cells[1..].iter().enumerate() {
            if let Ok(y) = cell.parse::<f64>() {
                series[i].1.push((x, y));
            }
        }
    }
    if series.iter().all(|(_, points)| points.is_empty()) {
        bail!("the chart's output has no data rows");
    }
    Ok(Series {
        x_label: header[0].to_string(),
        lines: series,
    })
}

/// A parsed bar table: the value column's name and one (label, value) per bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bars {
    /// The value column's name (the axis).
    pub value_label: String,
    /// The bars, in the output's order.
    pub bars: Vec<(String, f64)>,
}

/// Parses a bar chart's output: a header line (`label value`), then rows of a label
/// (one word) and a number. Other lines (notes, blanks, `name: value` captures, rows
/// with more or fewer columns) are skipped.
pub fn parse_bars(output: &str) -> Result<Bars> {
    let mut lines = output.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .context("a bar chart needs a header line")?
        .split_whitespace()
        .collect();
    if header.len() != 2 {
        bail!("a bar chart's header names a label and a value column, found {header:?}");
    }
    let bars: Vec<(String, f64)> = lines
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                // `name: value` lines are captures, not bars.
                [label, value] if !label.ends_with(':') => {
                    Some((label.to_string(), value.parse::<f64>().ok()?))
                }
                _ => None,
            },
        )
        .collect();
    if bars.is_empty() {
        bail!("the bar chart's output has no data rows");
    }
    Ok(Bars {
        value_label: header[1].to_string(),
        bars,
    })
}

/// Removes terminal escape sequences (colours, `ESC[2K` line erases that some CLIs
/// print even to a pipe): the record keeps the text a reader sees.
pub fn strip_ansi(output: &str) -> String {
    // The crate drops carriage returns with the other control characters; a `\r` is
    // kept (a redrawn progress line is the reader's business).
    output
        .split('\r')
        .map(strip_ansi_escapes::strip_str)
        .collect::<Vec<_>>()
        .join("\r")
}

/// How much of a step's output a record keeps (head and tail beyond it).
const MAX_OUTPUT: usize = 24_000;

/// A step's output as its record keeps it: escapes removed, and past [`MAX_OUTPUT`]
/// its head and tail with a note of how many lines were left out between.
pub fn for_record(output: &str) -> String {
    clip(&strip_ansi(output))
}

fn clip(output: &str) -> String {
    if output.len() <= MAX_OUTPUT {
        return output.to_string();
    }
    let mut head_end = MAX_OUTPUT / 2;
    while !output.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut tail_start = output.len() - MAX_OUTPUT / 2;
    while !output.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let skipped = output[head_end..tail_start].lines().count();
    format!(
        "{}\n[… {skipped} lines left out …]\n{}",
        &output[..head_end],
        &output[tail_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_removed() {
        assert_eq!(
            strip_ansi("\u{1b}[2K2026 LOG: x\n\u{1b}[31mred\u{1b}[0m\n"),
            "2026 LOG: x\nred\n"
        );
    }

    #[test]
    fn clip_keeps_head_and_tail() {
        let long: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let clipped = for_record(&long);
        assert!(clipped.len() < long.len());
        assert!(clipped.starts_with("line 0\n"));
        assert!(clipped.trim_end().ends_with("line 9999"));
        assert!(clipped.contains("lines left out"));
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
    fn a_table_holds_when_its_first_cell_is_true() {
        let t = Table::from_csv("ok,lost\nt,0\n").unwrap();
        assert!(t.holds());
        assert_eq!(t.first("lost"), Some("0"));
        assert_eq!(t.figure(), [("lost".to_string(), "0".to_string())]);
        assert!(!Table::from_csv("ok\nf\n").unwrap().holds());
        assert!(!Table::from_csv("ok\n").unwrap().holds());
    }
}
