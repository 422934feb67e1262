//! Typing into the terminal: a block's lines, one at each prompt, within its bound;
//! Ctrl-C where the page says to press it; the sentinel that ends a block's output.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::screen::{clean, pipefail, sentinel_command, sentinel_tag, take_sentinel};
use super::session::{self, Prompt, ReaderSession};
use super::sql::interrupt_container_psql;
use super::{CTRL_C_WAIT, ChapterRun, GRACE, SENTINEL_WAIT};
use crate::engine::StepEnd;
use crate::{Block, Expect};

/// What one typing of a block's lines produced.
#[derive(Debug, Default)]
pub(super) struct Typing {
    pub(super) output: String,
    pub(super) exit_code: Option<i64>,
    pub(super) timed_out: bool,
    pub(super) problem: Option<String>,
}

impl Typing {
    /// How the typed lines ended, for a block bound by `bound`.
    pub(super) fn end(&self, bound: Duration) -> StepEnd {
        match (self.timed_out, self.exit_code) {
            (true, _) => StepEnd::TimedOut(bound),
            (false, Some(code)) => StepEnd::Exit(code),
            (false, None) => StepEnd::NoStatus,
        }
    }
}

impl ChapterRun<'_> {
    /// Types a foreground block's lines within its bound (Ctrl-C at the bound for
    /// `expect-timeout`, a few seconds later otherwise), then the sentinel.
    pub(super) async fn type_block(
        &mut self,
        session: &mut ReaderSession,
        block: &Block,
        lines: &[String],
        deadline: Instant,
        sql: Option<(&str, &[i64])>,
    ) -> Result<Typing> {
        let bound = if block.expect == Expect::Timeout {
            deadline
        } else {
            deadline + GRACE
        };
        let mut typing = self.type_lines(session, lines, bound, sql).await?;
        // The sentinel's own status repeats the last command's, already counted.
        let (_, rest) = self.sentinel(session).await?;
        typing.output.push_str(&rest);
        if typing.timed_out {
            typing.exit_code = None;
        }
        Ok(typing)
    }

    /// Types `lines`, each at its prompt, until `bound`; at the bound, Ctrl-C (for SQL,
    /// first SIGINT to the block's psql in the container) and the rest is not typed.
    pub(super) async fn type_lines(
        &mut self,
        session: &mut ReaderSession,
        lines: &[String],
        bound: Instant,
        sql: Option<(&str, &[i64])>,
    ) -> Result<Typing> {
        let mut typing = Typing::default();
        let mut first_failure = None;
        let mut more = false;
        for line in lines {
            self.say(&format!("{} {line}", if more { ">" } else { "$" }));
            if let Err(err) = session::check_typeable(line) {
                typing.problem = Some(format!("a reader cannot type this line: {err:#}"));
                break;
            }
            let shown = session.type_line(line, bound).await?;
            typing.output.push_str(&shown.output);
            match shown.prompt {
                Some(Prompt::Ready(statuses)) => {
                    more = false;
                    let status = pipefail(&statuses);
                    if status != 0 && first_failure.is_none() {
                        first_failure = Some(status);
                    }
                }
                Some(Prompt::More) => more = true,
                None => {
                    typing.timed_out = true;
                    let shown = self.cancel(session, sql).await?;
                    typing.output.push_str(&shown);
                    more = false;
                    break;
                }
            }
        }
        if more {
            // The text leaves the shell waiting for the rest of a command.
            typing.problem = Some(
                "the block's text leaves a command unfinished: the terminal waits for more \
                 (its continuation prompt); the runner pressed Ctrl-C"
                    .into(),
            );
            typing.output.push_str(&self.cancel(session, None).await?);
        }
        typing.output = clean(&typing.output);
        typing.exit_code = Some(first_failure.unwrap_or(0));
        Ok(typing)
    }

    /// Ctrl-C, as the reader presses it, until the shell's prompt is back.
    pub(super) async fn cancel(
        &mut self,
        session: &mut ReaderSession,
        sql: Option<(&str, &[i64])>,
    ) -> Result<String> {
        let mut output = String::new();
        if let Some((service, before)) = sql {
            // The reader's psql has a terminal in the container; the keypress reaches it.
            let signalled = interrupt_container_psql(self.cluster, service, before).await;
            self.say(&format!(
                "── Ctrl-C: SIGINT to psql in {service} ({signalled} process{}) ──",
                if signalled == 1 { "" } else { "es" }
            ));
            if signalled > 0 {
                let shown = session.wait_prompt(Instant::now() + CTRL_C_WAIT).await?;
                output.push_str(&shown.output);
                if shown.prompt.is_some() {
                    return Ok(output);
                }
            }
        }
        for _ in 0..3 {
            self.say("── Ctrl-C ──");
            session.interrupt().await?;
            let shown = session.wait_prompt(Instant::now() + CTRL_C_WAIT).await?;
            output.push_str(&shown.output);
            if shown.prompt.is_some() {
                return Ok(output);
            }
        }
        bail!("the reader's terminal does not come back after Ctrl-C; it showed:\n{output}")
    }

    /// Types the sentinel and reads until it appears: the exit status of the last
    /// command and the text that came with it (a job's output), sentinel cut out.
    pub(super) async fn sentinel(&mut self, session: &mut ReaderSession) -> Result<(i64, String)> {
        self.sentinels += 1;
        let n = self.sentinels;
        let deadline = Instant::now() + SENTINEL_WAIT;
        let mut shown = session.type_line(&sentinel_command(n), deadline).await?;
        let mut text = String::new();
        loop {
            text.push_str(&shown.output);
            match shown.prompt {
                Some(Prompt::Ready(_)) if text.contains(&sentinel_tag(n)) => break,
                // A stale prompt (a Ctrl-C that reached the shell at its prompt): read on.
                Some(_) => shown = session.wait_prompt(deadline).await?,
                None => bail!(
                    "the reader's terminal did not print the sentinel {} within {} s; it showed:\n{}",
                    sentinel_tag(n).trim(),
                    SENTINEL_WAIT.as_secs(),
                    clean(&text)
                ),
            }
        }
        let text = clean(&text);
        Ok(take_sentinel(&text, n).unwrap_or((0, text)))
    }
}
