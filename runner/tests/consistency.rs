//! `runner consistency check` on hand-made reader logs: no cluster needed. The checker
//! must report each anomaly it exists for, an `--expect` that does not hold must fail
//! the command (exit 1), and a malformed log is an error naming its line (exit 2).

use snapbox::cmd::Command;
use snapbox::str;

fn runner() -> Command {
    Command::new(snapbox::cmd::cargo_bin!("runner"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
}

/// A session that misses its own write once, and goes back in time once.
const LOG: &str = "# runner-reads v1 start=2026-01-01T00:00:00.000000Z mode=hand-made\n\
write s1 42 1 0.001000 0.002000 -\n\
read s1 postgres-async-standby 42 - 0.003000 0.004000 -\n\
read s1 postgres-sync-standby 42 1 0.005000 0.006000 -\n\
read s1 postgres-async-standby 42 - 0.007000 0.008000 -\n";

fn log_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reads.log");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn a_hand_made_history_reports_its_anomalies() {
    let (_dir, path) = log_file(LOG);
    runner()
        .args([
            "consistency",
            "check",
            "--expect",
            "stale",
            "--expect",
            "regression",
            "--log",
        ])
        .arg(&path)
        .assert()
        .success()
        .stdout_eq(str![[r#"
stale read: s1 wrote 42 = 1 (acknowledged), then read no row on postgres-async-standby
stale read: s1 wrote 42 = 1 (acknowledged), then read no row on postgres-async-standby
regression: s1 read 42 = 1 on postgres-sync-standby, then no row on postgres-async-standby
reads: 3
writes: 1
reads_after_own_write: 3
stale_reads: 2
regressions: 1
skipped: 0
reads_on_postgres_async_standby: 2
reads_on_postgres_sync_standby: 1
verdict: 2 stale read(s), 1 regression(s), 0 row(s) read then lost

"#]]);
}

#[test]
fn an_expectation_that_does_not_hold_fails_the_command() {
    let (_dir, path) = log_file(LOG);
    runner()
        .args(["consistency", "check", "--expect", "no-stale", "--log"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout_eq(str![[r#"
...
verdict: FAILED: expected no stale read (after at least one own write)

"#]]);
}

#[test]
fn a_malformed_log_names_its_line() {
    let (_dir, path) = log_file("# runner-reads v1\nread s1 n k x 0 0 -\n");
    runner()
        .args(["consistency", "check", "--log"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr_eq(str![[r#"
runner: [..]reads.log:2: "read s1 n k x 0 0 -": version "x" is neither an integer nor `-`: invalid digit found in string

"#]]);
}
