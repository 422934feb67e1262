//! What the reader's terminal shows, split into output and prompts.
//!
//! The session's prompts are markers the runner recognises and removes: `PS1` is
//! `__lab_ps1:$?:__` (bash expands it when it is ready for a new command, so it carries
//! the status of the command line that just ended — with `pipefail` set in the session,
//! a pipeline fails when any of its commands does, as in the engine's `bash -o
//! pipefail`; `!` negates it, as it does there) and `PS2`
//! is `__lab_ps2__` (bash wants the rest of a command: a heredoc line, a loop's body).
//! Everything else is what the commands printed. Bytes arrive in arbitrary chunks, so a
//! marker (or a UTF-8 character) cut in two is kept until its end arrives.

/// The marker that opens `PS1`.
pub(crate) const PS1_OPEN: &str = "__lab_ps1:";
/// The marker that closes `PS1` (after the pipeline's statuses).
pub(crate) const PS1_CLOSE: &str = ":__";
/// `PS2`, in full.
pub(crate) const PS2: &str = "__lab_ps2__";
/// What both prompts start with.
const PROMPT_START: &str = "__lab_ps";
/// A `PS1` longer than this is not ours (a pipeline has few statuses).
const MAX_PS1: usize = 256;

/// The `PS1`/`PS2` assignment typed when the session starts.
pub(crate) fn prompt_assignment() -> String {
    format!("PS1='{PS1_OPEN}$?{PS1_CLOSE}' PS2='{PS2}'")
}

/// One thing the terminal showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Output of the commands (and of the shell: job notices, errors).
    Text(String),
    /// The shell is ready for a new command; the statuses of the last pipeline
    /// (`$?`, one status).
    Ready(Vec<i64>),
    /// The shell wants the rest of a command.
    More,
}

/// Splits the bytes of a terminal into [`Event`]s.
#[derive(Debug, Default)]
pub(crate) struct Screen {
    pending: Vec<u8>,
}

impl Screen {
    /// Feeds bytes read from the terminal; returns the events they complete.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut text: Vec<u8> = Vec::new();
        let mut at = 0;
        loop {
            let rest = &self.pending[at..];
            let Some(found) = find(rest, PROMPT_START.as_bytes()) else {
                // Keep a tail that may be the start of a marker.
                let keep = partial_suffix(rest, PROMPT_START.as_bytes());
                text.extend_from_slice(&rest[..rest.len() - keep]);
                at += rest.len() - keep;
                break;
            };
            let marker = &rest[found..];
            if marker.starts_with(PS2.as_bytes()) {
                text.extend_from_slice(&rest[..found]);
                flush_text(&mut text, &mut events);
                events.push(Event::More);
                at += found + PS2.len();
                continue;
            }
            if marker.starts_with(PS1_OPEN.as_bytes()) {
                let body = &marker[PS1_OPEN.len()..];
                match find(&body[..body.len().min(MAX_PS1)], PS1_CLOSE.as_bytes()) {
                    Some(end) => {
                        text.extend_from_slice(&rest[..found]);
                        flush_text(&mut text, &mut events);
                        events.push(Event::Ready(parse_statuses(&body[..end])));
                        at += found + PS1_OPEN.len() + end + PS1_CLOSE.len();
                        continue;
                    }
                    None if body.len() < MAX_PS1 => {
                        // The rest of the prompt has not arrived yet.
                        text.extend_from_slice(&rest[..found]);
                        at += found;
                        break;
                    }
                    None => {}
                }
            } else if PS2.as_bytes().starts_with(marker) || PS1_OPEN.as_bytes().starts_with(marker)
            {
                // A marker cut short by the end of what arrived.
                text.extend_from_slice(&rest[..found]);
                at += found;
                break;
            }
            // Looks like a marker but is not one: ordinary output.
            text.extend_from_slice(&rest[..found + PROMPT_START.len()]);
            at += found + PROMPT_START.len();
        }
        // An incomplete UTF-8 character at the end waits for its last bytes.
        let incomplete = match std::str::from_utf8(&text) {
            Err(err) if err.error_len().is_none() => text.len() - err.valid_up_to(),
            _ => 0,
        };
        let tail = text.split_off(text.len() - incomplete);
        flush_text(&mut text, &mut events);
        let mut rest = tail;
        rest.extend_from_slice(&self.pending[at..]);
        self.pending = rest;
        events
    }
}

fn flush_text(text: &mut Vec<u8>, events: &mut Vec<Event>) {
    if text.is_empty() {
        return;
    }
    let s = String::from_utf8_lossy(text).into_owned();
    text.clear();
    match events.last_mut() {
        Some(Event::Text(prev)) => prev.push_str(&s),
        _ => events.push(Event::Text(s)),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The length of the longest suffix of `bytes` that is a proper prefix of `needle`.
fn partial_suffix(bytes: &[u8], needle: &[u8]) -> usize {
    (1..needle.len().min(bytes.len() + 1))
        .rev()
        .find(|&n| bytes.ends_with(&needle[..n]))
        .unwrap_or(0)
}

fn parse_statuses(bytes: &[u8]) -> Vec<i64> {
    String::from_utf8_lossy(bytes)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The status of a pipeline as `set -o pipefail` reports it: the last non-zero one.
pub(crate) fn pipefail(statuses: &[i64]) -> i64 {
    statuses
        .iter()
        .rev()
        .copied()
        .find(|&s| s != 0)
        .unwrap_or(0)
}

/// Terminal output as a record keeps it: escape sequences removed, `\r\n` as `\n`, a
/// lone `\r` (a progress line redrawn) as a line break.
pub(crate) fn clean(text: &str) -> String {
    crate::output::strip_ansi(text)
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

/// Cuts the sentinel line `__lab_end_<n>__ <status>` out of `text`: the status and the
/// text without the line (background jobs may have printed around it).
pub(crate) fn take_sentinel(text: &str, n: usize) -> Option<(i64, String)> {
    let tag = sentinel_tag(n);
    let start = text.find(&tag)?;
    let after = &text[start + tag.len()..];
    let line_end = after.find('\n').map_or(after.len(), |i| i + 1);
    let status = after[..line_end].trim().parse().ok()?;
    let mut rest = text[..start].to_string();
    rest.push_str(&after[line_end..]);
    Some((status, rest))
}

/// What the sentinel of block `n` prints before its status.
pub(crate) fn sentinel_tag(n: usize) -> String {
    format!("__lab_end_{n}__ ")
}

/// The sentinel typed after block `n`: prints the exit status of its last command.
pub(crate) fn sentinel_command(n: usize) -> String {
    format!("printf '\\n__lab_end_{n}__ %d\\n' $?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut screen = Screen::default();
        let mut events = Vec::new();
        for chunk in chunks {
            for e in screen.feed(chunk) {
                match (events.last_mut(), e) {
                    (Some(Event::Text(prev)), Event::Text(t)) => prev.push_str(&t),
                    (_, e) => events.push(e),
                }
            }
        }
        events
    }

    #[test]
    fn prompts_split_output_and_carry_pipeline_statuses() {
        let events =
            feed_all(&[b"__lab_ps1:0:__hi\r\n__lab_ps1:1 0:____lab_ps2____lab_ps1:130:__"]);
        assert_eq!(
            events,
            [
                Event::Ready(vec![0]),
                Event::Text("hi\r\n".into()),
                Event::Ready(vec![1, 0]),
                Event::More,
                Event::Ready(vec![130]),
            ]
        );
        assert_eq!(pipefail(&[1, 0]), 1);
        assert_eq!(pipefail(&[0, 2, 0]), 2);
        assert_eq!(pipefail(&[0]), 0);
    }

    #[test]
    fn markers_and_characters_cut_across_chunks_are_reassembled() {
        let whole = "tick 1 é\n__lab_ps1:0 141:__[1] 42\n__lab_ps2__".as_bytes();
        for cut in 1..whole.len() {
            let events = feed_all(&[&whole[..cut], &whole[cut..]]);
            assert_eq!(
                events,
                [
                    Event::Text("tick 1 é\n".into()),
                    Event::Ready(vec![0, 141]),
                    Event::Text("[1] 42\n".into()),
                    Event::More,
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn marker_lookalikes_are_output() {
        let events = feed_all(&[b"__lab_psx and __lab_ps1:no end", b" here\n"]);
        assert_eq!(events, [Event::Text("__lab_psx and ".into())]);
        let long = format!("__lab_ps1:{}", "x".repeat(300));
        let events = feed_all(&[long.as_bytes()]);
        assert_eq!(events, [Event::Text(long.clone())]);
    }

    #[test]
    fn sentinel_is_cut_out_with_its_status() {
        let text = "out\ntick 3\n\n__lab_end_4__ 2\ntick 4\n";
        assert_eq!(
            take_sentinel(text, 4),
            Some((2, "out\ntick 3\n\ntick 4\n".to_string()))
        );
        assert_eq!(take_sentinel(text, 5), None);
        assert_eq!(sentinel_command(4), "printf '\\n__lab_end_4__ %d\\n' $?");
    }

    #[test]
    fn output_is_cleaned_as_records_keep_it() {
        assert_eq!(
            clean("\u{1b}[31mred\u{1b}[0m\r\nnext\rover\n"),
            "red\nnext\nover\n"
        );
    }

    #[test]
    fn the_prompt_assignment_names_the_markers() {
        assert_eq!(
            prompt_assignment(),
            "PS1='__lab_ps1:$?:__' PS2='__lab_ps2__'"
        );
    }
}
