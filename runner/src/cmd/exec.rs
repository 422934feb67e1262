//! `runner exec`: a chapter's steps, from a terminal.

use std::process::ExitCode;

use anyhow::bail;
use runner::cluster::Cluster;
use runner::cluster::settings::Settings;
use runner::lab::Runner;
use runner::lab::chapters::{LabChapter, lab_chapters, select};
use runner::lab::engine::Engine;
use runner::lab::reader::{ReaderOptions, run_chapter_as_reader};

use super::console::Console;

/// Arguments of `runner exec`.
#[derive(clap::Args)]
pub struct ExecArgs {
    /// The chapter: a number (4), chapter-4, or the file stem.
    #[arg(required_unless_present = "all")]
    chapter: Option<String>,
    /// Every lab chapter, in order.
    #[arg(long, conflicts_with = "chapter")]
    all: bool,
    /// List the steps without running them.
    #[arg(long)]
    dry_run: bool,
    /// Type each chapter into one interactive terminal as a reader does (the text the
    /// page shows), judging every block as the engine does; records nothing.
    #[arg(long, conflicts_with = "dry_run")]
    as_reader: bool,
}

pub async fn run(settings: Settings, args: ExecArgs) -> anyhow::Result<ExitCode> {
    let book = settings.book_dir();
    let chapters = lab_chapters(&book)?;
    let selected: Vec<&LabChapter> = match &args.chapter {
        Some(selector) => vec![select(&chapters, selector)?],
        None => chapters.iter().collect(),
    };
    if selected.is_empty() {
        bail!("the book has no lab chapters");
    }
    if args.dry_run {
        for lab in &selected {
            let ch = &lab.chapter;
            println!("{}", ch.path);
            if let Some(pre) = &ch.precondition {
                println!(
                    "  precondition: {}{}",
                    if pre.fresh { "fresh, " } else { "" },
                    pre.services.join(" ")
                );
            }
            for b in &ch.blocks {
                let on = match &b.runner {
                    Runner::Shell => "sh".to_string(),
                    Runner::Sql { service, .. } => format!("sql on {service}"),
                };
                let kind = if b.check {
                    "check"
                } else if b.background {
                    "background"
                } else {
                    "step"
                };
                let first = b.body.lines().next().unwrap_or("");
                println!("  {:>4}  {:<12} {kind:<10} {on:<30} {first}", b.line, b.id);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let cluster = Cluster::connect(settings).await?;
    let mut engine = Engine::new(cluster, Console::shared());
    if args.as_reader {
        return as_reader(&mut engine, &selected).await;
    }
    let mut failed = 0;
    for lab in selected {
        let chapter = &lab.chapter;
        eprintln!("▶ {}", chapter.path);
        let recorded = tokio::select! {
            recorded = engine.record_chapter(&book, chapter) => recorded?,
            _ = tokio::signal::ctrl_c() => {
                bail!("interrupted: {} was not re-recorded (its previous record is kept); \
                       `runner down` or the next `runner exec` recovers the cluster", chapter.path);
            }
        };
        let path = &recorded.path;
        eprintln!(
            "\n{}: {} blocks in {:.1} s, {} did not hold; recorded in {}",
            chapter.path,
            recorded.record.blocks.len(),
            recorded.record.duration_ms as f64 / 1000.0,
            recorded.failed.len(),
            path.strip_prefix(&engine.cluster.settings.root)
                .unwrap_or(path)
                .display()
        );
        for at in &recorded.failed {
            eprintln!("  ✘ {at}");
        }
        failed += recorded.failed.len();
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `runner exec --as-reader`: each chapter typed into one terminal; a summary line per
/// chapter; non-zero when a block did not end as its chapter expects.
async fn as_reader(engine: &mut Engine, selected: &[&LabChapter]) -> anyhow::Result<ExitCode> {
    let options = ReaderOptions::default();
    let mut failed = 0;
    let mut summaries = Vec::new();
    for lab in selected {
        let chapter = &lab.chapter;
        eprintln!("▶ {} (as a reader)", chapter.path);
        // On Ctrl-C the run is dropped: its terminal and every job in it are killed.
        let report = tokio::select! {
            report = run_chapter_as_reader(engine, chapter, &options) => report?,
            _ = tokio::signal::ctrl_c() => {
                bail!("interrupted while typing {}; its terminal and jobs were stopped", chapter.path);
            }
        };
        eprintln!("\n{}", report.summary());
        for b in report.failed() {
            let why = b
                .problem
                .as_deref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default();
            eprintln!("  ✘ {}:{} [{}]{why}", chapter.path, b.line, b.id);
        }
        failed += report.failed().len();
        summaries.push(report.summary());
    }
    if summaries.len() > 1 {
        eprintln!();
        for line in &summaries {
            eprintln!("{line}");
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
