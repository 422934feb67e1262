//! What a reader types for a lab block, and what they are told to do around it.
//!
//! The engine knows things through attributes — this step runs in the background, that
//! one stops it, this check is repeated until it holds — that a reader at a terminal
//! must be told. Everything the page shows of a block comes from here, generated from
//! the attributes, so the page and the engine can never disagree; and `runner exec
//! --as-reader` types exactly this text into one terminal to prove that it works.
//!
//! - `background` ends the text with ` &` and keeps the job's process id in a shell
//!   variable named after the step: `writer=$!`;
//! - `stop=writer` types `kill -INT $writer; wait $writer` before the block's text (the
//!   writer ends as on Ctrl-C, printing its summary), `await=writer` types `wait $writer`;
//! - a SQL block is typed into `docker compose exec SERVICE psql -U postgres -d DB`, with
//!   `-v name="$name"` for each of its `vars=`;
//! - `expect-timeout` tells the reader to press Ctrl-C after the bound, `wait-until` to
//!   repeat the block until it holds.

use super::{Block, Expect, Runner};

/// The typed form of one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed {
    /// For SQL blocks: the shell command that opens psql where the block runs.
    pub psql: Option<String>,
    /// What the reader types (at the shell for `sh`, at psql's prompt for `sql`).
    pub text: String,
    /// What the reader does beyond typing, in words, when anything.
    pub instruction: Option<String>,
}

/// The typed form of `block`.
pub fn typed(block: &Block) -> Typed {
    let mut text = String::new();
    for id in &block.stops {
        text.push_str(&format!("kill -INT ${id}; wait ${id}\n"));
    }
    for id in &block.awaits {
        text.push_str(&format!("wait ${id}\n"));
    }
    let body = block.body.trim_end_matches('\n');
    if block.background {
        // One command line (the parser sees to it): `$!` is that command's process.
        text.push_str(&format!("{body} &\n"));
        text.push_str(&format!("{}=$!\n", block.job_var()));
    } else {
        text.push_str(body);
        text.push('\n');
    }
    let psql = match &block.runner {
        Runner::Shell => None,
        Runner::Sql { service, database } => {
            let mut cmd = format!("docker compose exec {service} psql -U postgres -d {database}");
            for var in &block.vars {
                cmd.push_str(&format!(" -v {var}=\"${var}\""));
            }
            Some(cmd)
        }
    };
    let bound = seconds(block.timeout.as_secs_f64());
    let instruction = match (block.expect, block.wait_until) {
        (Expect::Timeout, _) => Some(format!("It does not return: press Ctrl-C after {bound} s.")),
        (_, true) if block.check => Some(format!(
            "Repeat it until it holds (the book waits up to {bound} s)."
        )),
        (_, true) => Some(format!(
            "Repeat it until it succeeds (the book waits up to {bound} s)."
        )),
        _ => None,
    };
    Typed {
        psql,
        text,
        instruction,
    }
}

/// `3`, `2.5`: seconds as a reader reads them.
fn seconds(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_chapter;

    fn blocks(src: &str) -> Vec<Block> {
        parse_chapter("c.md", "c.md", src).unwrap().blocks
    }

    #[test]
    fn background_stop_and_await_are_typed() {
        let b = blocks(
            "```sh lab id=writer background\nrunner load --duration 30s\n```\n\n\
             ```sh lab stop=writer\necho done\n```\n\n```sh lab id=other background\nsleep 3\n```\n\n\
             ```sh lab await=other\nls\n```\n",
        );
        assert_eq!(
            typed(&b[0]).text,
            "runner load --duration 30s &\nwriter=$!\n"
        );
        assert_eq!(
            typed(&b[1]).text,
            "kill -INT $writer; wait $writer\necho done\n"
        );
        assert_eq!(typed(&b[2]).text, "sleep 3 &\nother=$!\n");
        assert_eq!(typed(&b[3]).text, "wait $other\nls\n");
    }

    #[test]
    fn sql_opens_psql_with_its_variables_and_instructions_follow_attributes() {
        let b = blocks(
            "```sql lab on=postgres-sync-standby vars=lsn,t0 timeout=3s expect-timeout\nSELECT :'lsn';\n```\n\n\
             ```sql check claim=\"x\" wait-until timeout=20s\nSELECT true;\n```\n",
        );
        let t = typed(&b[0]);
        assert_eq!(
            t.psql.as_deref(),
            Some(
                "docker compose exec postgres-sync-standby psql -U postgres -d db -v lsn=\"$lsn\" -v t0=\"$t0\""
            )
        );
        assert_eq!(t.text, "SELECT :'lsn';\n");
        assert_eq!(
            t.instruction.as_deref(),
            Some("It does not return: press Ctrl-C after 3 s.")
        );
        assert_eq!(
            typed(&b[1]).instruction.as_deref(),
            Some("Repeat it until it holds (the book waits up to 20 s).")
        );
    }
}
