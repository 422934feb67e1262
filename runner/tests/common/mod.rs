//! Test clusters: each test binary gets its own compose project and ports, torn down
//! before and after, so a cluster left running by a reader never breaks a test run.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use runner::cluster::Cluster;
use runner::cluster::settings::Settings;
use runner::cluster::topology::Service;

/// Whether Docker-backed tests are switched off (LAB_SKIP_DOCKER_TESTS=1).
pub fn docker_tests_skipped() -> bool {
    if std::env::var("LAB_SKIP_DOCKER_TESTS").as_deref() == Ok("1") {
        eprintln!("LAB_SKIP_DOCKER_TESTS=1: skipping a test that needs Docker");
        return true;
    }
    false
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Settings for a private project `name`, its ports moved to `port_base`.. .
pub fn test_settings(name: &str, port_base: u16) -> Settings {
    let mut settings = Settings::load(&repo_root()).expect("compose/.env");
    settings
        .vars
        .insert("COMPOSE_PROJECT_NAME".into(), name.into());
    for (i, var) in Service::ALL.map(Service::port_var).iter().enumerate() {
        settings
            .vars
            .insert(var.to_string(), (port_base + i as u16).to_string());
    }
    settings
}

/// A cluster torn down (with its volumes) when created and when dropped.
pub struct TestCluster {
    pub cluster: Cluster,
}

impl TestCluster {
    pub async fn new(name: &str, port_base: u16) -> TestCluster {
        let cluster = Cluster::connect(test_settings(name, port_base))
            .await
            .expect("docker");
        cluster.down(true).await.expect("tear down before");
        TestCluster { cluster }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let settings = self.cluster.settings.clone();
        // Best effort, bounded: compose itself is bounded inside `down`.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                if let Ok(c) = Cluster::connect(settings).await {
                    let _ = c.down(true).await;
                }
            })
        })
        .join();
    }
}

/// An observer that prints what a run does to stderr, which the test harness shows when
/// a test fails.
pub struct Printed;

impl runner::lab::engine::Observer for Printed {
    fn note(&self, text: &str) {
        eprintln!("{text}");
    }

    fn step_started(
        &self,
        chapter: &runner::lab::Chapter,
        block: &runner::lab::Block,
        command: &str,
    ) {
        eprintln!(
            "── {} [{}] ──\n{command}",
            block.location(&chapter.path),
            block.id
        );
    }

    fn output(&self, text: &str) {
        eprint!("{text}");
    }

    fn step_ended(&self, block: &runner::lab::Block, record: &runner::lab::record::BlockRecord) {
        eprintln!("[{}] ok = {}", block.id, record.ok);
    }
}

/// A shared [`Printed`].
pub fn printed() -> runner::lab::engine::SharedObserver {
    std::sync::Arc::new(Printed)
}

/// Waits until the primary holds more than `min_bytes` of WAL it never sent to the
/// (paused) standby `application_name`, and at least 2 s have passed: the writes a
/// promotion of that standby must lose. Bounded by `within`.
pub async fn primary_gets_ahead_of(
    primary: &tokio_postgres::Client,
    application_name: &str,
    min_bytes: f64,
    within: Duration,
) {
    let paused = Instant::now();
    let unsent_sql = format!(
        "SELECT pg_current_wal_lsn() - sent_lsn FROM pg_stat_replication \
         WHERE application_name = '{application_name}'"
    );
    loop {
        let unsent: f64 = runner::cluster::pg::scalar(primary, &unsent_sql)
            .await
            .unwrap()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if unsent > min_bytes && paused.elapsed() > Duration::from_secs(2) {
            eprintln!("--- {unsent} bytes of WAL the paused standby was never sent");
            return;
        }
        assert!(
            paused.elapsed() < within,
            "the primary did not get ahead of the paused standby ({unsent} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The op ids of `range` in `rental` on the node behind `client`: the ground truth a
/// test compares `runner verify` with, read a second way.
pub async fn present_ops(
    client: &tokio_postgres::Client,
    range: std::ops::RangeInclusive<i64>,
) -> std::collections::BTreeSet<i64> {
    let sql = format!(
        "SELECT op_id FROM rental WHERE op_id BETWEEN {} AND {}",
        range.start(),
        range.end()
    );
    runner::cluster::pg::rows(client, &sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .map(|id| id.parse::<i64>().unwrap())
        .collect()
}
