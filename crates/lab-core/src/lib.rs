//! Lab blocks: the executable steps of a chapter.
//!
//! A chapter is ordinary Markdown. A fenced code block whose info string carries the
//! word `lab` is a step the engine runs; one carrying `check` is a claim of the text
//! the engine verifies; a `lab-precondition` block states (and lets the runner
//! establish) the cluster a chapter starts from. The syntax is documented for readers
//! in the book's appendix "How this book is built".
//!
//! ```text
//! ```sh lab id=writer background timeout=90s
//! ```sql lab on=postgres-primary capture=lsn
//! ```sql check on=postgres-primary claim="no session waits on SyncRep" wait-until
//! ```lab-precondition fresh services=pgbouncer,postgres-async-standby
//! ```
//!
//! Parsing keeps every block's byte span in the chapter source, so the preprocessor
//! splices recorded output in place without re-serialising the Markdown, and every
//! error names the chapter file, line and column.

mod attrs;
pub mod chapters;
pub mod live_line;
pub mod output;
mod parse;
pub mod record;
pub mod settings;
pub mod text_table;
pub mod topology;
pub mod topology_state;
mod typed;

use std::ops::Range;
use std::time::Duration;

pub use attrs::parse_duration;
pub use parse::{code_spans, parse_chapter, placeholders};
pub use typed::{Typed, typed};

/// The default bound on one step.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How a step is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// `bash` in `compose/`, as the reader types it.
    Shell,
    /// `psql` inside a service's container.
    Sql {
        /// The compose service whose psql runs the SQL.
        service: String,
        /// The database.
        database: String,
    },
}

/// What a step's exit status must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exit 0.
    Success,
    /// Any non-zero exit.
    Failure,
    /// This exact exit code.
    Exit(i64),
    /// Still running at its bound (a commit that hangs, by design).
    Timeout,
}

/// One lab step or check of a chapter.
#[derive(Debug, Clone)]
pub struct Block {
    /// Position among the chapter's lab blocks, from 0.
    pub index: usize,
    /// `id=` or `step-<index+1>`.
    pub id: String,
    /// How it runs.
    pub runner: Runner,
    /// The language shown to the reader (`sh`, `sql`), used for highlighting.
    pub lang: String,
    /// Whether it is a claim the text makes (a `check`).
    pub check: bool,
    /// The claim in words (`claim=`), shown beside the verified figure.
    pub claim: Option<String>,
    /// The block's text.
    pub body: String,
    /// The info string as written.
    pub info: String,
    /// Byte range of the whole fenced block (fences included) in the chapter source.
    pub span: Range<usize>,
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The bound on the step.
    pub timeout: Duration,
    /// Runs on while later steps run.
    pub background: bool,
    /// Setup the reader need not see.
    pub hidden: bool,
    /// The exit status the step must have.
    pub expect: Expect,
    /// Re-run until it succeeds (or its check holds), within the timeout.
    pub wait_until: bool,
    /// Values to capture from the output, by name.
    pub captures: Vec<String>,
    /// Background steps to stop (SIGINT) before this step runs.
    pub stops: Vec<String>,
    /// Background steps to wait for before this step runs.
    pub awaits: Vec<String>,
    /// Draw the output (columns under a header) as a chart with this title.
    pub chart: Option<String>,
    /// Draw the output (a label and a number per row, under a header) as a bar chart
    /// with this title.
    pub bars: Option<String>,
    /// For SQL blocks: shell variables handed to psql as `-v name="$name"`, so a value
    /// an earlier shell step kept reaches the SQL as `:'name'` (the reader types the same).
    pub vars: Vec<String>,
    /// A moment of the chapter, marked with this label on the timeline of any writer
    /// running in the background while the step runs (`event="kill the primary"`).
    pub event: Option<String>,
    /// For a background `runner load`: draw its per-second line as a timeline with this
    /// title (acknowledged and failed transactions per second, the chapter's events marked),
    /// its full output collapsed below.
    pub timeline: Option<String>,
    /// Draw the output — `runner topology`'s table — as a diagram of the cluster with
    /// this caption (`book::diagram`).
    pub topology: Option<String>,
}

impl Block {
    /// The shell variable a background step's process id is kept in (`writer=$!`): its id.
    pub fn job_var(&self) -> &str {
        &self.id
    }
}

impl Block {
    /// What identifies the text the step's record was made from.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(self.info.trim().as_bytes());
        hash.update(b"\n");
        hash.update(self.body.as_bytes());
        let bytes = hash.finalize();
        bytes.iter().take(12).map(|b| format!("{b:02x}")).collect()
    }

    /// Where the step is, for messages: `chapter-2-synchronous.md:41`.
    pub fn location(&self, file: &str) -> String {
        format!("{file}:{}", self.line)
    }
}

/// The cluster a chapter starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    /// Start from new volumes (`docker compose down -v` first).
    pub fresh: bool,
    /// The services that must run (with what they depend on); empty = no cluster.
    pub services: Vec<String>,
    /// The reader-facing text of the block.
    pub text: String,
    /// Byte range in the chapter source.
    pub span: Range<usize>,
}

/// A chapter's lab content.
#[derive(Debug, Clone)]
pub struct Chapter {
    /// The chapter's path relative to the book's `src/`.
    pub path: String,
    /// The steps and checks, in order.
    pub blocks: Vec<Block>,
    /// The precondition, when the chapter states one.
    pub precondition: Option<Precondition>,
}

impl Chapter {
    /// The record file stem: the chapter file's stem.
    pub fn stem(&self) -> String {
        std::path::Path::new(&self.path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.clone())
    }

    /// The names this chapter's steps capture.
    pub fn capture_names(&self) -> Vec<&str> {
        self.blocks
            .iter()
            .flat_map(|b| b.captures.iter().map(String::as_str))
            .collect()
    }
}

/// A problem in a chapter's lab markup, located precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabError {
    /// The chapter file as the reader knows it (e.g. `book/src/chapter-2.md`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for LabError {}

/// Several lab errors, reported together.
#[derive(Debug, Clone)]
pub struct LabErrors(pub Vec<LabError>);

impl std::fmt::Display for LabErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for LabErrors {}

/// 1-based line and column (in characters) of byte `offset` in `source`.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, source[line_start..offset].chars().count() + 1)
}
