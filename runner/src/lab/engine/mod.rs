//! The engine: runs a chapter's lab blocks against the live cluster and records them.
//!
//! Steps run in chapter order. A shell step runs `bash -e -o pipefail` in `compose/`
//! with the lab's environment (its own process group, so a bound or Ctrl-C stops
//! everything it started); a SQL step runs `psql` inside its service through the
//! Docker API, wrapped in `timeout` so that a commit hung in SyncRep is cancelled
//! inside the container at the bound — exactly as a reader's Ctrl-C would — and never
//! hangs the build. Background steps keep running while later steps run and are
//! stopped (SIGINT, then SIGKILL) by a later `stop=`, or at the end of the chapter.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{SecondsFormat, Utc};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::cluster::Cluster;
use crate::compose;
use crate::docker;
use crate::lab::{Block, Chapter, Expect, Runner};
use crate::pg;
use crate::record::{BlockRecord, ChapterRecord, CheckRecord};
use crate::render;

/// How much of a step's output a record keeps (head and tail beyond it).
const MAX_OUTPUT: usize = 24_000;
/// How long a stopped background step gets to finish after SIGINT.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Runs chapters against a cluster.
pub struct Engine {
    /// The cluster the steps run against.
    pub cluster: Cluster,
    /// Print each step and its output to stderr as it runs.
    pub stream: bool,
    /// The chapter's shell variables, carried from one shell step to the next as a
    /// reader's terminal carries them (`t_kill=$(date +%s.%N)` in one block, `$t_kill`
    /// in a later one): each step sources the file and writes its variables back.
    shell_state: PathBuf,
}

/// What one attempt of a step produced.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    /// Standard output and error, interleaved.
    pub(crate) output: String,
    /// Exit status; `None` when stopped at its bound.
    pub(crate) exit_code: Option<i64>,
    /// Whether the step hit its bound.
    pub(crate) timed_out: bool,
    /// For checks and captures from SQL: the result as (header, rows).
    pub(crate) table: Option<(Vec<String>, Vec<Vec<String>>)>,
}

/// A shell step's process group and the output collected from it so far.
struct Running {
    child: Child,
    pgid: Pid,
    output: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The output so far, once the reader has drained the pipe (bounded).
    async fn collected(&mut self) -> String {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.reader).await;
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}

struct Background {
    run: Running,
    started: Instant,
    started_at: String,
    index: usize,
    command: String,
}

impl Engine {
    /// An engine for `cluster`; `stream` prints each step and its output as it runs.
    pub fn new(cluster: Cluster, stream: bool) -> Engine {
        let shell_state = std::env::temp_dir().join(format!(
            "lab-shell-state-{}-{}.sh",
            std::process::id(),
            cluster.settings.project()
        ));
        Engine {
            cluster,
            stream,
            shell_state,
        }
    }

    /// Brings the cluster to the chapter's precondition, runs every block, and returns
    /// the record. Step failures are recorded (`ok: false`), not returned as errors;
    /// an error means the run itself could not proceed (the cluster would not come up).
    pub async fn run_chapter(&mut self, chapter: &Chapter) -> Result<ChapterRecord> {
        let started = Instant::now();
        let recorded_at = now();
        self.establish_precondition(chapter).await?;
        let server_version = self.server_version().await;
        // A new chapter starts in a new terminal: no variables yet.
        std::fs::write(&self.shell_state, "")
            .with_context(|| format!("creating {}", self.shell_state.display()))?;

        let mut records: Vec<Option<BlockRecord>> = vec![None; chapter.blocks.len()];
        let mut background: HashMap<String, Background> = HashMap::new();

        for block in &chapter.blocks {
            let stops = block.stops.iter().map(|id| (id, true));
            for (id, stop) in stops.chain(block.awaits.iter().map(|id| (id, false))) {
                if let Some(bg) = background.remove(id) {
                    let (index, record) = self
                        .finish_background(chapter, bg, stop, &server_version)
                        .await;
                    records[index] = Some(record);
                }
            }
            let command = block.body.clone();
            self.announce(chapter, block, &command);
            if block.background {
                let bg = self.spawn_background(block, &command).await?;
                background.insert(block.id.clone(), bg);
                continue;
            }
            let record = self.run_block(block, &command, &server_version).await;
            self.report(&record, block);
            records[block.index] = Some(record);
        }
        let mut remaining: Vec<Background> = background.into_values().collect();
        remaining.sort_by_key(|bg| bg.index);
        for bg in remaining {
            let (index, record) = self
                .finish_background(chapter, bg, true, &server_version)
                .await;
            records[index] = Some(record);
        }

        let _ = std::fs::remove_file(&self.shell_state);
        Ok(ChapterRecord {
            chapter: chapter.path.clone(),
            recorded_at,
            server_version,
            duration_ms: started.elapsed().as_millis() as u64,
            blocks: records.into_iter().flatten().collect(),
        })
    }

    /// Brings the cluster to the chapter's precondition (resolving the base image first,
    /// since steps may build images): `fresh` removes the cluster and its volumes, then
    /// the chapter's `services=` are started and waited for. `runner exec --as-reader`
    /// starts from the same state.
    pub async fn establish_precondition(&mut self, chapter: &Chapter) -> Result<()> {
        // Steps may build images (`docker compose up --build`): resolve the base first.
        self.cluster
            .prepare_images(crate::images::BaseWay::Auto)
            .await?;
        if let Some(pre) = &chapter.precondition {
            if pre.fresh {
                self.note(&format!(
                    "precondition: a fresh cluster ({})",
                    pre.services.join(", ")
                ));
                self.cluster.down(true).await?;
            }
            if !pre.services.is_empty() {
                let services: Vec<&str> = pre.services.iter().map(String::as_str).collect();
                self.cluster
                    .up(&services, crate::images::BaseWay::Auto)
                    .await
                    .context("bringing the cluster to the chapter's precondition")?;
            }
        }
        Ok(())
    }

    async fn server_version(&self) -> Option<String> {
        let primary = self.cluster.find_primary().await.ok().flatten()?;
        let client = pg::connect(&self.cluster.settings, primary, "postgres")
            .await
            .ok()?;
        pg::scalar(&client, "SHOW server_version")
            .await
            .ok()
            .flatten()
    }

    /// Runs one foreground block (retrying under wait-until) and records it.
    async fn run_block(
        &self,
        block: &Block,
        command: &str,
        server_version: &Option<String>,
    ) -> BlockRecord {
        let started_at = now();
        let started = Instant::now();
        let deadline = started + block.timeout;
        let mut attempts = 0;
        let (outcome, check, captures, ok) = loop {
            attempts += 1;
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(500));
            let outcome = match self.attempt(block, command, remaining).await {
                Ok(outcome) => outcome,
                Err(err) => Outcome {
                    output: format!("{err:#}\n"),
                    ..Outcome::default()
                },
            };
            let (check, captures, ok) = judge(block, &outcome);
            if ok || !block.wait_until || Instant::now() + Duration::from_millis(500) >= deadline {
                break (outcome, check, captures, ok);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        BlockRecord {
            id: block.id.clone(),
            digest: block.digest(),
            line: block.line,
            command: command.to_string(),
            ran_on: ran_on(block),
            output: clip(&outcome.output),
            exit_code: outcome.exit_code,
            timed_out: outcome.timed_out,
            ok,
            duration_ms: started.elapsed().as_millis() as u64,
            started_at,
            server_version: server_version.clone(),
            check,
            captures,
            attempts,
        }
    }

    async fn attempt(&self, block: &Block, command: &str, timeout: Duration) -> Result<Outcome> {
        match &block.runner {
            Runner::Shell => self.shell(command, timeout).await,
            Runner::Sql { service, database } => {
                let tabular = block.check || !block.captures.is_empty();
                let vars = self.psql_vars(block)?;
                self.psql(service, database, &vars, command, timeout, tabular)
                    .await
            }
        }
    }

    /// The values of a SQL block's `vars=`, read from the chapter's shell variables.
    fn psql_vars(&self, block: &Block) -> Result<Vec<(String, String)>> {
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

    /// `bash` running `command` with the chapter's shell variables; a foreground step
    /// writes its variables back when it ends (a background one, like a reader's `&`
    /// job, runs in a copy of the shell whose variables are its own).
    fn shell_command(&self, command: &str, keeps_state: bool) -> Command {
        let save = if keeps_state { SAVE_SHELL_STATE } else { "" };
        let mut cmd = Command::new("bash");
        cmd.arg("-e")
            .arg("-o")
            .arg("pipefail")
            .arg("-c")
            .arg(format!(
                "exec 2>&1\nsource \"$LAB_SHELL_STATE\"\n{save}{command}"
            ))
            .env("LAB_SHELL_STATE", &self.shell_state)
            .current_dir(self.cluster.settings.compose_dir())
            .envs(compose::environment(&self.cluster.settings))
            .env("PATH", path_with_runner())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        cmd
    }

    /// Starts `command` in a process group of its own, collecting its output.
    fn start_shell(&self, command: &str, echo: bool, keeps_state: bool) -> Result<Running> {
        let mut child = self
            .shell_command(command, keeps_state)
            .spawn()
            .context("starting bash")?;
        let pgid = Pid::from_raw(child.id().context("bash exited at once")? as i32);
        let output = Arc::new(Mutex::new(String::new()));
        let reader = spawn_reader(&mut child, output.clone(), echo);
        Ok(Running {
            child,
            pgid,
            output,
            reader,
        })
    }

    async fn shell(&self, command: &str, timeout: Duration) -> Result<Outcome> {
        let mut run = self.start_shell(command, self.stream, true)?;
        let mut outcome = Outcome::default();
        match tokio::time::timeout(timeout, run.child.wait()).await {
            Ok(status) => outcome.exit_code = status?.code().map(i64::from),
            Err(_) => {
                outcome.timed_out = true;
                stop_group(&mut run.child, run.pgid, Duration::from_secs(5)).await;
            }
        }
        outcome.output = run.collected().await;
        Ok(outcome)
    }

    async fn psql(
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
        let cmd = docker::bounded(timeout, &args);
        let settings = &self.cluster.settings;
        let out = self
            .cluster
            .engine
            .exec(
                settings.project(),
                service,
                &cmd,
                Some(sql),
                timeout + Duration::from_secs(8),
            )
            .await?;
        let mut outcome = Outcome {
            output: strip_psql_prefix(&out.output),
            exit_code: out.exit_code,
            timed_out: out.timed_out || out.exit_code == Some(124) || out.exit_code == Some(137),
            table: None,
        };
        if outcome.timed_out {
            outcome.exit_code = None;
        }
        if tabular && outcome.exit_code == Some(0) {
            let table = render::parse_csv(&out.stdout)?;
            let notices: String = outcome
                .output
                .lines()
                .filter(|l| !out.stdout.contains(*l))
                .map(|l| format!("{l}\n"))
                .collect();
            outcome.output = format!("{notices}{}", render::psql_table(&table.0, &table.1));
            outcome.table = Some(table);
        }
        if self.stream {
            eprint!("{}", outcome.output);
        }
        Ok(outcome)
    }

    async fn spawn_background(&self, block: &Block, command: &str) -> Result<Background> {
        if block.runner != Runner::Shell {
            bail!("{}: only shell steps run in the background", block.id);
        }
        Ok(Background {
            run: self.start_shell(command, false, false)?,
            started: Instant::now(),
            started_at: now(),
            index: block.index,
            command: command.to_string(),
        })
    }

    /// Waits for a background step (bounded by its timeout from its start), or stops
    /// it with SIGINT when `stop`, and records it.
    async fn finish_background(
        &self,
        chapter: &Chapter,
        mut bg: Background,
        stop: bool,
        server_version: &Option<String>,
    ) -> (usize, BlockRecord) {
        let block = &chapter.blocks[bg.index];
        let mut outcome = Outcome::default();
        let limit = block.timeout.saturating_sub(bg.started.elapsed());
        if stop {
            let _ = killpg(bg.run.pgid, Signal::SIGINT);
        }
        let wait = if stop {
            STOP_GRACE.min(limit.max(Duration::from_secs(1)))
        } else {
            limit
        };
        match tokio::time::timeout(wait, bg.run.child.wait()).await {
            Ok(Ok(status)) => outcome.exit_code = status.code().map(i64::from),
            _ => {
                outcome.timed_out = true;
                stop_group(&mut bg.run.child, bg.run.pgid, Duration::from_secs(5)).await;
            }
        }
        outcome.output = bg.run.collected().await;
        // A step we stopped on purpose ends by SIGINT: that is its expected end.
        if stop && !outcome.timed_out && outcome.exit_code.is_none_or(|c| c == 130) {
            outcome.exit_code = Some(0);
        }
        let (check, captures, ok) = judge(block, &outcome);
        let record = BlockRecord {
            id: block.id.clone(),
            digest: block.digest(),
            line: block.line,
            command: bg.command.clone(),
            ran_on: ran_on(block),
            output: clip(&outcome.output),
            exit_code: outcome.exit_code,
            timed_out: outcome.timed_out,
            ok,
            duration_ms: bg.started.elapsed().as_millis() as u64,
            started_at: bg.started_at.clone(),
            server_version: server_version.clone(),
            check,
            captures,
            attempts: 1,
        };
        if self.stream {
            eprintln!(
                "── background step {} ended ──\n{}",
                block.id,
                record.output.trim_end()
            );
        }
        self.report(&record, block);
        (bg.index, record)
    }

    fn note(&self, text: &str) {
        if self.stream {
            eprintln!("▸ {text}");
        }
    }

    fn announce(&self, chapter: &Chapter, block: &Block, command: &str) {
        if !self.stream {
            return;
        }
        let kind = if block.check {
            "check"
        } else if block.background {
            "background"
        } else {
            "step"
        };
        eprintln!(
            "\n── {} [{}] {kind} on {} ──",
            block.location(&chapter.path),
            block.id,
            ran_on(block)
        );
        for line in command.lines() {
            eprintln!(
                "{} {line}",
                if block.runner == Runner::Shell {
                    "$"
                } else {
                    ">"
                }
            );
        }
    }

    fn report(&self, record: &BlockRecord, block: &Block) {
        if !self.stream {
            return;
        }
        let status = match (record.timed_out, record.exit_code) {
            (true, _) => format!("stopped at its {} s bound", block.timeout.as_secs_f64()),
            (false, Some(code)) => format!("exit {code}"),
            (false, None) => "no exit status".into(),
        };
        let mark = if record.ok { "✔" } else { "✘" };
        match &record.check {
            Some(check) => eprintln!(
                "{mark} check {}: {}{}",
                if check.passed { "held" } else { "did NOT hold" },
                check.claim,
                figure_text(&check.figure)
            ),
            None => eprintln!(
                "{mark} {status} in {:.2} s",
                record.duration_ms as f64 / 1000.0
            ),
        }
    }
}

/// Whether an outcome meets the block's expectation; its check and captures.
pub(crate) fn judge(
    block: &Block,
    outcome: &Outcome,
) -> (Option<CheckRecord>, BTreeMap<String, String>, bool) {
    let exit_ok = match block.expect {
        Expect::Success => !outcome.timed_out && outcome.exit_code == Some(0),
        Expect::Failure => !outcome.timed_out && outcome.exit_code.is_some_and(|c| c != 0),
        Expect::Exit(code) => !outcome.timed_out && outcome.exit_code == Some(code),
        Expect::Timeout => outcome.timed_out,
    };
    let mut captures = BTreeMap::new();
    for name in &block.captures {
        let value = match &outcome.table {
            Some((header, rows)) => header
                .iter()
                .position(|h| h == name)
                .and_then(|i| rows.first().and_then(|r| r.get(i)).cloned()),
            None => render::capture_line(&outcome.output, name),
        };
        if let Some(value) = value {
            captures.insert(name.clone(), value);
        }
    }
    let captured_all = captures.len() == block.captures.len();
    let check = block.check.then(|| {
        let (passed, figure) = match &outcome.table {
            Some((header, rows)) => {
                let row = rows.first();
                let held = row
                    .and_then(|r| r.first())
                    .is_some_and(|v| v == "t" || v == "true");
                let figure = header
                    .iter()
                    .zip(row.into_iter().flatten())
                    .skip(1)
                    .map(|(h, v)| (h.clone(), v.clone()))
                    .collect();
                (held && exit_ok, figure)
            }
            None => (exit_ok, captures.clone().into_iter().collect()),
        };
        CheckRecord {
            claim: block.claim.clone().unwrap_or_default(),
            passed,
            figure,
        }
    });
    let chart_ok = block.chart.is_none() || crate::chart::parse(&outcome.output).is_ok();
    let ok = exit_ok && captured_all && chart_ok && check.as_ref().is_none_or(|c| c.passed);
    (check, captures, ok)
}

fn figure_text(figure: &[(String, String)]) -> String {
    if figure.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = figure.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!(" ({})", parts.join(", "))
}

fn ran_on(block: &Block) -> String {
    match &block.runner {
        Runner::Shell => "sh".into(),
        Runner::Sql { service, .. } => service.clone(),
    }
}

/// Removes terminal escape sequences (colours, `ESC[2K` line erases that some CLIs
/// print even to a pipe): the record keeps the text a reader sees.
pub(crate) fn strip_ansi(output: &str) -> String {
    let mut out = String::with_capacity(output.len());
    let mut chars = output.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn clip(output: &str) -> String {
    let output = &strip_ansi(output);
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

fn spawn_reader(
    child: &mut Child,
    output: Arc<Mutex<String>>,
    echo: bool,
) -> tokio::task::JoinHandle<()> {
    let stdout = child.stdout.take();
    tokio::spawn(async move {
        let Some(stdout) = stdout else { return };
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                eprintln!("{line}");
            }
            if let Ok(mut out) = output.lock() {
                out.push_str(&line);
                out.push('\n');
            }
        }
    })
}

/// SIGINT to the step's process group, then SIGKILL after `grace`.
async fn stop_group(child: &mut Child, pgid: Pid, grace: Duration) {
    let _ = killpg(pgid, Signal::SIGINT);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = child.wait().await;
    }
}

/// `PATH` with the folder of the running executable first, so chapters can call
/// `runner` (and `mdbook-lab` live runs find the `runner` built beside it).
pub(crate) fn path_with_runner() -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    match std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
    {
        Some(dir) => format!("{}:{path}", dir.display()),
        None => path,
    }
}

/// Now, UTC, to the millisecond: the timeline places steps by it.
fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Saves the shell's own variables (lower-case names, not exported) when the step
/// ends, however it ends, for the next step to source.
const SAVE_SHELL_STATE: &str = r#"__lab_save() {
  local __lab_v
  for __lab_v in $(compgen -v); do
    case "$__lab_v" in [a-z]*) ;; *) continue ;; esac
    [[ "$(declare -p "$__lab_v" 2>/dev/null)" =~ ^declare\ -[a-zA-Z]*[xr] ]] && continue
    declare -p "$__lab_v" 2>/dev/null
  done >"$LAB_SHELL_STATE.new" && mv -f "$LAB_SHELL_STATE.new" "$LAB_SHELL_STATE"
}
trap __lab_save EXIT
"#;

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
        let clipped = clip(&long);
        assert!(clipped.len() < long.len());
        assert!(clipped.starts_with("line 0\n"));
        assert!(clipped.trim_end().ends_with("line 9999"));
        assert!(clipped.contains("lines left out"));
    }
}
