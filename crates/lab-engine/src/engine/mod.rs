//! The engine: runs a chapter's lab blocks against the live cluster and records them.
//!
//! Steps run in chapter order. A shell step runs `bash -e -o pipefail` in `compose/`
//! with the lab's environment (its own process group, so a bound or Ctrl-C stops
//! everything it started); a SQL step runs `psql` inside its service through the
//! Docker API, wrapped in `timeout` so that a commit hung in SyncRep is cancelled
//! inside the container at the bound — exactly as a reader's Ctrl-C would — and never
//! hangs the build. Background steps keep running while later steps run and are
//! stopped (SIGINT, then SIGKILL) by a later `stop=`, or at the end of the chapter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{SecondsFormat, Utc};
use nix::sys::signal::{Signal, killpg};

use crate::{Block, Chapter, Runner};
use lab_cluster::Cluster;

mod judge;
mod observer;
mod psql;
mod shell;

use crate::output::for_record;
use crate::record::{self, BlockRecord, ChapterRecord};
pub use judge::StepEnd;
pub(crate) use judge::{Judgement, Outcome, judge};
use lab_cluster::pg;
pub use observer::{Observer, SharedObserver, Silent, Traced};
pub(crate) use psql::strip_psql_prefix;
pub(crate) use shell::path_with_runner;
use shell::{Running, exit_end, stop_group};

/// How long a stopped background step gets to finish after SIGINT.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Runs chapters against a cluster.
pub struct Engine {
    /// The cluster the steps run against.
    pub cluster: Cluster,
    /// Who hears what happens (steps starting, printing, ending).
    pub observer: SharedObserver,
    /// The chapter's shell variables, carried from one shell step to the next as a
    /// reader's terminal carries them (`t_kill=$(date +%s.%N)` in one block, `$t_kill`
    /// in a later one): each step sources the file and writes its variables back.
    shell_state: PathBuf,
}

struct Background {
    run: Running,
    started: Instant,
    started_at: String,
    index: usize,
    command: String,
}

impl Engine {
    /// An engine for `cluster`, reporting to `observer`.
    pub fn new(cluster: Cluster, observer: SharedObserver) -> Engine {
        let shell_state = std::env::temp_dir().join(format!(
            "lab-shell-state-{}-{}.sh",
            std::process::id(),
            cluster.settings.project()
        ));
        Engine {
            cluster,
            observer,
            shell_state,
        }
    }

    /// Runs `chapter` ([`Engine::run_chapter`]), saves its record under `book`, and lists
    /// the steps that did not end as the chapter expects (`chapter.md:41 [id]`): what
    /// `runner exec` and a live book build both do.
    pub async fn record_chapter(&mut self, book: &Path, chapter: &Chapter) -> Result<Recorded> {
        let record = self.run_chapter(chapter).await?;
        let path = record::save(book, chapter, &record)?;
        let failed = record
            .blocks
            .iter()
            .filter(|b| !b.ok)
            .map(|b| format!("{}:{} [{}]", chapter.path, b.line, b.id))
            .collect();
        Ok(Recorded {
            record,
            path,
            failed,
        })
    }

    /// Brings the cluster to the chapter's precondition, runs every block, and returns
    /// the record. Step failures are recorded (`ok: false`), not returned as errors;
    /// an error means the run itself could not proceed (the cluster would not come up).
    pub async fn run_chapter(&mut self, chapter: &Chapter) -> Result<ChapterRecord> {
        let started = Instant::now();
        let recorded_at = Utc::now();
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
            self.observer.step_started(chapter, block, &command);
            if block.background {
                let bg = self.spawn_background(block, &command).await?;
                background.insert(block.id.clone(), bg);
                continue;
            }
            let record = self.run_block(block, &command, &server_version).await;
            self.observer.step_ended(block, &record);
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
            format: crate::record::FORMAT,
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
            .prepare_images(
                lab_cluster::images::BaseWay::Auto,
                &[lab_cluster::images::Suite::Trixie],
            )
            .await?;
        if let Some(pre) = &chapter.precondition {
            if pre.fresh {
                self.observer.note(&format!(
                    "precondition: a fresh cluster ({})",
                    pre.services.join(", ")
                ));
                self.cluster.down(true).await?;
            }
            if !pre.services.is_empty() {
                let services: Vec<&str> = pre.services.iter().map(String::as_str).collect();
                self.cluster
                    .up(&services, lab_cluster::images::BaseWay::Auto)
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
        let (outcome, judgement) = loop {
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
            let judgement = judge(block, &outcome);
            if judgement.ok
                || !block.wait_until
                || Instant::now() + Duration::from_millis(500) >= deadline
            {
                break (outcome, judgement);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        block_record(
            block,
            Ran {
                command: command.to_string(),
                started_at,
                duration: started.elapsed(),
                server_version: server_version.clone(),
                attempts,
            },
            &outcome,
            judgement,
        )
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
            Ok(Ok(status)) => outcome.end = exit_end(status),
            _ => {
                outcome.end = StepEnd::TimedOut(block.timeout);
                stop_group(&mut bg.run.child, bg.run.pgid, Duration::from_secs(5)).await;
            }
        }
        outcome.output = bg.run.collected().await;
        // A step we stopped on purpose ends by SIGINT: that is its expected end.
        if stop && matches!(outcome.end, StepEnd::NoStatus | StepEnd::Exit(130)) {
            outcome.end = StepEnd::Exit(0);
        }
        let judgement = judge(block, &outcome);
        let record = block_record(
            block,
            Ran {
                command: bg.command.clone(),
                started_at: bg.started_at.clone(),
                duration: bg.started.elapsed(),
                server_version: server_version.clone(),
                attempts: 1,
            },
            &outcome,
            judgement,
        );
        self.observer.step_ended(block, &record);
        (bg.index, record)
    }
}

/// A chapter run and recorded.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Its record.
    pub record: ChapterRecord,
    /// Where the record was saved.
    pub path: PathBuf,
    /// The steps that did not end as the chapter expects, `chapter.md:41 [id]`.
    pub failed: Vec<String>,
}

/// How and when a step ran, beside what it produced.
pub(crate) struct Ran {
    /// The text as run.
    pub(crate) command: String,
    /// When it started (RFC 3339, milliseconds).
    pub(crate) started_at: String,
    /// How long it ran.
    pub(crate) duration: Duration,
    /// The server version of the run.
    pub(crate) server_version: Option<String>,
    /// How many attempts it took (wait-until).
    pub(crate) attempts: u32,
}

/// The record of a step: the one place a [`BlockRecord`] is made.
pub(crate) fn block_record(
    block: &Block,
    ran: Ran,
    outcome: &Outcome,
    judgement: Judgement,
) -> BlockRecord {
    BlockRecord {
        id: block.id.clone(),
        digest: block.digest(),
        line: block.line,
        command: ran.command,
        ran_on: ran_on(block),
        output: for_record(&outcome.output),
        exit_code: outcome.end.exit_code(),
        timed_out: outcome.end.timed_out(),
        ok: judgement.ok,
        duration_ms: ran.duration.as_millis() as u64,
        started_at: ran.started_at,
        server_version: ran.server_version,
        check: judgement.check,
        captures: judgement.captures,
        attempts: ran.attempts,
    }
}

/// Where a step runs: `sh`, or the service whose psql runs it.
pub fn ran_on(block: &Block) -> String {
    match &block.runner {
        Runner::Shell => "sh".into(),
        Runner::Sql { service, .. } => service.clone(),
    }
}

/// Now, UTC, to the millisecond: the timeline places steps by it.
fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}
