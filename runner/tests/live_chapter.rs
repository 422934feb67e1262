//! A small fixture chapter run live: checks, captures, a step stopped at its bound,
//! a background step, shell variables carried from step to step (and into psql through
//! `vars=`), and the record it leaves.

mod common;

use common::{TestCluster, port_base, slot};
use runner::lab::engine::Engine;
use runner::lab::parse_chapter;

const CHAPTER: &str = r#"# Fixture

```lab-precondition fresh services=postgres-primary,postgres-sync-standby
A primary and its synchronous standby.
```

```sh lab capture=lsn
lsn=$(docker compose exec -T postgres-primary psql -U postgres -Atc "SELECT pg_current_wal_lsn()")
echo "lsn: $lsn"
```

```sql check on=postgres-primary claim="the sync standby streams" wait-until timeout=20s
SELECT count(*) = 1 AS streams, max(application_name) AS standby
FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming';
```

```sh lab id=ticker background timeout=150s
for i in $(seq 1 600); do echo "tick $i"; sleep 0.2; done
```

```sh lab
docker compose stop postgres-sync-standby
```

```sql lab on=postgres-primary timeout=3s expect-timeout
INSERT INTO rental (inventory_id, customer_id) VALUES (1, 1);
```

```sql check on=postgres-primary claim="the cancelled commit is there locally"
SELECT count(*) = 1 AS committed_locally, count(*) AS rows FROM rental WHERE rental_id > 16000;
```

```sh lab stop=ticker
echo "ticker stopped; lsn was $lsn"
```

```sh check claim="a failing command fails its check" expect-fail
false
```

```sql check on=postgres-primary vars=lsn claim="a shell variable reaches psql"
SELECT :'lsn'::pg_lsn <= pg_current_wal_lsn() AS ordered, :'lsn' AS lsn;
```
"#;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker: ./course test runs it"]
async fn fixture_chapter_runs_live_and_records() {
    let test = TestCluster::new("lab-test-chapter", port_base(slot::CHAPTER)).await;
    let chapter = parse_chapter("fixture.md", "fixture.md", CHAPTER).expect("fixture parses");
    let mut engine = Engine::new(test.cluster.clone(), common::printed());
    let record = engine
        .run_chapter(&chapter)
        .await
        .expect("the chapter runs");
    let by_id = |id: &str| record.blocks.iter().find(|b| b.id == id).unwrap();

    assert_eq!(record.blocks.len(), chapter.blocks.len());
    assert!(record.server_version.as_deref().unwrap().starts_with("17."));
    let lsn = by_id("step-1").captures["lsn"].clone();
    assert!(lsn.contains('/'), "{lsn}");
    assert!(by_id("step-2").check.as_ref().unwrap().passed);
    // The commit hung in SyncRep and was cancelled at its bound, with PostgreSQL's warning.
    let hung = by_id("step-5");
    assert!(hung.timed_out && hung.ok, "{hung:#?}");
    assert!(
        hung.output.contains("already committed locally"),
        "{}",
        hung.output
    );
    assert!(
        by_id("step-6").check.as_ref().unwrap().passed,
        "{:#?}",
        by_id("step-6")
    );
    // The background ticker ran while the other steps ran and was stopped by step 7.
    let ticker = by_id("ticker");
    assert!(ticker.ok && ticker.output.contains("tick 1"), "{ticker:#?}");
    // It would run 120 s, far longer than the steps before its stop on any machine: a
    // ticker that ended by itself would not test the stop.
    assert!(
        !ticker.output.contains("tick 600"),
        "stopped before its end"
    );
    assert!(by_id("step-7").output.contains(&format!("lsn was {lsn}")));
    // A check whose command fails while it is expected to succeed... here expected to fail: holds.
    let failing = by_id("step-8");
    assert!(failing.ok, "{failing:#?}");
    // The shell variable of step 1 reached step 7's shell and step 9's psql.
    let vars = by_id("step-9").check.as_ref().unwrap();
    assert!(vars.passed, "{vars:#?}");
    assert_eq!(vars.figure, [("lsn".to_string(), lsn.clone())]);
    drop(engine);
}
