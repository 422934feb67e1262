//! `runner chaos` against a real cluster of its own (`lab-test-chaos`, ports of its
//! own): a synchronous failover by SIGKILL loses no acknowledged write, and the
//! asynchronous double fault (standby killed, then the primary two seconds later) loses
//! some — so the check a chapter relies on, `--expect-no-loss`, can fail, and does
//! when the cluster loses writes. Each run's result is read back from its JSON file; a
//! `--seed` draws the fault's delay it says.

mod common;

use std::process::Command;

use common::{TestCluster, repo_root};
use runner::chaos::{ChaosReport, RunOutcome};

const PROJECT: &str = "lab-test-chaos";
const PORT_BASE: u16 = common::port_base(common::slot::CHAOS);

/// Runs `runner chaos ARGS` against the test's project; returns (exit code, stdout).
fn chaos(cluster: &TestCluster, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runner"));
    cmd.arg("chaos")
        .args(args)
        .current_dir(repo_root().join("compose"));
    for (key, value) in &cluster.cluster.settings.vars {
        if key == "COMPOSE_PROJECT_NAME" || key.ends_with("_PORT") {
            cmd.env(key, value);
        }
    }
    let out = cmd.output().expect("running runner chaos");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "--- runner chaos {}\n{stdout}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker: ./course test runs it"]
async fn sync_loses_nothing_and_the_async_double_fault_fails_the_no_loss_check() {
    let cluster = TestCluster::new(PROJECT, PORT_BASE).await;
    let dir = tempfile::tempdir().unwrap();
    let result = |name: &str| dir.path().join(name).display().to_string();

    let sync_out = result("sync.json");
    let (code, stdout) = chaos(
        &cluster,
        &[
            "--mode",
            "sync",
            "--runs",
            "1",
            "--expect-no-loss",
            "--dir",
            &result("sync"),
            "--out",
            &sync_out,
        ],
    );
    assert_eq!(code, 0, "a synchronous failover must lose nothing");
    assert!(stdout.contains("lost_max: 0\n"), "{stdout}");
    let report = ChaosReport::read(std::path::Path::new(&sync_out)).unwrap();
    match &report.runs[0].outcome {
        RunOutcome::Verified {
            acknowledged,
            lost,
            promoted_s,
            rerouted_s,
            rto_s,
            write_gap_s,
            fault_s,
            on,
            ..
        } => {
            assert!(*acknowledged > 0, "the writer wrote nothing");
            assert_eq!(*lost, 0);
            assert_eq!(on, "postgres-sync-standby");
            // The procedure ran in order, and the outage was seen by the writer: the
            // first write after the fault came once pgbouncer was re-routed.
            assert!(promoted_s.unwrap() < rerouted_s.unwrap());
            let rto_s = rto_s.expect("a write was acknowledged after the fault");
            assert!(rto_s >= rerouted_s.unwrap(), "{rto_s} < {rerouted_s:?}");
            assert!(*write_gap_s > 0.0);
            // The fault fell in its window after the writer's first acknowledged writes.
            assert!(*fault_s > 1.5, "{fault_s}");
        }
        other => panic!("the run was not verified: {other:?}"),
    }

    let async_out = result("async.json");
    let (code, stdout) = chaos(
        &cluster,
        &[
            "--mode",
            "async",
            "--fault",
            "standby-then-primary",
            "--runs",
            "1",
            "--expect-no-loss",
            "--dir",
            &result("async"),
            "--out",
            &async_out,
        ],
    );
    assert_eq!(
        code, 1,
        "the asynchronous double fault loses writes: --expect-no-loss must fail"
    );
    let report = ChaosReport::read(std::path::Path::new(&async_out)).unwrap();
    assert_eq!(report.unverified(), 0, "{stdout}");
    assert_eq!(report.runs_with_loss(), 1, "{stdout}");
    assert!(stdout.contains("runs_with_loss: 1\n"), "{stdout}");

    // The seed repeats the fault times: the same seed, the same delays.
    let seeded = result("seeded.json");
    let (code, _) = chaos(
        &cluster,
        &[
            "--mode",
            "async",
            "--runs",
            "1",
            "--seed",
            "7",
            "--dir",
            &result("seeded"),
            "--out",
            &seeded,
        ],
    );
    assert_eq!(code, 0);
    let delay = |path: &str| match &ChaosReport::read(std::path::Path::new(path)).unwrap().runs[0]
        .outcome
    {
        RunOutcome::Verified { fault_delay_s, .. } => *fault_delay_s,
        other => panic!("the run was not verified: {other:?}"),
    };
    assert_eq!(
        delay(&seeded),
        runner::chaos::fault_delay(7, 1).as_secs_f64()
    );

    // Side by side, from the two result files.
    let (code, stdout) = chaos(
        &cluster,
        &["--compare", &sync_out, &async_out, "--column", "lost"],
    );
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("run sync-kill_lost async-standby-then-primary_lost\n1 0 "),
        "{stdout}"
    );
}
