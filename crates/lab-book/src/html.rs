//! Small pieces of HTML the renderers share: escaped text, a record's time.

use crate::timeline;

/// Escapes text for HTML (`&`, `<`, `>`, `"`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Writing into a String cannot fail.
    let _ = pulldown_cmark_escape::escape_html(&mut out, text);
    out
}

/// `2026-11-27 14:26:06 UTC`: a record's time, to the second.
pub fn utc_second(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// [`utc_second`] of a step's `started_at` (RFC 3339); the text itself, escaped, when it
/// is not a time.
pub fn recorded_at(started_at: &str) -> String {
    match timeline::parse_time(started_at) {
        Ok(t) => utc_second(&t.with_timezone(&chrono::Utc)),
        Err(_) => escape(started_at),
    }
}
