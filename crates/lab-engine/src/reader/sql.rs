//! SQL blocks as a reader types them: the page's `docker compose exec … psql` command,
//! fed the block by a quoted heredoc; a check's result read back from the CSV file psql
//! wrote; and the psql a Ctrl-C must reach inside the container.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::output::Table;
use lab_cluster::Cluster;
use lab_cluster::docker::ExecOutput;

/// The heredoc delimiter SQL blocks are typed with.
const HEREDOC: &str = "LAB_SQL";

/// A SQL block as typed: the page's psql command made non-interactive (`-T`, `-X`,
/// `-v ON_ERROR_STOP=1`, `--csv` when a table is read back, its CSV to `csv`), fed
/// the block's text by a quoted heredoc.
pub(super) fn sql_lines(psql: &str, body: &[&str], csv: Option<&Path>) -> Result<Vec<String>> {
    let Some(rest) = psql.strip_prefix("docker compose exec ") else {
        bail!("a SQL block's psql command is not `docker compose exec …`: {psql:?}");
    };
    if body.iter().any(|l| l.trim() == HEREDOC) {
        bail!("the SQL text holds a line `{HEREDOC}`, the heredoc's delimiter");
    }
    let mut command = format!("docker compose exec -T {rest} -X -v ON_ERROR_STOP=1");
    if csv.is_some() {
        command.push_str(" --csv");
    }
    command.push_str(&format!(" <<'{HEREDOC}'"));
    if let Some(csv) = csv {
        command.push_str(&format!(" >{}", shell_quote(&csv.to_string_lossy())));
    }
    let mut lines = vec![command];
    lines.extend(body.iter().map(|l| l.to_string()));
    lines.push(HEREDOC.to_string());
    Ok(lines)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A SQL check's result, from the CSV file psql wrote.
pub(super) fn read_csv(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the check's CSV {}", path.display()))?;
    Table::from_csv(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Lists the psql processes `docker exec` started in a container (parent 0 in its pid
/// namespace).
const LIST_PSQL: &str = r#"for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = psql ] && grep -qs '^PPid:[[:space:]]*0$' "$d/status" && echo "${d#/proc/}"
done; true"#;

/// The `docker exec`-started psql processes of `service` (empty when it is not running).
pub(super) async fn container_psqls(cluster: &Cluster, service: &str) -> Vec<i64> {
    let cmd = ["sh".to_string(), "-c".to_string(), LIST_PSQL.to_string()];
    match exec_in(cluster, service, &cmd).await {
        Ok(out) => parse_pids(&out.stdout),
        Err(_) => Vec::new(),
    }
}

/// Runs `cmd` in `service`'s container, bounded at 10 s.
async fn exec_in(cluster: &Cluster, service: &str, cmd: &[String]) -> Result<ExecOutput> {
    cluster
        .docker
        .exec(
            cluster.settings.project(),
            service,
            cmd,
            None,
            Duration::from_secs(10),
        )
        .await
}

fn parse_pids(text: &str) -> Vec<i64> {
    text.split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// SIGINT to the psql processes of `service` that were not there `before`: the block's
/// own. Returns how many were signalled.
pub(super) async fn interrupt_container_psql(
    cluster: &Cluster,
    service: &str,
    before: &[i64],
) -> usize {
    let new: Vec<String> = container_psqls(cluster, service)
        .await
        .into_iter()
        .filter(|p| !before.contains(p))
        .map(|p| p.to_string())
        .collect();
    if new.is_empty() {
        return 0;
    }
    let mut cmd = vec!["kill".to_string(), "-INT".to_string()];
    cmd.extend(new.iter().cloned());
    match exec_in(cluster, service, &cmd).await {
        Ok(out) if out.exit_code == Some(0) => new.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Outcome, StepEnd, judge};
    use crate::parse_chapter;

    #[test]
    fn sql_blocks_are_typed_as_the_page_s_psql_fed_by_a_heredoc() {
        let lines = sql_lines(
            "docker compose exec postgres-primary psql -U postgres -d db -v lsn=\"$lsn\"",
            &["SELECT :'lsn';", "SELECT 2;"],
            None,
        )
        .unwrap();
        assert_eq!(
            lines,
            [
                "docker compose exec -T postgres-primary psql -U postgres -d db -v lsn=\"$lsn\" \
                 -X -v ON_ERROR_STOP=1 <<'LAB_SQL'",
                "SELECT :'lsn';",
                "SELECT 2;",
                "LAB_SQL",
            ]
        );
        let lines = sql_lines(
            "docker compose exec pgbouncer psql -U postgres -d db",
            &["SELECT true;"],
            Some(Path::new("/tmp/it's/3-1.csv")),
        )
        .unwrap();
        assert_eq!(
            lines[0],
            "docker compose exec -T pgbouncer psql -U postgres -d db -X -v ON_ERROR_STOP=1 --csv \
             <<'LAB_SQL' >'/tmp/it'\\''s/3-1.csv'"
        );
        assert!(sql_lines("psql -U postgres", &[], None).is_err());
        assert!(sql_lines("docker compose exec x psql", &["LAB_SQL"], None).is_err());
    }

    #[test]
    fn the_csv_file_gives_the_checked_table() {
        let dir = std::env::temp_dir().join(format!("lab-reader-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("1-1.csv");
        std::fs::write(&path, "held,standby\nt,\"postgres-sync-standby\"\n").unwrap();
        let table = read_csv(&path).unwrap();
        assert_eq!(table.header, ["held", "standby"]);
        assert_eq!(table.rows, [["t", "postgres-sync-standby"]]);
        assert!(read_csv(&dir.join("missing.csv")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_check_read_from_csv_is_judged_by_the_engine_s_rule() {
        let chapter = parse_chapter(
            "c.md",
            "c.md",
            "```sql check claim=\"x\" capture=n\nSELECT count(*) = 1 AS ok, count(*) AS n;\n```\n",
        )
        .unwrap();
        let block = &chapter.blocks[0];
        let held = Outcome {
            output: String::new(),
            end: StepEnd::Exit(0),
            table: Some(read_csv_text("ok,n\nt,1\n")),
        };
        let j = judge(block, &held);
        assert!(j.ok && j.check.unwrap().passed);
        assert_eq!(j.captures["n"], "1");
        let failed = Outcome {
            table: Some(read_csv_text("ok,n\nf,2\n")),
            ..held
        };
        assert!(!judge(block, &failed).ok);
    }

    fn read_csv_text(text: &str) -> Table {
        let path = std::env::temp_dir().join(format!("lab-reader-csv-{}.csv", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let table = read_csv(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        table
    }

    #[test]
    fn container_pids_are_parsed_leniently() {
        assert_eq!(parse_pids("12\n345\n\nx\n"), [12, 345]);
    }
}
