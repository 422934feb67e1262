//! Reader mode: `runner exec --as-reader`, a chapter typed into one terminal.
//!
//! The course is followed by people typing the pages into a terminal, and a chapter
//! that passes only through the engine is a broken chapter: the engine runs each shell
//! step in a fresh `bash -e`, carries variables through a state file, runs SQL through
//! the Docker API and stops background steps by process group — none of which a reader
//! has. Reader mode brings the cluster to the chapter's precondition exactly as the
//! engine does ([`Engine::establish_precondition`]), then types the text the page shows
//! ([`crate::lab::typed`], the contract between page and engine) into one persistent
//! interactive bash in a pseudo-terminal ([`ReaderSession`]): background jobs (`cmd &`,
//! `writer=$!`), `kill -INT $writer; wait $writer`, shell variables and the working
//! directory carry over from block to block as they do for a reader. Every block is
//! judged by the engine's own [`crate::run::judge`], so the same checks must hold.
//!
//! How each block is typed:
//!
//! - `sh`: its typed text, line by line, each line when the shell shows its prompt.
//!   The block's status is that of its first command that failed (a pipeline failing
//!   as `pipefail` says), read from the prompt's `${PIPESTATUS[*]}` — the engine's
//!   `bash -e -o pipefail` without stopping the terminal, which a reader's does not.
//! - `sql`: the typed psql command made non-interactive — `docker compose exec -T`,
//!   `-X -v ON_ERROR_STOP=1` (and `--csv` for checks and captures, as the engine) — fed
//!   the block's text by a quoted heredoc (`<<'LAB_SQL'`). Its `-v name="$name"` are
//!   expanded by the session's own shell: a value an earlier block kept in a variable
//!   reaches psql only if the reader's terminal has it.
//! - A SQL check's CSV goes to a file the session names (`>'/tmp/…/7-1.csv'`), not to
//!   the terminal: a background writer printing while the check runs interleaves with
//!   the terminal (as it would for a reader) and could cut a CSV line in two. Notices
//!   and errors still reach the terminal; the output shown is them and the result as
//!   psql's aligned table, as the engine records it.
//! - After each block the runner types a sentinel, `printf '\n__lab_end_<n>__ %d\n'
//!   $?`, and reads the terminal until it appears (bounded by the block's timeout and a
//!   few seconds): it ends the block's output and re-synchronises the typing.
//! - `expect-timeout`: at the bound the runner presses Ctrl-C, as the page says, and
//!   counts the block as timed out. With `-T`, `docker compose exec` has no terminal in
//!   the container and does not pass the signal on (the client ends, psql goes on
//!   waiting in SyncRep); a reader's psql has one, and the keypress reaches psql. So for
//!   a SQL block the runner first delivers the keypress where the reader's terminal
//!   would: SIGINT to the psql that this block started in the container (found by
//!   comparing the container's `docker exec`-started psql processes before and after),
//!   then, if the terminal is not back, Ctrl-C in the session.
//! - `wait-until`: the block is typed again every 0.5 s until it holds or its bound
//!   passes ("repeat until it holds").
//! - Hidden steps are not typed (the reader never sees them); hidden checks still run,
//!   in the same terminal, because they verify rather than set up.
//! - A background job's output is everything the terminal showed from its start to its
//!   end (its lines interleave with the other blocks', as on a reader's screen); its
//!   status is what the `wait` that ends it returns (SIGINT from `stop=` counts as the
//!   expected end, as in the engine). Jobs the chapter leaves running are stopped at its
//!   end the same way.
//!
//! Reader mode records nothing (records come from the engine); it streams what it types
//! and what the terminal shows, and reports per block whether it ended as the chapter
//! expects.

mod screen;
mod session;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cluster::Cluster;
use crate::compose;
use crate::lab::{Block, Chapter, Expect, Runner, typed};
use crate::record::CheckRecord;
use crate::render;
use crate::run::{Engine, Outcome, judge, path_with_runner, strip_psql_prefix};

pub use session::{Prompt, ReaderSession, Shown};

use screen::{clean, pipefail, sentinel_command, sentinel_tag, take_sentinel};

/// How long a foreground block may overrun its bound before Ctrl-C (process start-up,
/// `docker compose exec`'s own overhead).
const GRACE: Duration = Duration::from_secs(5);
/// How long a stopped background job gets to end after `kill -INT` (as the engine).
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long the terminal gets to come back after a Ctrl-C.
const CTRL_C_WAIT: Duration = Duration::from_secs(5);
/// How long the sentinel gets to appear once the block is done.
const SENTINEL_WAIT: Duration = Duration::from_secs(10);
/// `wait-until`: the pause between two typings of the block.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// The heredoc delimiter SQL blocks are typed with.
const HEREDOC: &str = "LAB_SQL";

/// Settings of a reader-mode run.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Copy what is typed and what the terminal shows to stderr.
    pub stream: bool,
    /// `PATH` in the terminal (the runner's folder first, so chapters find `runner`).
    pub path: String,
}

impl ReaderOptions {
    /// Options with `PATH` as the engine gives shell steps.
    pub fn new(stream: bool) -> ReaderOptions {
        ReaderOptions {
            stream,
            path: path_with_runner(),
        }
    }
}

/// How one block ended when typed.
#[derive(Debug, Clone)]
pub struct ReaderBlock {
    /// The block's id.
    pub id: String,
    /// The line of its opening fence.
    pub line: usize,
    /// Whether it is a check.
    pub check: bool,
    /// A hidden check: run in the terminal, though the reader does not type it.
    pub hidden: bool,
    /// What the terminal showed (cleaned; a SQL result as psql's table).
    pub output: String,
    /// The status: of the first failing command, or of the stopped job.
    pub exit_code: Option<i64>,
    /// Whether it hit its bound (and got a Ctrl-C).
    pub timed_out: bool,
    /// How many times it was typed (`wait-until`).
    pub attempts: u32,
    /// The check's outcome, for checks.
    pub check_record: Option<CheckRecord>,
    /// Captured values.
    pub captures: BTreeMap<String, String>,
    /// Whether it ended as the chapter expects.
    pub ok: bool,
    /// What went wrong in the typing itself (an unfinished command, a closed terminal).
    pub problem: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

/// A chapter typed as a reader.
#[derive(Debug, Clone)]
pub struct ReaderReport {
    /// The chapter's path.
    pub chapter: String,
    /// The blocks typed (and hidden checks run), in chapter order.
    pub blocks: Vec<ReaderBlock>,
    /// Hidden steps left out.
    pub skipped: usize,
    /// The whole run, precondition included.
    pub duration: Duration,
}

impl ReaderReport {
    /// Blocks that did not end as the chapter expects.
    pub fn failed(&self) -> Vec<&ReaderBlock> {
        self.blocks.iter().filter(|b| !b.ok).collect()
    }

    /// Checks that held, and that did not.
    pub fn checks(&self) -> (usize, usize) {
        let checks = self.blocks.iter().filter(|b| b.check);
        let held = checks.clone().filter(|b| b.ok).count();
        (held, checks.count() - held)
    }

    /// One line: blocks typed, checks held and failed, time.
    pub fn summary(&self) -> String {
        let (held, failed) = self.checks();
        let typed = self.blocks.iter().filter(|b| !b.hidden).count();
        let hidden = self.blocks.len() - typed;
        let bad = self.failed().len();
        let mut line = format!(
            "{} as a reader: {} typed in {:.1} s, {held} {} held, {failed} failed, {} did not \
             end as the chapter expects",
            self.chapter,
            plural(typed, "block"),
            self.duration.as_secs_f64(),
            if held == 1 { "check" } else { "checks" },
            plural(bad, "block"),
        );
        if hidden > 0 || self.skipped > 0 {
            line.push_str(&format!(
                " ({} run, {} not typed)",
                plural(hidden, "hidden check"),
                plural(self.skipped, "hidden step")
            ));
        }
        line
    }
}

/// `1 block`, `2 blocks`.
fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// A background job started by a typed `cmd &`.
struct Job {
    index: usize,
    started: Instant,
    transcript_from: usize,
}

/// A folder for SQL checks' CSV, removed with the run.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one typing of a block's lines produced.
#[derive(Debug, Default)]
struct Typing {
    output: String,
    exit_code: Option<i64>,
    timed_out: bool,
    problem: Option<String>,
}

/// Brings the cluster to `chapter`'s precondition with `engine` and types the chapter
/// into one terminal as a reader does; reports how each block ended. An error means the
/// run could not proceed (the cluster would not come up, the terminal stopped
/// answering); a block that fails is reported, not returned as an error.
pub async fn run_chapter_as_reader(
    engine: &mut Engine,
    chapter: &Chapter,
    options: &ReaderOptions,
) -> Result<ReaderReport> {
    let started = Instant::now();
    engine.establish_precondition(chapter).await?;
    let cluster = &engine.cluster;
    let settings = &cluster.settings;
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "lab-reader-{}-{}",
        std::process::id(),
        settings.project()
    )));
    std::fs::create_dir_all(&scratch.0)
        .with_context(|| format!("creating {}", scratch.0.display()))?;
    let mut session = ReaderSession::start(
        &settings.compose_dir(),
        &compose::environment(settings),
        &options.path,
        options.stream,
    )
    .await?;
    let mut run = ChapterRun {
        cluster,
        chapter,
        stream: options.stream,
        scratch: &scratch.0,
        jobs: HashMap::new(),
        results: Vec::new(),
        sentinels: 0,
    };
    let outcome = run.blocks(&mut session).await;
    session.close().await;
    outcome?;
    let mut blocks = run.results;
    blocks.sort_by_key(|(index, _)| *index);
    Ok(ReaderReport {
        chapter: chapter.path.clone(),
        blocks: blocks.into_iter().map(|(_, b)| b).collect(),
        skipped: chapter
            .blocks
            .iter()
            .filter(|b| b.hidden && !b.check)
            .count(),
        duration: started.elapsed(),
    })
}

struct ChapterRun<'a> {
    cluster: &'a Cluster,
    chapter: &'a Chapter,
    stream: bool,
    scratch: &'a Path,
    jobs: HashMap<String, Job>,
    results: Vec<(usize, ReaderBlock)>,
    sentinels: usize,
}

impl ChapterRun<'_> {
    async fn blocks(&mut self, session: &mut ReaderSession) -> Result<()> {
        for block in &self.chapter.blocks {
            if block.hidden && !block.check {
                self.say(&format!(
                    "\n── {} [{}] hidden step: not typed (the reader does not see it) ──",
                    block.location(&self.chapter.path),
                    block.id
                ));
                continue;
            }
            session.drain()?;
            let result = self.block(session, block).await?;
            if let Some(result) = result {
                self.report(block, &result);
                self.results.push((block.index, result));
            }
        }
        // Jobs the chapter left running end as the engine ends them: SIGINT, then wait.
        let mut left: Vec<(String, usize)> = self
            .jobs
            .iter()
            .map(|(id, j)| (id.clone(), j.index))
            .collect();
        left.sort_by_key(|(_, index)| *index);
        for (id, _) in left {
            self.say(&format!(
                "\n── end of chapter: the runner stops background job {id} ──"
            ));
            self.end_job(session, &id, true, &format!("kill -INT ${id}; wait ${id}"))
                .await?;
        }
        Ok(())
    }

    /// Types one block; `None` for a background block (judged when it ends).
    async fn block(
        &mut self,
        session: &mut ReaderSession,
        block: &Block,
    ) -> Result<Option<ReaderBlock>> {
        let typed = typed(block);
        self.announce(block, typed.instruction.as_deref());
        let lines: Vec<&str> = typed.text.lines().collect();
        let prefix = block.stops.len() + block.awaits.len();
        let (prefix_lines, body_lines) = lines.split_at(prefix.min(lines.len()));
        let started = Instant::now();

        // `kill -INT $job; wait $job` and `wait $job`: they end the jobs they name.
        let mut own_prefix = Vec::new();
        for (i, line) in prefix_lines.iter().enumerate() {
            let (id, stop) = match block.stops.get(i) {
                Some(id) => (id, true),
                None => (&block.awaits[i - block.stops.len()], false),
            };
            if self.jobs.contains_key(id) {
                self.end_job(session, id, stop, line).await?;
            } else {
                // No such job in this terminal (a hidden step started it, or nothing
                // did): the line is the block's own, and its failure the block's.
                own_prefix.push(line.to_string());
            }
        }

        if block.background {
            let from = session.transcript_len();
            let mut lines = own_prefix;
            lines.extend(body_lines.iter().map(|l| l.to_string()));
            let deadline = Instant::now() + GRACE + GRACE;
            let typing = self.type_lines(session, &lines, deadline, None).await?;
            self.sentinel(session).await?;
            self.jobs.insert(
                block.id.clone(),
                Job {
                    index: block.index,
                    started,
                    transcript_from: from,
                },
            );
            if let Some(problem) = typing.problem {
                return Ok(Some(self.failure(block, started, problem)));
            }
            return Ok(None);
        }

        let deadline = started + block.timeout;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut outcome = Outcome::default();
            let mut problem = None;
            let typing = match &block.runner {
                Runner::Shell => {
                    let mut lines = own_prefix.clone();
                    lines.extend(body_lines.iter().map(|l| l.to_string()));
                    self.type_block(session, block, &lines, deadline, None)
                        .await?
                }
                Runner::Sql { service, .. } => {
                    let psql = typed.psql.as_deref().unwrap_or_default();
                    let csv = self
                        .scratch
                        .join(format!("{}-{attempts}.csv", block.index + 1));
                    let _ = std::fs::remove_file(&csv);
                    let tabular = block.check || !block.captures.is_empty();
                    match sql_lines(psql, body_lines, tabular.then_some(csv.as_path())) {
                        Ok(sql) => {
                            let mut lines = own_prefix.clone();
                            lines.extend(sql);
                            let before = container_psqls(self.cluster, service).await;
                            let mut typing = self
                                .type_block(
                                    session,
                                    block,
                                    &lines,
                                    deadline,
                                    Some((service.as_str(), before.as_slice())),
                                )
                                .await?;
                            typing.output = strip_psql_prefix(&typing.output);
                            if tabular && typing.exit_code == Some(0) {
                                match read_csv(&csv) {
                                    Ok(table) => {
                                        typing
                                            .output
                                            .push_str(&render::psql_table(&table.0, &table.1));
                                        if self.stream {
                                            eprint!("{}", render::psql_table(&table.0, &table.1));
                                        }
                                        outcome.table = Some(table);
                                    }
                                    Err(err) => problem = Some(format!("{err:#}")),
                                }
                            }
                            typing
                        }
                        Err(err) => Typing {
                            problem: Some(format!("{err:#}")),
                            ..Typing::default()
                        },
                    }
                }
            };
            outcome.output = typing.output;
            outcome.exit_code = typing.exit_code;
            outcome.timed_out = typing.timed_out;
            let problem = typing.problem.or(problem);
            let (check, captures, ok) = judge(block, &outcome);
            let ok = ok && problem.is_none();
            let done = ok
                || !block.wait_until
                || problem.is_some()
                || Instant::now() + RETRY_EVERY >= deadline;
            if done {
                return Ok(Some(ReaderBlock {
                    id: block.id.clone(),
                    line: block.line,
                    check: block.check,
                    hidden: block.hidden,
                    output: outcome.output,
                    exit_code: outcome.exit_code,
                    timed_out: outcome.timed_out,
                    attempts,
                    check_record: check,
                    captures,
                    ok,
                    problem,
                    duration: started.elapsed(),
                }));
            }
            // "Repeat it until it holds": the reader looks again in a moment.
            tokio::time::sleep(RETRY_EVERY).await;
            self.say(&format!("── typed again (attempt {}) ──", attempts + 1));
        }
    }

    /// Types a foreground block's lines within its bound (Ctrl-C at the bound for
    /// `expect-timeout`, a few seconds later otherwise), then the sentinel.
    async fn type_block(
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
    async fn type_lines(
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
    async fn cancel(
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
    async fn sentinel(&mut self, session: &mut ReaderSession) -> Result<(i64, String)> {
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

    /// Types the line that ends job `id` (`kill -INT $id; wait $id`, or `wait $id`) and
    /// judges the job: its status is what `wait` returns.
    async fn end_job(
        &mut self,
        session: &mut ReaderSession,
        id: &str,
        stop: bool,
        line: &str,
    ) -> Result<()> {
        let Some(job) = self.jobs.remove(id) else {
            return Ok(());
        };
        let block = &self.chapter.blocks[job.index];
        let limit = block.timeout.saturating_sub(job.started.elapsed());
        let wait = if stop {
            STOP_GRACE.min(limit.max(Duration::from_secs(1)))
        } else {
            limit
        };
        let lines = [line.to_string()];
        let mut typing = self
            .type_lines(session, &lines, Instant::now() + wait, None)
            .await?;
        if typing.timed_out {
            // Ctrl-C interrupted `wait`; the job itself is still running: end it.
            let kill = format!("kill -KILL -- -${id} 2>/dev/null; wait ${id} 2>/dev/null");
            self.type_lines(session, &[kill], Instant::now() + CTRL_C_WAIT, None)
                .await?;
        }
        self.sentinel(session).await?;
        let mut outcome = Outcome {
            output: session.transcript_since(job.transcript_from),
            exit_code: if typing.timed_out {
                None
            } else {
                typing.exit_code
            },
            timed_out: typing.timed_out,
            table: None,
        };
        // A job stopped on purpose ends by SIGINT: that is its expected end.
        if stop && !outcome.timed_out && outcome.exit_code.is_none_or(|c| c == 130) {
            outcome.exit_code = Some(0);
        }
        let (check, captures, ok) = judge(block, &outcome);
        let result = ReaderBlock {
            id: block.id.clone(),
            line: block.line,
            check: false,
            hidden: false,
            output: std::mem::take(&mut outcome.output),
            exit_code: outcome.exit_code,
            timed_out: outcome.timed_out,
            attempts: 1,
            check_record: check,
            captures,
            ok,
            problem: typing.problem.take(),
            duration: job.started.elapsed(),
        };
        self.report(block, &result);
        self.results.push((job.index, result));
        Ok(())
    }

    fn failure(&self, block: &Block, started: Instant, problem: String) -> ReaderBlock {
        ReaderBlock {
            id: block.id.clone(),
            line: block.line,
            check: block.check,
            hidden: block.hidden,
            output: String::new(),
            exit_code: None,
            timed_out: false,
            attempts: 1,
            check_record: None,
            captures: BTreeMap::new(),
            ok: false,
            problem: Some(problem),
            duration: started.elapsed(),
        }
    }

    fn say(&self, text: &str) {
        if self.stream {
            eprintln!("{text}");
        }
    }

    fn announce(&self, block: &Block, instruction: Option<&str>) {
        let kind = match (block.check, block.background, block.hidden) {
            (true, _, true) => "hidden check (run by the runner, not typed by the reader)",
            (true, _, false) => "check",
            (false, true, _) => "background",
            _ => "step",
        };
        let on = match &block.runner {
            Runner::Shell => "sh".to_string(),
            Runner::Sql { service, .. } => service.clone(),
        };
        self.say(&format!(
            "\n── {} [{}] {kind} on {on}, typed ──",
            block.location(&self.chapter.path),
            block.id
        ));
        if let Some(instruction) = instruction {
            self.say(&format!("   (the page says: {instruction})"));
        }
    }

    fn report(&self, block: &Block, result: &ReaderBlock) {
        if !self.stream {
            return;
        }
        let mark = if result.ok { "✔" } else { "✘" };
        if let Some(problem) = &result.problem {
            eprintln!("{mark} {problem}");
        }
        match &result.check_record {
            Some(check) => {
                let figure: Vec<String> = check
                    .figure
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                eprintln!(
                    "{mark} check {}: {}{}",
                    if check.passed { "held" } else { "did NOT hold" },
                    check.claim,
                    if figure.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", figure.join(", "))
                    }
                );
            }
            None => {
                let status = match (result.timed_out, result.exit_code) {
                    (true, _) => format!("Ctrl-C at its {} s bound", block.timeout.as_secs_f64()),
                    (false, Some(code)) => format!("exit {code}"),
                    (false, None) => "no exit status".into(),
                };
                let who = if block.background {
                    format!("background job {}: ", block.id)
                } else {
                    String::new()
                };
                eprintln!(
                    "{mark} {who}{status} in {:.2} s",
                    result.duration.as_secs_f64()
                );
            }
        }
    }
}

/// A SQL block as typed: the page's psql command made non-interactive (`-T`, `-X`,
/// `-v ON_ERROR_STOP=1`, `--csv` when a table is read back, its CSV to `csv`), fed
/// the block's text by a quoted heredoc.
fn sql_lines(psql: &str, body: &[&str], csv: Option<&Path>) -> Result<Vec<String>> {
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
fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the check's CSV {}", path.display()))?;
    render::parse_csv(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Lists the psql processes `docker exec` started in a container (parent 0 in its pid
/// namespace).
const LIST_PSQL: &str = r#"for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = psql ] && grep -qs '^PPid:[[:space:]]*0$' "$d/status" && echo "${d#/proc/}"
done; true"#;

/// The `docker exec`-started psql processes of `service` (empty when it is not running).
async fn container_psqls(cluster: &Cluster, service: &str) -> Vec<i64> {
    let cmd = ["sh".to_string(), "-c".to_string(), LIST_PSQL.to_string()];
    match cluster
        .engine
        .exec(
            cluster.settings.project(),
            service,
            &cmd,
            None,
            Duration::from_secs(10),
        )
        .await
    {
        Ok(out) => parse_pids(&out.stdout),
        Err(_) => Vec::new(),
    }
}

fn parse_pids(text: &str) -> Vec<i64> {
    text.split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// SIGINT to the psql processes of `service` that were not there `before`: the block's
/// own. Returns how many were signalled.
async fn interrupt_container_psql(cluster: &Cluster, service: &str, before: &[i64]) -> usize {
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
    match cluster
        .engine
        .exec(
            cluster.settings.project(),
            service,
            &cmd,
            None,
            Duration::from_secs(10),
        )
        .await
    {
        Ok(out) if out.exit_code == Some(0) => new.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::parse_chapter;

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
        let (header, rows) = read_csv(&path).unwrap();
        assert_eq!(header, ["held", "standby"]);
        assert_eq!(rows, [["t", "postgres-sync-standby"]]);
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
            exit_code: Some(0),
            timed_out: false,
            table: Some(render::parse_csv("ok,n\nt,1\n").unwrap()),
        };
        let (check, captures, ok) = judge(block, &held);
        assert!(ok && check.unwrap().passed);
        assert_eq!(captures["n"], "1");
        let failed = Outcome {
            table: Some(render::parse_csv("ok,n\nf,2\n").unwrap()),
            ..held
        };
        assert!(!judge(block, &failed).2);
    }

    #[test]
    fn container_pids_are_parsed_leniently() {
        assert_eq!(parse_pids("12\n345\n\nx\n"), [12, 345]);
    }
}
