//! The book's lab chapters: the Markdown files under `book/src` that hold lab blocks,
//! parsed, and found by the selectors the CLI takes (`4`, `chapter-4`, a file stem).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Chapter, LabErrors, parse_chapter};

/// A chapter file of the book with its lab content.
#[derive(Debug, Clone)]
pub struct LabChapter {
    /// The chapter's lab blocks.
    pub chapter: Chapter,
    /// Its Markdown source.
    pub source: String,
}

/// Reads and parses every chapter under `book/src` that has lab blocks, in the book's
/// order (the numbered chapters by path, then the appendices).
/// Markup errors of all chapters are reported together.
pub fn lab_chapters(book: &Path) -> Result<Vec<LabChapter>> {
    let src = book.join("src");
    let mut files = Vec::new();
    collect_markdown(&src, &mut files).with_context(|| format!("reading {}", src.display()))?;
    // The book's order: the numbered chapters, then the appendices.
    files.sort_by_key(|f| {
        let appendix = f
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("appendix"));
        (appendix, f.clone())
    });
    let mut chapters = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        let source = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        match parse_chapter(&display_path(book, &rel), &rel, &source) {
            Ok(chapter) if chapter.blocks.is_empty() && chapter.precondition.is_none() => {}
            Ok(chapter) => chapters.push(LabChapter { chapter, source }),
            Err(LabErrors(errs)) => errors.extend(errs),
        }
    }
    if !errors.is_empty() {
        return Err(LabErrors(errors).into());
    }
    Ok(chapters)
}

/// A chapter file as messages name it: `book/src/chapter-4-manual-failover.md` (the
/// book folder's name, then `src/` and the chapter's path in it).
pub fn display_path(book: &Path, rel: &str) -> String {
    let name = book
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "book".into());
    format!("{name}/src/{rel}")
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_markdown(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    Ok(())
}

/// Finds a chapter by number (`4`), `chapter-4`, or file stem.
pub fn select<'a>(chapters: &'a [LabChapter], selector: &str) -> Result<&'a LabChapter> {
    let wanted = if selector.chars().all(|c| c.is_ascii_digit()) {
        format!("chapter-{selector}")
    } else {
        selector.trim_end_matches(".md").to_string()
    };
    let found: Vec<&LabChapter> = chapters
        .iter()
        .filter(|c| {
            let stem = c.chapter.stem();
            stem == wanted || stem.starts_with(&format!("{wanted}-"))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "no lab chapter matches {selector:?} (chapters: {})",
            chapters
                .iter()
                .map(|c| c.chapter.stem())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        many => bail!(
            "{selector:?} matches several chapters: {}",
            many.iter()
                .map(|c| c.chapter.stem())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
