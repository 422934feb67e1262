//! The load writer and the loss check against a real cluster of their own.
//!
//! One private compose project (`lab-test-load`, ports of its own), torn down before
//! and after, goes through the three situations the course's chapters put the writer
//! in, in order, because each one leaves the cluster in the state the next one needs:
//!
//! 1. synchronous replication through pgbouncer: every acknowledged write is there;
//!    the `runner load` command SIGKILLed mid-run leaves a ledger `runner verify`
//!    reads and holds against the primary;
//! 2. the synchronous standby stopped: every commit hangs in SyncRep, is cancelled at
//!    the client's bound, is classified `syncrep_cancelled`, and is on the primary
//!    (recovered, not lost); with `synchronous_commit = local` set per transaction the
//!    same writes go through pgbouncer without waiting;
//! 3. asynchronous replication, the standby paused, the primary SIGKILLed, the standby
//!    promoted: acknowledged writes are lost, and `verify` counts exactly the ledger's
//!    acknowledged ids that the promoted node lacks.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestCluster;
use runner::cluster::images::BaseWay;
use runner::cluster::settings::Settings;
use runner::cluster::{compose, pg};
use runner::load::{
    self, ErrorSeen, Ledger, LoadConfig, LoadObserver, LoadSummary, Notice, Progress,
};
use runner::verify::{self, Expectation};

const PROJECT: &str = "lab-test-load";
const PORT_BASE: u16 = common::port_base(common::slot::LOAD);

/// A scratch folder for the ledgers, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("runner-load-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(settings: &Settings, target: &str, ledger: &Path) -> LoadConfig {
    LoadConfig {
        workers: 4,
        ledger: Some(ledger.to_path_buf()),
        ..LoadConfig::new(settings.conninfo(target, "db").unwrap(), target)
    }
}

async fn compose(settings: &Settings, args: &[&str]) {
    compose::run(settings, args, Duration::from_secs(120), false)
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
}

/// The `runner` binary, pointed at the test's project.
fn runner_command(settings: &Settings) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_runner"));
    cmd.envs(compose::environment(settings))
        .env("LAB_ROOT", &settings.root)
        .stdin(std::process::Stdio::null());
    cmd
}

/// Shows a run's events in the test's output, as `runner load` shows them.
struct Shown;

impl LoadObserver for Shown {
    fn progress(&self, progress: &Progress) {
        eprintln!("load: {progress}");
    }
    fn error(&self, error: &ErrorSeen) {
        eprintln!("load: {error}");
    }
    fn notice(&self, notice: &Notice) {
        eprintln!("load: {notice}");
    }
}

fn print(what: &str, summary: &LoadSummary) {
    eprintln!("--- {what}\n{}{}", summary.human(), summary.key_values());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker: ./course test runs it"]
async fn load_and_verify_through_sync_hang_and_async_failover() {
    let mut test = TestCluster::new(PROJECT, PORT_BASE).await;
    // Two steps: two standbys taking their base backups at once can race (one's fast
    // checkpoint removes WAL the other's not-yet-reserved slot still needs).
    for services in [
        &["postgres-primary", "postgres-sync-standby", "pgbouncer"][..],
        &["postgres-async-standby"][..],
    ] {
        test.cluster
            .up(services, BaseWay::Auto)
            .await
            .unwrap_or_else(|err| panic!("up: {err:#}"));
    }
    let settings = test.cluster.settings.clone();
    let scratch = Scratch::new();
    sync_through_pgbouncer_loses_nothing(&settings, &scratch).await;
    a_killed_writers_ledger_verifies(&settings, &scratch).await;
    commits_hang_when_the_sync_standby_stops(&settings, &scratch).await;
    synchronous_commit_local_does_not_wait(&settings, &scratch).await;
    let ledger = scratch.path("async.ledger");
    let (summary, pausing_at) = write_until_the_primary_is_killed(&settings, &ledger).await;
    the_promoted_standby_lacks_acknowledged_writes(&settings, &ledger, &summary, pausing_at).await;
    drop(test);
}

async fn sync_through_pgbouncer_loses_nothing(settings: &Settings, scratch: &Scratch) {
    // 1. Synchronous replication, through pgbouncer: nothing acknowledged is lost.
    let ledger = scratch.path("sync.ledger");
    let summary = load::run(
        LoadConfig {
            duration: Some(Duration::from_secs(2)),
            ..config(settings, "pgbouncer", &ledger)
        },
        Arc::new(Shown),
        std::future::pending(),
    )
    .await
    .unwrap_or_else(|err| panic!("load: {err:#}"));
    print("sync, through pgbouncer", &summary);
    assert!(summary.acknowledged > 0, "no write acknowledged");
    assert_eq!(summary.errors, 0);
    assert!(summary.latency.p99_ms > 0.0);
    let report = verify_on(settings, &ledger, "postgres-primary").await;
    eprintln!("{}", report.key_values());
    assert_eq!(report.check.acknowledged as u64, summary.acknowledged);
    assert_eq!(report.check.ok as u64, summary.acknowledged);
    assert!(report.check.lost.is_empty() && report.check.unexpected.is_empty());
    assert!(Expectation::NoLoss.failure(&report).is_none());
    assert!(Expectation::Loss.failure(&report).is_some());
}

async fn a_killed_writers_ledger_verifies(settings: &Settings, scratch: &Scratch) {
    // The command line, SIGKILLed mid-run: its ledger is still readable (a cut last
    // line is tolerated) and `runner verify` holds it against the primary.
    let ledger = scratch.path("killed.ledger");
    let mut writer = runner_command(settings)
        .args([
            "load",
            "--target",
            "postgres-primary",
            "--quiet",
            "--ledger",
        ])
        .arg(&ledger)
        .spawn()
        .expect("runner load starts");
    tokio::time::sleep(Duration::from_secs(3)).await;
    writer.kill().expect("SIGKILL the writer");
    let _ = writer.wait();
    let parsed = Ledger::read(&ledger).unwrap_or_else(|err| panic!("{err:#}"));
    assert!(parsed.end.is_none(), "a killed writer wrote no end line");
    assert!(
        parsed.acknowledged() > 0,
        "the writer wrote before it was killed"
    );
    let verified = runner_command(settings)
        .args([
            "verify",
            "--on",
            "postgres-primary",
            "--expect-no-loss",
            "--ledger",
        ])
        .arg(&ledger)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verified.stdout);
    eprintln!("--- runner verify of a SIGKILLed writer's ledger\n{stdout}");
    assert!(
        verified.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(stdout.contains("\nlost: 0\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("\nacknowledged: {}\n", parsed.acknowledged())),
        "{stdout}"
    );
    let expect_loss = runner_command(settings)
        .args([
            "verify",
            "--on",
            "postgres-primary",
            "--expect-loss",
            "--ledger",
        ])
        .arg(&ledger)
        .output()
        .unwrap();
    assert_eq!(
        expect_loss.status.code(),
        Some(1),
        "--expect-loss fails when nothing is lost"
    );
}

async fn commits_hang_when_the_sync_standby_stops(settings: &Settings, scratch: &Scratch) {
    // 2. The synchronous standby stops: commits hang in SyncRep. The client's bound
    // cancels each; PostgreSQL's WARNING says it committed locally, so it is present
    // on the primary — recovered, not acknowledged, not lost.
    compose(settings, &["stop", "postgres-sync-standby"]).await;
    let ledger = scratch.path("hang.ledger");
    let started = Instant::now();
    let summary = load::run(
        LoadConfig {
            workers: 2,
            duration: Some(Duration::from_millis(2500)),
            commit_timeout: Some(Duration::from_millis(500)),
            ..config(settings, "pgbouncer", &ledger)
        },
        Arc::new(Shown),
        std::future::pending(),
    )
    .await
    .unwrap_or_else(|err| panic!("load: {err:#}"));
    print("sync standby stopped, commit timeout 500ms", &summary);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run is bounded"
    );
    assert_eq!(summary.acknowledged, 0, "no commit can be acknowledged");
    let cancelled = summary
        .errors_by_class
        .get("syncrep_cancelled")
        .copied()
        .unwrap_or(0);
    assert!(cancelled >= 2, "{:?}", summary.errors_by_class);
    assert_eq!(summary.client_cancels, summary.attempted);
    let report = verify_on(settings, &ledger, "postgres-primary").await;
    eprintln!("{}", report.key_values());
    assert_eq!(report.check.recovered.len() as u64, cancelled);
    assert!(report.check.lost.is_empty() && report.check.unexpected.is_empty());

    // Without a commit timeout the commits hang until the run ends; then, after the
    // stop grace, they are cancelled the same way: the run is bounded all the same.
    let ledger = scratch.path("hang-until-stop.ledger");
    let started = Instant::now();
    let summary = load::run(
        LoadConfig {
            workers: 3,
            duration: Some(Duration::from_millis(1500)),
            ..config(settings, "pgbouncer", &ledger)
        },
        Arc::new(Shown),
        std::future::pending(),
    )
    .await
    .unwrap();
    print("sync standby stopped, no commit timeout", &summary);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the run is bounded"
    );
    assert_eq!(summary.attempted, 3, "one hung commit per worker");
    assert_eq!(summary.errors_by_class.get("syncrep_cancelled"), Some(&3));
    assert_eq!(summary.client_cancels, 3);
}

async fn synchronous_commit_local_does_not_wait(settings: &Settings, scratch: &Scratch) {
    // ... and with synchronous_commit = local, set inside each transaction, the same
    // load through pgbouncer's transaction pooling does not wait at all.
    let ledger = scratch.path("local.ledger");
    let summary = load::run(
        LoadConfig {
            duration: Some(Duration::from_secs(2)),
            commit_timeout: Some(Duration::from_secs(1)),
            synchronous_commit: Some("local".into()),
            ..config(settings, "pgbouncer", &ledger)
        },
        Arc::new(Shown),
        std::future::pending(),
    )
    .await
    .unwrap();
    print("sync standby stopped, synchronous_commit=local", &summary);
    assert!(summary.acknowledged > 0);
    assert_eq!(summary.errors, 0, "{:?}", summary.errors_by_class);
}

async fn write_until_the_primary_is_killed(
    settings: &Settings,
    ledger: &Path,
) -> (LoadSummary, chrono::DateTime<chrono::Utc>) {
    // 3. Asynchronous replication: pause the standby, keep writing until the primary
    // has WAL the standby was never sent, SIGKILL the primary, promote the standby.
    let primary = pg::connect(settings, "postgres-primary", "db")
        .await
        .unwrap();
    pg::rows(&primary, "ALTER SYSTEM SET synchronous_standby_names = ''")
        .await
        .unwrap();
    pg::rows(&primary, "SELECT pg_reload_conf()").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg::scalar(&primary, "SHOW synchronous_standby_names")
        .await
        .unwrap()
        .as_deref()
        != Some("")
    {
        assert!(Instant::now() < deadline, "the reload did not take");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(load::run(
        config(settings, "postgres-primary", ledger),
        Arc::new(Shown),
        async {
            let _ = stop_rx.await;
        },
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pausing_at = chrono::Utc::now();
    compose(settings, &["pause", "postgres-async-standby"]).await;
    common::primary_gets_ahead_of(
        &primary,
        "postgres-async-standby",
        2e6,
        Duration::from_secs(60),
    )
    .await;
    drop(primary);
    compose(settings, &["kill", "postgres-primary"]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(());
    let summary = writer
        .await
        .unwrap()
        .unwrap_or_else(|err| panic!("load: {err:#}"));
    print("async, primary killed", &summary);
    assert!(summary.acknowledged > 0);
    assert!(
        summary.errors + summary.connect_errors > 0,
        "the writer saw the primary die"
    );
    (summary, pausing_at)
}

async fn the_promoted_standby_lacks_acknowledged_writes(
    settings: &Settings,
    ledger: &Path,
    summary: &LoadSummary,
    pausing_at: chrono::DateTime<chrono::Utc>,
) {
    compose(settings, &["unpause", "postgres-async-standby"]).await;
    let standby = pg::connect(settings, "postgres-async-standby", "db")
        .await
        .unwrap();
    let promoted = pg::scalar(&standby, "SELECT pg_promote()").await.unwrap();
    assert_eq!(promoted.as_deref(), Some("t"));

    let report = verify_on(settings, ledger, "postgres-async-standby").await;
    eprintln!("{}", report.key_values());

    // The same loss, computed here from the ledger and the promoted node's rows.
    let parsed = Ledger::read(ledger).unwrap();
    let acked: BTreeSet<i64> = parsed
        .ops
        .iter()
        .filter(|(_, r)| r.acked_at().is_some())
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        acked.len() as u64,
        summary.acknowledged,
        "ledger and summary agree"
    );
    let present = common::present_ops(&standby, parsed.header.op_range()).await;
    let missing: Vec<i64> = acked.difference(&present).copied().collect();
    assert!(!missing.is_empty(), "acknowledged writes are lost");
    assert_eq!(report.check.lost, missing);
    assert!(report.check.unexpected.is_empty());
    assert!(Expectation::Loss.failure(&report).is_none());
    assert!(Expectation::NoLoss.failure(&report).is_some());
    // What was lost was written after the standby was paused (give or take the few
    // milliseconds a local standby trails by).
    let first = report.first_lost.as_ref().unwrap();
    assert!(
        first.attempted_at > pausing_at - chrono::Duration::milliseconds(500),
        "the first lost write ({}) was attempted well before the pause ({pausing_at})",
        first.attempted_at
    );
}

/// Verifies `ledger` against `service`, failing the test on any error.
async fn verify_on(settings: &Settings, ledger: &Path, service: &str) -> verify::VerifyReport {
    let conninfo = settings.conninfo(service, "db").unwrap();
    verify::verify(ledger, &conninfo, service, Duration::from_secs(30))
        .await
        .unwrap_or_else(|err| panic!("verify on {service}: {err:#}"))
}
