//! The book offline: fixture chapters and records rendered through mdbook-driver with
//! the lab preprocessor; stale records and bad markup fail the build with locations.

use std::path::{Path, PathBuf};

use runner::book::{self, Mode};
use runner::lab::engine::{SharedObserver, Silent};

/// Offline builds run nothing: nobody needs to hear about steps.
fn silent() -> SharedObserver {
    std::sync::Arc::new(Silent)
}
use runner::lab::parse_chapter;
use runner::lab::record::{self, BlockRecord, ChapterRecord, CheckRecord};

/// A copy of the fixture book in a temporary folder (removed when dropped), as
/// `<tmp>/book`, so messages name it `book/src/…` as they name the real one.
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/book");
    let tmp = tempfile::Builder::new()
        .prefix(&format!("lab-book-{name}-"))
        .tempdir()
        .unwrap();
    let to = tmp.path().join("book");
    copy_dir(&from, &to);
    (tmp, to)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// What the fixture's background writer printed.
const WRITER_OUTPUT: &str = "\
load: [   1.0s]   1800.0 tx/s  ok=1800 errors=0 p50=1.00ms p99=3.10ms in-flight=2
load: [   2.0s]   1900.0 tx/s  ok=3700 errors=0 p50=1.00ms p99=3.20ms in-flight=2
load: [   2.6s] transaction connection_closed: FATAL 57P01: terminating connection due to administrator command
load: [   3.0s]    900.0 tx/s  ok=4600 errors=2 p50=1.10ms p99=4.00ms in-flight=0
load: [   4.0s]      0.0 tx/s  ok=4600 errors=2 p50=0.00ms p99=0.00ms in-flight=0
load: [   5.0s]   1700.0 tx/s  ok=6300 errors=2 p50=1.00ms p99=3.50ms in-flight=2
     scenario......................: 2 workers → pgbouncer, rate unlimited, synchronous_commit server default, prepared statements, 5.4s

run_id: 7
target: pgbouncer
attempted: 6902
acknowledged: 6900
errors: 2
errors_connection_closed: 2
p50_ms: 1.012
p99_ms: 3.480
started_at: 2026-11-27T10:00:01.012Z
";

/// Records the fixture chapter as a run would have (the figures are the fixture's).
fn record_fixture(book_dir: &Path) {
    let chapters = runner::lab::chapters::lab_chapters(book_dir).unwrap();
    let chapter = &chapters[0].chapter;
    let block = |i: usize, output: &str| BlockRecord {
        id: chapter.blocks[i].id.clone(),
        digest: chapter.blocks[i].digest(),
        line: chapter.blocks[i].line,
        command: chapter.blocks[i].body.clone(),
        ran_on: "postgres-primary".into(),
        output: output.into(),
        exit_code: Some(0),
        timed_out: false,
        ok: true,
        duration_ms: 42,
        started_at: "2026-11-27T10:00:00Z".into(),
        server_version: Some("17.12 (Debian 17.12-0+deb13u1)".into()),
        check: None,
        captures: Default::default(),
        attempts: 1,
    };
    let mut check = block(1, " ok | waiting\n----+---------\n t  |       0\n(1 row)\n");
    check.check = Some(CheckRecord {
        claim: "nothing waits on SyncRep".into(),
        passed: true,
        figure: vec![("waiting".into(), "0".into())],
    });
    check.captures.insert("waiting".into(), "0".into());
    // A background writer (its live line once a second, then its summary) through a
    // restart of the primary 3.5 s after it started, stopped after 5.4 s.
    let mut writer = block(2, WRITER_OUTPUT);
    writer.ran_on = "sh".into();
    writer.started_at = "2026-11-27T10:00:01.000Z".into();
    writer.duration_ms = 5400;
    let mut restart = block(
        3,
        " Container lab-postgres-primary-1  Restarting\n Container lab-postgres-primary-1  Started\n",
    );
    restart.ran_on = "sh".into();
    restart.started_at = "2026-11-27T10:00:03.500Z".into();
    let mut stop = block(4, "the writer is stopped\n");
    stop.ran_on = "sh".into();
    stop.started_at = "2026-11-27T10:00:06.400Z".into();
    let rec = ChapterRecord {
        format: runner::lab::record::FORMAT,
        chapter: chapter.path.clone(),
        recorded_at: "2026-11-27T10:00:00Z".parse().unwrap(),
        server_version: Some("17.12".into()),
        duration_ms: 100,
        blocks: vec![
            block(
                0,
                "   application_name    | sync_state \n-----------------------+------------\n postgres-sync-standby | sync\n(1 row)\n",
            ),
            check,
            writer,
            restart,
            stop,
        ],
    };
    record::save(book_dir, chapter, &rec).unwrap();
}

#[test]
fn offline_build_splices_records_into_the_html() {
    let (_tmp, dir) = fixture_copy("ok");
    record_fixture(&dir);
    let summary = book::check(&dir).unwrap();
    assert!(summary.ok(), "{summary:?}");
    assert_eq!(
        (summary.blocks, summary.fresh, summary.checks_passed),
        (5, 5, 1)
    );
    let out = book::build(&dir, Some(Mode::Offline), silent()).unwrap();
    let html = std::fs::read_to_string(out.join("chapter-1-streaming.html")).unwrap();
    assert!(
        html.contains("postgres-sync-standby | sync"),
        "output spliced"
    );
    assert!(html.contains("lab-check passed"), "check rendered");
    assert!(html.contains("nothing waits on SyncRep"));
    assert!(
        html.contains("<span class=\"lab-value\""),
        "placeholder filled"
    );
    assert!(html.contains("PostgreSQL 17.12"), "metadata shown");
    assert!(!html.contains("sql lab on="), "lab attributes stripped");
    assert!(html.contains("language-sql"), "highlighting kept");
    // The background writer: typed with `&` where it starts, drawn where it is stopped.
    let start = html
        .find("writer=$!")
        .expect("background typed with its job variable");
    let note = html
        .find("its output is shown where it ends, below.")
        .expect("background note");
    let stop = html
        .find("kill -INT $writer; wait $writer")
        .expect("stop typed");
    let chart = html
        .find("<div class=\"lab-chart\"><svg")
        .expect("timeline drawn");
    assert!(start < note && note < stop && stop < chart);
    assert!(html.contains("acknowledged writes through a restart"));
    assert!(html.contains("restart the primary"), "event marked");
    assert!(
        html.contains("acknowledged <strong>6900</strong>"),
        "summary"
    );
    assert!(
        html.contains("<details><summary>full output of the writer</summary>"),
        "full output collapsed"
    );
    let details = &html[html.find("<details>").unwrap()..html.find("</details>").unwrap()];
    assert!(
        details.contains("<pre><code class=\"language-text\">load: [   1.0s]"),
        "the output renders as a code block inside <details>: {details}"
    );
}

#[test]
fn stale_record_fails_the_build_with_file_and_line() {
    let (_tmp, dir) = fixture_copy("stale");
    record_fixture(&dir);
    let path = dir.join("src/chapter-1-streaming.md");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("sync_state FROM", "sync_state, state FROM");
    std::fs::write(&path, text).unwrap();
    let summary = book::check(&dir).unwrap();
    assert_eq!((summary.stale, summary.fresh), (1, 4));
    assert!(
        summary.problems[0].contains("src/chapter-1-streaming.md:7 [step-1]: stale"),
        "{:?}",
        summary.problems
    );
    let err = format!(
        "{:#}",
        book::build(&dir, Some(Mode::Offline), silent()).unwrap_err()
    );
    assert!(
        err.contains("chapter-1-streaming.md:7 [step-1]: stale (its text changed"),
        "{err}"
    );
}

#[test]
fn bad_markup_fails_with_line_and_column_and_keeps_records() {
    let (_tmp, dir) = fixture_copy("bad");
    record_fixture(&dir);
    let before = std::fs::read_to_string(dir.join("recorded/chapter-1-streaming.json")).unwrap();
    let path = dir.join("src/chapter-1-streaming.md");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "```sql lab on=postgres-primary\n",
        "```sql lab on=postgres-primary timeout=soon\n",
    );
    std::fs::write(&path, text).unwrap();
    let err = format!("{:#}", book::check(&dir).unwrap_err());
    assert!(
        err.contains("src/chapter-1-streaming.md:7:32: malformed timeout"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        book::build(&dir, Some(Mode::Offline), silent()).unwrap_err()
    );
    assert!(err.contains("chapter-1-streaming.md:7:32"), "{err}");
    let after = std::fs::read_to_string(dir.join("recorded/chapter-1-streaming.json")).unwrap();
    assert_eq!(before, after, "records untouched");
}

#[test]
fn chapters_are_selected_by_number_name_or_stem() {
    let src = "```sh lab\necho\n```\n";
    let mk = |path: &str| runner::lab::chapters::LabChapter {
        chapter: parse_chapter(path, path, src).unwrap(),
        source: src.into(),
    };
    let chapters = vec![
        mk("chapter-1-cluster.md"),
        mk("chapter-10-more.md"),
        mk("appendix.md"),
    ];
    assert_eq!(
        runner::lab::chapters::select(&chapters, "1")
            .unwrap()
            .chapter
            .path,
        "chapter-1-cluster.md"
    );
    assert_eq!(
        runner::lab::chapters::select(&chapters, "chapter-10")
            .unwrap()
            .chapter
            .path,
        "chapter-10-more.md"
    );
    assert_eq!(
        runner::lab::chapters::select(&chapters, "appendix")
            .unwrap()
            .chapter
            .path,
        "appendix.md"
    );
    assert!(runner::lab::chapters::select(&chapters, "7").is_err());
}

/// The spliced Markdown of the fixture chapter, compared byte for byte with the committed
/// snapshot (`SNAPSHOTS=overwrite cargo test --test book` rewrites it after a deliberate
/// change; read the diff before committing it).
#[test]
fn spliced_chapter_matches_its_snapshot() {
    let (_tmp, dir) = fixture_copy("snapshot");
    record_fixture(&dir);
    let chapters = runner::lab::chapters::lab_chapters(&dir).unwrap();
    let lab = &chapters[0];
    let record = record::load(&dir, &lab.chapter).unwrap().unwrap();
    let spliced = runner::book::render::splice(&lab.source, &lab.chapter, &record);
    snapbox::assert_data_eq!(
        spliced,
        snapbox::file!["fixtures/chapter-1-streaming.spliced.md"].raw()
    );
}
