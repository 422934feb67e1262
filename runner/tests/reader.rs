//! Reader mode against a cluster of its own (`lab-test-reader`, ports of its own):
//! a fixture chapter typed into one terminal — a background writer, a shell variable
//! and the working directory carried from block to block, a SQL block fed a shell
//! variable with `vars=`, a commit hung in SyncRep cancelled by Ctrl-C, a writer
//! stopped with `kill -INT $writer; wait $writer` — and a check that fails because the
//! reader never types the hidden step it depends on, then the same check fixed.

mod common;

use std::path::{Path, PathBuf};

use common::{TestCluster, port_base, slot};
use runner::lab::engine::Engine;
use runner::lab::parse_chapter;
use runner::lab::reader::{ReaderOptions, ReaderReport, run_chapter_as_reader};

const CHAPTER: &str = r#"# Reader fixture

```lab-precondition fresh services=pgbouncer
A primary, its synchronous standby, and pgbouncer in front.
```

```sql check on=postgres-primary claim="the sync standby streams" wait-until timeout=30s
SELECT count(*) = 1 AS streams, max(application_name) AS standby
FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming';
```

```sh lab
t0=$(date +%s)
cd ..
```

```sh lab id=writer background timeout=90s
runner load --target pgbouncer --workers 2 --duration 20s --ledger LEDGER
```

```sh lab hidden
hidden_var=set-by-a-hidden-step
```

```sh lab capture=t0
cd compose
echo "t0: $t0"
```

```sql lab on=postgres-primary vars=t0
CREATE TABLE reader_marker AS SELECT :'t0'::bigint AS t0;
```

```sh lab
docker compose stop postgres-sync-standby
```

```sql lab on=postgres-primary vars=t0 timeout=3s expect-timeout
INSERT INTO reader_marker VALUES (:'t0'::bigint + 1);
```

```sql check on=postgres-primary vars=t0 claim="the commit cancelled by Ctrl-C is there locally" capture=rows
SELECT count(*) = 2 AS both_there, count(*) AS rows
FROM reader_marker WHERE t0 IN (:'t0'::bigint, :'t0'::bigint + 1);
```

```sh lab
docker compose start postgres-sync-standby
```

```sql check on=postgres-primary claim="the standby is back as sync and no commit waits" wait-until timeout=60s
SELECT count(*) = 1 AND (SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep') = 0 AS back
FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming';
```

```sh lab stop=writer capture=acknowledged
runner verify --ledger LEDGER --on postgres-primary --expect-no-loss
```

```sh check claim="a variable set by a hidden step reaches the reader"
test "$hidden_var" = set-by-a-hidden-step
```
"#;

/// The last check, fixed: the variable is set by a step the reader types.
const FIXED: &str = r#"# Reader fixture, fixed

```sh lab
visible_var=set-by-a-visible-step
```

```sh check claim="a variable set by a visible step reaches the reader"
test "$visible_var" = set-by-a-visible-step
```
"#;

/// `PATH` with the freshly built `runner` first, as the chapters call it.
fn options() -> ReaderOptions {
    let runner = Path::new(env!("CARGO_BIN_EXE_runner"));
    let dir = runner.parent().unwrap().display().to_string();
    ReaderOptions {
        path: format!("{dir}:{}", std::env::var("PATH").unwrap_or_default()),
    }
}

fn block<'a>(report: &'a ReaderReport, id: &str) -> &'a runner::lab::reader::ReaderBlock {
    report
        .blocks
        .iter()
        .find(|b| b.id == id)
        .unwrap_or_else(|| panic!("no block {id} in {report:#?}"))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker: ./course test runs it"]
async fn a_chapter_typed_into_one_terminal() {
    let ledger: PathBuf =
        std::env::temp_dir().join(format!("lab-test-reader-{}.ledger", std::process::id()));
    let _ = std::fs::remove_file(&ledger);
    let source = CHAPTER.replace("LEDGER", &ledger.display().to_string());
    let chapter = parse_chapter("reader.md", "reader.md", &source).expect("fixture parses");

    let test = TestCluster::new("lab-test-reader", port_base(slot::READER)).await;
    let mut engine = Engine::new(test.cluster.clone(), common::printed());
    let report = run_chapter_as_reader(&mut engine, &chapter, &options())
        .await
        .expect("the chapter is typed");
    eprintln!("{}", report.summary());

    // Every block but the hidden step was typed; the hidden step was not.
    assert_eq!(report.skipped, 1);
    assert_eq!(report.blocks.len(), chapter.blocks.len() - 1);
    assert!(
        block(&report, "step-1").ok,
        "{:#?}",
        block(&report, "step-1")
    );

    // `t0` set in one block, read in a later one; `cd ..` then `cd compose` worked.
    let t0 = block(&report, "step-5").captures["t0"].clone();
    assert!(t0.parse::<u64>().is_ok(), "t0 = {t0:?}");
    // `vars=t0` reached psql from the terminal's own variable.
    assert!(
        block(&report, "step-6").ok,
        "{:#?}",
        block(&report, "step-6")
    );

    // The commit hung in SyncRep; Ctrl-C at 3 s cancelled it, with PostgreSQL's warning.
    let hung = block(&report, "step-8");
    assert!(hung.end.timed_out() && hung.ok, "{hung:#?}");
    assert!(
        hung.output.contains("already committed locally"),
        "{hung:#?}"
    );
    let local = block(&report, "step-9");
    assert!(local.ok, "{local:#?}");
    assert_eq!(local.captures["rows"], "2");
    assert!(
        block(&report, "step-11").ok,
        "{:#?}",
        block(&report, "step-11")
    );

    // The writer ran in the background (its live lines on the terminal) and was stopped
    // by `kill -INT $writer; wait $writer`; every acknowledged write is on the primary.
    let writer = block(&report, "writer");
    assert!(writer.ok, "{writer:#?}");
    assert!(writer.output.contains("commit acknowledged"), "{writer:#?}");
    let verify = block(&report, "step-12");
    assert!(verify.ok, "{verify:#?}");
    assert!(
        verify.captures["acknowledged"].parse::<u64>().unwrap() > 0,
        "{verify:#?}"
    );

    // The reader never typed the hidden step, so its variable is not in their terminal:
    // the check that depends on it fails, and is reported.
    let hidden = block(&report, "step-13");
    assert!(!hidden.ok, "{hidden:#?}");
    assert!(!hidden.check_record.as_ref().unwrap().passed);
    let failed: Vec<&str> = report.failed().iter().map(|b| b.id.as_str()).collect();
    assert_eq!(failed, ["step-13"], "{report:#?}");
    assert_eq!(report.checks(), (3, 1));
    assert!(
        report.summary().contains("1 failed"),
        "{}",
        report.summary()
    );

    // Fixed: the variable set by a step the reader types; the check holds.
    let fixed = parse_chapter("fixed.md", "fixed.md", FIXED).expect("fixed fixture parses");
    let report = run_chapter_as_reader(&mut engine, &fixed, &options())
        .await
        .expect("the fixed chapter is typed");
    assert!(report.failed().is_empty(), "{report:#?}");
    assert_eq!(report.checks(), (1, 0));

    let _ = std::fs::remove_file(&ledger);
    drop(engine);
    drop(test);
}
