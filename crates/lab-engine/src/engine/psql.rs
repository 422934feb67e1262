//! SQL steps: `psql` inside the block's service, through the Docker API, bounded inside
//! the container (a commit hung in SyncRep is cancelled at the bound, as a reader's
//! Ctrl-C would), with the block's `vars=` handed over from the chapter's shell.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{Engine, Outcome, StepEnd};
use crate::Block;
use crate::output::Table;

impl Engine {
    /// The values of a SQL block's `vars=`, read from the chapter's shell variables.
    pub(super) fn psql_vars(&self, block: &Block) -> Result<Vec<(String, String)>> {
        if block.vars.is_empty() {
            return Ok(Vec::new());
        }
        let names = block.vars.join(" ");
        let script = format!(
            "source \"$LAB_SHELL_STATE\"; for v in {names}; do \
               if [ -z \"${{!v+set}}\" ]; then echo \"no shell variable $v: an earlier step sets it\" >&2; exit 1; fi; \
               printf '%s\\0' \"${{!v}}\"; done"
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("LAB_SHELL_STATE", &self.shell_state)
            .output()
            .context("reading the chapter's shell variables")?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let values = String::from_utf8_lossy(&out.stdout);
        Ok(block
            .vars
            .iter()
            .cloned()
            .zip(values.split('\0').map(str::to_string))
            .collect())
    }

    pub(super) async fn psql(
        &self,
        service: &str,
        database: &str,
        vars: &[(String, String)],
        sql: &str,
        timeout: Duration,
        tabular: bool,
    ) -> Result<Outcome> {
        let vars: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec![
            "psql",
            "-X",
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
        ];
        for var in &vars {
            args.extend(["-v", var.as_str()]);
        }
        if tabular {
            args.push("--csv");
        }
        let out = self
            .cluster
            .docker
            .exec_bounded(
                self.cluster.settings.project(),
                service,
                timeout,
                &args,
                Some(sql),
            )
            .await?;
        let mut outcome = Outcome {
            output: strip_psql_prefix(&out.output),
            end: match (out.timed_out, out.exit_code) {
                (true, _) => StepEnd::TimedOut(timeout),
                (false, Some(code)) => StepEnd::Exit(code),
                (false, None) => StepEnd::NoStatus,
            },
            table: None,
        };
        if tabular && outcome.end == StepEnd::Exit(0) {
            let table = Table::from_csv(&out.stdout)?;
            let notices: String = outcome
                .output
                .lines()
                .filter(|l| !out.stdout.contains(*l))
                .map(|l| format!("{l}\n"))
                .collect();
            outcome.output = format!("{notices}{}", table.aligned());
            outcome.table = Some(table);
        }
        self.observer.output(&outcome.output);
        Ok(outcome)
    }
}

/// psql reading a script prefixes errors with `psql:<stdin>:N: `; a reader typing at
/// the prompt sees the message alone.
pub(crate) fn strip_psql_prefix(output: &str) -> String {
    output
        .lines()
        .map(|line| match line.strip_prefix("psql:<stdin>:") {
            Some(rest) => rest.split_once(": ").map_or(line, |(_, msg)| msg),
            None => line,
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_prefix_is_stripped() {
        let out = strip_psql_prefix(
            "psql:<stdin>:3: ERROR:  relation \"x\" does not exist\nINSERT 0 1\n",
        );
        assert_eq!(out, "ERROR:  relation \"x\" does not exist\nINSERT 0 1\n");
    }
}
