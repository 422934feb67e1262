//! `runner exec`: a chapter's steps, from a terminal.

use std::process::ExitCode;

use anyhow::bail;
use runner::book::{LabChapter, lab_chapters, select};
use runner::cluster::Cluster;
use runner::lab::Runner;
use runner::record;
use runner::run::Engine;
use runner::settings::Settings;

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
    let mut engine = Engine::new(cluster, true);
    let mut failed = 0;
    for lab in selected {
        let chapter = &lab.chapter;
        eprintln!("▶ {}", chapter.path);
        let record = tokio::select! {
            record = engine.run_chapter(chapter) => record?,
            _ = tokio::signal::ctrl_c() => {
                bail!("interrupted: {} was not re-recorded (its previous record is kept); \
                       `runner down` or the next `runner exec` recovers the cluster", chapter.path);
            }
        };
        let path = record::save(&book, chapter, &record)?;
        let bad: Vec<_> = record.blocks.iter().filter(|b| !b.ok).collect();
        eprintln!(
            "\n{}: {} blocks in {:.1} s, {} did not hold; recorded in {}",
            chapter.path,
            record.blocks.len(),
            record.duration_ms as f64 / 1000.0,
            bad.len(),
            path.strip_prefix(&engine.cluster.settings.root)
                .unwrap_or(&path)
                .display()
        );
        for b in &bad {
            eprintln!("  ✘ {}:{} [{}]", chapter.path, b.line, b.id);
        }
        failed += bad.len();
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
