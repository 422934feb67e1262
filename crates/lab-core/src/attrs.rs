//! The info string of a lab block: a language, a keyword, attributes.
//!
//! `sql check on=postgres-primary claim="writes wait" timeout=5s wait-until`
//! splits into words, with double quotes grouping words; each word keeps its byte
//! offset so an error points at the exact column.

use std::time::Duration;

/// One word of an info string and its byte offset within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word, quotes removed.
    pub text: String,
    /// Byte offset in the info string.
    pub offset: usize,
}

/// Splits an info string into words; `Err((offset, message))` on an unclosed quote.
pub fn words(info: &str) -> Result<Vec<Word>, (usize, String)> {
    let mut out = Vec::new();
    let mut chars = info.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut text = String::new();
        let mut in_quotes = false;
        let mut quote_at = 0;
        while let Some(&(i, c)) = chars.peek() {
            if c == '"' {
                in_quotes = !in_quotes;
                quote_at = i;
                chars.next();
                continue;
            }
            if c.is_whitespace() && !in_quotes {
                break;
            }
            text.push(c);
            chars.next();
        }
        if in_quotes {
            return Err((quote_at, "unclosed quote in the block's info string".into()));
        }
        out.push(Word {
            text,
            offset: start,
        });
    }
    Ok(out)
}

/// Parses `250ms`, `5s`, `2m`, `1m30s`, `1h` (humantime's syntax), or a bare number of
/// seconds (`2.5`). The one duration syntax of the project: lab attributes and the
/// CLI's flags.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a duration (examples: 500ms, 10s, 2m, 1m30s, 1h)");
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    humantime::parse_duration(text).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_group_quotes_and_keep_offsets() {
        let w = words(r#"sql check claim="no waits here" on=x"#).unwrap();
        let texts: Vec<&str> = w.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["sql", "check", "claim=no waits here", "on=x"]);
        assert_eq!(w[2].offset, 10);
        assert_eq!(w[3].offset, 32);
    }

    #[test]
    fn unclosed_quote_is_an_error_at_the_quote() {
        assert_eq!(words(r#"sh lab claim="oops"#).unwrap_err().0, 13);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("2min").unwrap(), Duration::from_secs(120));
    }
}
