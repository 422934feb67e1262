//! Reader mode: `runner exec --as-reader`, a chapter typed into one terminal.
//!
//! The course is followed by people typing the pages into a terminal, and a chapter
//! that passes only through the engine is a broken chapter: the engine runs each shell
//! step in a fresh `bash -e`, carries variables through a state file, runs SQL through
//! the Docker API and stops background steps by process group — none of which a reader
//! has. Reader mode brings the cluster to the chapter's precondition exactly as the
//! engine does ([`Engine::establish_precondition`]), then types the text the page shows
//! ([`crate::typed`], the contract between page and engine) into one persistent
//! interactive bash in a pseudo-terminal ([`ReaderSession`]): background jobs (`cmd &`,
//! `writer=$!`), `kill -INT $writer; wait $writer`, shell variables and the working
//! directory carry over from block to block as they do for a reader. Every block is
//! judged by the engine's own [`crate::engine::judge`], so the same checks must hold.
//!
//! How each block is typed:
//!
//! - `sh`: its typed text, line by line, each line when the shell shows its prompt.
//!   The block's status is that of its first command line that failed, read from the
//!   prompt's `$?`; the session sets `pipefail`, so a pipeline fails as it does in the
//!   engine's `bash -e -o pipefail` — without `-e`, which would close a reader's
//!   terminal at the first failing command.
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

mod report;
mod screen;
mod session;
mod sql;
mod typing;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::engine::{
    Engine, Judgement, Outcome, SharedObserver, StepEnd, judge, path_with_runner, strip_psql_prefix,
};
use crate::{Block, Chapter, Runner, typed};
use lab_cluster::Cluster;
use lab_cluster::compose;

pub use report::{ReaderBlock, ReaderReport};
pub use session::{Prompt, ReaderSession, Shown};
use sql::{container_psqls, read_csv, sql_lines};

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
/// Settings of a reader-mode run.
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// `PATH` in the terminal (the runner's folder first, so chapters find `runner`).
    pub path: String,
}

impl Default for ReaderOptions {
    /// Options with `PATH` as the engine gives shell steps.
    fn default() -> ReaderOptions {
        ReaderOptions {
            path: path_with_runner(),
        }
    }
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
        Some(engine.observer.clone()),
    )
    .await?;
    let mut run = ChapterRun {
        cluster,
        chapter,
        observer: engine.observer.clone(),
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
    observer: SharedObserver,
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
        let mut own = self.end_named_jobs(session, block, prefix_lines).await?;
        own.extend(body_lines.iter().map(|l| l.to_string()));
        if block.background {
            return self.start_job(session, block, &own, started).await;
        }
        let deadline = started + block.timeout;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (outcome, problem) = match &block.runner {
                Runner::Shell => {
                    let typing = self
                        .type_block(session, block, &own, deadline, None)
                        .await?;
                    let outcome = Outcome {
                        end: typing.end(block.timeout),
                        output: typing.output,
                        table: None,
                    };
                    (outcome, typing.problem)
                }
                Runner::Sql { service, .. } => {
                    let psql = typed.psql.as_deref().unwrap_or_default();
                    let prefix = &own[..own.len() - body_lines.len()];
                    self.type_sql(
                        session,
                        block,
                        service,
                        psql,
                        (prefix, body_lines),
                        deadline,
                        attempts,
                    )
                    .await?
                }
            };
            let Judgement {
                check,
                captures,
                ok,
            } = judge(block, &outcome);
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
                    end: outcome.end,
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

    /// `kill -INT $job; wait $job` and `wait $job`: typed, they end the jobs they name.
    /// Returns the lines that name no job of this terminal (a hidden step started it,
    /// or nothing did): they are the block's own, and their failure the block's.
    async fn end_named_jobs(
        &mut self,
        session: &mut ReaderSession,
        block: &Block,
        prefix_lines: &[&str],
    ) -> Result<Vec<String>> {
        let mut own = Vec::new();
        for (i, line) in prefix_lines.iter().enumerate() {
            let (id, stop) = match block.stops.get(i) {
                Some(id) => (id, true),
                None => (&block.awaits[i - block.stops.len()], false),
            };
            if self.jobs.contains_key(id) {
                self.end_job(session, id, stop, line).await?;
            } else {
                own.push(line.to_string());
            }
        }
        Ok(own)
    }

    /// Types a background block (`cmd &`, `id=$!`) and keeps it as a job of the terminal.
    async fn start_job(
        &mut self,
        session: &mut ReaderSession,
        block: &Block,
        lines: &[String],
        started: Instant,
    ) -> Result<Option<ReaderBlock>> {
        let from = session.transcript_len();
        let deadline = Instant::now() + GRACE + GRACE;
        let typing = self.type_lines(session, lines, deadline, None).await?;
        self.sentinel(session).await?;
        self.jobs.insert(
            block.id.clone(),
            Job {
                index: block.index,
                started,
                transcript_from: from,
            },
        );
        Ok(typing
            .problem
            .map(|problem| self.failure(block, started, problem)))
    }

    /// Types a SQL block into the psql command the page names (its CSV, for a check or
    /// captures, to a file of the scratch folder); the outcome and any problem.
    #[allow(clippy::too_many_arguments)]
    async fn type_sql(
        &mut self,
        session: &mut ReaderSession,
        block: &Block,
        service: &str,
        psql: &str,
        (prefix, body): (&[String], &[&str]),
        deadline: Instant,
        attempt: u32,
    ) -> Result<(Outcome, Option<String>)> {
        let csv = self
            .scratch
            .join(format!("{}-{attempt}.csv", block.index + 1));
        let _ = std::fs::remove_file(&csv);
        let tabular = block.check || !block.captures.is_empty();
        let sql = match sql_lines(psql, body, tabular.then_some(csv.as_path())) {
            Ok(sql) => sql,
            Err(err) => return Ok((Outcome::default(), Some(format!("{err:#}")))),
        };
        let mut lines = prefix.to_vec();
        lines.extend(sql);
        let before = container_psqls(self.cluster, service).await;
        let typing = self
            .type_block(
                session,
                block,
                &lines,
                deadline,
                Some((service, before.as_slice())),
            )
            .await?;
        let mut outcome = Outcome {
            end: typing.end(block.timeout),
            output: strip_psql_prefix(&typing.output),
            table: None,
        };
        let mut problem = typing.problem;
        if tabular && outcome.end == StepEnd::Exit(0) {
            match read_csv(&csv) {
                Ok(table) => {
                    outcome.output.push_str(&table.aligned());
                    self.observer.output(&table.aligned());
                    outcome.table = Some(table);
                }
                Err(err) => problem = problem.or(Some(format!("{err:#}"))),
            }
        }
        Ok((outcome, problem))
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
            end: typing.end(block.timeout),
            table: None,
        };
        // A job stopped on purpose ends by SIGINT: that is its expected end.
        if stop && matches!(outcome.end, StepEnd::NoStatus | StepEnd::Exit(130)) {
            outcome.end = StepEnd::Exit(0);
        }
        let Judgement {
            check,
            captures,
            ok,
        } = judge(block, &outcome);
        let result = ReaderBlock {
            id: block.id.clone(),
            line: block.line,
            check: false,
            hidden: false,
            output: std::mem::take(&mut outcome.output),
            end: outcome.end,
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
            end: StepEnd::NoStatus,
            attempts: 1,
            check_record: None,
            captures: BTreeMap::new(),
            ok: false,
            problem: Some(problem),
            duration: started.elapsed(),
        }
    }

    fn say(&self, text: &str) {
        self.observer.note(text);
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
        let mark = if result.ok { "✔" } else { "✘" };
        if let Some(problem) = &result.problem {
            self.say(&format!("{mark} {problem}"));
        }
        match &result.check_record {
            Some(check) => self.say(&format!("{mark} {}", check.verdict())),
            None => {
                let status = match result.end {
                    StepEnd::TimedOut(bound) => {
                        format!("Ctrl-C at its {} s bound", bound.as_secs_f64())
                    }
                    end => end.to_string(),
                };
                let who = if block.background {
                    format!("background job {}: ", block.id)
                } else {
                    String::new()
                };
                self.say(&format!(
                    "{mark} {who}{status} in {:.2} s",
                    result.duration.as_secs_f64()
                ));
            }
        }
    }
}
