//! The book with the engine at hand: `lab-book` renders it (re-exported here), and the
//! engine runs the chapters a live or auto build asks for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

pub use lab_book::*;

use crate::cluster::Cluster;
use crate::cluster::settings::Settings;
use crate::lab::Chapter;
use crate::lab::engine::{Engine, SharedObserver};

/// The engine as the book's [`LiveRun`]: the chapters run in this process, against the
/// project's cluster, their steps reported to an observer.
pub struct EngineLive {
    observer: SharedObserver,
}

impl EngineLive {
    /// Runs chapters reporting their steps to `observer`.
    pub fn new(observer: SharedObserver) -> EngineLive {
        EngineLive { observer }
    }
}

impl LiveRun for EngineLive {
    fn run(&self, book_dir: &Path, chapters: &[&Chapter]) -> Result<()> {
        let root = book_dir
            .parent()
            .context("the book folder has no parent (the project root)")?;
        let settings = Settings::load(root)?;
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        runtime.block_on(async {
            let cluster = Cluster::connect(settings).await?;
            let mut engine = Engine::new(cluster, self.observer.clone());
            let mut failed = Vec::new();
            for chapter in chapters {
                engine
                    .observer
                    .note(&format!("lab: running {} live", chapter.path));
                failed.extend(engine.record_chapter(book_dir, chapter).await?.failed);
            }
            if !failed.is_empty() {
                bail!(
                    "steps did not end as their chapters expect:\n  {}",
                    failed.join("\n  ")
                );
            }
            Ok(())
        })
    }
}

/// Builds the book in-process (mdbook-driver) with the lab preprocessor; a live run
/// goes through the engine and reports its steps to `observer`.
pub fn build(book_dir: &Path, mode: Option<Mode>, observer: SharedObserver) -> Result<PathBuf> {
    lab_book::build(book_dir, mode, Some(Arc::new(EngineLive::new(observer))))
}
