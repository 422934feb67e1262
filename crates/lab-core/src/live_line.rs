//! The writer's live line, once a second — one type for the writer that prints it and
//! the book that draws it.
//!
//! ```text
//! [   3.0s]   2773.1 tx/s  ok=7862 errors=4 p50=1.16ms p99=5.76ms in-flight=0
//! ```
//!
//! `runner load` and `runner serve` print it ([`Display`](std::fmt::Display)); a
//! chapter's timeline is drawn from the recorded lines ([`FromStr`]). Both sides going
//! through [`LiveLine`] means a change to the line is a change to one type, and a
//! round-trip test holds them together; a line the parser does not take is `Err`, which
//! the timeline treats as "not a live line" (the writer's error descriptions share the
//! `[ …s]` prefix and count nothing).

use std::fmt;
use std::str::FromStr;

/// The numbers of one live line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveLine {
    /// Seconds since the writer started.
    pub elapsed_s: f64,
    /// Acknowledged transactions per second since the previous line.
    pub rate: f64,
    /// Acknowledged transactions since the start.
    pub acknowledged: u64,
    /// Failed transactions since the start.
    pub errors: u64,
    /// Median commit latency of the transactions acknowledged since the previous line.
    pub p50_ms: f64,
    /// Their 99th percentile.
    pub p99_ms: f64,
    /// Transactions sent and not answered yet.
    pub in_flight: i64,
}

impl fmt::Display for LiveLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>6.1}s] {:>8.1} tx/s  ok={} errors={} p50={:.2}ms p99={:.2}ms in-flight={}",
            self.elapsed_s,
            self.rate,
            self.acknowledged,
            self.errors,
            self.p50_ms,
            self.p99_ms,
            self.in_flight,
        )
    }
}

/// Why a line is not a live line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotALiveLine(pub String);

impl fmt::Display for NotALiveLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a live line: {}", self.0)
    }
}

impl std::error::Error for NotALiveLine {}

impl FromStr for LiveLine {
    type Err = NotALiveLine;

    fn from_str(line: &str) -> Result<LiveLine, NotALiveLine> {
        let fail = |why: &str| NotALiveLine(why.to_string());
        let rest = line
            .trim()
            .strip_prefix('[')
            .ok_or_else(|| fail("no `[` at the start"))?;
        let (elapsed, rest) = rest
            .split_once("s]")
            .ok_or_else(|| fail("no `s]` after the time"))?;
        let elapsed_s = elapsed
            .trim()
            .parse()
            .map_err(|_| fail("the time is not a number"))?;
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        if tokens.get(1) != Some(&"tx/s") {
            return Err(fail("no `tx/s` after the rate"));
        }
        let rate = tokens[0]
            .parse()
            .map_err(|_| fail("the rate is not a number"))?;
        let field = |name: &str| -> Result<&str, NotALiveLine> {
            tokens
                .iter()
                .find_map(|t| t.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| NotALiveLine(format!("no `{name}=`")))
        };
        let number = |name: &str, unit: &str| -> Result<f64, NotALiveLine> {
            field(name)?
                .strip_suffix(unit)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| NotALiveLine(format!("`{name}=` is not a number of {unit}")))
        };
        let count = |name: &str| -> Result<u64, NotALiveLine> {
            field(name)?
                .parse()
                .map_err(|_| NotALiveLine(format!("`{name}=` is not a count")))
        };
        Ok(LiveLine {
            elapsed_s,
            rate,
            acknowledged: count("ok")?,
            errors: count("errors")?,
            p50_ms: number("p50", "ms")?,
            p99_ms: number("p99", "ms")?,
            in_flight: field("in-flight")?
                .parse()
                .map_err(|_| fail("`in-flight=` is not a number"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_parses_back() {
        let line = LiveLine {
            elapsed_s: 3.0,
            rate: 2773.1,
            acknowledged: 7862,
            errors: 4,
            p50_ms: 1.16,
            p99_ms: 5.76,
            in_flight: 0,
        };
        let text = line.to_string();
        assert_eq!(
            text,
            "[   3.0s]   2773.1 tx/s  ok=7862 errors=4 p50=1.16ms p99=5.76ms in-flight=0"
        );
        assert_eq!(text.parse::<LiveLine>(), Ok(line));
    }

    #[test]
    fn other_lines_are_not_live_lines() {
        for other in [
            "[   3.0s] transaction connection_closed: FATAL 08P01: server conn crashed?",
            "[   9.3s] connect connect_timeout: no connection within 5s",
            "[  x.0s]   1.0 tx/s  ok=1 errors=0 p50=1.00ms p99=1.00ms in-flight=0",
            "[   1.0s]   1.0 tx/s  ok=? errors=0 p50=1.00ms p99=1.00ms in-flight=0",
            "[   1.0s]   1.0 tx/s  ok=1 errors=0",
            "     acknowledged..................: 9900 1053.2/s",
            "",
        ] {
            assert!(other.parse::<LiveLine>().is_err(), "{other:?}");
        }
    }
}
